/**
 * A peer's report of a crashed server travels to the coordinator like any message, and the
 * coordinator dates the peer's last sighting from the report's arrival (`silent_for_ms` before it),
 * so the sighting looks later than it was by the report's transit. A session close that arrived
 * quickly then seemed to precede the sighting, and no peer could confirm the crash: the simulator
 * with sessions (tests/simulation/session-failure.test.ts) found crashes declared only by the
 * 500 ms peer-silence path, up to 780 ms after the crash instead of about 200 ms.
 */
import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import { testMeshConfig } from '../../mesh/base/config.ts';
import { Mesh, sid, warmSessionMesh } from './coordinator-harness.ts';

const warmUntil = 10_000;
const tick = testMeshConfig.tickIntervalMs;
const confirmAfter = testMeshConfig.sessionPeerSilenceMs;

/** The standard mesh warmed up, every server over a session. */
const warm = (): Mesh => warmSessionMesh(warmUntil);

describe('Coordinator.sessionClosed and the transit of peer reports', () => {
  for (const transitMs of [0, 20, 60]) {
    test(`peers that lost the server at the crash confirm it although their reports took ${transitMs} ms to arrive`, () => {
      const mesh = warm();
      const crashAt = warmUntil + 20;
      mesh.at(crashAt);
      mesh.silence('a1');
      // The close travels 2 ms; each peer reports once its silence reaches the confirmation window.
      mesh.at(crashAt + 2);
      mesh.c.sessionClosed(sid('a1'), mesh.now);
      mesh.at(crashAt + confirmAfter + 10);
      const reports = ['b1', 'c1'].map((id) => ({ id, input: mesh.input(mesh.server(id)) }));
      mesh.at(mesh.now + transitMs);
      for (const { id, input } of reports) assert.equal(mesh.c.heartbeat(sid(id), input, mesh.now).ok, true);
      mesh.flush();
      mesh.run(mesh.now + tick, { heartbeats: false });
      const [detected] = mesh.ofType('server_failure_detected');
      assert.equal(detected?.serverId, 'a1', 'declared at the first tick after the reports');
      assert.equal(detected?.reason, 'peer_confirmed');
    });
  }

  test('a peer that heard the server well after its session closed confirms nothing (a hiccup, then a lost link)', () => {
    const mesh = warm();
    const closedAt = warmUntil + 20;
    mesh.at(closedAt);
    mesh.cutLink('a1');
    mesh.c.sessionClosed(sid('a1'), mesh.now);
    // Its peers heard it for another 300 ms before losing it, and report a long silence later.
    mesh.at(closedAt + 300);
    mesh.silence('a1');
    mesh.at(closedAt + 300 + 3 * confirmAfter);
    mesh.hb('b1');
    mesh.hb('c1');
    mesh.run(mesh.now + tick, { heartbeats: false });
    assert.deepEqual(mesh.ofType('server_failure_detected'), [], 'the session-close path does not confirm it');
  });
});
