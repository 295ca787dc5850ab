/**
 * Issue 17 in the simulator, failures: servers hold a session (mesh/simulation/sessions.ts), so a
 * crashed process's session closes at once and the coordinator suspects it before any heartbeat is
 * missed; its replication peers, whose links broke too, confirm it; the promotion is pushed to the
 * new primary once durable, and primaries renew the short session lease over the session. Silent
 * failures (a partition: a stopped process or a host that vanished looks the same, nothing closes)
 * keep the phi path.
 *
 * Random meshes (10-80 regions, 3-5 zones), a random warm-up (5-30 s), then one server that leads
 * a region crashes or goes silent at a random instant. Every region it led completes its failover
 * with detection <= 5 s and no false failover; safety after every tick, the lease (one serving
 * primary per region at every instant, with the session leases) on every reply, push and renewal.
 * Across the runs: recovery p99 <= detection p99 + 100 ms (failover_metrics: detection = declared -
 * last heartbeat, recovery = the new primary's acknowledgement - last heartbeat), and for silent
 * failures detection p99 <= 3 s. A failing run prints its spec (seed included): replay it with
 * runSessionFailure and keep it in regression-seeds.test.ts.
 */
import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { describeStats, fcParams, show } from './harness.ts';
import { knownBugs } from './known-bugs.ts';
import { runSessionFailure, sessionFailureArb, type SessionFailureSpec } from './session-runs.ts';

for (const { mode, runs, name } of [
  { mode: 'crash' as const, runs: 50, name: 'a crashed process (its session closes)' },
  { mode: 'partition' as const, runs: 150, name: 'a silent failure (nothing closes)' },
]) {
  describe(`sessions: ${name}`, () => {
    const detection: number[] = [];
    const recovery: number[] = [];
    const promotion: number[] = [];
    const failureToAck: number[] = [];
    let pushes = 0;
    let renewals = 0;

    test(`every region it led completes its failover, detection <= 5 s, the lease holds (${runs} runs)`, () => {
      fc.assert(fc.property(sessionFailureArb(mode), (s: SessionFailureSpec) => {
        const found = runSessionFailure(s);
        assert.deepEqual(found.safety, [], `safety or lease violated in ${show(s)}`);
        assert.deepEqual(found.lostState, [], `state lost in ${show(s)}`);
        assert.deepEqual(found.problems, [], `failover went wrong in ${show(s)}`);
        detection.push(...found.detection);
        recovery.push(...found.recovery);
        promotion.push(...found.promotion);
        failureToAck.push(...found.failureToAck);
        pushes += found.pushes;
        renewals += found.renewals;
      }), fcParams(runs));
      assert.ok(pushes > 0 && renewals > 0, `assignments were pushed (${pushes}) and leases renewed (${renewals})`);
    });

    test('recovery p99 <= promotion p99 + 100 ms: the promotion is pushed once durable and acknowledged at once', () => {
      const p = describeStats('promotion', promotion);
      const r = describeStats('recovery', recovery);
      const gaps = recovery.map((ms, i) => ms - (promotion[i] as number));
      console.log(`[sessions, ${mode}] ${p.line}; ${describeStats('recovery - promotion per failover', gaps).line}`);
      assert.ok(p.stats.count > 0, 'no samples');
      assert.ok(r.stats.p99 <= p.stats.p99 + 100, `recovery p99 ${r.stats.p99} ms > promotion p99 ${p.stats.p99} ms + 100 ms`);
    });

    // A crashed primary's session lease outlasts its detection (known-bugs.ts): a todo for crashes.
    test('recovery p99 <= detection p99 + 100 ms', { todo: mode === 'crash' ? knownBugs.sessionLeaseOutlastsDetection : false }, () => {
      const d = describeStats('detection', detection);
      const r = describeStats('recovery', recovery);
      const gaps = recovery.map((ms, i) => ms - (detection[i] as number));
      console.log(`[sessions, ${mode}] ${d.line}; ${r.line}; ${describeStats('recovery - detection per failover', gaps).line}; ` +
        `${describeStats(`${mode} to acknowledgement`, failureToAck).line}`);
      assert.ok(d.stats.count > 0, 'no samples');
      assert.ok(r.stats.p99 <= d.stats.p99 + 100, `recovery p99 ${r.stats.p99} ms > detection p99 ${d.stats.p99} ms + 100 ms`);
      if (mode === 'partition') assert.ok(d.stats.p99 <= 3000, `silent failures: detection p99 ${d.stats.p99} ms > 3 s`);
    });
  });
}
