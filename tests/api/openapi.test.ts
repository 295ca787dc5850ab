import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import { loadContract, DEFAULT_MAX_BODY_BYTES, type Validation } from '../../api/openapi.ts';

const contract = loadContract();
type Json = Record<string, unknown>;

const EXPECTED_OPERATIONS = [
  'getHealth', 'getReadiness', 'getOpenApiDocument', 'getMeshStatus', 'setupTestMesh', 'resetTestMesh', 'simulateFailure',
  'getFailoverMetrics', 'getRegionReplication', 'advanceTestTime', 'registerServer', 'listServers', 'getServer',
  'sendHeartbeat', 'openSession', 'leaveServer', 'createRegion', 'listRegions', 'updateRegion', 'getRegionRoute', 'submitAction',
  'collectActions', 'acknowledgeActions', 'putPlayerSnapshot', 'getPlayerSnapshot', 'listAlerts', 'acknowledgeAlert',
  'streamEvents', 'getMetrics', 'getDashboard', 'getDashboardAsset',
];

/** Every operation object of the document with its method and path. */
function operations(): { method: string; path: string; op: Json }[] {
  return Object.entries(contract.document.paths).flatMap(([path, item]) =>
    Object.entries(item).filter(([method]) => method !== 'parameters').map(([method, op]) => ({ method, path, op: op as Json })));
}

/** Media-type examples (`example` and every `examples.*.value`), cloned so defaults cannot leak back. */
function examplesOf(media: Json | undefined): unknown[] {
  if (!media) return [];
  const list = 'example' in media ? [media.example] : [];
  for (const e of Object.values((media.examples ?? {}) as Record<string, Json>)) list.push(e.value);
  return list.map((e) => structuredClone(e));
}

function resolve(node: Json): Json {
  const ref = node.$ref;
  if (typeof ref !== 'string') return node;
  return ref.slice(2).split('/').reduce<Json>((n, k) => n[k] as Json, contract.document as Json);
}

function errorsOf(result: Validation): { path: string; message: string }[] {
  assert.equal(result.ok, false, 'expected a validation failure');
  return result.ok ? [] : result.errors;
}

describe('the contract document', () => {
  test('is OpenAPI 3.1 and keeps its YAML source for serving', () => {
    assert.match(contract.document.openapi, /^3\.1\./);
    assert.match(contract.source, /^openapi: 3\.1/);
  });

  test('every operation has a unique operationId, and the set is the agreed one', () => {
    const ids = operations().map(({ op }) => op.operationId);
    assert.ok(ids.every((id) => typeof id === 'string'));
    assert.equal(new Set(ids).size, ids.length);
    assert.deepEqual([...ids].sort(), [...EXPECTED_OPERATIONS].sort());
    assert.deepEqual([...contract.operations.keys()].sort(), [...EXPECTED_OPERATIONS].sort());
  });

  test('every operation has a summary, tags and an explicit security requirement', () => {
    for (const { method, path, op } of operations()) {
      assert.ok(op.summary, `${method} ${path} summary`);
      assert.ok(Array.isArray(op.tags) && op.tags.length > 0, `${method} ${path} tags`);
      assert.ok(Array.isArray(op.security), `${method} ${path} security`);
    }
  });

  test('protected operations list 401 and 403; operations with a body list 400, 413 and 415', () => {
    for (const { method, path, op } of operations()) {
      const responses = op.responses as Json;
      if ((op.security as unknown[]).length > 0) {
        assert.ok(responses['401'] && responses['403'], `${method} ${path} lists 401/403`);
      }
      if (op.requestBody) {
        for (const status of ['400', '413', '415']) assert.ok(responses[status], `${method} ${path} lists ${status}`);
      }
    }
  });

  test('operation info: router paths, security and body limits', () => {
    const heartbeat = contract.operations.get('sendHeartbeat');
    assert.equal(heartbeat?.method, 'POST');
    assert.equal(heartbeat?.routerPath, '/mesh/servers/:server_id/heartbeat');
    assert.deepEqual(heartbeat?.security, [['serverBearer']]);
    assert.equal(heartbeat?.maxBodyBytes, 1024 * 1024);
    assert.deepEqual(contract.operations.get('leaveServer')?.security, [['serverBearer'], ['adminBearer'], []]);
    assert.deepEqual(contract.operations.get('getMeshStatus')?.security, []);
    assert.equal(contract.operations.get('submitAction')?.maxBodyBytes, DEFAULT_MAX_BODY_BYTES);
  });

  test('protected mode is in the contract: every admin operation also allows no credentials, and says why', () => {
    const scheme = (contract.document.components?.securitySchemes as Json).adminBearer as Json;
    assert.match(String(scheme.description), /\{\}/);
    for (const [id, info] of contract.operations) {
      if (!info.security.some((alternative) => alternative.includes('adminBearer'))) continue;
      assert.ok(info.security.some((alternative) => alternative.length === 0), `${id} lists {} beside adminBearer`);
    }
  });

  test('every operation documents the hostile-input answers it can give', () => {
    for (const { method, path, op } of operations()) {
      const responses = op.responses as Json;
      assert.ok(responses['421'], `${method} ${path} lists 421 (foreign Host)`);
      if (['post', 'put', 'patch'].includes(method)) {
        for (const status of ['403', '415']) assert.ok(responses[status], `${method} ${path} lists ${status}`);
      }
      if (op.requestBody) assert.ok(responses['408'], `${method} ${path} lists 408 (slow body)`);
    }
  });
});

describe('examples agree with the schemas', () => {
  test('every response schema compiles', () => {
    for (const id of contract.operations.keys()) {
      assert.doesNotThrow(() => contract.validateResponse(id, 200, undefined), id);
    }
  });


  test('every request example is accepted', () => {
    let checked = 0;
    for (const { op } of operations()) {
      if (!op.requestBody) continue;
      const content = resolve(op.requestBody as Json).content as Json;
      for (const example of examplesOf(content['application/json'] as Json)) {
        const result = contract.validateRequestBody(op.operationId as string, example);
        assert.ok(result.ok, `${String(op.operationId)}: ${JSON.stringify(result)}`);
        checked++;
      }
    }
    assert.ok(checked >= 14, `checked ${checked} request examples`);
  });

  test('every JSON response example matches its response schema', () => {
    let checked = 0;
    for (const { op } of operations()) {
      for (const [status, raw] of Object.entries(op.responses as Json)) {
        const response = resolve(raw as Json);
        for (const [type, media] of Object.entries((response.content ?? {}) as Json)) {
          if (!type.includes('json')) continue;
          for (const example of examplesOf(media as Json)) {
            const result = contract.validateResponse(op.operationId as string, Number(status), example);
            assert.ok(result.ok, `${String(op.operationId)} ${status}: ${JSON.stringify(result)}`);
            checked++;
          }
        }
      }
    }
    assert.ok(checked >= 60, `checked ${checked} response examples`);
  });
});

describe('request body validation', () => {
  test('fills defaults', () => {
    const server = contract.validateRequestBody('registerServer', { address: '10.0.0.1:7777', zone: 'a' });
    assert.deepEqual(server, { ok: true, value: { address: '10.0.0.1:7777', zone: 'a', capacity: 16 } });
    const failure = contract.validateRequestBody('simulateFailure', { zone: 'a' });
    assert.deepEqual(failure, { ok: true, value: { zone: 'a', mode: 'crash' } });
  });

  test('rejects wrong types, unknown fields and out-of-range numbers, naming each field', () => {
    const errors = errorsOf(contract.validateRequestBody('registerServer', { address: 7, zone: '', capacity: 10001, colour: 'red' }));
    assert.deepEqual(errors.map((e) => e.path).sort(), ['body/address', 'body/capacity', 'body/colour', 'body/zone']);
    assert.ok(errors.some((e) => e.path === 'body/colour' && /unknown field/.test(e.message)));
    assert.ok(errors.some((e) => e.path === 'body/capacity' && /<= 10000/.test(e.message)));
  });

  test('rejects a missing required field and a non-object body', () => {
    assert.deepEqual(errorsOf(contract.validateRequestBody('advanceTestTime', {})), [{ path: 'body/ms', message: 'is required' }]);
    assert.equal(contract.validateRequestBody('advanceTestTime', { ms: 3_600_001 }).ok, false);
    assert.equal(contract.validateRequestBody('advanceTestTime', { ms: 0 }).ok, false);
    assert.equal(contract.validateRequestBody('advanceTestTime', { ms: 1.5 }).ok, false);
    assert.equal(contract.validateRequestBody('advanceTestTime', [{ ms: 5 }]).ok, false);
  });

  test('checks nested heartbeat entries and integer bounds', () => {
    const body = { incarnation: 'i1', players: 3, regions: [{ region_id: 'r1', role: 'leader', epoch: -1, applied_seq: 0 }] };
    const errors = errorsOf(contract.validateRequestBody('sendHeartbeat', body));
    assert.deepEqual(errors.map((e) => e.path).sort(), ['body/regions/0/epoch', 'body/regions/0/role']);
    const peers = { incarnation: 'i1', players: 0, regions: [], peers: [{ server_id: 's2', silent_for_ms: 1.5 }] };
    assert.equal(contract.validateRequestBody('sendHeartbeat', peers).ok, false);
  });

  test('simulate_failure takes exactly one target and a duration only where the mode needs one', () => {
    const two = errorsOf(contract.validateRequestBody('simulateFailure', { server_id: 's1', zone: 'a' }));
    assert.deepEqual(two, [{ path: 'body', message: 'must have exactly one of: server_id | region_id + role | zone | fraction' }]);
    assert.equal(contract.validateRequestBody('simulateFailure', {}).ok, false);
    assert.deepEqual(errorsOf(contract.validateRequestBody('simulateFailure', { region_id: 'r1', server_id: 's1' })),
      [{ path: 'body/role', message: 'is required when region_id is given' }]);
    assert.deepEqual(errorsOf(contract.validateRequestBody('simulateFailure', { server_id: 's1', mode: 'partition' })),
      [{ path: 'body/duration_ms', message: 'is required' }]);
    assert.ok(contract.validateRequestBody('simulateFailure', { server_id: 's1', duration_ms: 10 }).ok, 'a crash may end');
    assert.deepEqual(errorsOf(contract.validateRequestBody('simulateFailure', { server_id: 's1', delay_ms: 10 })),
      [{ path: 'body/delay_ms', message: 'is not allowed here' }]);
    assert.ok(contract.validateRequestBody('simulateFailure', { server_id: 's1', mode: 'slow', duration_ms: 10, delay_ms: 5 }).ok);
    assert.equal(contract.validateRequestBody('simulateFailure', { fraction: 0 }).ok, false);
    assert.equal(contract.validateRequestBody('simulateFailure', { fraction: 1 }).ok, true);
    assert.equal(contract.validateRequestBody('simulateFailure', { zone: 'a', mode: 'slow', duration_ms: 600_001 }).ok, false);
  });

  test('region ids follow the pattern; a patch needs at least one field', () => {
    assert.equal(contract.validateRequestBody('createRegion', { region_id: 'north/east' }).ok, false);
    assert.equal(contract.validateRequestBody('createRegion', { region_id: 'x'.repeat(65) }).ok, false);
    assert.deepEqual(contract.validateRequestBody('createRegion', {}), { ok: true, value: { critical: false, players: 0 } });
    assert.deepEqual(errorsOf(contract.validateRequestBody('updateRegion', {})), [{ path: 'body', message: 'must have at least 1 field(s)' }]);
  });

  test('actions accept any JSON payload but bound the player id', () => {
    for (const payload of [null, 1, 'x', [1, 2], { a: { b: [] } }]) {
      assert.ok(contract.validateRequestBody('submitAction', { player_id: 'p', seq: 0, payload }).ok);
    }
    assert.equal(contract.validateRequestBody('submitAction', { player_id: 'p', seq: 0 }).ok, false);
    assert.equal(contract.validateRequestBody('submitAction', { player_id: 'p'.repeat(129), seq: 0, payload: 1 }).ok, false);
    assert.equal(contract.validateRequestBody('submitAction', { player_id: 'p', seq: '1', payload: 1 }).ok, false, 'no coercion of bodies');
  });

  test('operations without a body accept only an empty one; an optional body may be absent', () => {
    assert.ok(contract.validateRequestBody('resetTestMesh', {}).ok);
    assert.ok(contract.validateRequestBody('resetTestMesh', undefined).ok);
    assert.deepEqual(errorsOf(contract.validateRequestBody('leaveServer', { now: true })),
      [{ path: 'body', message: 'must be empty: this operation takes no request body' }]);
    assert.deepEqual(contract.validateRequestBody('collectActions', undefined), { ok: true, value: { limit: 1000 } });
  });

  test('an unknown operation is a programming error', () => {
    assert.throws(() => contract.validateRequestBody('noSuchOperation', {}), /no operation 'noSuchOperation'/);
  });
});

describe('parameter validation', () => {
  test('coerces query integers and applies defaults', () => {
    const result = contract.validateParams('getRegionRoute', { path: { region_id: 'r1' }, query: { wait_ms: '250', known_epoch: '3', extra: 'ignored' } });
    assert.deepEqual(result, { ok: true, value: { path: { region_id: 'r1' }, query: { wait_ms: 250, known_epoch: 3 }, header: {} } });
    const defaults = contract.validateParams('getRegionRoute', { path: { region_id: 'r1' }, query: {} });
    assert.deepEqual(defaults, { ok: true, value: { path: { region_id: 'r1' }, query: { wait_ms: 0 }, header: {} } });
  });

  test('rejects out-of-range, non-numeric, repeated and badly shaped parameters', () => {
    assert.deepEqual(errorsOf(contract.validateParams('getRegionRoute', { path: { region_id: 'r1' }, query: { wait_ms: '30001' } })),
      [{ path: 'query/wait_ms', message: 'must be <= 30000' }]);
    assert.deepEqual(errorsOf(contract.validateParams('getRegionRoute', { path: { region_id: 'r1' }, query: { known_epoch: 'abc' } })),
      [{ path: 'query/known_epoch', message: 'must be integer' }]);
    assert.deepEqual(errorsOf(contract.validateParams('getRegionRoute', { path: { region_id: 'r1' }, query: { wait_ms: ['1', '2'] } })),
      [{ path: 'query/wait_ms', message: 'must be given once' }]);
    assert.equal(contract.validateParams('getRegionRoute', { path: { region_id: 'a b' } }).ok, false);
    assert.equal(contract.validateParams('listAlerts', { query: { state: 'closed' } }).ok, false);
  });

  test('reads declared headers case-insensitively', () => {
    const result = contract.validateParams('streamEvents', { headers: { 'last-event-id': '3f9c01a2b7d4.41' } });
    assert.deepEqual(result, { ok: true, value: { path: {}, query: {}, header: { 'Last-Event-ID': '3f9c01a2b7d4.41' } } });
    assert.equal(contract.validateParams('streamEvents', { headers: { 'last-event-id': 'a b' } }).ok, false);
  });

  test('operations without parameters accept anything', () => {
    assert.deepEqual(contract.validateParams('getMeshStatus', { query: { x: '1' } }), { ok: true, value: { path: {}, query: {}, header: {} } });
  });
});

describe('response validation', () => {
  test('rejects undocumented statuses, extra fields and camelCase leaks', () => {
    assert.equal(contract.validateResponse('getHealth', 500, {}).ok, false);
    assert.equal(contract.validateResponse('getHealth', 200, { status: 'ok', uptime: 1 }).ok, false);
    const route = { regionId: 'r1', epoch: 1, state: 'active', primary: null, backups: [] };
    assert.equal(contract.validateResponse('getRegionRoute', 200, route).ok, false);
  });

  test('accepts problem documents with extension members', () => {
    const problem = { type: 'about:blank', title: 'Not Found', status: 404, detail: 'No region.', instance: '/x', extra: 1 };
    assert.ok(contract.validateResponse('getRegionReplication', 404, problem).ok);
    assert.equal(contract.validateResponse('getRegionReplication', 404, { title: 'x' }).ok, false);
  });

  test('the healthy-region conflict must carry the primary and the epoch', () => {
    const problem = { type: 'about:blank', title: 'Conflict', status: 409, detail: 'healthy' };
    assert.equal(contract.validateResponse('submitAction', 409, problem).ok, false);
    const full = { ...problem, epoch: 2, primary: { server_id: 's1', address: '10.0.0.1:7777' } };
    assert.ok(contract.validateResponse('submitAction', 409, full).ok);
  });

  test('event data is checked against the branch its type names', () => {
    const event = { type: 'failover_completed', seq: 1, at: 5, region_id: 'r1', new_primary_id: 's2', epoch: 2, recovery_ms: 900 };
    assert.ok(contract.validateSchema('MeshEvent', event).ok);
    assert.deepEqual(errorsOf(contract.validateSchema('MeshEvent', { ...event, recovery_ms: undefined, extra: 1 })).map((e) => e.path).sort(),
      ['value/extra', 'value/recovery_ms']);
    assert.equal(errorsOf(contract.validateSchema('MeshEvent', { ...event, type: 'nope' }))[0]?.path, 'value/type');
  });
});
