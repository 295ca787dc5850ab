/**
 * Property 7: a model-based test of the core's command interface with fc.commands (see model.ts for
 * the commands and the invariants checked after every one). Replay a reported failure with
 * SIM_SEED=<seed> SIM_PATH=<path> SIM_REPLAY_PATH=<replayPath from the counterexample>.
 */
import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import type { KnownKind } from '../../mesh/simulation/checkers.ts';
import { fcParams } from './harness.ts';
import { knownBugs } from './known-bugs.ts';
import { commandsArb, runModel } from './model.ts';

/** Kinds of violation of reported, unfixed bugs: collected apart and asserted in todo tests below. */
const knownKinds: KnownKind[] = [
  ...(knownBugs.stalePhaseAfterReadopt !== false ? ['stale-phase' as const] : []),
  ...(knownBugs.overCapacityReadopt !== false ? ['over-capacity' as const] : []),
];
const knownFound: Record<KnownKind, string[]> = { 'stale-phase': [], 'over-capacity': [] };

describe('model-based test of the core command interface', () => {
  test('invariants hold after every command (200 runs of up to 80 commands)', () => {
    fc.assert(fc.property(fc.integer({ min: 1, max: 2 ** 31 - 1 }), commandsArb(process.env.SIM_REPLAY_PATH), (seed, cmds) => {
      const checker = runModel(seed, cmds, knownKinds);
      for (const kind of knownKinds) if (knownFound[kind].length < 3) knownFound[kind].push(...checker.known[kind].slice(0, 1).map((v) => `${v} (seed ${seed})`));
    }), fcParams(200));
  });

  test('a region re-adopted on a heartbeat gets its phase at once', { todo: knownBugs.stalePhaseAfterReadopt }, () => {
    assert.deepEqual(knownFound['stale-phase'], []);
  });

  test('re-adopting a region never puts a server above its capacity', { todo: knownBugs.overCapacityReadopt }, () => {
    assert.deepEqual(knownFound['over-capacity'], []);
  });
});
