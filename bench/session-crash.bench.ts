/**
 * A crashed primary that holds a session, to its backup learning its promotion, with real processes
 * (issue 17): the service from the sources (lowdb store in a temp dir) and game-server processes of
 * tests/e2e/session-game-server.ts (the TypeScript MeshSession, heartbeats and lease renewals over
 * the session, real TCP replication streams between peers every 50 ms). Three servers in three
 * zones; each trial creates a fresh region, lets it settle for 1.5 s plus a random 0-1 s (so the
 * crash falls anywhere in the heartbeat and renewal cycles), then stops its primary:
 *
 *  - SIGKILL: the process dies and its sockets close. The closed session makes it suspect, its
 *    peers (whose streams broke) confirm it, and the backup is promoted once the session lease
 *    (plus its margin) is over, then told by a push. Target: p99 <= 500 ms.
 *  - SIGSTOP: the process freezes with its sockets open (as a hung host or a partition): only its
 *    silence tells, so phi and the peers' reports of silence decide. Target: p99 <= 3 s.
 *
 * Trials alternate between the two, so both see the same load of the machine. Time is measured
 * from the signal to the line the promoted backup prints when its MeshSession applies the push
 * (it acknowledges with a heartbeat at once). Every trial runs on three fresh servers; afterwards
 * the survivors leave (SIGTERM) and the stopped process is killed. With 50 trials, p99 is the largest but one is not
 * distinguishable from the max: both are printed.
 *
 *   npm run bench -- session-crash [--trials 100] [--quick]
 */
import { once } from 'node:events';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { call, sleep, startService, stopService, waitFor } from '../tests/e2e/service-process.ts';
import { roleIn, startSessionGameServer, type SessionGameServer } from '../tests/e2e/session-fleet.ts';
import { heading, ms, num, numberFlag, quick, table, verdict } from './lib/report.ts';
import { percentile } from './lib/stats.ts';

type Signal = 'SIGKILL' | 'SIGSTOP';
const targets: Record<Signal, number> = { SIGKILL: 500, SIGSTOP: 3000 };
/** Long enough to outlive the bench: a server that exits by itself would be a crash to the mesh. */
const lifetimeMs = 6 * 3600_000;

/** Three fresh game servers, one per zone, registered. */
async function startFleet(base: string): Promise<(SessionGameServer & { id: string })[]> {
  return Promise.all(['zone-a', 'zone-b', 'zone-c'].map(async (zone) => {
    const server = startSessionGameServer(base, zone, lifetimeMs, false);
    const id = await waitFor(`registration in ${zone}`, async () => server.lines.find((l) => l.event === 'registered')?.id, { timeoutMs: 30_000 });
    return { ...server, id };
  }));
}

/** One trial on a fresh fleet and region: ms from the signal to the promoted backup's line, or null. */
async function trial(base: string, index: number, signal: Signal): Promise<number | null> {
  const fleet = await startFleet(base);
  try {
    const region = `bench-${index}`;
    const created = await call(base, 'POST', '/mesh/regions', { body: { region_id: region } });
    if (created.status !== 201) throw new Error(`createRegion answered ${created.status}: ${JSON.stringify(created.body)}`);
    const primaryId = (created.body as { primary: { server_id: string } }).primary.server_id;
    const primary = fleet.find((s) => s.id === primaryId)!;
    await waitFor('every server holds the region', async () => (fleet.every((s) => roleIn(s, region) !== undefined) ? true : undefined), { timeoutMs: 10_000 });
    await sleep(1500 + Math.random() * 1000);
    const signalledAt = Date.now();
    primary.child.kill(signal);
    const promoted = await waitFor('a backup learns its promotion', async () => {
      for (const s of fleet) {
        const line = roleIn(s, region);
        if (s !== primary && line?.role === 'primary' && (line.epoch ?? 0) > 1) return line;
      }
      return undefined;
    }, { timeoutMs: 15_000, intervalMs: 2 }).catch(() => undefined);
    return promoted === undefined ? null : promoted.at - signalledAt;
  } finally {
    // The survivors leave (SIGTERM), so that the next trial's mesh holds three live servers only.
    for (const s of fleet) s.child.kill(s.child.exitCode === null && s.child.signalCode === null ? 'SIGTERM' : 'SIGKILL');
    await Promise.race([Promise.all(fleet.map((s) => (s.child.exitCode === null ? once(s.child, 'exit') : null))), sleep(5000)]);
    for (const s of fleet) s.child.kill('SIGKILL');
  }
}

async function main(): Promise<number> {
  const trials = numberFlag('trials', quick() ? 4 : 100);
  const workDir = await mkdtemp(join(tmpdir(), 'mesh-bench-session-crash-'));
  const service = await startService(['--port', '0', '--host', '127.0.0.1', '--data-dir', join(workDir, 'data')]);
  const results: Record<Signal, number[]> = { SIGKILL: [], SIGSTOP: [] };
  const missed: string[] = [];
  try {
    for (let i = 0; i < trials; i++) {
      const signal: Signal = i % 2 === 0 ? 'SIGKILL' : 'SIGSTOP';
      const elapsed = await trial(service.url, i, signal);
      if (elapsed === null) missed.push(`${signal} trial ${i + 1}`);
      else results[signal].push(elapsed);
    }
  } finally {
    await stopService(service, 'SIGTERM');
    await rm(workDir, { recursive: true, force: true });
  }
  heading(`Crashed primary holding a session -> backup learns its promotion (${trials} alternating trials)`);
  const row = (signal: Signal, what: string) => {
    const sorted = [...results[signal]].sort((a, b) => a - b);
    const p99 = percentile(sorted, 99);
    return [signal, what, num(sorted.length), [50, 99].map((p) => ms(percentile(sorted, p))).join(' / '),
      `${ms(sorted.at(-2) ?? NaN)} / ${ms(sorted.at(-1) ?? NaN)}`, `p99 <= ${num(targets[signal])} ms: ${verdict(p99 <= targets[signal])}`];
  };
  console.log(table(['signal', 'path', 'trials', 'median / p99', '2nd largest / max', 'target'], [
    row('SIGKILL', 'closed session + peers, session lease'),
    row('SIGSTOP', 'silence: phi + peers'),
  ]));
  if (missed.length > 0) console.log(`\nNo promotion within 15 s: ${missed.join(', ')}.`);
  return missed.length === 0 ? 0 : 1;
}

process.exitCode = await main();
