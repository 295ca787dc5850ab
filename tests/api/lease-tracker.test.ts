/**
 * The TypeScript client's lease tracker against real heartbeat replies of the app: a primary may
 * accept actions for `lease_ms` after it sent the heartbeat, no longer without a renewal, and again
 * after the next reply; a reply to an older heartbeat than the last applied one is refused.
 */
import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import request from 'supertest';
import { LeaseTracker } from '../../clients/ts/lease-tracker.ts';
import { expectResponse, testApp, type TestApp } from './harness.ts';
import { beat, handler, register, sendBeat, type Registered } from './fixtures.ts';

type Reply = Parameters<LeaseTracker['replied']>[1];

async function heartbeat(t: TestApp, server: Registered, regions: unknown[]): Promise<Reply> {
  return expectResponse('sendHeartbeat', await sendBeat(t, server, beat({ regions })), 200) as Reply;
}

describe('LeaseTracker (clients/ts)', () => {
  test('holds the lease for lease_ms from the send, loses it without a renewal, regains it with the next reply', async () => {
    const t = await testApp();
    const servers = [];
    for (const [i, zone] of ['zone-a', 'zone-b', 'zone-c'].entries()) servers.push(await register(t, { address: `10.0.0.1:${7001 + i}`, zone, capacity: 4 }));
    expectResponse('createRegion', await request(handler(t)).post('/mesh/regions').send({ region_id: 'castle' }), 201);
    const primaryId = t.host.coordinator.regionRecord('castle' as never)?.primary;
    const primary = servers.find((s) => s.id === primaryId);
    assert.ok(primary, 'the region has a primary');
    const claim = [{ region_id: 'castle', role: 'primary', epoch: 1, applied_seq: 0 }];

    let clock = 10_000;
    const leases = new LeaseTracker(() => clock);
    const sentAt = leases.sent();
    clock += 15; // the reply comes back 15 ms later
    const reply = await heartbeat(t, primary, claim);
    assert.equal(reply.lease_ms, t.host.coordinator.config.primaryLeaseMs);
    assert.ok(leases.replied(sentAt, reply));
    assert.equal(leases.mayAccept('castle'), true);
    assert.equal(leases.mayAccept('elsewhere'), false);

    clock = sentAt + reply.lease_ms - 1;
    assert.equal(leases.mayAccept('castle'), true, 'the lease runs until lease_ms after the send');
    clock = sentAt + reply.lease_ms;
    assert.equal(leases.mayAccept('castle'), false, 'counted from the send, not from the reply');
    assert.equal(leases.lost, true);

    const renewedAt = leases.sent();
    assert.ok(leases.replied(renewedAt, await heartbeat(t, primary, claim)));
    assert.equal(leases.mayAccept('castle'), true, 'the next reply renews it');
    assert.equal(leases.replied(sentAt, reply), false, 'a reply to an older heartbeat is stale');
    assert.equal(leases.remainingMs(), reply.lease_ms);

    const backup = servers.find((s) => s.id !== primaryId) as Registered;
    const backupLeases = new LeaseTracker(() => clock);
    const backupReply = await heartbeat(t, backup, [{ region_id: 'castle', role: 'backup', epoch: 1, applied_seq: 0 }]);
    assert.equal(backupReply.lease_ms, 0);
    assert.ok(backupLeases.replied(backupLeases.sent(), backupReply));
    assert.equal(backupLeases.mayAccept('castle'), false, 'a backup holds no lease');
  });
});
