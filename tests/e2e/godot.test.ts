/**
 * End to end with real Godot dedicated servers: the real coordinator process, three headless Godot
 * 3 processes running `clients/godot/demo_server.gd` in three zones (replicating to each other over
 * UDP on 127.0.0.1), one region, then SIGKILL of the primary's process. The surviving backup must
 * be promoted to epoch 2, say so on its stdout, and the coordinator must count one completed
 * failover recovered within the seed's 5 s. Finally the remaining backup leaves gracefully, which
 * must not count as a failover.
 *
 * Skip rule: without `godot3-server` on PATH the suite is skipped, except under `CI=true`, where
 * it fails (the CI script installs it).
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Child, GODOT, childEnv, freeUdpPorts, godotPath, repoRoot, skip, spawnGodot, withTimeout } from './godot-fleet.ts';

const REGION = 'godot-e2e';
/** Generous bounds: this runs on a shared 2-core machine, next to other test suites. */
const SERVICE_START_MS = 30_000;
const GODOT_REGISTER_MS = 20_000;
const PLACEMENT_MS = 15_000;
/** The brief's bound for the whole failover as seen from outside (recovery itself must be <= 5 s). */
const FAILOVER_MS = 10_000;
const LEAVE_MS = 10_000;
const POLL_MS = 100;

async function http(method: string, url: string, body?: unknown): Promise<{ status: number; json: any }> {
  const res = await fetch(url, {
    method,
    headers: body === undefined ? {} : { 'content-type': 'application/json' },
    body: body === undefined ? undefined : JSON.stringify(body),
    signal: AbortSignal.timeout(5000),
  });
  const text = await res.text();
  return { status: res.status, json: text === '' ? null : JSON.parse(text) };
}

/** Polls `probe` until it returns a value (not undefined) or `timeoutMs` passes. */
async function eventually<T>(what: string, timeoutMs: number, probe: () => Promise<T | undefined>,
  context: () => string): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let last: unknown = null;
  while (Date.now() < deadline) {
    try {
      const value = await probe();
      if (value !== undefined) return value;
    } catch (error) {
      last = error;
    }
    await new Promise((resolve) => setTimeout(resolve, POLL_MS));
  }
  throw new Error(`${what}: not within ${timeoutMs} ms${last ? ` (last error: ${String(last)})` : ''}\n${context()}`);
}

describe('real Godot servers fail over through the coordinator', { skip, timeout: 120_000 }, () => {
  let workDir = '';
  let baseUrl = '';
  let service: Child | undefined;
  const godots = new Map<string, Child>(); // by server id
  const stopFiles = new Map<string, string>(); // by server id
  const all: Child[] = [];
  const context = () => all.map((c) => c.describe()).join('\n');
  // Safety net if this process dies before `after` runs (interrupted run): no orphaned children.
  const killAll = () => { for (const c of all) if (c.running) c.proc.kill('SIGKILL'); };
  const onSignal = (signal: NodeJS.Signals) => { killAll(); process.exit(signal === 'SIGINT' ? 130 : 143); };

  before(async () => {
    if (godotPath === null) {
      throw new Error(`${GODOT} is not on PATH but CI=true: .ci/run must install it (apt-get install -y ${GODOT})`);
    }
    process.once('exit', killAll).once('SIGINT', onSignal).once('SIGTERM', onSignal);
    workDir = await mkdtemp(join(tmpdir(), 'mesh-godot-e2e-'));
    service = new Child('coordinator', spawn(process.execPath,
      ['--import', 'tsx', 'src/main.ts', '--port', '0', '--host', '127.0.0.1', '--data-dir', join(workDir, 'data'), '--store', 'memory'],
      { cwd: repoRoot, env: childEnv({}), stdio: ['ignore', 'pipe', 'pipe'] }));
    all.push(service);
    const ready = await service.waitForLine(/^\{.*"mesh coordinator ready"/, SERVICE_START_MS);
    baseUrl = (JSON.parse(ready.input!) as { url: string }).url;
    assert.match(baseUrl, /^http:\/\/127\.0\.0\.1:\d+$/);

    const ports = await freeUdpPorts(3);
    const starting = ports.map((port, i) => {
      const name = `gd-${i + 1}`;
      const stopFile = join(workDir, `stop-${name}`);
      const child = spawnGodot({ name, coordinator: baseUrl, zone: `z${i + 1}`, udpPort: port, workDir, extra: ['--stop-file', stopFile] });
      all.push(child);
      return { child, stopFile };
    });
    for (const { child, stopFile } of starting) {
      const id = (await child.waitForLine(/^registered (\S+)$/, GODOT_REGISTER_MS))[1]!;
      godots.set(id, child);
      stopFiles.set(id, stopFile);
    }
  });

  after(async () => {
    // Every child goes, also when a test failed half-way; each stop is bounded.
    await Promise.all(all.filter((c) => c !== service).map((c) => c.stop('SIGKILL', 2000)));
    await service?.stop('SIGTERM', 3000);
    if (workDir !== '') await rm(workDir, { recursive: true, force: true });
    process.off('exit', killAll).off('SIGINT', onSignal).off('SIGTERM', onSignal);
  });

  let primaryId = '';
  let backupIds: string[] = [];

  test('a new region is held by all three: one primary and two backups that replicate from it', async () => {
    const created = await http('POST', `${baseUrl}/mesh/regions`, { region_id: REGION });
    assert.equal(created.status, 201, JSON.stringify(created.json));
    primaryId = created.json.primary.server_id;
    backupIds = created.json.backups.map((b: { server_id: string }) => b.server_id);
    assert.equal(created.json.epoch, 1);
    assert.equal(backupIds.length, 2, 'three zones, so two backups');
    assert.deepEqual([primaryId, ...backupIds].sort(), [...godots.keys()].sort());

    await godots.get(primaryId)!.waitForLine(new RegExp(`^role ${REGION} primary 1$`), PLACEMENT_MS);
    for (const id of backupIds) await godots.get(id)!.waitForLine(new RegExp(`^role ${REGION} backup 1$`), PLACEMENT_MS);
    // Backups' applied_seq only moves when the primary's UDP packets reach them.
    await eventually('replication active with both backups caught up', PLACEMENT_MS, async () => {
      const { json } = await http('GET', `${baseUrl}/mesh/replication/${REGION}`);
      const ok = json.state === 'active' && json.primary?.acknowledged === true && json.backups.length === 2 &&
        json.backups.every((b: { applied_seq: number; status: string }) => b.applied_seq > 0 && b.status === 'alive');
      return ok ? json : undefined;
    }, context);
  });

  test('SIGKILL of the primary: a surviving Godot becomes primary at epoch 2 within the bound', async (t) => {
    assert.notEqual(primaryId, '', 'the placement test ran');
    const victim = godots.get(primaryId)!;
    const killedAt = Date.now();
    victim.proc.kill('SIGKILL');

    const race = new AbortController();
    const announced = await Promise.any(backupIds.map(async (id) => {
      await godots.get(id)!.waitForLine(new RegExp(`^role ${REGION} primary 2$`), FAILOVER_MS, race.signal);
      return { id, atMs: Date.now() };
    })).catch(() => assert.fail(`no survivor printed "role ${REGION} primary 2" within ${FAILOVER_MS} ms\n${context()}`))
      .finally(() => race.abort());
    const otherId = backupIds.find((id) => id !== announced.id)!;

    const replication = await eventually('coordinator shows the new primary at epoch 2', FAILOVER_MS, async () => {
      const { json } = await http('GET', `${baseUrl}/mesh/replication/${REGION}`);
      return json.epoch === 2 && json.primary?.server_id === announced.id && json.primary.acknowledged === true ? json : undefined;
    }, context);
    assert.ok(Date.now() - killedAt <= FAILOVER_MS, `failover seen after ${Date.now() - killedAt} ms`);
    assert.deepEqual(replication.backups.map((b: { server_id: string }) => b.server_id), [otherId]);
    await godots.get(otherId)!.waitForLine(new RegExp(`^role ${REGION} backup 2$`), FAILOVER_MS);

    const { json: metrics } = await http('GET', `${baseUrl}/mesh/failover_metrics`);
    assert.deepEqual(metrics.failovers, { total: 1, completed: 1, in_progress: 0, failed: 0 });
    assert.equal(metrics.recovery_ms.count, 1);
    assert.ok(metrics.recovery_ms.max <= 5000, `recovery_ms ${metrics.recovery_ms.max} > 5000`);
    assert.equal(metrics.false_failovers, 0);
    const [record] = metrics.recent;
    assert.equal(record.region_id, REGION);
    assert.equal(record.failed_server_id, primaryId);
    assert.equal(record.new_primary_id, announced.id);
    assert.equal(record.outcome, 'completed');
    t.diagnostic(`kill -> "role ${REGION} primary 2" on stdout: ${announced.atMs - killedAt} ms; ` +
      `coordinator: detection_ms ${record.detection_ms}, recovery_ms ${record.recovery_ms} (from the last heartbeat)`);
    primaryId = announced.id;
    backupIds = [otherId];
  });

  test('the last backup leaves gracefully: drained, exits 0, no failover counted', async () => {
    assert.equal(backupIds.length, 1, 'the failover test ran');
    const leaverId = backupIds[0]!;
    const leaver = godots.get(leaverId)!;
    await writeFile(stopFiles.get(leaverId)!, 'leave\n');
    await leaver.waitForLine(/^left$/, LEAVE_MS);
    await withTimeout(leaver.exited, LEAVE_MS);
    assert.equal(leaver.exitCode, 0, `exit ${leaver.exitCode ?? leaver.signal}\n${leaver.describe()}`);

    // The answer that lists no region ends the client's drain; the coordinator marks the server
    // `left` on its next tick.
    await eventually('the coordinator marks the server left', LEAVE_MS, async () => {
      const { json } = await http('GET', `${baseUrl}/mesh/servers/${leaverId}`);
      return json.status === 'left' ? json : undefined;
    }, context);
    const { json: replication } = await http('GET', `${baseUrl}/mesh/replication/${REGION}`);
    assert.equal(replication.epoch, 2, 'a backup leaving does not change the epoch');
    assert.equal(replication.primary.server_id, primaryId);
    assert.deepEqual(replication.backups, []);
    const { json: metrics } = await http('GET', `${baseUrl}/mesh/failover_metrics`);
    assert.equal(metrics.failovers.total, 1, 'a graceful leave is not a failover');
  });
});
