/**
 * Which heartbeats write (rule 1, as the deployment guide states it): a heartbeat that changes
 * nothing queues no write; one that acknowledges a promotion, confirms a new backup or ratchets an
 * epoch is a topology change and queues exactly one.
 */
import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import { Mesh, rid } from './coordinator-harness.ts';

const REGION = rid('region-1');

function healthy(): Mesh {
  const mesh = new Mesh();
  for (const [id, zone] of [['a1', 'z1'], ['b1', 'z2'], ['c1', 'z3'], ['a2', 'z1']] as const) mesh.register(id, zone, 4);
  mesh.createRegions([{ id: 'region-1' }]);
  mesh.run(5000);
  return mesh;
}

describe('which heartbeats write', () => {
  test('a heartbeat that changes nothing queues no write, one after another', () => {
    const mesh = healthy();
    const before = mesh.c.changeSeq();
    for (const id of ['a1', 'b1', 'c1', 'a2']) mesh.hb(id);
    assert.equal(mesh.c.changeSeq(), before);
  });

  test('the heartbeat that acknowledges a promotion, and the one that confirms the new backup, each queue a write', () => {
    const mesh = healthy();
    const primary = mesh.c.replication(REGION)?.primary?.serverId;
    assert.ok(primary);
    mesh.silence(primary);
    let acknowledgedAt: number | null = null;
    let confirmedAt: number | null = null;
    for (let t = 5100; t <= 15_000 && confirmedAt === null; t += 100) {
      const before = mesh.c.changeSeq();
      const wasAcked = mesh.c.replication(REGION)?.primary?.acknowledged ?? false;
      const syncing = mesh.c.replication(REGION)?.backups.filter((b) => b.syncing).length ?? 0;
      mesh.at(t);
      for (const fake of mesh.servers.values()) if (fake.up) mesh.hb(fake.id, false);
      const view = mesh.c.replication(REGION);
      const wrote = mesh.c.changeSeq() > before;
      if (!wasAcked && view?.primary?.acknowledged) {
        acknowledgedAt = t;
        assert.ok(wrote, 'the acknowledging heartbeat queued a write');
      }
      if (syncing > 0 && (view?.backups.filter((b) => b.syncing).length ?? 0) < syncing) {
        confirmedAt = t;
        assert.ok(wrote, 'the confirming heartbeat queued a write');
      }
      mesh.run(t);
    }
    assert.ok(acknowledgedAt !== null && confirmedAt !== null, `acknowledged at ${acknowledgedAt}, confirmed at ${confirmedAt}`);
  });
});
