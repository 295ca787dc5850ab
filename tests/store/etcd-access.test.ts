/**
 * Reaching a guarded etcd as operators run it, with the service's own client (src/store/etcd-client.ts):
 * password authentication with a role limited to the store's prefix, and TLS with client
 * certificates (certificates made here with openssl, valid for 127.0.0.1 only).
 */
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { Range } from 'etcd3';
import { createEtcdClient, EtcdFileError, type EtcdConnection } from '../../src/store/etcd-client.ts';
import { EtcdStore } from '../../src/store/etcd-store.ts';
import { needsEtcd, startEtcdCluster, type EtcdCluster, type EtcdTls } from '../e2e/etcd-cluster.ts';
import { RecordSource, stored } from './store-contract.ts';

const clusters: EtcdCluster[] = [];
const dirs: string[] = [];
after(async () => {
  for (const cluster of clusters) await cluster.stop();
  for (const dir of dirs) await rm(dir, { recursive: true, force: true });
});

/** Writes one record through a store on `connection` and reads it back through another. */
async function roundTrip(connection: EtcdConnection, prefix: string): Promise<unknown> {
  const client = await createEtcdClient({ ...connection, requestTimeoutMs: 3_000 });
  try {
    const source = new RecordSource();
    await new EtcdStore({ client, prefix }).append(source.take, source.set('region:r1', { epoch: 3 }));
    return await stored(new EtcdStore({ client, prefix }));
  } finally {
    client.close();
  }
}

/** A CA, a member certificate for 127.0.0.1 and a client certificate, all signed by the CA. */
async function makeCertificates(dir: string): Promise<EtcdTls & { clientCert: string; clientKey: string }> {
  const openssl = (...args: string[]) => execFileSync('openssl', args, { cwd: dir, stdio: 'pipe' });
  openssl('req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', 'ca.key', '-out', 'ca.pem', '-days', '1', '-subj', '/CN=mesh-test-ca');
  await writeFile(join(dir, 'server.ext'), 'subjectAltName=IP:127.0.0.1\nextendedKeyUsage=serverAuth,clientAuth\n');
  await writeFile(join(dir, 'client.ext'), 'extendedKeyUsage=clientAuth\n');
  for (const [name, cn] of [['server', '127.0.0.1'], ['client', 'mesh-coordinator']] as const) {
    openssl('req', '-newkey', 'rsa:2048', '-nodes', '-keyout', `${name}.key`, '-out', `${name}.csr`, '-subj', `/CN=${cn}`);
    openssl('x509', '-req', '-in', `${name}.csr`, '-CA', 'ca.pem', '-CAkey', 'ca.key', '-CAcreateserial', '-days', '1',
      '-extfile', `${name}.ext`, '-out', `${name}.pem`);
  }
  return {
    caFile: join(dir, 'ca.pem'), certFile: join(dir, 'server.pem'), keyFile: join(dir, 'server.key'),
    clientCert: join(dir, 'client.pem'), clientKey: join(dir, 'client.key'),
  };
}

describe('the etcd client against a guarded etcd', needsEtcd(), () => {
  it('authenticates as a user whose role may only use the store prefix; a wrong password or another prefix is refused', { timeout: 60_000 }, async () => {
    const cluster = await startEtcdCluster({ size: 1 });
    clusters.push(cluster);
    const endpoints = cluster.endpoints;
    const admin = await createEtcdClient({ endpoints });
    try {
      await admin.user('root').create('root-password');
      await admin.role('root').create().catch(() => undefined); // Built in on some etcd versions.
      await admin.user('root').addRole('root');
      await admin.role('mesh').create();
      await admin.role('mesh').grant({ permission: 'Readwrite', range: Range.prefix('/authed/') });
      await admin.user('mesh').create('mesh-password');
      await admin.user('mesh').addRole('mesh');
      await admin.auth.authEnable({});
    } finally {
      admin.close();
    }
    assert.deepEqual(await roundTrip({ endpoints, user: 'mesh', password: 'mesh-password' }, '/authed'), { 'region:r1': { epoch: 3 } });
    await assert.rejects(roundTrip({ endpoints, user: 'mesh', password: 'wrong' }, '/authed'), /authentication failed/);
    await assert.rejects(roundTrip({ endpoints, user: 'mesh', password: 'mesh-password' }, '/elsewhere'), /permission denied/);
    await assert.rejects(roundTrip({ endpoints }, '/authed'), /user name is empty|permission denied|token/);
  });

  it('connects over TLS with a client certificate; without one, or without the CA, it cannot', { timeout: 60_000 }, async () => {
    const dir = await mkdtemp(join(tmpdir(), 'mesh-etcd-tls-'));
    dirs.push(dir);
    const tls = await makeCertificates(dir);
    const cluster = await startEtcdCluster({ size: 1, tls });
    clusters.push(cluster);
    const endpoints = cluster.endpoints;
    assert.match(endpoints[0] ?? '', /^https:/);
    const good = { endpoints, caFile: tls.caFile, certFile: tls.clientCert, keyFile: tls.clientKey };
    assert.deepEqual(await roundTrip(good, '/tls'), { 'region:r1': { epoch: 3 } });
    // etcd refuses a client without a certificate; the client refuses a member it cannot verify.
    await assert.rejects(roundTrip({ endpoints, caFile: tls.caFile }, '/tls'), /bad certificate|certificate required/);
    await assert.rejects(roundTrip({ endpoints, certFile: tls.clientCert, keyFile: tls.clientKey }, '/tls'), /unable to verify/);
    await assert.rejects(createEtcdClient({ ...good, caFile: join(dir, 'missing.pem') }), (error: unknown) => {
      assert.ok(error instanceof EtcdFileError);
      assert.match(error.message, /cannot read the etcd CA file .*missing\.pem/);
      return true;
    });
  });
});
