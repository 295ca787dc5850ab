/**
 * Builds the real app over the real core for supertest: a RunningMesh on a manual clock and a
 * MemoryStore (or a LowdbStore in a temp dir), plus a response checker that validates every body
 * against openapi.yaml.
 */
import type { Leadership } from '../../api/leadership.ts';
import assert from 'node:assert/strict';
import type { Response } from 'supertest';
import { createApp } from '../../api/app.ts';
import type { HttpOptions } from '../../api/deps.ts';
import { loadContract, type Contract } from '../../api/openapi.ts';
import { testMeshConfig, type MeshConfig } from '../../mesh/base/config.ts';
import { ManualClock } from '../../mesh/base/ports.ts';
import type { CoreState } from '../../mesh/core/state.ts';
import { createLogger } from '../../src/logger.ts';
import { RunningMesh } from '../../src/mesh-host.ts';
import { MemoryStore } from '../../src/store/memory-store.ts';
import type { Store } from '../../src/store/store.ts';
import { stateFromRecords } from '../../mesh/core/change-records.ts';

/** One contract for the whole test process (loading it costs a few hundred ms). */
let sharedContract: Contract | undefined;
export function contract(): Contract {
  sharedContract ??= loadContract();
  return sharedContract;
}

/** A test app and what it runs on. */
export interface TestApp {
  readonly app: ReturnType<typeof createApp>;
  readonly host: RunningMesh;
  readonly clock: ManualClock;
  readonly store: Store;
  /** Unexpected errors the app logged (a test may assert there were none). */
  readonly errors: unknown[];
  /** Messages the app logged at debug level (clients that left mid-request). */
  readonly debug: string[];
}

/** Builds the app; `adminToken` undefined means protected mode (supertest calls from loopback). */
export async function testApp(options: {
  adminToken?: string; playerTicketSecret?: string; config?: Partial<MeshConfig>; store?: Store; startMs?: number; http?: HttpOptions;
  leadership?: Leadership;
} = {}): Promise<TestApp> {
  const clock = new ManualClock(options.startMs ?? 0);
  const store = options.store ?? new MemoryStore();
  const errors: unknown[] = [];
  const log = createLogger({ level: 'error', sink: { write: () => true } });
  const host = await RunningMesh.open({ config: { ...testMeshConfig, ...options.config }, clock, store, seed: 7, log });
  const debug: string[] = [];
  const app = createApp({
    host, adminToken: options.adminToken, playerTicketSecret: options.playerTicketSecret, http: options.http, leadership: options.leadership,
    logError: (error) => errors.push(error), logDebug: (message) => debug.push(message),
  });
  return { app, host, clock, store, errors, debug };
}

/** Asserts a response's status and that its body matches the documented schema; returns the body. */
export function expectResponse(operationId: string, res: Response, status: number): any {
  assert.equal(res.status, status, `${operationId}: expected ${status}, got ${res.status}: ${JSON.stringify(res.body)}`);
  const body = res.body;
  const checked = contract().validateResponse(operationId, res.status, body);
  assert.ok(checked.ok, `${operationId} ${status} response does not match openapi.yaml: ${JSON.stringify(checked.ok ? [] : checked.errors)}\n${JSON.stringify(body).slice(0, 2000)}`);
  if (status >= 400) assert.match(String(res.headers['content-type']), /application\/problem\+json/);
  return body;
}

/** The state the store holds (its records assembled), or undefined when it has none. */
export async function storedState(store: Store): Promise<CoreState | undefined> {
  const loaded = await store.load();
  return loaded && stateFromRecords(loaded.records);
}
