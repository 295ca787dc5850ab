/**
 * The contract drives routing: `operation(router, kit, operationId, handler)` mounts one documented
 * operation at its documented method and path, with its body limit, its authentication (from the
 * operation's `security`) and validation of its parameters and body, so that a handler only maps a
 * validated request to one core command and the result to a response.
 */
import type Router from '@koa/router';
import type { Context, Middleware } from 'koa';
import { adminAuth, serverAuth, principalOf, type Principal } from './auth.ts';
import { hasBody, jsonBody } from './body.ts';
import { playerTicketAuth } from './player-ticket.ts';
import type { AppDeps, MeshHost } from './deps.ts';
import type { Contract } from './openapi.ts';
import { badRequest, fromRejection, validationFailed } from './problem.ts';
import type { Rejection } from '../mesh/base/types.ts';

/** What every router needs. */
export interface RouteKit {
  readonly deps: AppDeps;
  readonly host: MeshHost;
  readonly contract: Contract;
}

/** A validated request. Bodies are typed by the handler that knows its schema. */
export interface OperationInput<B = any> {
  readonly path: Record<string, any>;
  readonly query: Record<string, any>;
  readonly body: B;
  /** Who called, for authenticated operations. */
  readonly principal: Principal | undefined;
}

/** Handler of one operation: sets `ctx.status` and `ctx.body` (directly or via {@link reply}). */
export type OperationHandler<B = any> = (ctx: Context, input: OperationInput<B>) => unknown;

/** Mounts a documented operation on a router. */
export function operation<B = any>(router: Router, kit: RouteKit, operationId: string, handler: OperationHandler<B>): void {
  const info = kit.contract.operations.get(operationId);
  if (!info) throw new Error(`operation ${operationId} is not in openapi.yaml`);
  // Authentication first, so that an unauthenticated body is never parsed.
  const auth = authFor(kit, info.security);
  const bodyRequired = requiresBody(kit.contract, info.path, info.method);
  const stack: Middleware[] = auth ? [auth] : [];
  stack.push(jsonBody({ limitBytes: info.maxBodyBytes, timeoutMs: kit.deps.http?.bodyTimeoutMs }));
  stack.push(async (ctx) => {
    const params = kit.contract.validateParams(operationId, {
      path: ctx.params as Record<string, string>, query: ctx.query, headers: ctx.headers,
    });
    if (!params.ok) throw validationFailed(params.errors);
    let body: unknown = undefined;
    if (bodyRequired && !hasBody(ctx)) {
      throw badRequest(`${info.method} ${info.path} needs a JSON request body (see operation ${operationId} in openapi.yaml)`);
    }
    if (['POST', 'PUT', 'PATCH'].includes(info.method)) {
      const checked = kit.contract.validateRequestBody(operationId, (ctx.request as { body?: unknown }).body ?? {});
      if (!checked.ok) throw validationFailed(checked.errors);
      body = checked.value;
    }
    const principal = ctx.state.principal === undefined ? undefined : principalOf(ctx);
    await handler(ctx, { path: params.value.path, query: params.value.query, body: body as B, principal });
  });
  const method = info.method.toLowerCase() as 'get' | 'post' | 'put' | 'patch' | 'delete';
  router[method](operationId, info.routerPath, ...stack);
}

/** True when the operation declares `requestBody.required: true`. */
function requiresBody(contract: Contract, path: string, method: string): boolean {
  const operation = contract.document.paths[path]?.[method.toLowerCase()] as { requestBody?: { required?: boolean } } | undefined;
  return operation?.requestBody?.required === true;
}

function authFor(kit: RouteKit, security: readonly (readonly string[])[]): Middleware | null {
  const schemes = new Set(security.flat());
  const adminToken = kit.deps.adminToken;
  if (schemes.has('serverBearer')) {
    const lookup = (id: string) => kit.host.coordinator.serverRecord(id as never)?.credentialHash ?? undefined;
    return serverAuth(lookup, { adminToken, allowAdmin: schemes.has('adminBearer') });
  }
  if (schemes.has('playerTicket')) return playerTicketAuth(kit.deps.playerTicketSecret);
  return schemes.has('adminBearer') ? adminAuth({ adminToken }) : null;
}

/** Sets a JSON response. */
export function reply(ctx: Context, status: number, body: unknown): void {
  ctx.status = status;
  ctx.body = body;
}

/** Unwraps a core result or throws its problem document (status from the rejection table). */
export function unwrap<T>(result: { ok: true; value: T } | Rejection, overrides?: Readonly<Record<string, number>>): T {
  if (!result.ok) throw fromRejection(result, overrides);
  return result.value;
}

/** Milliseconds as the API shows them: whole numbers. */
export const ms = (value: number): number => Math.round(value);

/** Nullable milliseconds. */
export const msOrNull = (value: number | null): number | null => (value === null ? null : Math.round(value));
