/**
 * The settings of the etcd store (`--store etcd`): endpoints, key prefix, TLS files and password
 * authentication, named as etcdctl names them. Parsed with the other settings (src/settings.ts);
 * the password is read from the environment only, like every other secret of the service.
 */
import { DEFAULT_ETCD_PREFIX } from './store/etcd-store.ts';
import { DEFAULT_ETCD_REQUEST_TIMEOUT_MS } from './store/etcd-client.ts';

/** How the service reaches etcd; used only with `--store etcd`. */
export interface EtcdSettings {
  /** Client URLs of the etcd members (`http(s)://host:port`). */
  readonly endpoints: readonly string[];
  /** Key prefix of the state, so that several meshes (or other software) can share one cluster. */
  readonly prefix: string;
  /** PEM CA file that signed the members' certificates. */
  readonly caFile: string | undefined;
  /** PEM client certificate and key, for clusters that require client certificates. */
  readonly certFile: string | undefined;
  readonly keyFile: string | undefined;
  /** etcd user of role-based access control. */
  readonly user: string | undefined;
  /** Its password (MESH_ETCD_PASSWORD only). */
  readonly password: string | undefined;
  /** Deadline of every etcd request, in ms. */
  readonly requestTimeoutMs: number;
}

/** A raw value and where it came from (the flag or the variable), as src/settings.ts passes it. */
export type EtcdLookup = (flag: string | undefined, env: string) => { readonly text: string; readonly source: string } | undefined;

/** The etcd settings as `--help` lists them (the shape of src/settings.ts's service settings). */
export const etcdSpecs = [
  { flag: 'etcd-endpoints', env: 'MESH_ETCD_ENDPOINTS', arg: 'url,url', fallback: '(none)', describe: 'With --store etcd: client URLs of the etcd members, e.g. http://10.0.0.1:2379,http://10.0.0.2:2379.' },
  { flag: 'etcd-prefix', env: 'MESH_ETCD_PREFIX', arg: 'key', fallback: DEFAULT_ETCD_PREFIX, describe: 'Key prefix of the state in etcd; one per mesh sharing a cluster.' },
  { flag: 'etcd-ca-file', env: 'MESH_ETCD_CA_FILE', arg: 'path', fallback: '(none)', describe: 'PEM CA of the members\' certificates (etcdctl --cacert); needs https:// endpoints.' },
  { flag: 'etcd-cert-file', env: 'MESH_ETCD_CERT_FILE', arg: 'path', fallback: '(none)', describe: 'PEM client certificate (etcdctl --cert); with --etcd-key-file.' },
  { flag: 'etcd-key-file', env: 'MESH_ETCD_KEY_FILE', arg: 'path', fallback: '(none)', describe: 'PEM key of the client certificate (etcdctl --key).' },
  { flag: 'etcd-user', env: 'MESH_ETCD_USER', arg: 'name', fallback: '(none)', describe: 'etcd user (etcdctl --user); the password comes from MESH_ETCD_PASSWORD.' },
  { flag: undefined, env: 'MESH_ETCD_PASSWORD', arg: '', fallback: '(unset)', describe: 'Password of --etcd-user; never a flag, so it stays out of `ps`.' },
  { flag: 'etcd-request-timeout-ms', env: 'MESH_ETCD_REQUEST_TIMEOUT_MS', arg: 'ms', fallback: String(DEFAULT_ETCD_REQUEST_TIMEOUT_MS), describe: 'Deadline of every etcd request; a write without etcd quorum fails after it (and its retries).' },
] as const;

/**
 * Reads the etcd settings; problems go to `errors`, settings that have no effect to `warnings`.
 * @param etcdStore whether `--store etcd` was chosen (only then are endpoints required).
 */
export function etcdSettings(lookup: EtcdLookup, etcdStore: boolean, errors: string[], warnings: string[]): EtcdSettings {
  const raw = (flag: string | undefined, env: string) => lookup(flag, env);
  const endpointsRaw = raw('etcd-endpoints', 'MESH_ETCD_ENDPOINTS');
  const settings: EtcdSettings = Object.freeze({
    endpoints: Object.freeze(endpoints(endpointsRaw, errors)),
    prefix: prefix(raw('etcd-prefix', 'MESH_ETCD_PREFIX'), errors),
    caFile: raw('etcd-ca-file', 'MESH_ETCD_CA_FILE')?.text,
    certFile: raw('etcd-cert-file', 'MESH_ETCD_CERT_FILE')?.text,
    keyFile: raw('etcd-key-file', 'MESH_ETCD_KEY_FILE')?.text,
    user: raw('etcd-user', 'MESH_ETCD_USER')?.text,
    password: raw(undefined, 'MESH_ETCD_PASSWORD')?.text,
    requestTimeoutMs: timeout(raw('etcd-request-timeout-ms', 'MESH_ETCD_REQUEST_TIMEOUT_MS'), errors),
  });
  const given = etcdSpecs.map((spec) => raw(spec.flag, spec.env)).filter((value) => value !== undefined);
  if (!etcdStore) {
    if (given.length > 0) warnings.push(`ignoring ${given.map((value) => value.source).join(', ')}: they apply only with --store etcd`);
    return settings;
  }
  if (endpointsRaw === undefined) {
    errors.push('--store etcd needs --etcd-endpoints (or MESH_ETCD_ENDPOINTS): the client URLs of the etcd members, e.g. http://127.0.0.1:2379');
  }
  errors.push(...consistency(settings));
  return settings;
}

function endpoints(raw: { text: string; source: string } | undefined, errors: string[]): string[] {
  if (raw === undefined) return [];
  const urls = raw.text.split(',').map((part) => part.trim()).filter((part) => part !== '');
  if (urls.length === 0) errors.push(`${raw.source}: expected comma-separated etcd client URLs, got ${JSON.stringify(raw.text)}`);
  for (const url of urls) {
    const parsed = URL.canParse(url) ? new URL(url) : undefined;
    const valid = parsed !== undefined && ['http:', 'https:'].includes(parsed.protocol) && parsed.port !== '' &&
      (parsed.pathname === '/' || parsed.pathname === '') && parsed.search === '' && parsed.username === '';
    if (!valid) errors.push(`${raw.source}: expected etcd client URLs such as http://10.0.0.1:2379 (scheme, host and port only), got ${JSON.stringify(url)}`);
  }
  const schemes = new Set(urls.map((url) => url.split(':')[0]));
  if (schemes.size > 1) errors.push(`${raw.source}: mixes http:// and https:// endpoints; a cluster is reached one way`);
  return urls.map((url) => url.replace(/\/$/, ''));
}

function prefix(raw: { text: string; source: string } | undefined, errors: string[]): string {
  if (raw === undefined) return DEFAULT_ETCD_PREFIX;
  if (/^\/[^\s]*[^/\s]$/.test(raw.text)) return raw.text;
  errors.push(`${raw.source}: expected a key prefix such as /mesh-coordinator (starts with /, no trailing / or spaces), got ${JSON.stringify(raw.text)}`);
  return DEFAULT_ETCD_PREFIX;
}

function timeout(raw: { text: string; source: string } | undefined, errors: string[]): number {
  if (raw === undefined) return DEFAULT_ETCD_REQUEST_TIMEOUT_MS;
  const value = /^\d{1,7}$/.test(raw.text.trim()) ? Number(raw.text) : NaN;
  if (value >= 100) return value;
  errors.push(`${raw.source}: expected a whole number of milliseconds of at least 100, got ${JSON.stringify(raw.text)}`);
  return DEFAULT_ETCD_REQUEST_TIMEOUT_MS;
}

/** Settings that are each well-formed but do not go together. */
function consistency(settings: EtcdSettings): string[] {
  const errors: string[] = [];
  const tls = settings.caFile !== undefined || settings.certFile !== undefined || settings.keyFile !== undefined;
  if (tls && settings.endpoints.some((url) => url.startsWith('http:'))) {
    errors.push('--etcd-ca-file/--etcd-cert-file/--etcd-key-file are set but the etcd endpoints are http://: use https:// endpoints for TLS');
  }
  if ((settings.certFile === undefined) !== (settings.keyFile === undefined)) {
    errors.push('--etcd-cert-file and --etcd-key-file go together: a client certificate needs its key');
  }
  if (settings.user !== undefined && settings.password === undefined) {
    errors.push('--etcd-user is set but MESH_ETCD_PASSWORD is not: set the password in the environment');
  }
  if (settings.user === undefined && settings.password !== undefined) {
    errors.push('MESH_ETCD_PASSWORD is set but --etcd-user is not: name the etcd user');
  }
  return errors;
}
