/**
 * Hostile clients (issue 14): what they cost the service.
 *
 * 1. RSS of the service with non-reading event-stream subscribers during mass failures. The service
 *    (the real app over a RunningMesh on a manual clock, on a real listener in this process) runs a
 *    simulated test mesh of 2,000 regions; each round crashes 30% of its servers and advances
 *    virtual time until the failovers are done, so every subscriber is sent thousands of events. A
 *    child process opens the subscribers, reads each response head and then never reads again.
 *    Measured side by side, each in a fresh process: 0 subscribers, then 1,000 (the cap raised to
 *    1,000 for the run). RSS after a full GC at the end of each round; the maximum is reported.
 * 2. Time to refuse a 1 MB depth bomb (`[[[...]]]`, 512 Ki levels, within the 1 MiB heartbeat
 *    limit) sent as a server's own heartbeat (through Koa, like every HTTP heartbeat); and a
 *    1 MB body to `submitAction` (16 KiB limit), refused by its Content-Length. Median of the
 *    round trips on one keep-alive connection, beside the median of a normal heartbeat.
 *
 * Run alone: node --expose-gc --import tsx bench/hostile-input.bench.ts [--subscribers 1000] [--rounds 3] [--quick]
 */
import { spawn } from 'node:child_process';
import http from 'node:http';
import { once } from 'node:events';
import net from 'node:net';
import type { AddressInfo } from 'node:net';
import { fileURLToPath } from 'node:url';
import { createApp } from '../api/app.ts';
import { hashToken, issueServerToken } from '../api/auth.ts';
import { testMeshConfig } from '../mesh/base/config.ts';
import { ManualClock } from '../mesh/base/ports.ts';
import type { CoreState } from '../mesh/core/state.ts';
import { createLogger } from '../src/logger.ts';
import { RunningMesh } from '../src/mesh-host.ts';
import { MemoryStore } from '../src/store/memory-store.ts';
import { heading, memoryAfterGc, mib, ms, num, numberFlag, quick, table } from './lib/report.ts';
import { median } from './lib/stats.ts';

/** Child mode: open `count` subscribers to `port`, read each head, never read again, report, wait. */
async function subscribers(port: number, count: number): Promise<void> {
  const sockets: net.Socket[] = [];
  for (let i = 0; i < count; i++) {
    sockets.push(await new Promise<net.Socket>((resolve, reject) => {
      const socket = net.connect(port, '127.0.0.1', () => socket.write('GET /mesh/events HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n'));
      socket.once('data', (head: Buffer) => {
        if (!head.toString('latin1').startsWith('HTTP/1.1 200')) reject(new Error(`subscriber ${i}: ${head.toString('latin1').split('\r\n')[0]}`));
        socket.pause();
        resolve(socket);
      });
      socket.on('error', () => {});
    }));
  }
  process.stdout.write('ready\n');
  await once(process.stdin, 'end');
  for (const socket of sockets) socket.destroy();
}

async function service(maxSubscribers: number) {
  const log = createLogger({ level: 'error', sink: { write: () => true } as never });
  const host = await RunningMesh.open({ config: testMeshConfig, clock: new ManualClock(0), store: new MemoryStore(), seed: 11, log });
  const app = createApp({ host, adminToken: undefined, logError: () => {}, http: { maxEventSubscribers: maxSubscribers } });
  const server = http.createServer(app.callback()).listen(0, '127.0.0.1');
  await once(server, 'listening');
  const { port } = server.address() as AddressInfo;
  const close = () => { app.closeStreams(); server.close(); server.closeAllConnections(); };
  return { host, port, close };
}

/** Runs mass-failure rounds with `count` non-reading subscribers attached; returns the peak RSS after GC. */
async function rssWith(count: number, regions: number, rounds: number): Promise<{ rss: number; events: number }> {
  const { host, port, close } = await service(Math.max(count, 1));
  let child: ReturnType<typeof spawn> | undefined;
  let events = 0;
  const unsubscribe = host.subscribe(() => { events++; });
  try {
    if (count > 0) {
      child = spawn(process.execPath, [...process.execArgv, fileURLToPath(import.meta.url), '--subscribers-child', String(port), String(count)], { stdio: ['pipe', 'pipe', 'inherit'] });
      child.stdout!.setEncoding('utf8');
      await new Promise<void>((resolve, reject) => {
        child!.stdout!.on('data', (text: string) => { if (text.includes('ready')) resolve(); });
        child!.once('exit', (code) => reject(new Error(`subscriber process exited ${code}`)));
      });
    }
    const setup = await host.setupTest({ regions, zones: 3, criticalRegions: Math.ceil(regions / 10), playersPerRegion: 20 });
    if (!setup.ok) throw new Error(setup.detail);
    await host.advance(5_000);
    let peak = 0;
    for (let round = 0; round < rounds; round++) {
      const fault = host.injectFailure({ target: { fraction: 0.3 }, mode: 'partition', durationMs: 20_000 } as never);
      if (!fault.ok) throw new Error(fault.detail);
      for (let step = 0; step < 30; step++) {
        await host.advance(1_000);
        // Let the event loop write to the sockets, as it would between ticks in real time.
        await new Promise((resolve) => setImmediate(resolve));
      }
      peak = Math.max(peak, memoryAfterGc().rss);
    }
    return { rss: peak, events };
  } finally {
    unsubscribe();
    child?.stdin?.end();
    if (child && child.exitCode === null) await once(child, 'exit');
    close();
  }
}

/** Median round trip of `request` on one keep-alive connection. */
async function roundTrips(port: number, count: number, request: () => { path: string; headers: Record<string, string>; body: Buffer }): Promise<{ medianMs: number; status: number }> {
  const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
  const times: number[] = [];
  let status = 0;
  for (let i = 0; i < count; i++) {
    const { path, headers, body } = request();
    const started = process.hrtime.bigint();
    status = await new Promise<number>((resolve, reject) => {
      const req = http.request({ host: '127.0.0.1', port, path, method: 'POST', agent, headers: { ...headers, 'Content-Length': String(body.length) } }, (res) => {
        res.resume();
        res.on('end', () => resolve(res.statusCode ?? 0));
      });
      req.on('error', reject);
      req.end(body);
    });
    times.push(Number(process.hrtime.bigint() - started) / 1e6);
  }
  agent.destroy();
  return { medianMs: median(times), status };
}

async function depthBombs(count: number): Promise<string[][]> {
  const { host, port, close } = await service(100);
  try {
    // Registered through the core, as POST /mesh/servers does, with a token of our own.
    const token = issueServerToken();
    const id = 'bench-server';
    const made = host.coordinator.registerServer({ id, address: '10.0.0.2:7777', zone: 'b', capacity: 1, credentialHash: hashToken(token) }, host.now());
    if (!made.ok) throw new Error(made.detail);
    host.flush();
    const levels = 512 * 1024;
    const bomb = Buffer.from('['.repeat(levels) + ']'.repeat(levels));
    const json = { 'Content-Type': 'application/json', Authorization: `Bearer ${token}` };
    const beat = Buffer.from(JSON.stringify({ incarnation: 'b', players: 0, regions: [], peers: [] }));
    const cases: [string, () => { path: string; headers: Record<string, string>; body: Buffer }][] = [
      ['normal heartbeat', () => ({ path: `/mesh/servers/${id}/heartbeat`, headers: json, body: beat })],
      ['1 MB depth bomb as a heartbeat', () => ({ path: `/mesh/servers/${id}/heartbeat`, headers: json, body: bomb })],
      ['1 MB body to submitAction (16 KiB limit)', () => ({ path: '/mesh/regions/r/actions', headers: { 'Content-Type': 'application/json' }, body: bomb })],
    ];
    const rows: string[][] = [];
    for (const [name, request] of cases) {
      const { medianMs, status } = await roundTrips(port, count, request);
      rows.push([name, String(status), ms(medianMs)]);
    }
    return rows;
  } finally {
    close();
  }
}

/** Each configuration in a fresh process, so that neither inherits the other's heap. */
async function inChild(count: number, regions: number, rounds: number): Promise<{ rss: number; events: number }> {
  const child = spawn(process.execPath, [...process.execArgv, fileURLToPath(import.meta.url), '--rss-child', String(count), String(regions), String(rounds)], { stdio: ['ignore', 'pipe', 'inherit'] });
  let out = '';
  child.stdout!.setEncoding('utf8').on('data', (text: string) => { out += text; });
  const [code] = await once(child, 'exit') as [number | null];
  if (code !== 0) throw new Error(`RSS run with ${count} subscribers exited ${code}`);
  return JSON.parse(out.trim().split('\n').pop() ?? '{}') as { rss: number; events: number };
}

async function main(): Promise<void> {
  const childAt = process.argv.indexOf('--subscribers-child');
  if (childAt >= 0) return subscribers(Number(process.argv[childAt + 1]), Number(process.argv[childAt + 2]));
  const rssAt = process.argv.indexOf('--rss-child');
  if (rssAt >= 0) {
    const [count, regions, rounds] = process.argv.slice(rssAt + 1, rssAt + 4).map(Number) as [number, number, number];
    console.log(JSON.stringify(await rssWith(count, regions, rounds)));
    return;
  }
  const q = quick();
  const count = numberFlag('subscribers', q ? 50 : 1000);
  const rounds = numberFlag('rounds', q ? 1 : 3);
  const regions = q ? 200 : 2000;

  heading(`Non-reading event-stream subscribers during mass failures (${num(regions)} regions, 30% of servers cut per round, ${rounds} rounds)`);
  const without = await inChild(0, regions, rounds);
  const withSubs = await inChild(count, regions, rounds);
  console.log(table(['subscribers', 'events published', 'peak RSS after GC', 'ratio to 0 subscribers'], [
    ['0', num(without.events), mib(without.rss), '1.00'],
    [num(count), num(withSubs.events), mib(withSubs.rss), num(withSubs.rss / without.rss, 2)],
  ]));

  heading('Refusing a 1 MB depth bomb (median round trip on one keep-alive connection)');
  console.log(table(['request', 'status', 'median'], await depthBombs(q ? 5 : 31)));
}

main().then(() => process.exit(0), (error: unknown) => {
  console.error(error);
  process.exit(1);
});
