/**
 * The operator-facing routes of the app: the dashboard page and its files, and the test API
 * switched off (`testApi: false`), which must refuse every test operation with a problem that says
 * why and change nothing.
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import request from 'supertest';
import { createApp } from '../../api/app.ts';
import { contract, expectResponse, testApp } from './harness.ts';

describe('the dashboard', () => {
  test('GET / serves the page with a strict CSP; its script and style sheet are served, anything else is 400', async () => {
    const t = await testApp();
    const server = t.app.callback();
    const page = await request(server).get('/').expect(200);
    assert.match(String(page.headers['content-type']), /^text\/html/);
    assert.match(String(page.headers['content-security-policy']), /default-src 'self'/);
    assert.match(page.text, /<meta name="mesh-test-api" content="on">/);
    assert.match(page.text, /src="\/dashboard\/app\.js"/);
    const script = await request(server).get('/dashboard/app.js').expect(200);
    assert.match(String(script.headers['content-type']), /^text\/javascript/);
    assert.match(script.text, /new EventSource\('\/mesh\/events'\)/);
    const css = await request(server).get('/dashboard/style.css').expect(200);
    assert.match(String(css.headers['content-type']), /^text\/css/);
    expectResponse('getDashboardAsset', await request(server).get('/dashboard/..%2Fopenapi.yaml'), 400);
  });
});

describe('--test-api off', () => {
  test('setup_test, reset, simulate_failure and advance_time answer 404 test-api-off; the mesh is untouched', async () => {
    const t = await testApp();
    const app = createApp({ host: t.host, adminToken: undefined, contract: contract(), logError: (e) => t.errors.push(e), testApi: false });
    const server = app.callback();
    const calls: [string, unknown][] = [
      ['/mesh/setup_test', { regions: 3 }], ['/mesh/reset', undefined],
      ['/mesh/simulate_failure', { fraction: 0.5, mode: 'crash' }], ['/mesh/test/advance_time', { ms: 1000 }],
    ];
    for (const [path, body] of calls) {
      const res = await request(server).post(path).send(body as object);
      assert.equal(res.status, 404, path);
      assert.match(String(res.headers['content-type']), /application\/problem\+json/);
      assert.equal(res.body.type, 'https://mesh-coordinator.dev/problems/test-api-off');
      assert.match(res.body.detail, /--test-api off/);
    }
    assert.equal(t.host.coordinator.status(t.host.now()).regions.total, 0);
    assert.match((await request(server).get('/').expect(200)).text, /content="off"/);
    expectResponse('getMeshStatus', await request(server).get('/mesh/status'), 200);
    assert.deepEqual(t.errors, []);
  });
});
