/**
 * Small helpers shared by the API tests of servers, heartbeats, the test mesh and events: a
 * supertest agent over a test app, registration of real servers, heartbeats and state snapshots
 * for "a rejected request changes nothing" assertions.
 */
import assert from 'node:assert/strict';
import request from 'supertest';
import type { TestApp } from './harness.ts';
import { expectResponse } from './harness.ts';

/** The request handler of a test app, for supertest. */
export const handler = (t: TestApp) => t.app.callback();

/** A registered server and its bearer token. */
export interface Registered {
  readonly id: string;
  readonly token: string;
}

/** Registers a server over HTTP (protected mode: loopback admin) and checks the answer. */
export async function register(t: TestApp, body: Record<string, unknown>, adminToken?: string): Promise<Registered> {
  let req = request(handler(t)).post('/mesh/servers');
  if (adminToken) req = req.set('Authorization', `Bearer ${adminToken}`);
  const res = await req.send(body);
  const out = expectResponse('registerServer', res, 201);
  return { id: out.server_id as string, token: out.token as string };
}

/** A heartbeat body with defaults. */
export function beat(overrides: Record<string, unknown> = {}): Record<string, unknown> {
  return { incarnation: 'boot-1', players: 0, regions: [], peers: [], ...overrides };
}

/** Sends a heartbeat as `server` (its own token unless another is given). */
export function sendBeat(t: TestApp, server: Registered, body: unknown, token = server.token) {
  return request(handler(t)).post(`/mesh/servers/${server.id}/heartbeat`).set('Authorization', `Bearer ${token}`).send(body as object);
}

/** Everything a rejected request must leave untouched, as plain JSON. */
export function snapshot(t: TestApp): unknown {
  const c = t.host.coordinator;
  return JSON.parse(JSON.stringify({
    servers: c.servers(), regions: c.regions(), status: c.status(t.host.now()), metrics: c.metrics(),
    faults: t.host.faultLog(), alerts: c.listAlerts({ state: 'all' }), writes: t.store.writes(),
  }));
}

/** Asserts that `run` (a rejected request) changed nothing observable. */
export async function unchanged<T>(t: TestApp, run: () => Promise<T>): Promise<T> {
  const before = snapshot(t);
  const result = await run();
  t.host.flush();
  assert.deepEqual(snapshot(t), before, 'a rejected request must change nothing');
  return result;
}
