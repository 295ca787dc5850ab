/**
 * Player tickets: with `MESH_PLAYER_TICKET_SECRET` set, a player's action must carry a ticket that
 * the game's backend minted for that player, so that nobody can submit (or, with a reused `seq`,
 * try to replace) actions in another player's name. A ticket is
 * `v1.<base64url(player_id)>.<expires_at in Unix ms>.<base64url(HMAC-SHA256(secret, the first three parts joined by '.'))>`,
 * sent in the `X-Player-Ticket` header. Without the secret, actions stay open (as before tickets).
 */
import { createHmac, timingSafeEqual } from 'node:crypto';
import type { Middleware } from 'koa';
import { forbidden, unauthorized } from './problem.ts';

/** The header that carries a player ticket. */
export const PLAYER_TICKET_HEADER = 'X-Player-Ticket';

/** Mints a ticket (the game backend's side; here for tests and as the reference implementation). */
export function mintPlayerTicket(secret: string, playerId: string, expiresAtMs: number): string {
  const body = `v1.${Buffer.from(playerId, 'utf8').toString('base64url')}.${expiresAtMs}`;
  return `${body}.${signature(secret, body)}`;
}

/** What a valid ticket says, or why a ticket is refused. */
export type TicketCheck = { readonly ok: true; readonly playerId: string } | { readonly ok: false; readonly detail: string };

/** Verifies a ticket's form, signature (in constant time) and expiry. */
export function verifyPlayerTicket(secret: string, ticket: string, nowMs: number): TicketCheck {
  const match = /^(v1\.([A-Za-z0-9_-]{1,400})\.(\d{1,16}))\.([A-Za-z0-9_-]{43})$/.exec(ticket.trim());
  if (!match) return { ok: false, detail: `The ${PLAYER_TICKET_HEADER} header is not a ticket (v1.<player>.<expires_at>.<signature>).` };
  const [, body, player, expires, presented] = match as unknown as [string, string, string, string, string];
  const expected = Buffer.from(signature(secret, body), 'base64url');
  const given = Buffer.from(presented, 'base64url');
  if (given.length !== expected.length || !timingSafeEqual(given, expected)) {
    return { ok: false, detail: 'The player ticket\'s signature is not valid: it was not minted with this service\'s MESH_PLAYER_TICKET_SECRET.' };
  }
  if (Number(expires) <= nowMs) return { ok: false, detail: `The player ticket expired at ${expires} (Unix ms); ask the game backend for a new one.` };
  return { ok: true, playerId: Buffer.from(player, 'base64url').toString('utf8') };
}

function signature(secret: string, body: string): string {
  return createHmac('sha256', secret).update(body, 'utf8').digest('base64url');
}

/**
 * Requires a valid ticket when `secret` is set (401 when missing, malformed, forged or expired) and
 * keeps the ticket's player in `ctx.state.ticketPlayer`; the handler compares it with the body's
 * `player_id` ({@link requireTicketFor}). Without a secret it lets every request through.
 */
export function playerTicketAuth(secret: string | undefined, now: () => number = Date.now): Middleware {
  return async function requirePlayerTicket(ctx, next) {
    if (secret !== undefined && secret !== '') {
      const ticket = ctx.get(PLAYER_TICKET_HEADER);
      if (ticket === '') throw unauthorized(`This service needs a player ticket in the ${PLAYER_TICKET_HEADER} header (MESH_PLAYER_TICKET_SECRET is set).`, 'mesh-player');
      const checked = verifyPlayerTicket(secret, ticket, now());
      if (!checked.ok) throw unauthorized(checked.detail, 'mesh-player');
      ctx.state.ticketPlayer = checked.playerId;
    }
    await next();
  };
}

/** 403 when the request's ticket names another player than `playerId` (no ticket checked: nothing to do). */
export function requireTicketFor(state: Record<string, unknown>, playerId: string): void {
  const ticketPlayer = state.ticketPlayer;
  if (typeof ticketPlayer === 'string' && ticketPlayer !== playerId) {
    throw forbidden(`The player ticket is for player '${ticketPlayer}', not '${playerId}'.`);
  }
}
