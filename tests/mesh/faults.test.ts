import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import {
  FaultRegistry, resolveTargets, flapDownMs, flapUpMs, defaultRealCrashMs, type FaultSpec,
} from '../../mesh/faults/faults.ts';
import type { Random } from '../../mesh/base/ports.ts';
import { outageCovers } from '../../mesh/core/membership.ts';
import { SeededRandom } from '../../mesh/runtime/random.ts';
import { region, server, sid, rid, topologyOf } from './topology-fixtures.ts';

/** A Random that always draws the same value: with 0, sampling keeps the input order. */
const constant = (value: number): Random => ({ next: () => value });

const intervalMs = 1000;

function registryWith(spec: Omit<FaultSpec, 'target'>, atMs: number, ids = ['a1']): FaultRegistry {
  const registry = new FaultRegistry();
  registry.record({ ...spec, target: { serverId: sid(ids[0] ?? 'a1') } }, ids.map(sid), atMs, intervalMs);
  return registry;
}

describe('resolveTargets', () => {
  const topology = topologyOf([
    server('a1', 'a'), server('a2', 'a', { status: 'failed' }), server('b1', 'b'), server('b2', 'b', { status: 'suspect' }),
    server('c1', 'c', { status: 'left' }), server('d1', 'd', { status: 'draining' }),
  ], [
    region('r1', { primary: 'a1', backups: ['b1', 'b2'] }),
    region('r2', { primary: null, backups: [] }),
  ]);

  const cases: { name: string; target: Parameters<typeof resolveTargets>[1]; ok?: string[]; code?: string }[] = [
    { name: 'a registered server', target: { serverId: sid('b1') }, ok: ['b1'] },
    { name: 'a failed server by id (still registered)', target: { serverId: sid('a2') }, ok: ['a2'] },
    { name: 'an unknown server', target: { serverId: sid('zz') }, code: 'unknown_server' },
    { name: "a region's primary", target: { regionId: rid('r1'), role: 'primary' }, ok: ['a1'] },
    { name: "a region's backup (the first one)", target: { regionId: rid('r1'), role: 'backup' }, ok: ['b1'] },
    { name: 'an unknown region', target: { regionId: rid('nope'), role: 'primary' }, code: 'unknown_region' },
    { name: 'a region without primary', target: { regionId: rid('r2'), role: 'primary' }, code: 'no_target' },
    { name: 'a region without backup', target: { regionId: rid('r2'), role: 'backup' }, code: 'no_target' },
    { name: 'a zone: its live servers, suspect included, failed excluded', target: { zone: 'b' }, ok: ['b1', 'b2'] },
    { name: 'a zone whose only failed server is excluded', target: { zone: 'a' }, ok: ['a1'] },
    { name: 'a draining server counts as live', target: { zone: 'd' }, ok: ['d1'] },
    { name: 'a zone with only a server that left', target: { zone: 'c' }, code: 'unknown_zone' },
    { name: 'an unknown zone', target: { zone: 'q' }, code: 'unknown_zone' },
  ];
  for (const c of cases) {
    test(c.name, () => {
      const result = resolveTargets(topology, c.target, constant(0));
      if (c.ok) {
        assert.ok(result.ok, JSON.stringify(result));
        assert.deepEqual([...result.value].sort(), c.ok.map(sid).sort());
      } else {
        assert.ok(!result.ok, '!result.ok');
        assert.equal(result.code, c.code);
      }
    });
  }

  // Live servers: a1, b1, b2, d1 (4). count = max(1, round(4 x fraction)).
  const fractions: [number, number][] = [[0, 1], [0.1, 1], [0.25, 1], [0.375, 2], [0.5, 2], [0.75, 3], [1, 4], [3, 4]];
  for (const [fraction, count] of fractions) {
    test(`fraction ${fraction} of 4 live servers hits ${count} distinct live servers`, () => {
      const result = resolveTargets(topology, { fraction }, new SeededRandom(7));
      assert.ok(result.ok, 'result.ok');
      assert.equal(result.value.length, count);
      assert.equal(new Set(result.value).size, count);
      for (const id of result.value) assert.ok(['a1', 'b1', 'b2', 'd1'].includes(id), `${id} is not live`);
    });
  }

  test('fraction sampling is driven by the injected Random only (same seed, same servers)', () => {
    const big = topologyOf(Array.from({ length: 50 }, (_, i) => server(`s${String(i).padStart(2, '0')}`, `z${i % 3}`)));
    const first = resolveTargets(big, { fraction: 0.3 }, new SeededRandom(42));
    const again = resolveTargets(big, { fraction: 0.3 }, new SeededRandom(42));
    const other = resolveTargets(big, { fraction: 0.3 }, new SeededRandom(43));
    assert.ok(first.ok && again.ok && other.ok, 'first.ok && again.ok && other.ok');
    assert.equal(first.value.length, 15);
    assert.deepEqual(first.value, again.value);
    assert.notDeepEqual(first.value, other.value);
  });

  test('with a Random that draws 0, the sample is the first live servers in registration order', () => {
    const result = resolveTargets(topology, { fraction: 0.5 }, constant(0));
    assert.ok(result.ok, 'result.ok');
    assert.deepEqual(result.value, [sid('a1'), sid('b1')]);
  });

  test('a fraction of a mesh without live servers has no target', () => {
    const dead = topologyOf([server('x1', 'x', { status: 'failed' })]);
    const result = resolveTargets(dead, { fraction: 0.5 }, constant(0));
    assert.ok(!result.ok, '!result.ok');
    assert.equal(result.code, 'no_target');
  });
});

describe('FaultRegistry.record', () => {
  test('ids count up; untilMs is injection + duration, or null without a duration', () => {
    const registry = new FaultRegistry();
    const first = registry.record({ target: { serverId: sid('a1') }, mode: 'partition', durationMs: 4000 }, [sid('a1')], 1000, intervalMs);
    const second = registry.record({ target: { serverId: sid('b1') }, mode: 'crash' }, [sid('b1')], 2000, intervalMs);
    assert.equal(first.id, 'fault-1');
    assert.equal(first.untilMs, 5000);
    assert.equal(second.id, 'fault-2');
    assert.equal(second.untilMs, null);
    assert.deepEqual(registry.list().map((f) => f.id), ['fault-2', 'fault-1'], 'newest first');
  });

  test('slow faults delay by 2.5 heartbeat intervals unless told otherwise', () => {
    const registry = new FaultRegistry();
    assert.equal(registry.record({ target: { serverId: sid('a1') }, mode: 'slow', durationMs: 1 }, [sid('a1')], 0, 1000).delayMs, 2500);
    assert.equal(registry.record({ target: { serverId: sid('a1') }, mode: 'slow', durationMs: 1 }, [sid('a1')], 0, 333).delayMs, 833);
    assert.equal(registry.record({ target: { serverId: sid('a1') }, mode: 'slow', durationMs: 1, delayMs: 40 }, [sid('a1')], 0, 1000).delayMs, 40);
  });

  test('the log keeps the latest 1000 faults; latest() is per server', () => {
    const registry = new FaultRegistry();
    for (let i = 0; i < 1001; i++) registry.record({ target: { serverId: sid('a1') }, mode: 'crash' }, [sid(`s${i}`)], i, intervalMs);
    const list = registry.list();
    assert.equal(list.length, 1000);
    assert.equal(list[0]?.id, 'fault-1001');
    assert.equal(list.at(-1)?.id, 'fault-2');
    assert.equal(registry.latest(sid('s5'))?.id, 'fault-6');
    assert.equal(registry.latest(sid('nobody')), undefined);
  });

  test('clear forgets every fault', () => {
    const registry = registryWith({ mode: 'crash' }, 0);
    registry.clear();
    assert.deepEqual(registry.list(), []);
    assert.equal(registry.unreachableSince(sid('a1'), 10), null);
  });
});

describe('FaultRegistry.unreachableSince', () => {
  const t0 = 10_000;
  const cases: { name: string; spec: Omit<FaultSpec, 'target'>; at: number; expect: number | null }[] = [
    { name: 'before the injection', spec: { mode: 'crash' }, at: t0 - 1, expect: null },
    { name: 'crash at injection', spec: { mode: 'crash' }, at: t0, expect: t0 },
    { name: 'crash without duration, 1 ms before the default end', spec: { mode: 'crash' }, at: t0 + defaultRealCrashMs - 1, expect: t0 },
    { name: 'crash without duration, at the default end', spec: { mode: 'crash' }, at: t0 + defaultRealCrashMs, expect: null },
    { name: 'crash with duration, inside', spec: { mode: 'crash', durationMs: 5000 }, at: t0 + 4999, expect: t0 },
    { name: 'crash with duration, at its end', spec: { mode: 'crash', durationMs: 5000 }, at: t0 + 5000, expect: null },
    { name: 'partition, inside', spec: { mode: 'partition', durationMs: 8000 }, at: t0 + 7999, expect: t0 },
    { name: 'partition, at its end', spec: { mode: 'partition', durationMs: 8000 }, at: t0 + 8000, expect: null },
    { name: 'partition without duration does nothing', spec: { mode: 'partition' }, at: t0, expect: null },
    { name: 'slow never makes a server unreachable', spec: { mode: 'slow', durationMs: 8000 }, at: t0 + 10, expect: null },
  ];
  for (const c of cases) {
    test(c.name, () => {
      assert.equal(registryWith(c.spec, t0).unreachableSince(sid('a1'), c.at), c.expect);
    });
  }

  test('a server without fault is reachable', () => {
    assert.equal(registryWith({ mode: 'crash' }, t0).unreachableSince(sid('b1'), t0 + 1), null);
  });

  test('a fault on several servers hits each of them', () => {
    const registry = registryWith({ mode: 'crash', durationMs: 100 }, t0, ['a1', 'b1', 'c1']);
    for (const id of ['a1', 'b1', 'c1']) assert.equal(registry.unreachableSince(sid(id), t0 + 50), t0);
  });

  test('a later fault on the same server replaces the earlier one', () => {
    const registry = registryWith({ mode: 'partition', durationMs: 10_000 }, t0);
    registry.record({ target: { serverId: sid('a1') }, mode: 'partition', durationMs: 1000 }, [sid('a1')], t0 + 2000, intervalMs);
    assert.equal(registry.unreachableSince(sid('a1'), t0 + 2500), t0 + 2000);
    assert.equal(registry.unreachableSince(sid('a1'), t0 + 3000), null);
  });

  // Flap: down for flapDownMs, up for flapUpMs, repeated until the end of the fault. While down,
  // the answer is the start of the current down phase.
  const cycle = flapDownMs + flapUpMs;
  const flapCases: [string, number, number | null][] = [
    ['first down phase, start', 0, t0],
    ['first down phase, last ms', flapDownMs - 1, t0],
    ['first up phase, start', flapDownMs, null],
    ['first up phase, last ms', cycle - 1, null],
    ['second down phase, start', cycle, t0 + cycle],
    ['second down phase, middle', cycle + 1234, t0 + cycle],
    ['second up phase', cycle + flapDownMs + 1, null],
    ['third down phase', 2 * cycle + 1, t0 + 2 * cycle],
    ['after the fault ended, in what would be a down phase', 3 * cycle + 10, null],
  ];
  for (const [name, offset, expected] of flapCases) {
    test(`flap lasting 3 cycles: ${name}`, () => {
      assert.equal(registryWith({ mode: 'flap', durationMs: 3 * cycle }, t0).unreachableSince(sid('a1'), t0 + offset), expected);
    });
  }

  test('the flap timings are documented constants of a few seconds each', () => {
    assert.equal(flapDownMs, 3000);
    assert.equal(flapUpMs, 3000);
  });
});

describe('FaultRegistry.heartbeatDelay', () => {
  const t0 = 5000;
  const cases: { name: string; spec: Omit<FaultSpec, 'target'>; at: number; expect: number }[] = [
    { name: 'slow, inside', spec: { mode: 'slow', durationMs: 3000, delayMs: 700 }, at: t0 + 2999, expect: 700 },
    { name: 'slow, at injection', spec: { mode: 'slow', durationMs: 3000, delayMs: 700 }, at: t0, expect: 700 },
    { name: 'slow, before injection', spec: { mode: 'slow', durationMs: 3000, delayMs: 700 }, at: t0 - 1, expect: 0 },
    { name: 'slow, at its end', spec: { mode: 'slow', durationMs: 3000, delayMs: 700 }, at: t0 + 3000, expect: 0 },
    { name: 'slow with the default delay', spec: { mode: 'slow', durationMs: 3000 }, at: t0 + 1, expect: 2500 },
    { name: 'slow without duration does nothing', spec: { mode: 'slow', delayMs: 700 }, at: t0 + 1, expect: 0 },
    { name: 'a crash delays nothing (it drops)', spec: { mode: 'crash', durationMs: 3000 }, at: t0 + 1, expect: 0 },
  ];
  for (const c of cases) {
    test(c.name, () => {
      assert.equal(registryWith(c.spec, t0).heartbeatDelay(sid('a1'), c.at), c.expect);
    });
  }
});

describe('outageCovers: a recorded fault explains a failure declared after `since`', () => {
  const t0 = 20_000;
  const cases: { name: string; spec: Omit<FaultSpec, 'target'>; since: number; expect: boolean }[] = [
    { name: 'a fault lasting past `since`', spec: { mode: 'partition', durationMs: 5000 }, since: t0 + 4000, expect: true },
    { name: 'a fault ending exactly at `since`', spec: { mode: 'partition', durationMs: 5000 }, since: t0 + 5000, expect: true },
    { name: 'a fault that ended before `since`', spec: { mode: 'partition', durationMs: 5000 }, since: t0 + 5001, expect: false },
    { name: 'a fault injected after `since`', spec: { mode: 'slow', durationMs: 100 }, since: t0 - 10_000, expect: true },
    { name: 'a crash without end', spec: { mode: 'crash' }, since: t0 + 1_000, expect: true },
  ];
  for (const c of cases) {
    test(c.name, () => {
      // What the fault layer tells the core (Coordinator.expectOutage) is the recorded fault's end.
      const untilMs = registryWith(c.spec, t0).latest(sid('a1'))?.untilMs;
      assert.equal(outageCovers(untilMs, c.since), c.expect);
    });
  }

  test('a server never hit has no injected fault', () => {
    assert.equal(outageCovers(registryWith({ mode: 'crash' }, t0).latest(sid('b1'))?.untilMs, 0), false);
  });
});
