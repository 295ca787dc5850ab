/**
 * Test-only hooks of the service process, honoured only under `--clock manual` (a service on the
 * system clock refuses to start with one set), so that no production process can carry them.
 *
 * `MESH_TEST_INVARIANT_VIOLATION_AT_MS=<ms>`: the first tick at or after that virtual time
 * violates an invariant from inside the core's tick, as a bug would. tests/e2e/fail-stop.test.ts
 * uses it to check fail-stop: the process logs the reason and exits non-zero, and a restart comes
 * back from the last durable state.
 */
import type { Coordinator } from '../mesh/core/coordinator.ts';
import { invariantFor, type Invariant } from '../mesh/base/invariant.ts';
import type { ClockKind } from './settings.ts';
import type { Env } from './settings.ts';

const variable = 'MESH_TEST_INVARIANT_VIOLATION_AT_MS';
const invariant: Invariant = invariantFor('test hook');

/** The virtual time of the injected violation, nothing, or why the setting is refused. */
export function invariantViolationAt(env: Env, clock: ClockKind): { atMs: number } | { error: string } | null {
  const raw = env[variable];
  if (raw === undefined) return null;
  if (clock !== 'manual') return { error: `${variable} is a test hook: it is honoured only with --clock manual` };
  const atMs = /^\d{1,15}$/.test(raw) ? Number(raw) : NaN;
  return Number.isSafeInteger(atMs) ? { atMs } : { error: `${variable}: expected a whole number of ms, got ${JSON.stringify(raw)}` };
}

/** Makes the coordinator's first tick at or after `atMs` fail an invariant check. */
export function violateInvariantAt(coordinator: Coordinator, atMs: number): void {
  const tick = coordinator.tick.bind(coordinator);
  coordinator.tick = (nowMs) => {
    tick(nowMs);
    invariant(nowMs < atMs, () => `injected violation at ${nowMs} ms (${variable}=${atMs})`);
  };
}
