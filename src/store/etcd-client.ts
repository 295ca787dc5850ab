/**
 * The etcd client of the service, built from the connection settings: endpoints, TLS files and
 * password authentication as etcdctl takes them (`--endpoints`, `--cacert`, `--cert`, `--key`,
 * `--user`). Every unary call gets a deadline, so that a cluster without quorum (where etcd holds a
 * write until its own, longer timeout) fails a write in bounded time and the service's storage-fault
 * path takes over.
 */
import { readFile } from 'node:fs/promises';
import { Etcd3, type IOptions } from 'etcd3';

/** How to reach etcd. */
export interface EtcdConnection {
  /** Client URLs of the members, `http://host:port` or `https://host:port`. */
  readonly endpoints: readonly string[];
  /** PEM file of the CA that signed the members' certificates (etcd `--trusted-ca-file`). */
  readonly caFile?: string | undefined;
  /** PEM client certificate and its key, for clusters started with `--client-cert-auth`. */
  readonly certFile?: string | undefined;
  readonly keyFile?: string | undefined;
  /** etcd user (role-based access control); the password comes from the environment only. */
  readonly user?: string | undefined;
  readonly password?: string | undefined;
  /** Deadline of every unary call, in ms. */
  readonly requestTimeoutMs?: number;
}

/**
 * Deadline of one etcd call unless told otherwise. Longer than a healthy cluster's slowest commit
 * (a leader election inside etcd takes about one election timeout, 1 s by default), short enough
 * that a lost quorum shows as a failed write within seconds.
 */
export const DEFAULT_ETCD_REQUEST_TIMEOUT_MS = 2_000;

/** A TLS file that could not be read, naming the setting it came from. */
export class EtcdFileError extends Error {
  constructor(what: string, file: string, cause: unknown) {
    super(`cannot read the etcd ${what} file ${file}: ${cause instanceof Error ? cause.message : String(cause)}`);
    this.name = 'EtcdFileError';
  }
}

/** Reads the TLS files and builds the client. It connects lazily, on the first call. */
export async function createEtcdClient(connection: EtcdConnection): Promise<Etcd3> {
  const timeoutMs = connection.requestTimeoutMs ?? DEFAULT_ETCD_REQUEST_TIMEOUT_MS;
  const options: IOptions = {
    hosts: [...connection.endpoints],
    dialTimeout: timeoutMs,
    defaultCallOptions: (context) => (context.isStream ? {} : { deadline: Date.now() + timeoutMs }),
    // A full state is read in pages, but a page of large records may pass gRPC's 4 MiB default.
    grpcOptions: { 'grpc.max_receive_message_length': 64 * 1024 * 1024 },
  };
  if (connection.caFile !== undefined || connection.certFile !== undefined) {
    options.credentials = {
      // Without a CA file, gRPC trusts the system's roots.
      rootCertificate: (connection.caFile === undefined ? undefined : await read('CA', connection.caFile)) as Buffer,
      ...(connection.certFile === undefined ? {} : { certChain: await read('client certificate', connection.certFile) }),
      ...(connection.keyFile === undefined ? {} : { privateKey: await read('client key', connection.keyFile) }),
    };
  }
  if (connection.user !== undefined) options.auth = { username: connection.user, password: connection.password ?? '' };
  return new Etcd3(options);
}

async function read(what: string, file: string): Promise<Buffer> {
  try {
    return await readFile(file);
  } catch (error) {
    throw new EtcdFileError(what, file, error);
  }
}
