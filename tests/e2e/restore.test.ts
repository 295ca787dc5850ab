/**
 * The real process on a real data file, across restarts (issue 16, points 4 and 5):
 *
 * 1. An operator restores an older data file while the game servers hold newer epochs: no server
 *    is ever told a lower epoch than it holds (its fencing token never goes back), the region's
 *    epoch ratchets above what they hold, and the next promotion is the highest epoch + 1.
 * 2. Event ids are never reused across a restart, and a client resuming with a `Last-Event-ID`
 *    from before the restart is told that events may have been missed (`events_missed`).
 */
import { backUpDataDir, restoreDataDir } from './data-dir.ts';
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { connect } from '../api/sse-client.ts';
import { GameServer, World } from './game-server.ts';
import { e2eScratch } from './scratch.ts';
import { call, expectJson, startService, stopService, waitFor, type ServiceProcess } from './service-process.ts';

const { freshDir, worlds } = e2eScratch('mesh-e2e-restore-');

/** Registers servers over HTTP (one per zone, round robin) and starts their heartbeat loops. */
async function registerServers(base: () => string, world: World, count: number): Promise<GameServer[]> {
  const servers: GameServer[] = [];
  for (let i = 0; i < count; i++) {
    const res = await call(base(), 'POST', '/mesh/servers', { body: { address: `127.0.0.1:${7301 + i}`, zone: `zone-${i % 3}`, capacity: 4 } });
    const out = expectJson('registerServer', res, 201);
    const server = new GameServer({ id: out.server_id, token: out.token, baseUrl: base, world });
    server.start();
    servers.push(server);
  }
  return servers;
}

const replication = async (base: string, region: string) =>
  expectJson('getRegionReplication', await call(base, 'GET', `/mesh/replication/${region}`), 200);

/** Stops the region's primary and waits until another server acknowledged its promotion; returns the view. */
async function failPrimary(base: () => string, servers: readonly GameServer[], region: string): Promise<any> {
  const before = await replication(base(), region);
  servers.find((s) => s.id === before.primary.server_id)?.stop();
  return waitFor(`a new acknowledged primary of ${region}`, async () => {
    const view = await replication(base(), region);
    return view.primary?.acknowledged === true && view.primary.server_id !== before.primary.server_id && view.epoch > before.epoch
      ? view : undefined;
  }, { timeoutMs: 20_000, intervalMs: 50 });
}

describe('end to end: restores and restarts', { concurrency: false }, () => {
  test('restoring an older data file while servers hold newer epochs: no fencing token goes back; the next promotion is max + 1',
    { timeout: 120_000 }, async () => {
      const dir = await freshDir();
      const args = ['--port', '0', '--data-dir', dir];
      let service: ServiceProcess = await startService(args);
      const base = () => service.url;
      const world = new World();
      worlds.push(world);
      const servers = await registerServers(base, world, 6);
      expectJson('createRegion', await call(base(), 'POST', '/mesh/regions', { body: { region_id: 'keep' } }), 201);
      await waitFor('the region active', async () => ((await replication(base(), 'keep')).state === 'active' ? true : undefined), { timeoutMs: 15_000 });

      // The operator's backup of the data files, taken at epoch 1 while the service runs.
      const backup = join(dir, 'backup');
      backUpDataDir(dir, backup);
      assert.equal((await replication(base(), 'keep')).epoch, 1);
      const newest = (await failPrimary(base, servers, 'keep')).epoch;
      assert.equal(newest, 2);
      const port = service.port;
      await stopService(service, 'SIGTERM');

      // Restore the old file and start again on the same port; the servers kept their epoch 2.
      restoreDataDir(backup, dir);
      service = await startService(['--port', String(port), '--data-dir', dir]);
      const ratcheted = await waitFor('the region serving again above the restored epoch', async () => {
        const view = await replication(base(), 'keep');
        return view.epoch > newest && view.primary?.acknowledged === true ? view : undefined;
      }, { timeoutMs: 30_000, intervalMs: 100 });
      const live = servers.filter((s) => s.regions.has('keep'));
      assert.ok(live.length >= 2, 'servers hold the region');
      assert.deepEqual(servers.flatMap((s) => s.loweredEpochs.map((e) => `${s.id} ${e}`)), [], 'no server was told a lower epoch than it held');
      for (const s of live) assert.equal(s.regions.get('keep')?.epoch, ratcheted.epoch, `${s.id} holds the current epoch`);

      // The next failure promotes under the region's epoch + 1.
      const next = await failPrimary(base, servers, 'keep');
      assert.equal(next.epoch, ratcheted.epoch + 1);
      assert.deepEqual(servers.flatMap((s) => s.loweredEpochs.map((e) => `${s.id} ${e}`)), []);
      await stopService(service, 'SIGTERM');
      world.stopAll();
    });

  test('event ids are unique across a SIGKILL and restart; resuming from before it is told events were missed',
    { timeout: 120_000 }, async () => {
      const dir = await freshDir();
      let service: ServiceProcess = await startService(['--port', '0', '--data-dir', dir]);
      const base = () => service.url;
      const world = new World();
      worlds.push(world);
      const servers = await registerServers(base, world, 4);
      expectJson('createRegion', await call(base(), 'POST', '/mesh/regions', { body: { region_id: 'stream' } }), 201);
      const before = await connect(service.port);
      // A server goes quiet: suspicion is published at once but not written (rule 1), so the data
      // file's event position is behind what clients saw when the process is killed.
      const quiet = servers[3];
      assert.ok(quiet);
      quiet.stop();
      await waitFor('the quiet server suspected', async () =>
        before.frames.some((f) => f.event === 'server_status_changed' && f.data?.includes('"to":"suspect"')) || undefined, { timeoutMs: 15_000, intervalMs: 10 });
      const port = service.port;
      await stopService(service, 'SIGKILL');
      const seen = before.events().map((f) => f.id as string);
      assert.ok(seen.length > 0);
      const lastSeen = seen.at(-1) as string;

      service = await startService(['--port', String(port), '--data-dir', dir]);
      const resumed = await connect(service.port, { 'Last-Event-ID': lastSeen });
      await call(base(), 'POST', `/mesh/servers/${servers[0]?.id}/leave`);
      await waitFor('events after the restart', async () => (resumed.events().length > 0 ? true : undefined), { timeoutMs: 15_000, intervalMs: 20 });
      const notice = resumed.frames.find((f) => f.event === 'events_missed');
      assert.ok(notice, `an events_missed notice; got ${JSON.stringify(resumed.frames.slice(0, 3))}`);
      assert.equal(JSON.parse(notice.data ?? '{}').last_event_id, lastSeen);
      assert.ok(resumed.frames.indexOf(notice) < resumed.frames.indexOf(resumed.events()[0]!), 'the notice comes before any event');
      const after = resumed.events().map((f) => f.id as string);
      assert.deepEqual(after.filter((id) => seen.includes(id)), [], 'no id issued before the restart is issued again');
      resumed.destroy();
      await stopService(service, 'SIGTERM');
      world.stopAll();
    });
});
