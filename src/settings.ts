/**
 * Start-up settings from command-line flags and environment variables: flags beat the environment,
 * which beats the defaults. Parsing is pure (argv and env in, settings or every problem out) so that
 * `main` decides what to do with errors and tests need no process. Every numeric field of the core's
 * `MeshConfig` is a setting, with flag and variable names derived from the field name.
 */
import { isIP } from 'node:net';
import { parseArgs } from 'node:util';
import {
  defaultMeshConfig, testMeshConfig, validateMeshConfig, type LevelThresholds, type MeshConfig,
} from '../mesh/base/config.ts';
import { logLevels, type LogLevel } from './logger.ts';
import { etcdSettings, etcdSpecs, type EtcdSettings } from './etcd-settings.ts';

/** Which store keeps the durable state. */
export type StoreKind = 'lowdb' | 'memory' | 'etcd';

/** Which clock drives the core. */
export type ClockKind = 'system' | 'manual';

/** Everything the composition root needs to start the service. */
export interface Settings {
  /** TCP port; 0 asks the OS for a free one. */
  readonly port: number;
  /** Address to bind. */
  readonly host: string;
  /** Directory of the data file (as given; relative paths are relative to the working directory). */
  readonly dataDir: string;
  /** Store implementation. */
  readonly store: StoreKind;
  /** How to reach etcd (used with `store: 'etcd'`). */
  readonly etcd: EtcdSettings;
  /** Change-log size at which the file store writes a new snapshot, in bytes. */
  readonly logMaxBytes: number;
  /** Change-log records at which the file store writes a new snapshot. */
  readonly logMaxRecords: number;
  /** System clock with a ticker, or a manual clock advanced over HTTP. */
  readonly clock: ClockKind;
  /** Bearer token for admin operations; `undefined` means protected mode (loopback only). */
  readonly adminToken: string | undefined;
  /** Ticker period; always equal to `mesh.tickIntervalMs`, which is where the core reads it. */
  readonly tickMs: number;
  /** Minimum level of log records. */
  readonly logLevel: LogLevel;
  /** Host names requests may be addressed to besides loopback names (and `host`, unless a wildcard). */
  readonly allowedHosts: readonly string[];
  /** Origins (`scheme://host[:port]`) whose web pages may change state, with CORS. */
  readonly allowedOrigins: readonly string[];
  /** Most clients of `GET /mesh/events` at once. */
  readonly maxEventSubscribers: number;
  /** Longest time for a request's headers, and then for its body, to arrive. */
  readonly requestTimeoutMs: number;
  /** The core's configuration, validated. */
  readonly mesh: MeshConfig;
  /** Whether setup_test, reset, simulate_failure and advance_time are served (default true). */
  readonly testApi: boolean;
  /** URLs that receive every alert raise and resolve (empty: none). */
  readonly alertWebhookUrls: readonly string[];
  /** HMAC key of the alert webhooks; required when there is a URL. */
  readonly alertWebhookSecret: string | undefined;
  /** HMAC key of player tickets; when set, submitting an action needs a ticket for that player. */
  readonly playerTicketSecret: string | undefined;
  /**
   * TTL of the leader lease in etcd, in whole seconds (etcd's unit), when coordinators run as
   * replicas: a crashed leader is replaced after about this long. Keep it above etcd's own election
   * timeout so that an etcd leader change does not depose the coordinator (FAULT_TOLERANCE_DEPLOYMENT.md).
   */
  readonly leaderTtlSeconds: number;
  /** The URL clients reach this coordinator at, named in redirects from its followers; default from host and port. */
  readonly advertiseUrl: string | undefined;
  /** `--help` was given: print {@link helpText} and exit; the other fields are then defaults. */
  readonly help: boolean;
}

/** Result of {@link parseSettings}: the settings (with non-fatal warnings) or every problem found. */
export type SettingsResult =
  | { readonly ok: true; readonly settings: Settings; readonly warnings: readonly string[] }
  | { readonly ok: false; readonly errors: readonly string[] };

/** The environment as `process.env` has it. */
export type Env = Readonly<Record<string, string | undefined>>;

/** A service setting as `--help` shows it. */
interface ServiceSpec {
  readonly flag: string | undefined;
  readonly env: string;
  readonly arg: string;
  readonly fallback: string;
  readonly describe: string;
}

const serviceSpecs: readonly ServiceSpec[] = [
  { flag: 'port', env: 'MESH_PORT', arg: 'port', fallback: '8080', describe: 'TCP port to listen on; 0 picks a free one.' },
  { flag: 'host', env: 'MESH_HOST', arg: 'address', fallback: '127.0.0.1', describe: 'Address to bind; anything but loopback needs MESH_ADMIN_TOKEN.' },
  { flag: 'data-dir', env: 'MESH_DATA_DIR', arg: 'path', fallback: './data', describe: 'Directory of the snapshot mesh.json and the change logs mesh.<n>.log (created if missing).' },
  { flag: 'log-max-bytes', env: 'MESH_LOG_MAX_BYTES', arg: 'bytes', fallback: '67108864', describe: 'Change-log size at which a new snapshot is written in the background and the log restarted.' },
  { flag: 'log-max-records', env: 'MESH_LOG_MAX_RECORDS', arg: 'number', fallback: '100000', describe: 'Change-log records at which a new snapshot is written (bounds the replay at start-up).' },
  { flag: 'store', env: 'MESH_STORE', arg: 'lowdb|memory|etcd', fallback: 'lowdb', describe: 'Where durable state goes: lowdb files in --data-dir, etcd (shared by several coordinators), or memory (lost on exit).' },
  ...etcdSpecs,
  { flag: 'clock', env: 'MESH_CLOCK', arg: 'system|manual', fallback: 'system', describe: 'manual: virtual time advanced by POST /mesh/test/advance_time.' },
  { flag: undefined, env: 'MESH_ADMIN_TOKEN', arg: '', fallback: '(unset: protected mode)', describe: 'Bearer token for admin operations; never a flag, so it stays out of `ps`.' },
  { flag: 'allowed-hosts', env: 'MESH_ALLOWED_HOSTS', arg: 'name,...', fallback: '(none)', describe: 'Host header names accepted besides loopback names and the bound address (--host); needed behind a DNS name. With a wildcard bind and none given, any Host is accepted.' },
  { flag: 'allowed-origins', env: 'MESH_ALLOWED_ORIGINS', arg: 'origin,...', fallback: '(none)', describe: 'Web origins (https://ops.example) whose pages may change state and get CORS answers.' },
  { flag: 'max-event-subscribers', env: 'MESH_MAX_EVENT_SUBSCRIBERS', arg: 'number', fallback: '100', describe: 'Most clients of GET /mesh/events at once; one more gets 429.' },
  { flag: 'request-timeout-ms', env: 'MESH_REQUEST_TIMEOUT_MS', arg: 'ms', fallback: '10000', describe: 'Longest time for the request headers, and then the body, to arrive (408 after it).' },
  { flag: 'log-level', env: 'MESH_LOG_LEVEL', arg: 'debug|info|warn|error', fallback: 'info', describe: 'Minimum level of the log lines on stdout (JSON; pretty on a terminal).' },
  { flag: 'test-api', env: 'MESH_TEST_API', arg: 'on|off', fallback: 'on', describe: 'off removes setup_test, reset, simulate_failure and advance_time (they answer 404).' },
  { flag: 'alert-webhook-urls', env: 'MESH_ALERT_WEBHOOK_URLS', arg: 'url,url', fallback: '(none)', describe: 'Comma-separated http(s) URLs that receive every alert raise and resolve, signed.' },
  { flag: undefined, env: 'MESH_ALERT_WEBHOOK_SECRET', arg: '', fallback: '(unset)', describe: 'HMAC-SHA256 key of the alert webhooks; needed with a URL; never a flag.' },
  { flag: 'leader-ttl', env: 'MESH_LEADER_TTL', arg: 'seconds', fallback: '2', describe: 'Replicas on etcd: TTL of the leader lease; a crashed leader is replaced after about this long. Keep it above etcd\'s election timeout.' },
  { flag: 'advertise-url', env: 'MESH_ADVERTISE_URL', arg: 'url', fallback: '(http://<host>:<port>)', describe: 'Replicas on etcd: the URL clients reach this coordinator at; followers redirect to the leader\'s.' },
  { flag: undefined, env: 'MESH_PLAYER_TICKET_SECRET', arg: '', fallback: '(unset: actions open)', describe: 'HMAC-SHA256 key of player tickets; set, every action needs X-Player-Ticket; never a flag.' },
];

/**
 * One line per `MeshConfig` field, shortened from its TSDoc in mesh/base/config.ts. Typed as a record of
 * every key so that a new field fails to compile until it is described (and so becomes a setting).
 */
const meshDescriptions: Readonly<Record<keyof MeshConfig, string>> = {
  heartbeatIntervalMs: 'How often every server sends a heartbeat; phi-accrual expects this interval.',
  expeditedHeartbeatIntervalMs: 'Heartbeat interval asked of a server while a failover waits on it (promotion, confirmation).',
  expeditedHeartbeatBudget: 'Most heartbeats/s asked beyond the regular interval, all servers together; past it the expedited interval stretches.',
  tickIntervalMs: 'Ticker period: how late a decision can be taken after its evidence.',
  phiSuspectThreshold: 'Phi at which a silent server becomes suspect; failure still needs peer confirmation or the timeout.',
  phiWindowSize: 'Heartbeat inter-arrival intervals phi-accrual keeps per server.',
  phiMinStdDeviationMs: 'Floor of the inter-arrival deviation, so regular heartbeats do not explode phi.',
  phiAcceptablePauseMs: 'Extra pause tolerated before phi starts to climb (GC, scheduling).',
  peerSilenceMs: 'Silence after which a replication peer reports a server silent.',
  sessionPeerSilenceMs: 'Peer silence since before a session closed (no leave) that confirms the crash it suggests.',
  sessionLeaseMs: 'Primary lease every heartbeat reply and renewal over a session grants; pushes grant none (at most the primary lease).',
  sessionLeaseRenewalIntervalMs: 'How often a primary with a session renews its lease (renew_in_ms).',
  failureTimeoutMs: 'Longest silence before failure is declared without peer evidence (at the last tick before it).',
  tiltThresholdMs: 'Tick gap that means the coordinator itself stalled (enters TILT).',
  tiltRecoveryMs: 'How long TILT lasts after a stall: no failures are declared meanwhile.',
  clockStepThresholdMs: 'Wall-clock step (against the monotonic clock, between two ticks) that enters TILT.',
  primaryLeaseMs: 'Lease a heartbeat reply grants a primary, counted from when it sent the heartbeat; no promotion before it ends.',
  leaseDriftMarginMs: 'Added to a heartbeat lease before the coordinator counts it over (clock drift between server and coordinator); a session lease gets the same share of its length.',
  backupsPerRegion: 'Backups every region should have.',
  promotionAckTimeoutMs: 'Time a promoted backup has to acknowledge before the next candidate is tried.',
  backupSyncTimeoutMs: 'Time a new backup has to confirm it holds the region before it is replaced.',
  maxTransitionsPerServer: 'Most promotions and backup syncs one server takes at once.',
  maxBackupAssignmentsPerTick: 'Most replacement backups assigned per tick, mesh-wide, less the promotions of that tick (promotions come first and are never held back).',
  serverFailureAlertsPerTick: 'Most servers declared failed in one tick that get an alert each; above it, one mass-server-failure alert.',
  maxRebalanceMoves: 'Most planned primary moves (rebalancing after a heal) in flight at once; 0 turns rebalancing off.',
  failureWindowMs: 'Sliding window over which failures count towards degraded mode.',
  failureCountThresholds: 'Failures within the window that raise LIGHT,MODERATE,SEVERE.',
  failedServerShareThresholds: 'Share of servers failed that raises LIGHT,MODERATE,SEVERE.',
  impairedRegionShareThresholds: 'Share of regions impaired that raises LIGHT,MODERATE,SEVERE.',
  degradedCooldownMs: 'Time below a level before stepping down one level (hysteresis).',
  actionBufferMaxPerPlayer: 'Most buffered actions per player while a region has no primary.',
  actionBufferMaxAgeMs: 'Age after which a buffered action is reported expired, not replayed.',
  snapshotMaxBytes: 'Largest player snapshot kept, in bytes of JSON.',
  snapshotsMaxPerRegion: 'Most player snapshots kept per region.',
  failoverHistoryLimit: 'Most finished failovers kept in history.',
  resolvedAlertsLimit: 'Most resolved alerts kept; open alerts are never dropped.',
};

/** A `MeshConfig` field as a setting. */
interface MeshSpec {
  readonly field: keyof MeshConfig;
  readonly flag: string;
  readonly env: string;
  readonly arg: string;
  readonly thresholds: boolean;
}

/** `tickIntervalMs` keeps the short name the issue gives it; every other name is derived. */
const renamed: Partial<Record<keyof MeshConfig, string>> = { tickIntervalMs: 'tick-ms' };

const meshSpecs: readonly MeshSpec[] = (Object.keys(meshDescriptions) as (keyof MeshConfig)[]).map((field) => {
  const flag = renamed[field] ?? field.replace(/[A-Z]/g, (letter) => `-${letter.toLowerCase()}`);
  const thresholds = typeof defaultMeshConfig[field] === 'object';
  const arg = thresholds ? 'light,moderate,severe' : field.endsWith('Ms') ? 'ms' : 'number';
  return { field, flag, env: `MESH_${flag.replace(/-/g, '_').toUpperCase()}`, arg, thresholds };
});

function meshFieldHelp(spec: MeshSpec): string {
  return `${spec.field}: ${meshDescriptions[spec.field]}`;
}

/** A raw value and where it came from, so that an error can name the flag or variable to fix. */
interface Raw {
  readonly text: string;
  readonly source: string;
}

type Lookup = (flag: string | undefined, env: string) => Raw | undefined;

/**
 * Parses flags and environment into settings. Pure: reads nothing but its arguments.
 * @param argv the arguments after the script name (`process.argv.slice(2)`).
 * @param env the environment (`process.env`); empty variables count as unset.
 */
export function parseSettings(argv: readonly string[], env: Env): SettingsResult {
  const flags = parseFlags(argv);
  if ('error' in flags) return { ok: false, errors: [flags.error] };
  if (flags.values.help === true) return { ok: true, settings: defaultSettings(true), warnings: [] };
  const lookup: Lookup = (flag, name) => {
    const fromFlag = flag === undefined ? undefined : flags.values[flag];
    if (typeof fromFlag === 'string') return { text: fromFlag, source: `--${flag}` };
    const fromEnv = env[name];
    return fromEnv === undefined || fromEnv === '' ? undefined : { text: fromEnv, source: name };
  };
  const errors: string[] = [];
  const etcdWarnings: string[] = [];
  const settings = buildSettings(lookup, errors, etcdWarnings);
  errors.push(...validateMeshConfig(settings.mesh).map(explainMeshError), ...protectedMode(settings), ...webhookSecret(settings));
  if (errors.length > 0) return { ok: false, errors };
  return { ok: true, settings, warnings: [...unknownVariables(env), ...openActions(settings), ...etcdWarnings] };
}

/** The settings with nothing set; `help` as given. */
function defaultSettings(help: boolean): Settings {
  const result = buildSettings(() => undefined, [], []);
  return Object.freeze({ ...result, help });
}

function buildSettings(lookup: Lookup, errors: string[], warnings: string[]): Settings {
  const clock = oneOf(lookup('clock', 'MESH_CLOCK'), ['system', 'manual'] as const, 'system', errors);
  const store = oneOf(lookup('store', 'MESH_STORE'), ['lowdb', 'memory', 'etcd'] as const, 'lowdb', errors);
  const mesh = meshConfig(clock === 'manual' ? testMeshConfig : defaultMeshConfig, lookup, errors);
  return Object.freeze({
    port: port(lookup('port', 'MESH_PORT'), errors),
    host: text(lookup('host', 'MESH_HOST'), '127.0.0.1', errors),
    dataDir: text(lookup('data-dir', 'MESH_DATA_DIR'), './data', errors),
    store,
    etcd: etcdSettings(lookup, store === 'etcd', errors, warnings),
    logMaxBytes: whole(lookup('log-max-bytes', 'MESH_LOG_MAX_BYTES'), 64 * 1024 * 1024, 1024, errors),
    logMaxRecords: whole(lookup('log-max-records', 'MESH_LOG_MAX_RECORDS'), 100_000, 10, errors),
    clock,
    adminToken: lookup(undefined, 'MESH_ADMIN_TOKEN')?.text,
    tickMs: mesh.tickIntervalMs,
    logLevel: oneOf(lookup('log-level', 'MESH_LOG_LEVEL'), logLevels, 'info', errors),
    allowedHosts: list(lookup('allowed-hosts', 'MESH_ALLOWED_HOSTS'), /^[A-Za-z0-9.:[\]-]+$/, 'host names', errors),
    allowedOrigins: list(lookup('allowed-origins', 'MESH_ALLOWED_ORIGINS'), /^https?:\/\/[^/\s]+$/, 'origins such as https://ops.example', errors),
    maxEventSubscribers: whole(lookup('max-event-subscribers', 'MESH_MAX_EVENT_SUBSCRIBERS'), 100, 1, errors),
    requestTimeoutMs: whole(lookup('request-timeout-ms', 'MESH_REQUEST_TIMEOUT_MS'), 10_000, 100, errors),
    mesh,
    testApi: oneOf(lookup('test-api', 'MESH_TEST_API'), ['on', 'off'] as const, 'on', errors) === 'on',
    alertWebhookUrls: webhookUrls(lookup('alert-webhook-urls', 'MESH_ALERT_WEBHOOK_URLS'), errors),
    alertWebhookSecret: lookup(undefined, 'MESH_ALERT_WEBHOOK_SECRET')?.text,
    playerTicketSecret: lookup(undefined, 'MESH_PLAYER_TICKET_SECRET')?.text,
    leaderTtlSeconds: whole(lookup('leader-ttl', 'MESH_LEADER_TTL'), 2, 1, errors),
    advertiseUrl: advertiseUrl(lookup('advertise-url', 'MESH_ADVERTISE_URL'), errors),
    help: false,
  });
}

function meshConfig(base: MeshConfig, lookup: Lookup, errors: string[]): MeshConfig {
  const config: Record<string, unknown> = { ...base };
  for (const spec of meshSpecs) {
    const raw = lookup(spec.flag, spec.env);
    if (raw === undefined) continue;
    const value = spec.thresholds ? thresholds(raw, errors) : decimal(raw, errors);
    if (value !== undefined) config[spec.field] = value;
  }
  return Object.freeze(config) as unknown as MeshConfig;
}

const flagOptions = Object.freeze({
  help: { type: 'boolean', short: 'h' },
  ...Object.fromEntries([...serviceSpecs, ...meshSpecs].flatMap((spec) => (spec.flag ? [[spec.flag, { type: 'string' }]] : []))),
} as const);

function parseFlags(argv: readonly string[]): { values: Record<string, string | boolean | undefined> } | { error: string } {
  try {
    const { values } = parseArgs({ args: [...argv], options: flagOptions, strict: true, allowPositionals: false });
    return { values: values as Record<string, string | boolean | undefined> };
  } catch (error) {
    return { error: explainFlagError(error) };
  }
}

function explainFlagError(error: unknown): string {
  const message = error instanceof Error ? error.message : String(error);
  const code = typeof error === 'object' && error !== null && 'code' in error ? error.code : undefined;
  if (code === 'ERR_PARSE_ARGS_UNKNOWN_OPTION') {
    const flag = /'([^']+)'/.exec(message)?.[1] ?? message;
    if (/^--admin-token(=|$)/.test(flag)) {
      return 'MESH_ADMIN_TOKEN is read from the environment only: a flag would show the token in `ps`';
    }
    if (/^--etcd-password(=|$)/.test(flag)) {
      return 'MESH_ETCD_PASSWORD is read from the environment only: a flag would show the password in `ps`';
    }
    return `unknown flag ${flag} (run with --help to list every setting)`;
  }
  // Node's own messages are right but span several lines; the first one says what is wrong.
  return message.split('\n')[0] ?? message;
}

function port(raw: Raw | undefined, errors: string[]): number {
  if (raw === undefined) return 8080;
  const value = /^\d{1,5}$/.test(raw.text) ? Number(raw.text) : NaN;
  if (value >= 0 && value <= 65535) return value;
  errors.push(`${raw.source}: expected a port number from 0 to 65535, got ${JSON.stringify(raw.text)}`);
  return 8080;
}

function text(raw: Raw | undefined, fallback: string, errors: string[]): string {
  if (raw === undefined) return fallback;
  if (raw.text.trim() !== '') return raw.text;
  errors.push(`${raw.source}: expected a non-empty value`);
  return fallback;
}

/** A comma-separated list; every item must match `pattern`. */
function list(raw: Raw | undefined, pattern: RegExp, what: string, errors: string[]): readonly string[] {
  if (raw === undefined) return Object.freeze([]);
  const items = raw.text.split(',').map((item) => item.trim()).filter((item) => item !== '');
  const bad = items.filter((item) => !pattern.test(item));
  if (bad.length > 0) errors.push(`${raw.source}: expected comma-separated ${what}, got ${bad.map((b) => JSON.stringify(b)).join(', ')}`);
  return Object.freeze(items);
}

/** A whole number of at least `min`. */
function whole(raw: Raw | undefined, fallback: number, min: number, errors: string[]): number {
  if (raw === undefined) return fallback;
  const value = /^\d{1,9}$/.test(raw.text.trim()) ? Number(raw.text) : NaN;
  if (value >= min) return value;
  errors.push(`${raw.source}: expected a whole number of at least ${min}, got ${JSON.stringify(raw.text)}`);
  return fallback;
}

function oneOf<C extends string>(raw: Raw | undefined, choices: readonly C[], fallback: C, errors: string[]): C {
  if (raw === undefined) return fallback;
  if ((choices as readonly string[]).includes(raw.text)) return raw.text as C;
  errors.push(`${raw.source}: expected one of ${choices.join('|')}, got ${JSON.stringify(raw.text)}`);
  return fallback;
}

function webhookUrls(raw: Raw | undefined, errors: string[]): readonly string[] {
  if (raw === undefined) return Object.freeze([]);
  const urls = raw.text.split(',').map((part) => part.trim()).filter((part) => part !== '');
  for (const url of urls) {
    if (!URL.canParse(url) || !['http:', 'https:'].includes(new URL(url).protocol)) {
      errors.push(`${raw.source}: expected comma-separated http(s) URLs, got ${JSON.stringify(url)}`);
    }
  }
  return Object.freeze(urls);
}

/** The URL a replica names itself by: http(s), no path beyond `/`, since paths are appended to it. */
function advertiseUrl(raw: Raw | undefined, errors: string[]): string | undefined {
  if (raw === undefined) return undefined;
  const url = URL.canParse(raw.text) ? new URL(raw.text) : undefined;
  if (url && ['http:', 'https:'].includes(url.protocol) && url.pathname === '/' && url.search === '' && url.hash === '') return url.origin;
  errors.push(`${raw.source}: expected an http(s) URL with no path, such as http://coordinator-1.example:8080, got ${JSON.stringify(raw.text)}`);
  return undefined;
}

/** Unsigned notifications could be forged by anyone who can reach the receiver. */
function webhookSecret(settings: Settings): string[] {
  if (settings.alertWebhookUrls.length === 0 || (settings.alertWebhookSecret ?? '') !== '') return [];
  return ['MESH_ALERT_WEBHOOK_URLS is set but MESH_ALERT_WEBHOOK_SECRET is not: set the HMAC key the receivers verify'];
}

/** Plain decimal notation only: `Number` would also accept '', ' ', '0x1f' and 'Infinity'. */
const decimalPattern = /^[+-]?(\d+(\.\d*)?|\.\d+)([eE][+-]?\d+)?$/;

function decimal(raw: Raw, errors: string[]): number | undefined {
  const value = decimalPattern.test(raw.text.trim()) ? Number(raw.text) : NaN;
  if (Number.isFinite(value)) return value;
  errors.push(`${raw.source}: expected a number, got ${JSON.stringify(raw.text)}`);
  return undefined;
}

function thresholds(raw: Raw, errors: string[]): LevelThresholds | undefined {
  const parts = raw.text.split(',').map((part) => part.trim());
  const values = parts.map(Number);
  if (parts.length === 3 && parts.every((part) => decimalPattern.test(part)) && values.every(Number.isFinite)) {
    const [LIGHT, MODERATE, SEVERE] = values as [number, number, number];
    return Object.freeze({ LIGHT, MODERATE, SEVERE });
  }
  errors.push(`${raw.source}: expected three comma-separated numbers LIGHT,MODERATE,SEVERE (e.g. 3,6,12), got ${JSON.stringify(raw.text)}`);
  return undefined;
}

/** Adds the flag and variable to a `validateMeshConfig` message, which names only the field. */
function explainMeshError(message: string): string {
  const spec = meshSpecs.find((candidate) => message.startsWith(`${candidate.field} `));
  return spec ? `${message} (set with --${spec.flag} or ${spec.env})` : message;
}

/**
 * Redis's protected mode: without a token, admin operations are open to whoever can connect, so the
 * service may only listen where nobody but local users can connect.
 */
function protectedMode(settings: Settings): string[] {
  const token = settings.adminToken;
  if (token !== undefined && token.length < MIN_ADMIN_TOKEN_LENGTH) {
    return [`MESH_ADMIN_TOKEN is ${token.length} characters; use at least ${MIN_ADMIN_TOKEN_LENGTH}, for example the output of \`openssl rand -hex 32\``];
  }
  if (token !== undefined || isLoopback(settings.host)) return [];
  return [`refusing to bind ${settings.host} without MESH_ADMIN_TOKEN: set a token or bind to 127.0.0.1`];
}

/** Shortest admin token accepted: a guessable token would make protected mode's exit a way in. */
export const MIN_ADMIN_TOKEN_LENGTH = 32;

/** Whether `host` is a wildcard address (every interface): no single name the service is reached by. */
export function isWildcard(host: string): boolean {
  const bare = host.replace(/^\[(.*)\]$/, '$1');
  return bare === '0.0.0.0' || bare === '::' || bare === '0:0:0:0:0:0:0:0';
}

/** Bound beyond loopback without a ticket secret, anyone who can connect may act as any player. */
function openActions(settings: Settings): string[] {
  if (settings.playerTicketSecret !== undefined || isLoopback(settings.host)) return [];
  return [`listening on ${settings.host} without MESH_PLAYER_TICKET_SECRET: anyone who can connect may submit actions as any player`];
}

/** Whether `host` can only be reached from this machine. */
export function isLoopback(host: string): boolean {
  const bare = host.replace(/^\[(.*)\]$/, '$1').toLowerCase();
  if (bare === 'localhost' || bare === '::1') return true;
  if (isIP(bare) === 4) return bare.startsWith('127.');
  return bare.startsWith('::ffff:127.') && isIP(bare) === 6;
}

/** A MESH_* variable that no setting reads is most likely a typo that would otherwise go unnoticed. */
function unknownVariables(env: Env): string[] {
  const known = new Set(['MESH_ADMIN_TOKEN', 'MESH_ALERT_WEBHOOK_SECRET', 'MESH_PLAYER_TICKET_SECRET', ...serviceSpecs.map((spec) => spec.env), ...meshSpecs.map((spec) => spec.env)]);
  return Object.keys(env)
    .filter((name) => name.startsWith('MESH_') && !known.has(name))
    .map((name) => `ignoring unknown environment variable ${name} (run with --help to list every setting)`);
}

/** The `--help` text: every setting with its flag, variable, default and a one-line description. */
export function helpText(): string {
  const lines = [
    'Usage: npm start -- [flags]',
    '',
    'Every setting is a flag or an environment variable; a flag beats the variable, which beats',
    'the default. Empty variables count as unset.',
    '',
    'Service',
  ];
  for (const spec of serviceSpecs) lines.push(...entry(spec.flag, spec.arg, spec.env, spec.fallback, spec.describe));
  lines.push('', 'Mesh timings and bounds (MeshConfig; MESH_CLOCK=manual starts from testMeshConfig)');
  for (const spec of meshSpecs) lines.push(...entry(spec.flag, spec.arg, spec.env, meshDefault(spec), meshFieldHelp(spec)));
  lines.push('', '  -h, --help', '      Print this text and exit.');
  return lines.join('\n') + '\n';
}

function entry(flag: string | undefined, arg: string, env: string, fallback: string, describe: string): string[] {
  const name = flag ? `--${flag} <${arg}>` : '(environment only)';
  return [`  ${name}  ${env}  default: ${fallback}`, `      ${describe}`];
}

function meshDefault(spec: MeshSpec): string {
  const show = (config: MeshConfig): string => {
    const value = config[spec.field];
    return typeof value === 'number' ? String(value) : `${value.LIGHT},${value.MODERATE},${value.SEVERE}`;
  };
  const production = show(defaultMeshConfig);
  const manual = show(testMeshConfig);
  return production === manual ? production : `${production} (manual clock: ${manual})`;
}
