/**
 * Heartbeats over HTTP: throughput and latency of `POST /mesh/servers/{id}/heartbeat` with 10,000
 * registered servers, side by side with a bare `node:http` server, and proof that heartbeats cause
 * no disk writes. The HTTP route is the compatibility path (sessions carry the load, see
 * session.bench.ts): its numbers are for reference, to tell users when to switch, with no target.
 *
 * The service: a RunningMesh on the system clock with the lowdb store in a temp directory, 10,000
 * servers (4 zones, capacity 4) registered straight through the core to save time, each with a
 * token whose SHA-256 is stored as registration does, and 3,334 regions (a primary and two backups
 * each, so every server holds about one replica and reports two peers), served by the real app
 * (`createApp`: problem middleware, router, bearer auth, ajv validation, the core) on
 * `http.createServer(app.callback())` at 127.0.0.1. The ticker does not run: the closed-loop load
 * reaches each of the 10,000 servers only every few seconds, so ticks would declare them suspect or
 * failed (persisted changes: this would measure detection, not heartbeats), and every tick would
 * take the detector's slow path for all of them, which production (one heartbeat per server per
 * second) does not. The cost of a tick at this size is measured by core-throughput.bench.ts.
 *
 * The bare server: `node:http` on 127.0.0.1 in the same process that reads the same body,
 * `JSON.parse`s it and answers a JSON reply of the same shape and a similar size (no routing, no
 * auth, no validation, no core). For reference, a third server splits the gap: Koa with
 * @koa/bodyparser and one middleware giving the same answer (the framework without the service).
 *
 * The load: a separate process (this file with `--loadgen`) with a minimal HTTP/1.1 client on raw
 * keep-alive sockets (so that the client is cheaper than either server on this 2-core machine), a
 * fixed number of connections each with one request in flight (closed loop), the 10,000 servers in
 * round-robin, each heartbeat a protocol-following body (its region claims, its peers, a growing
 * `seq`). Every answer must be a 200. Warm-up rounds, then alternating rounds (ABBA order) of a
 * fixed duration; medians over the rounds. Closed-loop rounds saturate the server: they give the
 * throughput, and a latency that is mostly queueing (Little's law: connections / throughput).
 * Open-loop rounds at a fixed rate (1,000/s by default: 10,000 servers heartbeating every 10 s, or
 * 1,000 every second) give the latency of a server that is not saturated.
 *
 * No disk writes: the store's `writes()` counter and the data directory's files, bytes and mtime are
 * read after the warm-up and after the last round; any change fails the bench.
 *
 * Run alone: node --expose-gc --import tsx bench/heartbeat-http.bench.ts
 *   [--servers 10000] [--rounds 5] [--round-ms 5000] [--warmup-ms 3000] [--connections 16]
 *   [--paced-rate 1000] [--paced-rounds 3] [--paced-connections 32] [--quick]
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { readdirSync, rmSync, statSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { connect, type AddressInfo, type Socket } from 'node:net';
import { cpus, tmpdir } from 'node:os';
import { monitorEventLoopDelay } from 'node:perf_hooks';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

const loadgenMode = process.argv.includes('--loadgen');

// ---- shared message types ------------------------------------------------------------------------

/** One registered server as the load generator needs it. */
interface Target {
  readonly id: string;
  readonly token: string;
  readonly regions: readonly { region_id: string; role: 'primary' | 'backup'; epoch: number }[];
  readonly peers: readonly string[];
}

/** A request for one round of load. */
interface RoundRequest {
  readonly type: 'round';
  readonly label: string;
  readonly port: number;
  readonly durationMs: number;
  readonly connections: number;
  /** Open loop at this many requests per second; closed loop when absent. */
  readonly ratePerSec?: number;
}

/** What one round measured, from the client's side. */
interface RoundResult {
  readonly type: 'result';
  readonly label: string;
  readonly requests: number;
  readonly errors: number;
  readonly firstError: string | null;
  readonly elapsedMs: number;
  readonly p50Us: number;
  readonly p99Us: number;
  readonly maxUs: number;
  readonly meanUs: number;
  readonly replyBytes: number;
  readonly requestBytes: number;
  readonly clientCpuMs: number;
  /** Open loop: requests that were due but never sent for want of an idle connection (overload). */
  readonly unsent: number;
  /** Open loop: requests that fell due while every connection was busy (the server fell behind). */
  readonly late: number;
}

// ---- the load generator (child process) ----------------------------------------------------------

/** Nearest-rank percentile of sorted samples. */
function rank(sorted: Float64Array, percent: number): number {
  if (sorted.length === 0) return Number.NaN;
  return sorted[Math.max(1, Math.ceil((percent * sorted.length) / 100)) - 1] ?? Number.NaN;
}

function runLoadgen(): void {
  let targets: Target[] = [];
  let nextTarget = 0;
  const seqs: number[] = [];
  const incarnation = `bench#${process.pid}`;
  const samples = new Float64Array(4_000_000);

  const request = (port: number): { text: string; bytes: number } => {
    const i = nextTarget;
    nextTarget = (nextTarget + 1) % targets.length;
    const t = targets[i] as Target;
    const seq = (seqs[i] = (seqs[i] ?? 0) + 1);
    const body = JSON.stringify({
      incarnation, seq, players: 12,
      regions: t.regions.map((r) => ({ region_id: r.region_id, role: r.role, epoch: r.epoch, applied_seq: seq })),
      peers: t.peers.map((server_id) => ({ server_id, silent_for_ms: 20 })),
    });
    const text = `POST /mesh/servers/${t.id}/heartbeat HTTP/1.1\r\nHost: 127.0.0.1:${port}\r\n` +
      `Authorization: Bearer ${t.token}\r\nContent-Type: application/json\r\nContent-Length: ${Buffer.byteLength(body)}\r\n\r\n${body}`;
    return { text, bytes: Buffer.byteLength(text) };
  };

  /**
   * One round. Closed loop (`ratePerSec` undefined): every connection sends its next request as soon
   * as the previous answer is in. Open loop (`ratePerSec`): requests fall due at a fixed rate and go
   * out on the next idle connection. Latency runs from the write to the socket to the end of the
   * answer: a request that fell due while every connection was busy is counted as late instead
   * (the server fell behind), since timing it from its due time would also charge the server with
   * the 1-4 ms granularity of this process's timer.
   */
  const round = async (r: RoundRequest): Promise<RoundResult> => {
    let count = 0;
    let errors = 0;
    let firstError: string | null = null;
    let replyBytes = 0;
    let requestBytes = 0;
    const cpu0 = process.cpuUsage();
    const started = process.hrtime.bigint();
    const endAt = started + BigInt(r.durationMs) * 1_000_000n;
    const paced = r.ratePerSec !== undefined;
    const intervalNs = paced ? 1e9 / (r.ratePerSec as number) : 0;
    const due: bigint[] = [];
    let scheduled = 0;
    let late = 0;
    const idle: { send: (dueAt: bigint) => void; close: () => void }[] = [];
    let open = 0;
    const sockets: Socket[] = [];
    let finish: () => void = () => {};
    let fail: (error: unknown) => void = () => {};
    const done = new Promise<void>((resolve, reject) => { finish = resolve; fail = reject; });

    const connection = () => {
      const socket = connect({ host: '127.0.0.1', port: r.port, noDelay: true });
      sockets.push(socket);
      open++;
      let buffer: Buffer = Buffer.alloc(0);
      let startAt = 0n;
      const send = (dueAt: bigint) => {
        const req = request(r.port);
        requestBytes = req.bytes;
        startAt = process.hrtime.bigint();
        socket.write(req.text);
      };
      const close = () => {
        socket.end();
        if (--open === 0) finish();
      };
      const next = () => {
        if (process.hrtime.bigint() >= endAt) {
          close();
        } else if (!paced) {
          send(0n);
        } else {
          const dueAt = due.shift();
          if (dueAt === undefined) {
            idle.push({ send, close });
          } else {
            // It fell due while every connection was busy: the server is falling behind.
            late++;
            send(dueAt);
          }
        }
      };
      socket.on('connect', next);
      socket.on('error', fail);
      socket.on('data', (chunk: Buffer) => {
        buffer = buffer.length === 0 ? chunk : Buffer.concat([buffer, chunk]);
        for (;;) {
          const headEnd = buffer.indexOf('\r\n\r\n');
          if (headEnd < 0) return;
          const head = buffer.toString('latin1', 0, headEnd);
          const length = /\r\ncontent-length:\s*(\d+)/i.exec(head);
          if (!length) return fail(new Error(`answer without Content-Length: ${head}`));
          const total = headEnd + 4 + Number(length[1]);
          if (buffer.length < total) return;
          const now = process.hrtime.bigint();
          if (count < samples.length) samples[count] = Number(now - startAt) / 1000;
          count++;
          replyBytes = total - headEnd - 4;
          if (Number(head.slice(9, 12)) !== 200) {
            errors++;
            firstError ??= `${head.slice(9, 12)}: ${buffer.toString('utf8', headEnd + 4, total)}`;
          }
          buffer = buffer.subarray(total);
          next();
        }
      });
    };

    let timer: NodeJS.Timeout | undefined;
    if (paced) {
      timer = setInterval(() => {
        const now = process.hrtime.bigint();
        const until = Math.floor(Number((now < endAt ? now : endAt) - started) / intervalNs);
        for (; scheduled < until; scheduled++) due.push(started + BigInt(Math.round(scheduled * intervalNs)));
        while (due.length > 0 && idle.length > 0) idle.pop()?.send(due.shift() as bigint);
        if (now >= endAt) {
          clearInterval(timer);
          // Idle connections wait for no answer, so nothing else would close them.
          for (const connection of idle.splice(0)) connection.close();
        }
      }, 1);
    }
    for (let i = 0; i < r.connections; i++) connection();
    try {
      await done;
    } finally {
      clearInterval(timer);
    }
    const elapsedMs = Number(process.hrtime.bigint() - started) / 1e6;
    const cpu = process.cpuUsage(cpu0);
    for (const socket of sockets) socket.destroy();
    const sorted = samples.slice(0, Math.min(count, samples.length)).sort();
    let sum = 0;
    for (const v of sorted) sum += v;
    return {
      type: 'result', label: r.label, requests: count, errors, firstError, elapsedMs,
      p50Us: rank(sorted, 50), p99Us: rank(sorted, 99), maxUs: sorted[sorted.length - 1] ?? Number.NaN,
      meanUs: sum / sorted.length, replyBytes, requestBytes, clientCpuMs: (cpu.user + cpu.system) / 1000,
      unsent: due.length, late,
    };
  };

  process.on('message', (message: { type: 'init' | 'round' | 'exit'; targets?: Target[] }) => {
    if (message.type === 'init') {
      targets = message.targets ?? [];
      process.send?.({ type: 'ready' });
    } else if (message.type === 'round') {
      round(message as unknown as RoundRequest).then(
        (result) => process.send?.(result),
        (error: unknown) => process.send?.({ type: 'failed', error: String(error) }),
      );
    } else if (message.type === 'exit') {
      process.disconnect?.();
    }
  });
}

// ---- the bench (parent process) ------------------------------------------------------------------

async function main(): Promise<number> {
  const { RunningMesh } = await import('../src/mesh-host.ts');
  const { LowdbStore } = await import('../src/store/lowdb-store.ts');
  const { createLogger } = await import('../src/logger.ts');
  const { createApp } = await import('../api/app.ts');
  const { hashToken, issueServerToken } = await import('../api/auth.ts');
  const { defaultMeshConfig } = await import('../mesh/base/config.ts');

  const q = quick();
  const serverCount = numberFlag('servers', q ? 1000 : 10_000);
  const rounds = numberFlag('rounds', q ? 1 : 5);
  const roundMs = numberFlag('round-ms', q ? 1000 : 5000);
  const warmupMs = numberFlag('warmup-ms', q ? 1000 : 3000);
  const connections = numberFlag('connections', 16);
  const pacedRate = numberFlag('paced-rate', q ? 500 : 1000);
  const pacedRounds = numberFlag('paced-rounds', q ? 1 : 3);
  const pacedConnections = numberFlag('paced-connections', 32);

  const dataDir = await mkdtemp(join(tmpdir(), 'mesh-bench-hb-'));
  // Also when set-up fails before the cleanup below is armed.
  process.once('exit', () => rmSync(dataDir, { recursive: true, force: true }));
  const store = new LowdbStore({ dataDir });
  const log = createLogger({ level: 'error' });
  const host = await RunningMesh.open({ config: defaultMeshConfig, clock: { now: () => Date.now() }, store, seed: 1, log });

  // Registration straight through the core, as POST /mesh/servers does it (token hash stored).
  const setupStart = Date.now();
  const tokens = new Map<string, string>();
  for (let i = 0; i < serverCount; i++) {
    const token = issueServerToken();
    const result = host.coordinator.registerServer({
      address: `10.${(i >> 16) & 255}.${(i >> 8) & 255}.${i & 255}:7777`, zone: `zone-${(i % 4) + 1}`, capacity: 4,
      name: `godot-${i + 1}`, credentialHash: hashToken(token),
    }, host.now());
    if (!result.ok) throw new Error(result.detail);
    tokens.set(result.value.serverId, token);
  }
  const regionCount = Math.ceil(serverCount / 3);
  const created = host.coordinator.createRegions(Array.from({ length: regionCount }, (_, i) => ({ players: 10 + (i % 50) })), host.now());
  if (!created.ok) throw new Error(created.detail);
  await host.durable(host.flush());
  const targets: Target[] = [...tokens].map(([id, token]) => ({
    id, token,
    regions: [...host.coordinator.hostedBy(id as never)].map((region) => ({
      region_id: region.id, role: region.primary === id ? 'primary' as const : 'backup' as const, epoch: region.announcedEpoch,
    })),
    peers: [...host.coordinator.peersOf(id as never)],
  }));
  const setupMs = Date.now() - setupStart;

  const errors: unknown[] = [];
  const app = createApp({ host, adminToken: undefined, logError: (error) => errors.push(error) });
  const service = createServer(app.callback());
  const bare = createServer(bareHandler());
  const koa = createServer(await minimalKoa());
  const servers: Record<Label, Server> = { service, bare, koa };
  for (const s of Object.values(servers)) {
    s.keepAliveTimeout = 60_000;
    s.listen(0, '127.0.0.1');
    await once(s, 'listening');
  }
  const portOf = (s: Server) => (s.address() as AddressInfo).port;

  const loadgen: ChildProcess = spawn(process.execPath, [...process.execArgv, fileURLToPath(import.meta.url), '--loadgen'], {
    stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
  });
  const reply = <T>(): Promise<T> => new Promise((resolve, reject) => {
    const onMessage = (m: { type: string; error?: string }) => {
      loadgen.off('exit', onExit);
      if (m.type === 'failed') reject(new Error(`load generator: ${m.error}`));
      else resolve(m as T);
    };
    const onExit = (code: number | null) => {
      loadgen.off('message', onMessage);
      reject(new Error(`load generator exited (${code})`));
    };
    loadgen.once('message', onMessage);
    loadgen.once('exit', onExit);
  });

  let exitCode = 0;
  try {
    loadgen.send({ type: 'init', targets });
    await reply<{ type: 'ready' }>();

    const runRound = async (label: Label, durationMs: number, ratePerSec?: number) => {
      collectGarbage();
      const loop = monitorEventLoopDelay({ resolution: 1 });
      loop.enable();
      const cpu0 = process.cpuUsage();
      const t0 = process.hrtime.bigint();
      const port = portOf(servers[label]);
      loadgen.send((ratePerSec === undefined
        ? { type: 'round', label, port, durationMs, connections }
        : { type: 'round', label, port, durationMs, connections: pacedConnections, ratePerSec }) satisfies RoundRequest);
      const result = await reply<RoundResult>();
      const wallMs = Number(process.hrtime.bigint() - t0) / 1e6;
      const cpu = process.cpuUsage(cpu0);
      loop.disable();
      return {
        ...result, serverCpu: (cpu.user + cpu.system) / 1000 / wallMs, clientCpu: result.clientCpuMs / result.elapsedMs,
        loopP99Ms: loop.percentile(99) / 1e6, loopMaxMs: loop.max / 1e6,
      };
    };

    // Warm-up: JIT, connection set-up, the first heartbeat of every server (round-robin).
    const heartbeatsFrom = Date.now();
    const warmups = [await runRound('service', warmupMs), await runRound('bare', warmupMs)];
    const before = { writes: store.writes(), durableSeq: store.durableSeq(), ...dirState(dataDir) };

    const measured: Awaited<ReturnType<typeof runRound>>[] = [];
    for (let i = 0; i < rounds; i++) {
      const order: Label[] = ['service', 'bare', 'koa'];
      if (i % 2 === 1) order.reverse();
      for (const label of order) measured.push(await runRound(label, roundMs));
    }
    const paced: Awaited<ReturnType<typeof runRound>>[] = [];
    for (let i = 0; i < pacedRounds; i++) {
      const order: Label[] = i % 2 === 0 ? ['service', 'bare'] : ['bare', 'service'];
      for (const label of order) paced.push(await runRound(label, roundMs, pacedRate));
    }
    await host.durable(host.flush());
    const after = { writes: store.writes(), durableSeq: store.durableSeq(), ...dirState(dataDir) };

    // Every server's heartbeats reached the core.
    let reached = 0;
    for (const id of tokens.keys()) {
      const last = host.coordinator.records().servers.get(id as never)?.detector.lastHeartbeatAtMs ?? 0;
      if (last >= heartbeatsFrom) reached++;
    }

    const all = [...warmups, ...measured, ...paced];
    const failedRequests = all.reduce((n, r) => n + r.errors, 0);
    const of = (label: string) => measured.filter((r) => r.label === label);
    const rate = (r: RoundResult) => (r.requests / r.elapsedMs) * 1000;
    const svc = of('service');
    const bar = of('bare');
    const svcRate = median(svc.map(rate));
    const bareRate = median(bar.map(rate));
    const koaRate = median(of('koa').map(rate));
    const ratio = svcRate / bareRate;
    const svcP50 = median(svc.map((r) => r.p50Us)) / 1000;
    const svcP99 = median(svc.map((r) => r.p99Us)) / 1000;
    const bareP50 = median(bar.map((r) => r.p50Us)) / 1000;
    const bareP99 = median(bar.map((r) => r.p99Us)) / 1000;
    const pacedOf = (label: string) => paced.filter((r) => r.label === label);
    const pacedP50 = (label: string) => median(pacedOf(label).map((r) => r.p50Us)) / 1000;
    const pacedP99 = (label: string) => median(pacedOf(label).map((r) => r.p99Us)) / 1000;
    const unsent = paced.reduce((n, r) => n + r.unsent + r.late, 0);
    const unchanged = after.writes === before.writes && after.files === before.files && after.size === before.size &&
      after.mtimeNs === before.mtimeNs && after.durableSeq === before.durableSeq;

    heading('Set-up');
    console.log(table(['quantity', 'value'], [
      ['registered servers (self-registered, token hash stored)', num(serverCount)],
      ['regions (primary + 2 backups)', num(regionCount)],
      ['set-up time (register, place, first write)', ms(setupMs)],
      ['closed loop: connections, one request in flight each', num(connections)],
      ['closed loop: rounds x duration per server (after 1 warm-up each)', `${rounds} x ${num(roundMs)} ms, alternating ABBA`],
      ['open loop: fixed rate, connections, rounds x duration per server', `${num(pacedRate)}/s, ${pacedConnections}, ${pacedRounds} x ${num(roundMs)} ms`],
      ['heartbeat request (bytes, headers + body)', num(svc[0]?.requestBytes ?? 0)],
      ['reply body bytes: service / bare', `${num(svc[0]?.replyBytes ?? 0)} / ${num(bar[0]?.replyBytes ?? 0)}`],
      ['cores', `${cpus().length} (server process and load generator on one each)`],
    ]));

    heading('Rounds');
    const roundName = (i: number) => i < warmups.length ? 'warm-up'
      : i < warmups.length + measured.length ? `closed ${Math.floor((i - warmups.length) / LABELS) + 1}`
        : `open ${Math.floor((i - warmups.length - measured.length) / 2) + 1}`;
    console.log(table(['round', 'server', 'requests', 'requests/s', 'p50', 'p99', 'max', 'loop delay p99 / max', 'server CPU', 'client CPU', 'non-200'],
      all.map((r, i) => [roundName(i), r.label,
        num(r.requests), num(rate(r)), ms(r.p50Us / 1000), ms(r.p99Us / 1000), ms(r.maxUs / 1000),
        `${ms(r.loopP99Ms)} / ${ms(r.loopMaxMs)}`, `${num(r.serverCpu * 100)}%`, `${num(r.clientCpu * 100)}%`, num(r.errors)])));
    console.log('\nLoop delay: how late a 1 ms timer fired in the server process (blocked event loop, GC, or the process ' +
      'waiting for a core); server CPU can exceed 100% with GC and libuv threads.');

    heading('Result (medians over the measured rounds)');
    console.log(table(['quantity', 'value', 'target', 'verdict'], [
      ['service heartbeats/s, saturated (POST /mesh/servers/{id}/heartbeat)', num(svcRate), '', ''],
      ['bare node:http requests/s, saturated (same body, JSON.parse, similar reply)', num(bareRate), '', ''],
      ['for reference: Koa + @koa/bodyparser, one middleware, same reply (requests/s)', `${num(koaRate)} (${num(koaRate / bareRate, 2)} of bare)`, '', ''],
      ['throughput ratio service / bare (reference: the compatibility path has no target)', num(ratio, 2), '', ''],
      [`service latency p50 / p99, saturated (${connections} in flight)`, `${ms(svcP50)} / ${ms(svcP99)}`, '', ''],
      [`bare latency p50 / p99, saturated (${connections} in flight)`, `${ms(bareP50)} / ${ms(bareP99)}`, '', ''],
      [`service latency p50 / p99 at ${num(pacedRate)} heartbeats/s`, `${ms(pacedP50('service'))} / ${ms(pacedP99('service'))}`, '', ''],
      [`bare latency p50 / p99 at ${num(pacedRate)} requests/s`, `${ms(pacedP50('bare'))} / ${ms(pacedP99('bare'))}`, '', ''],
      ['open loop: requests that found every connection busy, or never went out', num(unsent), '0', verdict(unsent === 0)],
      ['heartbeats answered non-200 (all rounds)', num(failedRequests), '0', verdict(failedRequests === 0)],
      ['servers whose heartbeats reached the core', `${num(reached)} of ${num(serverCount)}`, 'all', verdict(reached === serverCount)],
      ['unexpected app errors logged', num(errors.length), '0', verdict(errors.length === 0)],
    ]));

    heading('Heartbeats cause no disk writes');
    console.log(table(['after warm-up', 'after the last round', 'quantity'], [
      [num(before.writes), num(after.writes), 'store.writes() (physical writes attempted)'],
      [num(before.durableSeq), num(after.durableSeq), 'store.durableSeq()'],
      [String(before.files), String(after.files), 'files in the data directory (change logs, snapshot)'],
      [num(before.size), num(after.size), 'bytes in the data directory'],
      [before.mtime, after.mtime, 'latest mtime in the data directory'],
    ]));
    const totalHeartbeats = measured.filter((r) => r.label === 'service').reduce((n, r) => n + r.requests, 0);
    console.log(`\n${num(totalHeartbeats)} measured heartbeats, ${num(after.writes - before.writes)} writes: ` +
      `${unchanged ? 'no disk write' : 'DISK WRITES DURING HEARTBEATS'}.`);

    if (failedRequests > 0) console.error(`first non-200: ${all.find((r) => r.firstError)?.firstError}`);
    if (errors.length > 0) console.error('app errors:', errors.slice(0, 3));
    if (!unchanged || failedRequests > 0 || errors.length > 0 || reached !== serverCount) exitCode = 1;
  } finally {
    if (loadgen.connected) loadgen.send({ type: 'exit' });
    const exited = loadgen.exitCode === null && loadgen.signalCode === null ? once(loadgen, 'exit') : Promise.resolve();
    const timer = setTimeout(() => loadgen.kill('SIGKILL'), 5000);
    await exited;
    clearTimeout(timer);
    app.closeStreams();
    for (const s of Object.values(servers)) {
      s.closeAllConnections();
      s.close();
    }
    await host.close();
    await rm(dataDir, { recursive: true, force: true });
  }
  return exitCode;
}

/** The servers measured: the service, the bare node:http server, and Koa with nothing but a body parser. */
type Label = 'service' | 'bare' | 'koa';
/** Servers measured in each closed-loop round. */
const LABELS = 3;

/**
 * For reference, to split the gap between the service and the bare server into what the framework
 * costs and what the service adds: Koa with the service's JSON body middleware (api/body.ts) and
 * one middleware that answers what the bare server answers.
 */
async function minimalKoa() {
  const { default: Koa } = await import('koa');
  const { jsonBody } = await import('../api/body.ts');
  const app = new Koa();
  app.use(jsonBody({ limitBytes: 1024 * 1024 }));
  app.use((ctx) => {
    ctx.body = replyFor(ctx.path.split('/')[3] ?? '', (ctx.request as unknown as { body: HeartbeatBody }).body);
  });
  return app.callback();
}

/** What the bare server and the Koa reference read from a heartbeat body. */
interface HeartbeatBody {
  regions: { region_id: string; role: string; epoch: number }[];
  peers: { server_id: string }[];
}

/** A reply of the shape and size of a `HeartbeatResponse`, built from what the body claimed. */
function replyFor(id: string, body: HeartbeatBody) {
  const endpoint = (server_id: string) => ({ server_id, address: '10.0.0.1:7777' });
  return {
    server_id: id, status: 'alive', degraded_level: 'NORMAL', fidelity: 1, heartbeat_interval_ms: 1000,
    regions: body.regions.map((r) => ({
      region_id: r.region_id, role: r.role, epoch: r.epoch, primary: endpoint(id), backups: body.peers.map((p) => endpoint(p.server_id)),
      fidelity: 1, actions_pending: 0,
    })),
    demoted: [],
  };
}

/** The data directory as the file system sees it: its files, their bytes and the latest change. */
function dirState(dir: string): { files: number; size: number; mtimeNs: bigint; mtime: string } {
  let size = 0;
  let mtimeNs = 0n;
  const names = readdirSync(dir);
  for (const name of names) {
    const st = statSync(join(dir, name), { bigint: true });
    size += Number(st.size);
    if (st.mtimeNs > mtimeNs) mtimeNs = st.mtimeNs;
  }
  return { files: names.length, size, mtimeNs, mtime: new Date(Number(mtimeNs / 1_000_000n)).toISOString() };
}

/**
 * The bare server: reads the body, parses the JSON and answers a reply of the shape and size of
 * a `HeartbeatResponse`, built from what the body claimed, and writes it at once.
 */
function bareHandler(): (req: IncomingMessage, res: ServerResponse) => void {
  return (req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (chunk: Buffer) => chunks.push(chunk));
    req.on('end', () => {
      const body = JSON.parse(Buffer.concat(chunks).toString('utf8')) as HeartbeatBody;
      const text = JSON.stringify(replyFor((req.url ?? '').split('/')[3] ?? '', body));
      const headers = { 'Content-Type': 'application/json; charset=utf-8', 'Content-Length': Buffer.byteLength(text) };
      res.writeHead(200, headers);
      res.end(text);
    });
  };
}

// ---- output helpers (kept here so that this file depends on nothing else in bench/) -------------

/** A markdown table; every cell is already formatted text. */
function table(header: readonly string[], rows: readonly (readonly string[])[]): string {
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? '').length)));
  const line = (cells: readonly string[]) => `| ${cells.map((c, i) => c.padEnd(widths[i] ?? 0)).join(' | ')} |`;
  return [line(header), `|${widths.map((w) => '-'.repeat(w + 2)).join('|')}|`, ...rows.map(line)].join('\n');
}

const num = (value: number, decimals = 0): string => Number.isFinite(value)
  ? value.toLocaleString('en-US', { minimumFractionDigits: decimals, maximumFractionDigits: decimals }) : String(value);
const ms = (value: number): string => `${num(value, 1)} ms`;
const verdict = (met: boolean): string => (met ? 'met' : 'MISSED');
const heading = (text: string): void => console.log(`\n### ${text}\n`);
const quick = (): boolean => process.argv.includes('--quick');

/** `--name value` or `--name=value` as a number, with a default. */
function numberFlag(name: string, fallback: number): number {
  const args = process.argv.slice(2);
  const at = args.findIndex((a) => a === `--${name}` || a.startsWith(`--${name}=`));
  if (at < 0) return fallback;
  const raw = args[at]?.includes('=') ? args[at]?.slice(name.length + 3) : args[at + 1];
  const value = Number(raw);
  if (!Number.isFinite(value)) throw new Error(`--${name} needs a number, got ${raw}`);
  return value;
}

/** Median, as the lower middle sample (always a measured value). */
function median(values: readonly number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.max(0, Math.ceil(sorted.length / 2) - 1)] ?? Number.NaN;
}

/** A full collection between rounds (the runner starts benches with --expose-gc). */
function collectGarbage(): void {
  const gc = (globalThis as { gc?: () => void }).gc;
  gc?.();
  gc?.();
}

if (loadgenMode) runLoadgen();
else process.exitCode = await main();
