/**
 * Buffer of player actions for regions that have no acknowledged primary. Actions are held until the
 * new primary acknowledges them (replayed) or they grow older than `actionBufferMaxAgeMs` (expired),
 * so every accepted action ends exactly one way and nothing is dropped silently.
 */
import type { MeshConfig } from '../base/config.ts';
import { MinHeap } from '../base/heap.ts';
import { invariantFor, type Invariant } from '../base/invariant.ts';
import { ok, reject, type PlayerId, type RegionId, type Result } from '../base/types.ts';
import { payloadDigest } from './payload-digest.ts';

const invariant: Invariant = invariantFor('action-buffer invariant');

/** The two limits the buffer needs; a whole `MeshConfig` satisfies it. */
export type ActionBufferLimits = Pick<MeshConfig, 'actionBufferMaxPerPlayer' | 'actionBufferMaxAgeMs'>;

/**
 * How many maximum ages a player's highest acknowledged seq is remembered once it has nothing pending.
 * A resubmission arriving later than this is accepted as new; a client retrying that late is retrying
 * an action that would long have expired anyway, and forgetting keeps memory bounded by live players.
 */
export const ackMemoryAgeFactor = 10;

/** An action as a player submits it: `seq` is a per-player non-negative integer, `payload` opaque JSON. */
export interface ActionSubmission { readonly playerId: PlayerId; readonly seq: number; readonly payload: unknown }

/** An accepted, not yet acknowledged action as handed out for replay. */
export interface BufferedAction extends ActionSubmission { readonly acceptedAtMs: number }

/**
 * Answer to a submission. `pending` is the player's count of held actions in that region;
 * `expiresAtMs` is when the held action expires, or `nowMs` for a seq already acknowledged.
 */
export interface SubmitOutcome { readonly status: 'buffered' | 'duplicate'; readonly pending: number; readonly expiresAtMs: number }

/** Names one action of one player in one region. */
export interface ActionRef { readonly regionId: RegionId; readonly playerId: PlayerId; readonly seq: number }

/** Acknowledgement by the new primary that it applied an action. */
export interface ActionAck { readonly playerId: PlayerId; readonly seq: number }

/** Result of `acknowledge`: `unknown` counts acks that matched no held action (repeats included). */
export interface AckOutcome { readonly acknowledged: number; readonly unknown: number }

/** Cumulative counters; `buffered` counts accepted actions and `replayed` acknowledged ones. */
export interface ActionBufferCounters { buffered: number; replayed: number; expired: number; rejected: number; duplicates: number }

/** One player's persisted state in one region. */
export interface PlayerBufferJSON {
  readonly playerId: PlayerId;
  readonly highestAckedSeq: number | null;
  readonly lastAckedAtMs: number | null;
  /** The most recently acknowledged seqs (at most {@link ackedSeqMemory} x the per-player bound). */
  readonly ackedSeqs?: readonly number[];
  /**
   * The payload digest of each of `ackedSeqs`, in the same order (null: unknown, from a file written
   * before digests were kept). A resubmission with another payload is a conflict, not a duplicate.
   */
  readonly ackedDigests?: readonly (string | null)[];
  /** Highest seq forgotten from `ackedSeqs`; a seq at or below it is treated as already replayed. */
  readonly ackedFloor?: number | null;
  readonly actions: readonly {
    readonly seq: number; readonly payload: unknown; readonly acceptedAtMs: number;
    /** {@link payloadDigest} of the payload (recomputed when absent, in files written before it was kept). */
    readonly digest?: string;
  }[];
}

/** Persisted form of the whole buffer; canonical (sorted), so equal buffers give equal JSON. */
export interface ActionBufferJSON {
  readonly version: 1;
  readonly regions: readonly { readonly regionId: RegionId; readonly players: readonly PlayerBufferJSON[] }[];
  readonly counters: ActionBufferCounters;
}

interface Held extends BufferedAction { readonly regionId: RegionId; readonly digest: string }

/** One player's record; `forgetQueued` keeps its entries in the forget queue to one at most. */
interface PlayerState {
  readonly pending: Map<number, Held>;
  highestAckedSeq: number | null;
  lastAckedAtMs: number | null;
  /** Recently acknowledged seqs with their payload digests (null: unknown), in acknowledgement order. */
  readonly acked: Map<number, string | null>;
  ackedFloor: number | null;
  forgetQueued: boolean;
}

/**
 * How many acknowledged seqs are remembered per player, as a multiple of the per-player bound.
 * Remembering the exact set (not just the highest) keeps an action that arrives out of order (seq 3
 * after seq 5 was replayed) from being mistaken for a duplicate and silently dropped; only an
 * action more than this many acknowledgements late is treated as already replayed.
 */
export const ackedSeqMemory = 4;

interface ForgetEntry { readonly dueMs: number; readonly regionId: RegionId; readonly playerId: PlayerId; readonly state: PlayerState }

/**
 * Action buffers of every region. Expiry is driven by a min-heap on expiry time, so `expire` costs
 * O(1) when nothing is due; acknowledged actions leave stale heap entries that are skipped when they
 * surface and compacted away when they outnumber the live ones.
 */
export class ActionBuffer {
  private readonly maxPerPlayer: number;
  private readonly maxAgeMs: number;
  private readonly regions = new Map<RegionId, Map<PlayerId, PlayerState>>();
  private readonly expiryQueue = new MinHeap<Held>((a, b) => a.acceptedAtMs < b.acceptedAtMs);
  private readonly forgetQueue = new MinHeap<ForgetEntry>((a, b) => a.dueMs < b.dueMs);
  private readonly totals: ActionBufferCounters = { buffered: 0, replayed: 0, expired: 0, rejected: 0, duplicates: 0 };
  private held = 0;
  /** Players whose persisted record may have changed since {@link takeChangedPlayers}, by region and player. */
  private readonly changedPlayers = new Map<string, readonly [RegionId, PlayerId]>();
  /** Regions whose buffered actions changed since {@link takeChangedRegions} (session pushes read it). */
  private changedRegions = new Set<RegionId>();

  /** Creates an empty buffer with the configured per-player bound and maximum age. */
  constructor(limits: ActionBufferLimits) {
    this.maxPerPlayer = limits.actionBufferMaxPerPlayer;
    this.maxAgeMs = limits.actionBufferMaxAgeMs;
    invariant(Number.isInteger(this.maxPerPlayer) && this.maxPerPlayer > 0, 'actionBufferMaxPerPlayer must be a positive integer');
    invariant(Number.isInteger(this.maxAgeMs) && this.maxAgeMs > 0, 'actionBufferMaxAgeMs must be a positive integer');
  }

  /**
   * Accepts an action, recognises a duplicate (seq already held or already acknowledged with the
   * same payload; nothing changes), refuses a repeated seq with another payload (`action_conflict`:
   * the first payload stands, the second is never silently dropped), or refuses with `buffer_full`
   * and the time until the player's oldest action expires.
   */
  submit(regionId: RegionId, action: ActionSubmission, nowMs: number): Result<SubmitOutcome, 'buffer_full' | 'action_conflict'> {
    invariant(Number.isSafeInteger(action.seq) && action.seq >= 0, `seq must be a non-negative integer, got ${action.seq}`);
    invariant(Number.isFinite(nowMs), 'nowMs must be finite');
    const player = this.regions.get(regionId)?.get(action.playerId);
    const digest = payloadDigest(action.payload);
    const same = player?.pending.get(action.seq);
    const ackedDigest = player?.acked.get(action.seq);
    if (player && (same || ackedDigest !== undefined || (player.ackedFloor !== null && action.seq <= player.ackedFloor))) {
      const known = same ? same.digest : ackedDigest ?? null;
      if (known !== null && known !== digest) {
        return reject('action_conflict', `Player ${action.playerId} already submitted seq ${action.seq} to region ${regionId} ` +
          `with another payload (${same ? 'still buffered' : 'already replayed'}); the first payload stands. Send a new action with a new seq.`,
        { data: { playerId: action.playerId, seq: action.seq } });
      }
      this.totals.duplicates++;
      const expiresAtMs = same ? same.acceptedAtMs + this.maxAgeMs : nowMs;
      return ok({ status: 'duplicate', pending: player.pending.size, expiresAtMs });
    }
    if (player && player.pending.size >= this.maxPerPlayer) {
      this.totals.rejected++;
      const oldestMs = Math.min(...[...player.pending.values()].map((h) => h.acceptedAtMs));
      const retryAfterMs = Math.max(1, oldestMs + this.maxAgeMs - nowMs);
      const detail = `Player ${action.playerId} already has ${this.maxPerPlayer} actions waiting for region ${regionId}; retry after ${retryAfterMs} ms.`;
      return reject('buffer_full', detail, { retryAfterMs });
    }
    const state = player ?? this.createPlayer(regionId, action.playerId);
    this.noteChanged(regionId, action.playerId);
    this.hold(state, { regionId, playerId: action.playerId, seq: action.seq, payload: action.payload, acceptedAtMs: nowMs, digest });
    this.totals.buffered++;
    return ok({ status: 'buffered', pending: state.pending.size, expiresAtMs: nowMs + this.maxAgeMs });
  }

  /**
   * The region's held, unexpired actions for replay: per player in ascending seq, players ordered by
   * the acceptance time of their oldest action (then playerId), at most `limit`. Nothing is removed,
   * so an action that is never acknowledged is handed out again on the next call.
   */
  collect(regionId: RegionId, nowMs: number, limit = Number.POSITIVE_INFINITY): BufferedAction[] {
    invariant(limit >= 0, 'limit must not be negative');
    const groups: { playerId: PlayerId; oldestMs: number; actions: Held[] }[] = [];
    for (const [playerId, state] of this.regions.get(regionId) ?? []) {
      const actions = [...state.pending.values()].filter((h) => h.acceptedAtMs + this.maxAgeMs > nowMs);
      if (actions.length === 0) continue;
      actions.sort((a, b) => a.seq - b.seq);
      groups.push({ playerId, oldestMs: Math.min(...actions.map((h) => h.acceptedAtMs)), actions });
    }
    groups.sort((a, b) => a.oldestMs - b.oldestMs || compareText(a.playerId, b.playerId));
    return groups.flatMap((g) => g.actions).slice(0, limit).map(publicAction);
  }

  /** Removes acknowledged actions, counts them replayed and remembers each player's highest acked seq. */
  acknowledge(regionId: RegionId, acks: readonly ActionAck[], nowMs: number): AckOutcome {
    let acknowledged = 0;
    for (const ack of acks) {
      const state = this.regions.get(regionId)?.get(ack.playerId);
      const held = state?.pending.get(ack.seq);
      if (!state || !held) continue;
      state.pending.delete(ack.seq);
      this.noteChanged(regionId, ack.playerId);
      this.held--;
      acknowledged++;
      state.highestAckedSeq = Math.max(state.highestAckedSeq ?? ack.seq, ack.seq);
      state.lastAckedAtMs = nowMs;
      this.rememberAck(state, ack.seq, held.digest);
      this.queueForget(regionId, ack.playerId, state, nowMs + this.ackMemoryMs());
    }
    this.totals.replayed += acknowledged;
    this.compactExpiryQueue();
    return { acknowledged, unknown: acks.length - acknowledged };
  }

  /** Removes and reports every action with `acceptedAtMs + maxAge <= nowMs`; also forgets old ack records. */
  expire(nowMs: number): ActionRef[] {
    const expired: Held[] = [];
    for (let top = this.expiryQueue.peek(); top && top.acceptedAtMs + this.maxAgeMs <= nowMs; top = this.expiryQueue.peek()) {
      this.expiryQueue.pop();
      if (this.isHeld(top)) expired.push(top);
    }
    for (const h of expired) this.release(h);
    this.forgetDue(nowMs);
    this.totals.expired += expired.length;
    return expired.sort(compareHeld).map(toRef);
  }

  /** Deletes a region: its held actions are reported and counted as expired, its ack memory forgotten. */
  dropRegion(regionId: RegionId): ActionRef[] {
    const region = this.regions.get(regionId);
    if (!region) return [];
    const dropped = [...region.values()].flatMap((s) => [...s.pending.values()]);
    for (const playerId of region.keys()) this.noteChanged(regionId, playerId);
    this.regions.delete(regionId);
    this.held -= dropped.length;
    this.totals.expired += dropped.length;
    this.compactExpiryQueue();
    return dropped.sort(compareHeld).map(toRef);
  }

  /** Number of held actions in a region (expired ones still count until `expire` removes them). */
  pending(regionId: RegionId): number {
    let count = 0;
    for (const state of this.regions.get(regionId)?.values() ?? []) count += state.pending.size;
    return count;
  }

  /** Number of held actions in all regions. */
  pendingTotal(): number {
    return this.held;
  }

  /** A copy of the cumulative counters. */
  counters(): ActionBufferCounters {
    return { ...this.totals };
  }

  /** Every held action, every remembered highest acked seq and the counters, in canonical order. */
  toJSON(): ActionBufferJSON {
    const regions = [...this.regions.entries()].sort(([a], [b]) => compareText(a, b)).map(([regionId, players]) => ({
      regionId,
      players: [...players.entries()].sort(([a], [b]) => compareText(a, b)).map(([playerId, s]) => playerJSON(playerId, s)),
    }));
    return { version: 1, regions, counters: this.counters() };
  }

  /**
   * The players whose persisted record changed since the last call (at most `max` of them), and
   * forgets them: what the core's change records (mesh/core/change-records.ts) must write.
   */
  takeChangedPlayers(max = Infinity): (readonly [RegionId, PlayerId])[] {
    const taken: (readonly [RegionId, PlayerId])[] = [];
    for (const [noteKey, player] of this.changedPlayers) {
      if (taken.length >= max) break;
      taken.push(player);
      this.changedPlayers.delete(noteKey);
    }
    return taken;
  }

  /** One player's persisted record, or null when the buffer keeps nothing about the player. */
  playerRecord(regionId: RegionId, playerId: PlayerId): PlayerBufferJSON | null {
    const state = this.regions.get(regionId)?.get(playerId);
    return state === undefined ? null : playerJSON(playerId, state);
  }

  /** The regions whose buffered actions changed since the last call, and forgets them. */
  takeChangedRegions(): Set<RegionId> {
    const taken = this.changedRegions;
    this.changedRegions = new Set();
    return taken;
  }

  private noteChanged(regionId: RegionId, playerId: PlayerId): void {
    this.changedPlayers.set(`${regionId}\u0000${playerId}`, [regionId, playerId]);
    this.changedRegions.add(regionId);
  }

  /** Restores a buffer from `toJSON` output; corrupt data is a programmer error and throws. */
  static fromJSON(data: ActionBufferJSON, limits: ActionBufferLimits): ActionBuffer {
    invariant(data.version === 1, `unsupported action buffer version ${String(data.version)}`);
    const buffer = new ActionBuffer(limits);
    for (const { regionId, players } of data.regions) {
      for (const p of players) buffer.restorePlayer(regionId, p);
    }
    const { buffered, replayed, expired, rejected, duplicates } = data.counters;
    Object.assign(buffer.totals, { buffered, replayed, expired, rejected, duplicates });
    return buffer;
  }

  /** Rebuilds one player's record; a record with nothing held and no ack carries no information. */
  private restorePlayer(regionId: RegionId, p: PlayerBufferJSON): void {
    invariant((p.highestAckedSeq === null) === (p.lastAckedAtMs === null), `player ${p.playerId}: ack seq and time go together`);
    if (p.actions.length === 0 && p.highestAckedSeq === null) return;
    const state = this.createPlayer(regionId, p.playerId);
    state.highestAckedSeq = p.highestAckedSeq;
    state.lastAckedAtMs = p.lastAckedAtMs;
    // Older files kept only the highest seq: treat everything up to it as replayed, as they did.
    state.ackedFloor = p.ackedSeqs === undefined ? p.highestAckedSeq : p.ackedFloor ?? null;
    (p.ackedSeqs ?? []).forEach((seq, i) => state.acked.set(seq, p.ackedDigests?.[i] ?? null));
    for (const a of p.actions) {
      invariant(Number.isSafeInteger(a.seq) && a.seq >= 0 && !state.pending.has(a.seq), `player ${p.playerId}: bad or repeated seq ${a.seq}`);
      this.hold(state, {
        regionId, playerId: p.playerId, seq: a.seq, payload: a.payload, acceptedAtMs: a.acceptedAtMs, digest: a.digest ?? payloadDigest(a.payload),
      });
    }
    if (p.lastAckedAtMs !== null) this.queueForget(regionId, p.playerId, state, p.lastAckedAtMs + this.ackMemoryMs());
  }

  /** Adds an acknowledged seq to the player's memory, forgetting the oldest beyond the bound. */
  private rememberAck(state: PlayerState, seq: number, digest: string): void {
    state.acked.set(seq, digest);
    const cap = ackedSeqMemory * this.maxPerPlayer;
    for (const oldest of state.acked.keys()) {
      if (state.acked.size <= cap) break;
      state.acked.delete(oldest);
      state.ackedFloor = Math.max(state.ackedFloor ?? oldest, oldest);
    }
  }

  private ackMemoryMs(): number {
    return ackMemoryAgeFactor * this.maxAgeMs;
  }

  private createPlayer(regionId: RegionId, playerId: PlayerId): PlayerState {
    let region = this.regions.get(regionId);
    if (!region) this.regions.set(regionId, (region = new Map()));
    const state: PlayerState = {
      pending: new Map(), highestAckedSeq: null, lastAckedAtMs: null, acked: new Map(), ackedFloor: null, forgetQueued: false,
    };
    region.set(playerId, state);
    return state;
  }

  private hold(state: PlayerState, held: Held): void {
    state.pending.set(held.seq, held);
    this.expiryQueue.push(held);
    this.held++;
  }

  /** True when a queue entry still is the action held under its key (not acknowledged or replaced). */
  private isHeld(h: Held): boolean {
    return this.regions.get(h.regionId)?.get(h.playerId)?.pending.get(h.seq) === h;
  }

  /** Removes an expired action; a player with nothing held and no ack to remember is forgotten at once. */
  private release(h: Held): void {
    const state = this.regions.get(h.regionId)?.get(h.playerId);
    invariant(state !== undefined && state.pending.delete(h.seq), 'released an action that is not held');
    this.noteChanged(h.regionId, h.playerId);
    this.held--;
    if (state.pending.size === 0 && state.highestAckedSeq === null) this.forgetPlayer(h.regionId, h.playerId);
  }

  private forgetPlayer(regionId: RegionId, playerId: PlayerId): void {
    this.noteChanged(regionId, playerId);
    const region = this.regions.get(regionId);
    region?.delete(playerId);
    if (region?.size === 0) this.regions.delete(regionId);
  }

  private queueForget(regionId: RegionId, playerId: PlayerId, state: PlayerState, dueMs: number): void {
    if (state.forgetQueued) return;
    state.forgetQueued = true;
    this.forgetQueue.push({ dueMs, regionId, playerId, state });
  }

  /**
   * Forgets ack records whose last ack is older than the memory window and that hold nothing. A record
   * acked again or still holding actions is re-queued, so each record has one entry at most.
   */
  private forgetDue(nowMs: number): void {
    for (let top = this.forgetQueue.peek(); top && top.dueMs <= nowMs; top = this.forgetQueue.peek()) {
      this.forgetQueue.pop();
      const { regionId, playerId, state } = top;
      state.forgetQueued = false;
      if (this.regions.get(regionId)?.get(playerId) !== state) continue;
      const memoryEndsMs = (state.lastAckedAtMs ?? nowMs) + this.ackMemoryMs();
      if (memoryEndsMs > nowMs) this.queueForget(regionId, playerId, state, memoryEndsMs);
      else if (state.pending.size > 0) this.queueForget(regionId, playerId, state, nowMs + this.maxAgeMs);
      else this.forgetPlayer(regionId, playerId);
    }
  }

  /** Rebuilds the expiry heap from live entries when stale ones (acknowledged actions) dominate it. */
  private compactExpiryQueue(): void {
    if (this.expiryQueue.size <= 64 || this.expiryQueue.size <= 2 * this.held) return;
    this.expiryQueue.retain((h) => this.isHeld(h));
  }
}

function playerJSON(playerId: PlayerId, s: PlayerState): PlayerBufferJSON {
  const actions = [...s.pending.values()].sort((a, b) => a.seq - b.seq)
    .map((h) => ({ seq: h.seq, payload: h.payload, acceptedAtMs: h.acceptedAtMs, digest: h.digest }));
  return {
    playerId, highestAckedSeq: s.highestAckedSeq, lastAckedAtMs: s.lastAckedAtMs, ackedSeqs: [...s.acked.keys()],
    ackedDigests: [...s.acked.values()], ackedFloor: s.ackedFloor, actions,
  };
}

const publicAction = (h: Held): BufferedAction =>
  ({ playerId: h.playerId, seq: h.seq, payload: h.payload, acceptedAtMs: h.acceptedAtMs });

const toRef = (h: Held): ActionRef => ({ regionId: h.regionId, playerId: h.playerId, seq: h.seq });

/** Code-unit order: deterministic on every platform, unlike `localeCompare`. */
function compareText(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

/** Reports are ordered by acceptance, then key, so they do not depend on the heap's internal shape. */
function compareHeld(a: Held, b: Held): number {
  return a.acceptedAtMs - b.acceptedAtMs || compareText(a.regionId, b.regionId)
    || compareText(a.playerId, b.playerId) || a.seq - b.seq;
}
