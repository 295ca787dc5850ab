/**
 * The leader gate of a replicated coordinator (api/leadership.ts), with the election stubbed: a
 * leader serves, a follower answers the probes and the status with its role and redirects every
 * other request (307 to the same path and query at the leader) before any side effect, and without
 * a known leader answers 503. The role is read per request, so a leader that loses its lease
 * answers like a follower from that instant.
 */
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import request from 'supertest';
import { createFollowerApp, redirectToLeader, type Leadership, type LeadershipView } from '../../api/leadership.ts';
import { expectResponse, testApp } from './harness.ts';
import { handler } from './fixtures.ts';

/** An election whose view the test sets. */
function stubLeadership(view: LeadershipView): Leadership & { view(): LeadershipView; set(next: LeadershipView): void } {
  let current = view;
  return { selfUrl: 'http://c1.test:8080', view: () => current, set: (next) => { current = next; } };
}

const leaderView: LeadershipView = { role: 'leader', leaderUrl: 'http://c1.test:8080', term: '41' };
const followerView: LeadershipView = { role: 'follower', leaderUrl: 'http://c2.test:8080', term: '42' };
const registration = { address: '127.0.0.1:7000', zone: 'zone-a', capacity: 4, name: 'gate' };

describe('the leader gate', () => {
  test('a leader serves, and names itself in the status and the probes', async () => {
    const leadership = stubLeadership(leaderView);
    const t = await testApp({ leadership });
    const status = expectResponse('getMeshStatus', await request(handler(t)).get('/mesh/status'), 200);
    assert.deepEqual(status.coordinator, { role: 'leader', self_url: 'http://c1.test:8080', leader_url: 'http://c1.test:8080', term: '41' });
    const ready = expectResponse('getReadiness', await request(handler(t)).get('/readyz'), 200);
    assert.equal(ready.coordinator.role, 'leader');
    expectResponse('registerServer', await request(handler(t)).post('/mesh/servers').send(registration), 201);
  });

  test('a leader that loses its lease redirects from the next request on, before any side effect', async () => {
    const leadership = stubLeadership(leaderView);
    const t = await testApp({ leadership });
    leadership.set(followerView);
    const res = await request(handler(t)).post('/mesh/servers?via=gate').send(registration);
    expectResponse('registerServer', res, 307);
    assert.equal(res.headers.location, 'http://c2.test:8080/mesh/servers?via=gate');
    assert.deepEqual(res.body, { detail: res.body.detail, leader_url: 'http://c2.test:8080' });
    assert.match(res.body.detail, /nothing was done/);
    assert.equal(t.host.coordinator.records().servers.size, 0, 'the redirected registration changed the core');
    const status = expectResponse('getMeshStatus', await request(handler(t)).get('/mesh/status'), 200);
    assert.deepEqual(status, { coordinator: { role: 'follower', self_url: 'http://c1.test:8080', leader_url: 'http://c2.test:8080', term: '42' } });
    const ready = expectResponse('getReadiness', await request(handler(t)).get('/readyz'), 503);
    assert.equal(ready.coordinator.leader_url, 'http://c2.test:8080');
    const health = expectResponse('getHealth', await request(handler(t)).get('/healthz'), 200);
    assert.equal(health.coordinator.role, 'follower');
  });

  test('without a known leader every other request is 503 no-leader, with Retry-After', async () => {
    const leadership = stubLeadership({ role: 'follower', leaderUrl: undefined, term: undefined });
    const t = await testApp({ leadership });
    const res = await request(handler(t)).post('/mesh/regions').send({ region_id: 'castle' });
    const problem = expectResponse('createRegion', res, 503);
    assert.equal(problem.type, 'https://mesh-coordinator.dev/problems/no-leader');
    assert.equal(res.headers['retry-after'], '1');
    assert.equal(t.host.coordinator.records().regions.size, 0);
  });

  test('the follower app (no mesh at all) answers the same way', async () => {
    const leadership = stubLeadership(followerView);
    const app = createFollowerApp({ leadership, logError: (error) => assert.fail(String(error)) });
    const server = app.callback();
    expectResponse('getMeshStatus', await request(server).get('/mesh/status'), 200);
    const res = await request(server).get('/mesh/regions');
    expectResponse('listRegions', res, 307);
    assert.equal(res.headers.location, 'http://c2.test:8080/mesh/regions');
    leadership.set({ role: 'follower', leaderUrl: undefined, term: undefined });
    expectResponse('listRegions', await request(server).get('/mesh/regions'), 503);
  });

  test('the redirect stays on the leader whatever the request target (no open redirect)', () => {
    const at = (target: string) => (redirectToLeader(target, followerView) as { location: string }).location;
    assert.equal(at('/mesh/regions?x=1'), 'http://c2.test:8080/mesh/regions?x=1');
    assert.equal(at('//evil.example/x'), 'http://c2.test:8080//evil.example/x');
    assert.equal(at('http://evil.example/x'), 'http://c2.test:8080/');
    assert.equal(at('/mesh/servers?url=a,b,c'), 'http://c2.test:8080/mesh/servers?url=a,b,c');
  });
});
