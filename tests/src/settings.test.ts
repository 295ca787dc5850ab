import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { defaultMeshConfig, testMeshConfig, type MeshConfig } from '../../mesh/base/config.ts';
import { helpText, isLoopback, parseSettings, type Env, type Settings } from '../../src/settings.ts';

/** 64 hex characters, what `openssl rand -hex 32` prints. */
const STRONG_TOKEN = 'a3f1c0de'.repeat(8);

function settingsOf(argv: string[], env: Env = {}): Settings {
  const result = parseSettings(argv, env);
  assert.ok(result.ok, `expected valid settings, got ${JSON.stringify(result)}`);
  return result.settings;
}

function errorsOf(argv: string[], env: Env = {}): readonly string[] {
  const result = parseSettings(argv, env);
  assert.ok(!result.ok, `expected errors for ${JSON.stringify({ argv, env })}`);
  return result.errors;
}

describe('parseSettings', () => {
  it('refuses an admin token under 32 characters, on any host, and says how to make one', () => {
    for (const host of ['0.0.0.0', '127.0.0.1']) {
      const errors = errorsOf(['--host', host], { MESH_ADMIN_TOKEN: 'short' });
      assert.match(errors.join('\n'), /MESH_ADMIN_TOKEN is 5 characters; use at least 32.*openssl rand -hex 32/);
    }
    assert.equal(settingsOf(['--host', '0.0.0.0'], { MESH_ADMIN_TOKEN: 'x'.repeat(32) }).adminToken?.length, 32);
  });

  it('refuses malformed allow-lists and limits', () => {
    assert.match(errorsOf([], { MESH_ALLOWED_ORIGINS: 'evil.example/path' }).join('\n'), /MESH_ALLOWED_ORIGINS: expected comma-separated origins/);
    assert.match(errorsOf(['--allowed-hosts', 'a b'], {}).join('\n'), /--allowed-hosts: expected comma-separated host names/);
    assert.match(errorsOf(['--max-event-subscribers', '0'], {}).join('\n'), /at least 1/);
    assert.match(errorsOf(['--request-timeout-ms', '5s'], {}).join('\n'), /--request-timeout-ms: expected a whole number/);
  });

  it('MESH_PLAYER_TICKET_SECRET is read from the environment; listening beyond loopback without it warns', () => {
    const withSecret = parseSettings([], { MESH_PLAYER_TICKET_SECRET: 's3cret' });
    assert.ok(withSecret.ok);
    assert.equal(withSecret.settings.playerTicketSecret, 's3cret');
    assert.deepEqual(withSecret.warnings, []);
    const open = parseSettings(['--host', '0.0.0.0'], { MESH_ADMIN_TOKEN: 'x'.repeat(32) });
    assert.ok(open.ok);
    assert.ok(open.warnings.some((w) => /MESH_PLAYER_TICKET_SECRET/.test(w)), JSON.stringify(open.warnings));
    const closed = parseSettings(['--host', '0.0.0.0'], { MESH_ADMIN_TOKEN: 'x'.repeat(32), MESH_PLAYER_TICKET_SECRET: 's' });
    assert.ok(closed.ok);
    assert.deepEqual(closed.warnings, []);
  });

  it('has the documented defaults', () => {
    const settings = settingsOf([]);
    assert.deepEqual(
      { ...settings, mesh: undefined },
      {
        port: 8080, host: '127.0.0.1', dataDir: './data', store: 'lowdb', clock: 'system', adminToken: undefined,
        tickMs: 100, logLevel: 'info', mesh: undefined, help: false, testApi: true, alertWebhookUrls: [], alertWebhookSecret: undefined, playerTicketSecret: undefined,
        allowedHosts: [], allowedOrigins: [], maxEventSubscribers: 100, requestTimeoutMs: 10_000, logMaxBytes: 64 * 1024 * 1024, logMaxRecords: 100_000,
        leaderTtlSeconds: 2, advertiseUrl: undefined,
        etcd: {
          endpoints: [], prefix: '/mesh-coordinator', caFile: undefined, certFile: undefined, keyFile: undefined, user: undefined,
          password: undefined, requestTimeoutMs: 2000,
        },
      },
    );
    assert.deepEqual(settings.mesh, defaultMeshConfig);
    assert.ok(Object.isFrozen(settings) && Object.isFrozen(settings.mesh));
  });

  const cases: { name: string; argv: string[]; env: Env; expect: Partial<Settings> }[] = [
    { name: 'env sets values', argv: [], env: { MESH_PORT: '9000', MESH_HOST: 'localhost', MESH_STORE: 'memory', MESH_LOG_LEVEL: 'debug' },
      expect: { port: 9000, host: 'localhost', store: 'memory', logLevel: 'debug' } },
    { name: 'a flag beats env', argv: ['--port', '7000', '--data-dir=/var/mesh'], env: { MESH_PORT: '9000', MESH_DATA_DIR: '/tmp/x' },
      expect: { port: 7000, dataDir: '/var/mesh' } },
    { name: 'an empty variable counts as unset', argv: [], env: { MESH_PORT: '', MESH_ADMIN_TOKEN: '' }, expect: { port: 8080, adminToken: undefined } },
    { name: 'port 0 asks for a free port', argv: ['--port', '0'], env: {}, expect: { port: 0 } },
    { name: 'replica settings', argv: ['--leader-ttl', '5'], env: { MESH_ADVERTISE_URL: 'https://coordinator-2.example:8443/' },
      expect: { leaderTtlSeconds: 5, advertiseUrl: 'https://coordinator-2.example:8443' } },
    { name: 'the token comes from env and unlocks other hosts', argv: ['--host', '0.0.0.0'], env: { MESH_ADMIN_TOKEN: STRONG_TOKEN },
      expect: { host: '0.0.0.0', adminToken: STRONG_TOKEN } },
    { name: 'allow-lists and HTTP limits', argv: ['--allowed-hosts', 'mesh.example, 10.0.0.5', '--request-timeout-ms', '2500'],
      env: { MESH_ALLOWED_ORIGINS: 'https://ops.example,http://localhost:3000', MESH_MAX_EVENT_SUBSCRIBERS: '1000' },
      expect: { allowedHosts: ['mesh.example', '10.0.0.5'], allowedOrigins: ['https://ops.example', 'http://localhost:3000'], maxEventSubscribers: 1000, requestTimeoutMs: 2500 } },
    { name: '--tick-ms sets the ticker and the core', argv: ['--tick-ms', '50'], env: {}, expect: { tickMs: 50 } },
    { name: 'the last repeated flag wins', argv: ['--port', '1', '--port', '2'], env: {}, expect: { port: 2 } },
  ];
  for (const { name, argv, env, expect } of cases) {
    it(name, () => {
      const settings = settingsOf(argv, env);
      for (const [key, value] of Object.entries(expect)) assert.deepEqual(settings[key as keyof Settings], value, key);
    });
  }

  it('maps every numeric MeshConfig field to a flag and a variable', () => {
    const fields = (Object.keys(defaultMeshConfig) as (keyof MeshConfig)[]).filter((field) => typeof defaultMeshConfig[field] === 'number');
    for (const field of fields) {
      const kebab = field === 'tickIntervalMs' ? 'tick-ms' : field.replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`);
      const env = `MESH_${kebab.replace(/-/g, '_').toUpperCase()}`;
      // One and a half times a valid default keeps every cross-field rule of the defaults satisfied
      // (doubling no longer does: a heartbeat interval of 2 s would equal the default lease).
      const wanted = (defaultMeshConfig[field] as number) * 1.5;
      for (const result of [parseSettings([`--${kebab}`, String(wanted)], {}), parseSettings([], { [env]: String(wanted) })]) {
        assert.ok(result.ok, `${field}: ${JSON.stringify(result)}`);
        assert.equal(result.settings.mesh[field], wanted, field);
      }
    }
  });

  it('reads threshold triples as comma lists', () => {
    const settings = settingsOf(['--failure-count-thresholds', '2,4,8'], { MESH_FAILED_SERVER_SHARE_THRESHOLDS: '0.2, 0.4, 0.6' });
    assert.deepEqual(settings.mesh.failureCountThresholds, { LIGHT: 2, MODERATE: 4, SEVERE: 8 });
    assert.deepEqual(settings.mesh.failedServerShareThresholds, { LIGHT: 0.2, MODERATE: 0.4, SEVERE: 0.6 });
  });

  it('starts from testMeshConfig under the manual clock, and still applies overrides', () => {
    const settings = settingsOf([], { MESH_CLOCK: 'manual', MESH_FAILURE_TIMEOUT_MS: '4000' });
    assert.equal(settings.clock, 'manual');
    assert.deepEqual(settings.mesh, { ...testMeshConfig, failureTimeoutMs: 4000 });
    assert.notEqual(testMeshConfig.degradedCooldownMs, defaultMeshConfig.degradedCooldownMs, 'the test would prove nothing');
  });

  const bad: { name: string; argv: string[]; env: Env; match: RegExp }[] = [
    { name: 'a non-numeric port', argv: ['--port', 'http'], env: {}, match: /--port: expected a port number from 0 to 65535, got "http"/ },
    { name: 'a port out of range from env', argv: [], env: { MESH_PORT: '70000' }, match: /MESH_PORT: expected a port number/ },
    { name: 'a leader TTL below one second', argv: ['--leader-ttl', '0'], env: {}, match: /--leader-ttl: expected a whole number of at least 1, got "0"/ },
    { name: 'an advertised URL with a path', argv: [], env: { MESH_ADVERTISE_URL: 'http://c1.example:8080/mesh' }, match: /MESH_ADVERTISE_URL: expected an http\(s\) URL with no path/ },
    { name: 'hex is not a number', argv: ['--heartbeat-interval-ms', '0x10'], env: {}, match: /--heartbeat-interval-ms: expected a number, got "0x10"/ },
    { name: 'Infinity is not a number', argv: [], env: { MESH_FAILURE_TIMEOUT_MS: 'Infinity' }, match: /MESH_FAILURE_TIMEOUT_MS: expected a number/ },
    { name: 'a fractional integer field', argv: ['--tick-ms', '1.5'], env: {}, match: /tickIntervalMs must be a positive integer, got 1.5 \(set with --tick-ms or MESH_TICK_MS\)/ },
    { name: 'a negative field', argv: ['--failure-window-ms=-5'], env: {}, match: /failureWindowMs must be a positive integer/ },
    { name: 'a cross-field rule', argv: ['--failure-timeout-ms', '500'], env: {}, match: /failureTimeoutMs must exceed heartbeatIntervalMs/ },
    { name: 'a short threshold list', argv: ['--failure-count-thresholds', '3,6'], env: {}, match: /expected three comma-separated numbers/ },
    { name: 'unordered thresholds', argv: ['--failure-count-thresholds', '6,3,12'], env: {}, match: /failureCountThresholds must satisfy/ },
    { name: 'an unknown store', argv: ['--store', 'redis'], env: {}, match: /--store: expected one of lowdb\|memory\|etcd, got "redis"/ },
    { name: 'the etcd store without endpoints', argv: ['--store', 'etcd'], env: {}, match: /--store etcd needs --etcd-endpoints \(or MESH_ETCD_ENDPOINTS\)/ },
    { name: 'an etcd endpoint without a port', argv: ['--store', 'etcd', '--etcd-endpoints', 'http://10.0.0.1'], env: {}, match: /--etcd-endpoints: expected etcd client URLs such as http:\/\/10.0.0.1:2379.*"http:\/\/10.0.0.1"/ },
    { name: 'an etcd endpoint that is no URL', argv: ['--store', 'etcd'], env: { MESH_ETCD_ENDPOINTS: '10.0.0.1:2379' }, match: /MESH_ETCD_ENDPOINTS: expected etcd client URLs/ },
    { name: 'mixed etcd schemes', argv: ['--store', 'etcd', '--etcd-endpoints', 'http://a:2379,https://b:2379'], env: {}, match: /mixes http:\/\/ and https:\/\//i },
    { name: 'an etcd prefix with a trailing slash', argv: ['--store', 'etcd', '--etcd-endpoints', 'http://a:2379', '--etcd-prefix', '/mesh/'], env: {}, match: /--etcd-prefix: expected a key prefix/ },
    { name: 'etcd TLS files over http', argv: ['--store', 'etcd', '--etcd-endpoints', 'http://a:2379', '--etcd-ca-file', 'ca.pem'], env: {}, match: /use https:\/\/ endpoints for TLS/ },
    { name: 'an etcd client certificate without its key', argv: ['--store', 'etcd', '--etcd-endpoints', 'https://a:2379', '--etcd-cert-file', 'c.pem'], env: {}, match: /--etcd-cert-file and --etcd-key-file go together/ },
    { name: 'an etcd user without a password', argv: ['--store', 'etcd', '--etcd-endpoints', 'http://a:2379', '--etcd-user', 'mesh'], env: {}, match: /MESH_ETCD_PASSWORD is not/ },
    { name: 'an etcd password without a user', argv: ['--store', 'etcd', '--etcd-endpoints', 'http://a:2379'], env: { MESH_ETCD_PASSWORD: 'pw' }, match: /--etcd-user is not/ },
    { name: 'the etcd password as a flag', argv: ['--etcd-password', 'pw'], env: {}, match: /MESH_ETCD_PASSWORD is read from the environment only/ },
    { name: 'a too short etcd request timeout', argv: ['--store', 'etcd', '--etcd-endpoints', 'http://a:2379', '--etcd-request-timeout-ms', '10'], env: {}, match: /--etcd-request-timeout-ms: expected a whole number of milliseconds of at least 100/ },
    { name: 'an unknown clock', argv: [], env: { MESH_CLOCK: 'virtual' }, match: /MESH_CLOCK: expected one of system\|manual/ },
    { name: 'an unknown log level', argv: ['--log-level', 'trace'], env: {}, match: /expected one of debug\|info\|warn\|error/ },
    { name: 'an empty host', argv: ['--host', ''], env: {}, match: /--host: expected a non-empty value/ },
    { name: 'an unknown flag', argv: ['--prot', '80'], env: {}, match: /unknown flag --prot/ },
    { name: 'a positional argument', argv: ['serve'], env: {}, match: /Unexpected argument 'serve'/ },
    { name: 'a flag without its value', argv: ['--port'], env: {}, match: /--port <value>' argument missing/ },
    { name: 'the token as a flag', argv: ['--admin-token', 'x'], env: {}, match: /environment only/ },
  ];
  for (const { name, argv, env, match } of bad) {
    it(`rejects ${name}`, () => {
      const errors = errorsOf(argv, env);
      assert.ok(errors.some((error) => match.test(error)), errors.join('\n'));
    });
  }

  it('reads the etcd settings as etcdctl users expect them', () => {
    const result = parseSettings(
      ['--store', 'etcd', '--etcd-endpoints', 'https://10.0.0.1:2379, https://10.0.0.2:2379/', '--etcd-prefix', '/games/eu',
        '--etcd-ca-file', '/etc/mesh/ca.pem', '--etcd-cert-file', '/etc/mesh/client.pem', '--etcd-key-file', '/etc/mesh/client-key.pem'],
      { MESH_ETCD_USER: 'mesh', MESH_ETCD_PASSWORD: 'pw', MESH_ETCD_REQUEST_TIMEOUT_MS: '1500' },
    );
    assert.ok(result.ok, JSON.stringify(result));
    assert.deepEqual(result.warnings, []);
    assert.equal(result.settings.store, 'etcd');
    assert.deepEqual(result.settings.etcd, {
      endpoints: ['https://10.0.0.1:2379', 'https://10.0.0.2:2379'], prefix: '/games/eu', caFile: '/etc/mesh/ca.pem',
      certFile: '/etc/mesh/client.pem', keyFile: '/etc/mesh/client-key.pem', user: 'mesh', password: 'pw', requestTimeoutMs: 1500,
    });
    const env = parseSettings([], { MESH_STORE: 'etcd', MESH_ETCD_ENDPOINTS: 'http://127.0.0.1:2379' });
    assert.ok(env.ok);
    assert.deepEqual(env.settings.etcd.endpoints, ['http://127.0.0.1:2379']);
  });

  it('warns that etcd settings without --store etcd have no effect', () => {
    const result = parseSettings(['--etcd-endpoints', 'http://127.0.0.1:2379'], {});
    assert.ok(result.ok);
    assert.ok(result.warnings.some((w) => /ignoring --etcd-endpoints: they apply only with --store etcd/.test(w)), JSON.stringify(result.warnings));
  });

  it('reports every bad value at once', () => {
    const errors = errorsOf(['--port', 'x', '--store', 'y'], { MESH_LOG_LEVEL: 'z' });
    assert.equal(errors.length, 3, errors.join('\n'));
  });

  it('refuses a non-loopback host without a token (protected mode)', () => {
    assert.deepEqual(errorsOf(['--host', '0.0.0.0']), [
      'refusing to bind 0.0.0.0 without MESH_ADMIN_TOKEN: set a token or bind to 127.0.0.1',
    ]);
    assert.match(errorsOf([], { MESH_HOST: '10.0.0.5' })[0] ?? '', /refusing to bind 10.0.0.5/);
    assert.match(errorsOf(['--host', '::'])[0] ?? '', /refusing to bind ::/);
  });

  it('reads --test-api and the alert webhooks; a webhook URL needs the secret and must be http(s)', () => {
    assert.equal(settingsOf(['--test-api', 'off']).testApi, false);
    assert.equal(settingsOf([], { MESH_TEST_API: 'off' }).testApi, false);
    assert.match(errorsOf(['--test-api', 'no']).join('\n'), /--test-api: expected one of on\|off/);
    const hooks = settingsOf(['--alert-webhook-urls', 'http://127.0.0.1:9/a, https://hooks.example/b'], { MESH_ALERT_WEBHOOK_SECRET: 's3cret' });
    assert.deepEqual(hooks.alertWebhookUrls, ['http://127.0.0.1:9/a', 'https://hooks.example/b']);
    assert.equal(hooks.alertWebhookSecret, 's3cret');
    assert.match(errorsOf([], { MESH_ALERT_WEBHOOK_URLS: 'http://127.0.0.1:9/a' }).join('\n'), /MESH_ALERT_WEBHOOK_SECRET is not/);
    assert.match(errorsOf(['--alert-webhook-urls', 'ftp://x/y'], { MESH_ALERT_WEBHOOK_SECRET: 's' }).join('\n'), /http\(s\) URLs/);
    const quiet = parseSettings([], { MESH_ALERT_WEBHOOK_SECRET: 's' });
    assert.ok(quiet.ok && quiet.warnings.length === 0, 'the secret is a known variable');
  });

  it('knows which hosts are loopback', () => {
    for (const host of ['127.0.0.1', '127.1.2.3', 'localhost', '::1', '[::1]', '::ffff:127.0.0.1']) assert.ok(isLoopback(host), host);
    for (const host of ['0.0.0.0', '::', '10.0.0.1', 'example.com', '128.0.0.1', '::ffff:10.0.0.1']) assert.ok(!isLoopback(host), host);
  });

  it('warns about unknown MESH_* variables instead of ignoring typos silently', () => {
    const result = parseSettings([], { MESH_PROT: '1', HOME: '/root' });
    assert.ok(result.ok);
    assert.deepEqual(result.warnings, ['ignoring unknown environment variable MESH_PROT (run with --help to list every setting)']);
  });

  it('--help short-circuits with defaults', () => {
    for (const argv of [['--help'], ['-h'], ['--port', 'nonsense', '--help']]) {
      const result = parseSettings(argv, { MESH_PORT: 'also nonsense' });
      assert.ok(result.ok && result.settings.help, JSON.stringify(argv));
    }
  });
});

describe('helpText', () => {
  const help = helpText();

  it('mentions every MeshConfig field with its default', () => {
    for (const [field, value] of Object.entries(defaultMeshConfig)) {
      assert.ok(help.includes(`${field}:`), `help lacks ${field}`);
      const shown = typeof value === 'number' ? String(value) : `${value.LIGHT},${value.MODERATE},${value.SEVERE}`;
      assert.ok(help.includes(`default: ${shown}`), `help lacks the default of ${field}`);
    }
  });

  it('lists every service setting with flag, variable and default', () => {
    for (const [flag, env, fallback] of [
      ['--port', 'MESH_PORT', '8080'], ['--host', 'MESH_HOST', '127.0.0.1'], ['--data-dir', 'MESH_DATA_DIR', './data'],
      ['--store', 'MESH_STORE', 'lowdb'], ['--clock', 'MESH_CLOCK', 'system'], ['--tick-ms', 'MESH_TICK_MS', '100'],
      ['--log-level', 'MESH_LOG_LEVEL', 'info'],
    ] as const) {
      assert.match(help, new RegExp(`${flag} <[^>]+>  ${env}  default: ${fallback.replace(/\./g, '\\.')}`), flag);
    }
    assert.match(help, /MESH_ADMIN_TOKEN/);
    assert.match(help, /--store <lowdb\|memory\|etcd>/);
    assert.match(help, /--etcd-endpoints <url,url>  MESH_ETCD_ENDPOINTS/);
    assert.match(help, /MESH_ETCD_PASSWORD/);
    assert.doesNotMatch(help, /--etcd-password/);
    assert.doesNotMatch(help, /--admin-token/);
  });
});
