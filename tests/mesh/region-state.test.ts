/**
 * The failover state machine and its documentation cannot drift: the transition table in
 * ARCHITECTURE.md is the table the code exports (mesh/failover/region-state.ts), row for row, and
 * every transition that seeded simulations of crashes, partitions, flaps, drains, a mass failure and
 * a whole-mesh outage make the code take is a row of that table.
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { describe, test } from 'node:test';
import { Coordinator } from '../../mesh/core/coordinator.ts';
import { transitions, type FailoverEvent, type FailoverState } from '../../mesh/failover/region-state.ts';
import { SimRun } from '../../mesh/simulation/scenario.ts';
import { testMeshConfig } from '../../mesh/base/config.ts';
import { Mesh, rid, sid } from './coordinator-harness.ts';

/** The rows of the markdown table under the state machine's heading, cells trimmed, backticks removed. */
function documentedTable(): string[][] {
  const text = readFileSync(new URL('../../ARCHITECTURE.md', import.meta.url), 'utf8');
  const section = text.split(/^## /m).find((s) => s.startsWith('The failover state machine'));
  assert.ok(section, 'ARCHITECTURE.md has a section "The failover state machine"');
  const lines = section.split('\n').filter((line) => line.startsWith('|'));
  const cells = (line: string) => line.slice(1, -1).split('|').map((c) => c.trim().replaceAll('`', ''));
  assert.deepEqual(cells(lines[0] ?? ''), ['State', 'Event', 'Guard', 'Next state', 'Effect'], 'the table header');
  return lines.slice(2).map(cells);
}

/** A server that backs up some region, so that its drain takes a backup away. */
function drainable(run: SimRun) {
  const server = run.coordinator.servers().find((s) => s.backups > 0);
  assert.ok(server, 'some server holds a backup');
  return server.serverId;
}

type Seen = `${FailoverState} --${FailoverEvent}--> ${FailoverState}`;

/** Every transition a seeded run takes while `act` injects its faults. */
function transitionsOf(seed: number, act: (run: SimRun) => void): Set<Seen> {
  const run = new SimRun({ seed, regions: 24, spareServers: 4, criticalRegions: 3, heartbeatLoss: 0.01 });
  const seen = new Set<Seen>();
  Coordinator.traceTransitionsForTests(run.coordinator, (_region, from, event, to) => seen.add(`${from} --${event}--> ${to}`));
  run.advanceTo(5000);
  act(run);
  run.advanceTo(run.nowMs + 40_000);
  return seen;
}

describe('the failover state machine', () => {
  test('ARCHITECTURE.md documents exactly the exported transition table', () => {
    assert.deepEqual(documentedTable(), transitions.map((t) => [t.state, t.event, t.guard, t.next, t.effect]));
  });

  test('simulated failures take only transitions of the table', () => {
    const scenarios: [string, (run: SimRun) => void][] = [
      ['a primary crashes', (run) => void run.inject({ target: { regionId: run.regions[0]!, role: 'primary' }, mode: 'crash' }, run.nowMs)],
      ['a backup crashes', (run) => void run.inject({ target: { regionId: run.regions[1]!, role: 'backup' }, mode: 'crash' }, run.nowMs)],
      ['30% of the servers crash', (run) => void run.inject({ target: { fraction: 0.3 }, mode: 'crash' }, run.nowMs)],
      ['a zone is partitioned for 8 s', (run) => void run.inject({ target: { zone: 'zone-1' }, mode: 'partition', durationMs: 8000 }, run.nowMs)],
      ['a primary flaps', (run) => void run.inject({ target: { regionId: run.regions[2]!, role: 'primary' }, mode: 'flap', durationMs: 20_000 }, run.nowMs)],
      ['every server is cut off for 10 s', (run) => void run.inject({ target: { fraction: 1 }, mode: 'partition', durationMs: 10_000 }, run.nowMs)],
      ['a server drains', (run) => void run.coordinator.leave(drainable(run), run.nowMs)],
    ];
    const allowed = new Set(transitions.map((t) => `${t.state} --${t.event}--> ${t.next}`));
    const seen = new Set<Seen>();
    for (const [index, [name, act]] of scenarios.entries()) {
      for (const transition of transitionsOf(index + 1, act)) {
        assert.ok(allowed.has(transition), `${name}: ${transition} is not in the table`);
        seen.add(transition);
      }
    }
    // The runs must exercise the machine, not just stay healthy.
    for (const event of ['replica_lost', 'promote', 'epoch_durable', 'primary_ack', 'backup_assigned', 'backup_confirmed',
      'replica_returns'] as const) {
      assert.ok([...seen].some((t) => t.includes(`--${event}-->`)), `no run took a ${event} transition`);
    }
  });

  /**
   * A region whose primary was declared failed waits in `awaiting_promotion` until the lost
   * primary's lease plus the margin is over (production lease); its backups drain meanwhile.
   */
  function drainWhileAwaitingPromotion(drainBoth: boolean): { seen: string[]; mesh: Mesh } {
    const mesh = new Mesh({ config: testMeshConfig });
    for (const id of ['a1', 'b1', 'c1', 'a2', 'b2', 'c2']) mesh.register(id, id[0] ?? '?');
    mesh.createRegions([{}]);
    mesh.setSeq('c1', 'region-1', 50);
    mesh.run(10_000);
    assert.equal(mesh.c.regionRecord(rid('region-1'))?.primary, 'a1');
    const seen: string[] = [];
    Coordinator.traceTransitionsForTests(mesh.c, (_region, from, event, to) => seen.push(`${from} --${event}--> ${to}`));
    mesh.silence('a1');
    for (let t = 10_100; mesh.c.server(sid('a1'))?.status !== 'failed'; t += 100) mesh.run(t);
    const region = mesh.c.regionRecord(rid('region-1'));
    assert.equal(region?.primary, null, 'no promotion yet: the lost primary\'s lease runs');
    const backups = [...(region?.backups ?? [])];
    assert.deepEqual(backups.sort(), ['b1', 'c1']);
    for (const backup of drainBoth ? backups : ['b1']) assert.ok(mesh.c.leave(sid(backup), mesh.now).ok);
    mesh.flush();
    mesh.run(20_000);
    return { seen, mesh };
  }

  test('a backup drains while its region awaits a promotion: the other backup is promoted (awaiting_promotion + backup_drained)', () => {
    const allowed = new Set(transitions.map((t) => `${t.state} --${t.event}--> ${t.next}`));
    const { seen, mesh } = drainWhileAwaitingPromotion(false);
    assert.ok(seen.includes('awaiting_promotion --backup_drained--> awaiting_promotion'), seen.join('; '));
    for (const transition of seen) assert.ok(allowed.has(transition), `${transition} is not in the table`);
    const region = mesh.c.regionRecord(rid('region-1'));
    assert.equal(region?.primary, 'c1');
    assert.equal(region?.phase, 'active');
    assert.ok(!region?.backups.includes(sid('b1')), 'the drained server holds no replica');
    assert.equal(mesh.c.server(sid('b1'))?.status, 'left');
  });

  test('the last confirmed backup drains while its region awaits a promotion: the region is unavailable and given up', () => {
    const allowed = new Set(transitions.map((t) => `${t.state} --${t.event}--> ${t.next}`));
    const { seen, mesh } = drainWhileAwaitingPromotion(true);
    assert.ok(seen.includes('awaiting_promotion --backup_drained--> unavailable'), seen.join('; '));
    for (const transition of seen) assert.ok(allowed.has(transition), `${transition} is not in the table`);
    assert.equal(mesh.c.regionRecord(rid('region-1'))?.phase, 'unavailable');
    assert.ok(mesh.c.listAlerts({ state: 'open' }).some((a) => a.dedupKey === 'region-unavailable:region-1'), 'operators are told');
  });
});
