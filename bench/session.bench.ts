/**
 * Server sessions (WebSocket) at 10,000 servers: what the service sustains and how fast it answers.
 *
 * The service: a RunningMesh on the system clock with the lowdb store in a temp directory (so that
 * failovers are written to disk), 10,000 servers (4 zones, capacity 4) registered straight through
 * the core with stored token hashes, 10,000 regions (a primary and two backups each), the real app
 * on `http.createServer` with `app.sessions.handleUpgrade`, and the ticker, started once every
 * session heartbeats (a server silent since its registration would be failed by the timeout while
 * the others connect); the bench checks that every server is alive and every region active before
 * it measures. The reference: a bare `ws` server in the same process that parses each JSON frame
 * and answers a reply of the same size (no auth, no validation, no core).
 *
 * The load: a separate process (this file with `--loadgen`) holds one `ws` client per server. Every
 * session heartbeats from its connect on at the interval its last reply or push asked for (1 s, or
 * 200 ms while a failover waits on it or it reports a silent peer), protocol-following (claims
 * taken from the last reply or push, peers reported heard, or silent since a crash), and times each
 * reply from the send of its heartbeat.
 *
 * 1. Paced: every session heartbeats once a second (10,000/s), spread evenly: p50/p99/p99.9 of the
 *    reply latency, and the service's RSS after a full GC with every session open.
 *    Then the same paced round with lease renewals: every session that is primary of a region also
 *    sends `renew` every `--renew-ms` (1,000 by default: the load process cannot send the default
 *    cadence's 10 per primary per second). The service's CPU over each round (process.cpuUsage)
 *    gives the cost of one renewal, scaled to the default cadence (sessionLeaseRenewalIntervalMs)
 *    with the bytes of a renew and its lease frame.
 * 2. Mass failure: during a paced round, 30% of the servers' sessions are cut (their processes
 *    "crash"), and the other sessions report them silent from then on. The coordinator fails them
 *    over (promotions written to disk, pushed to the sessions): the reply latency of the surviving
 *    sessions from the crash to 10 s after it, p99.9 and max. Target: p99.9 <= 100 ms. And what
 *    held the event loop over the round: its delay, the ticker's steps and the GC's pauses.
 * 3. Saturated: closed loop, every session sends its next heartbeat as soon as its reply is in;
 *    service and bare server alternate (ABAB), medians of heartbeats per second. The service's
 *    ticker is stopped during the bare rounds (its mesh hears nothing then, and failing 10,000
 *    silent servers in the same process would slow the bare server down) and started again once
 *    the sessions are back and heartbeat. Target: service /
 *    bare >= 0.75. Run on a fresh mesh so that the failover of step 2 does not change the work.
 *
 * Memory: RSS and where it is (V8 heap used and committed, external memory, the rest), with the
 * mesh built before any session connects and again with every session open.
 *
 * Run alone: node --expose-gc --import tsx bench/session.bench.ts [--servers 10000] [--round-ms 10000] [--renew-ms 1000]
 *   [--saturated-rounds 3] [--saturated-ms 5000] [--quick]
 *   [--memory-only] (stop after the memory readings) [--heap-snapshot file] (write one with every session open)
 *   [--fixed-interval] (every session heartbeats once a second whatever its replies ask for: the load without sooner heartbeats)
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { rmSync } from 'node:fs';
import { mkdtemp } from 'node:fs/promises';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { WebSocket, WebSocketServer } from 'ws';
import { booleanFlag, heading, memoryBreakdown, mib, ms, num, numberFlag, quick, stringFlag, table, verdict, type MemoryBreakdown } from './lib/report.ts';
import { median } from './lib/stats.ts';
import { LoopWatch, longMs, type Holds } from './lib/loop-watch.ts';
import { threadCpu, threadCpuSince } from './lib/thread-cpu.ts';

interface Target { readonly id: string; readonly token: string }
interface Claim { region_id: string; role: string; epoch: number; primary: { server_id: string } | null; backups: { server_id: string }[] }
interface RoundResult {
  readonly count: number; readonly errors: number; readonly latenciesMs: number[]; readonly elapsedMs: number;
  /** Lease renewals sent and answered, primaries renewing, and the WebSocket bytes both ways (frames with headers). */
  readonly renewals: { readonly sent: number; readonly answered: number; readonly primaries: number; readonly bytes: number };
  /** Heartbeats sent in each second of the round (more than one a session while replies ask for sooner ones). */
  readonly sentPerSecond: number[];
  /** Heartbeats not sent because the session already waited for 16 replies. */
  readonly skipped: number;
}

if (process.argv.includes('--loadgen')) runLoadgen();
else process.exitCode = await main();

// ---- the load generator (child process) ----------------------------------------------------------

function runLoadgen(): void {
  interface LoadSession {
    target: Target; socket: WebSocket; claims: Claim[]; sentAt: number[]; crashed: boolean;
    /** The interval the last reply or push asked for, and the millisecond (performance.now) of the next heartbeat. */
    intervalMs: number; dueMs: number;
  }
  const sessions: LoadSession[] = [];
  let heartbeatsSent = 0;
  let skipped = 0;
  const maxUnanswered = 16;
  let crashedAt = 0;
  const crashed = new Set<string>();
  let onReply: ((latencyMs: number, ok: boolean, i: number) => void) | null = null;
  const renewals = { sent: 0, answered: 0, primaries: 0, bytes: 0 };
  /** A frame's size on the wire: a client's frames carry a 4-byte mask (RFC 6455 5.2). */
  const wireBytes = (payload: number, masked: boolean) => payload + (payload < 126 ? 2 : 4) + (masked ? 4 : 0);

  const beat = (s: LoadSession): string => {
    const peers = new Set<string>();
    for (const c of s.claims) for (const e of [c.primary, ...c.backups]) if (e && e.server_id !== s.target.id) peers.add(e.server_id);
    const now = Date.now();
    return JSON.stringify({ type: 'heartbeat', body: {
      incarnation: `bench-${s.target.id}`, players: 10,
      regions: s.claims.map((c) => ({ region_id: c.region_id, role: c.role, epoch: c.epoch, applied_seq: 1 })),
      peers: [...peers].map((server_id) => ({ server_id, silent_for_ms: crashed.has(server_id) ? now - crashedAt : 0 })),
    } });
  };
  const send = (s: LoadSession) => {
    if (s.crashed || s.socket.readyState !== WebSocket.OPEN) return;
    // A game server's heartbeats that its coordinator cannot take queue in that server's process; here
    // 10,000 of them would queue in this one, until it runs out of memory. Past the bound, one is skipped.
    if (s.sentAt.length >= maxUnanswered) {
      skipped++;
      return;
    }
    s.sentAt.push(performance.now());
    s.socket.send(beat(s));
    heartbeatsSent++;
  };

  // Every session heartbeats at the interval its last reply or push asked for (1 s, or sooner while
  // a failover waits on it), as MeshSession does, from the end of its connect on, the first
  // heartbeats spread evenly over a second. A timing wheel of 1 ms slots finds the sessions due; a
  // slot may hold sessions rescheduled since, which are skipped. A closed-loop round takes the
  // pacing's place while it runs.
  const wheel: LoadSession[][] = Array.from({ length: 4096 }, () => []);
  let wheelAtMs = 0;
  const schedule = (s: LoadSession, dueMs: number) => {
    s.dueMs = Math.max(Math.ceil(dueMs), wheelAtMs + 1);
    wheel[s.dueMs % wheel.length]!.push(s);
  };
  let pacing: NodeJS.Timeout | null = null;
  const stopPacing = () => {
    if (pacing !== null) clearInterval(pacing);
    pacing = null;
  };
  const startPacing = () => {
    stopPacing();
    for (const slot of wheel) slot.length = 0;
    wheelAtMs = Math.floor(performance.now());
    sessions.forEach((s, i) => schedule(s, wheelAtMs + 1 + (i * 1000) / sessions.length));
    pacing = setInterval(() => {
      for (const now = Math.floor(performance.now()); wheelAtMs < now;) {
        wheelAtMs++;
        const slot = wheel[wheelAtMs % wheel.length]!;
        for (const s of slot.splice(0)) {
          if (s.dueMs !== wheelAtMs) continue;
          send(s);
          // From now, not from the slot: a load process that fell behind sends late, never in a burst.
          schedule(s, now + s.intervalMs);
        }
      }
    }, 1);
  };
  /** A reply or push asked for another interval: the next heartbeat moves (MeshSession's rule). */
  const fixedInterval = process.argv.includes('--fixed-interval');
  const follow = (s: LoadSession, intervalMs: number | undefined) => {
    if (intervalMs === undefined || intervalMs === s.intervalMs || fixedInterval) return;
    const lastMs = s.dueMs - s.intervalMs;
    s.intervalMs = intervalMs;
    if (pacing !== null) schedule(s, lastMs + intervalMs);
  };

  const roleChanged = (held: Claim[], given: Claim[]) =>
    given.some((r) => !held.some((h) => h.region_id === r.region_id && h.role === r.role && h.epoch === r.epoch));

  const connectAll = async (port: number, targets: Target[]) => {
    stopPacing();
    for (const s of sessions.splice(0)) s.socket.terminate();
    crashed.clear();
    for (let i = 0; i < targets.length; i += 200) {
      await Promise.all(targets.slice(i, i + 200).map((target) => new Promise<void>((resolve, reject) => {
        const socket = new WebSocket(`ws://127.0.0.1:${port}/mesh/servers/${target.id}/session`, ['mesh.v1'], {
          headers: { Authorization: `Bearer ${target.token}` }, perMessageDeflate: false,
        });
        const s: LoadSession = { target, socket, claims: [], sentAt: [], crashed: false, intervalMs: 1000, dueMs: 0 };
        const at = sessions.push(s) - 1;
        socket.on('open', () => resolve());
        socket.on('error', reject);
        socket.on('message', (data) => {
          const text = String(data);
          const frame = JSON.parse(text) as { type: string; body: { regions?: Claim[]; heartbeat_interval_ms?: number } };
          if (frame.type === 'lease') {
            renewals.answered++;
            renewals.bytes += wireBytes(text.length, false);
            return;
          }
          const promoted = frame.body.regions !== undefined && roleChanged(s.claims, frame.body.regions);
          if (frame.body.regions) s.claims = frame.body.regions;
          follow(s, frame.body.heartbeat_interval_ms);
          // A role change is acknowledged at once, as MeshSession does, not at the next interval.
          if (promoted && pacing !== null && !fixedInterval) schedule(s, performance.now());
          if (frame.type === 'heartbeat_reply' || frame.type === 'problem') {
            const sent = s.sentAt.shift();
            if (sent !== undefined) onReply?.(performance.now() - sent, frame.type === 'heartbeat_reply', at);
          }
        });
      })));
    }
    startPacing();
  };

  /**
   * The replies of `durationMs` of paced heartbeats, or of a closed loop (`closedLoop`: each session
   * sends its next heartbeat when its reply is in, instead of the pacing). With `renewMs`, every
   * session that is primary of a region also sends `renew` once per `renewMs`.
   */
  const round = (durationMs: number, closedLoop: boolean, crashAtMs: number | null, crashFraction: number, renewMs = 0): Promise<RoundResult> =>
    new Promise((resolve) => {
      Object.assign(renewals, { sent: 0, answered: 0, primaries: 0, bytes: 0 });
      const latenciesMs: number[] = [];
      let errors = 0;
      const started = performance.now();
      let stopped = false;
      const timers: NodeJS.Timeout[] = [];
      const sentPerSecond: number[] = [];
      const skippedBefore = skipped;
      let sentBefore = heartbeatsSent;
      timers.push(setInterval(() => {
        sentPerSecond.push(heartbeatsSent - sentBefore);
        sentBefore = heartbeatsSent;
      }, 1000));
      onReply = (latency, ok, i) => {
        const since = performance.now() - started;
        if (crashAtMs === null || (since >= crashAtMs && since <= crashAtMs + 10_000)) latenciesMs.push(latency);
        if (!ok) errors++;
        if (closedLoop && !stopped) send(sessions[i]!);
      };
      if (closedLoop) {
        stopPacing();
        for (const s of sessions) send(s);
      }
      if (renewMs > 0) {
        const primaries = sessions.filter((s) => s.claims.some((c) => c.role === 'primary'));
        renewals.primaries = primaries.length;
        const step = renewMs / primaries.length;
        let next = 0;
        timers.push(setInterval(() => {
          const due = Math.floor((performance.now() - started) / step);
          for (; next < due; next++) {
            const s = primaries[next % primaries.length]!;
            if (s.socket.readyState !== WebSocket.OPEN) continue;
            const text = `{"type":"renew","body":{"seq":${next}}}`;
            s.socket.send(text);
            renewals.sent++;
            renewals.bytes += wireBytes(text.length, true);
          }
        }, 1));
      }
      if (crashAtMs !== null) {
        timers.push(setTimeout(() => {
          crashedAt = Date.now();
          for (let i = 0; i < sessions.length * crashFraction; i++) {
            const s = sessions[Math.floor(i / crashFraction) % sessions.length]!;
            s.crashed = true;
            crashed.add(s.target.id);
            s.socket.terminate();
          }
        }, crashAtMs));
      }
      timers.push(setTimeout(() => {
        stopped = true;
        for (const t of timers) clearInterval(t);
        onReply = null;
        if (closedLoop) startPacing();
        resolve({ count: latenciesMs.length, errors, latenciesMs, elapsedMs: performance.now() - started, renewals: { ...renewals }, sentPerSecond,
          skipped: skipped - skippedBefore });
      }, durationMs));
    });

  // A bench that died (a crash, an out-of-memory abort) must not leave this process heartbeating.
  process.on('disconnect', () => process.exit(0));
  process.on('message', (m: { type: string; port: number; targets: Target[]; durationMs: number; closedLoop: boolean; crashAtMs: number | null; crashFraction: number; renewMs?: number }) => {
    const reply = (p: Promise<unknown>) => p.then((v) => process.send?.({ type: 'done', value: v }), (e: unknown) => process.send?.({ type: 'failed', error: String(e) }));
    if (m.type === 'connect') reply(connectAll(m.port, m.targets));
    else if (m.type === 'round') reply(round(m.durationMs, m.closedLoop, m.crashAtMs, m.crashFraction, m.renewMs));
    else if (m.type === 'exit') { stopPacing(); for (const s of sessions) s.socket.terminate(); process.disconnect?.(); }
  });
}

// ---- the bench (parent process) ------------------------------------------------------------------

async function main(): Promise<number> {
  const q = quick();
  const serverCount = numberFlag('servers', q ? 1000 : 10_000);
  const roundMs = numberFlag('round-ms', q ? 4000 : 10_000);
  const saturatedRounds = numberFlag('saturated-rounds', q ? 1 : 3);
  const saturatedMs = numberFlag('saturated-ms', q ? 2000 : 5000);
  // Every primary renewing every 100 ms (the default cadence) is more than one load process can
  // send here; a slower cadence gives the cost of one renewal, which is then scaled to the default.
  const renewMs = numberFlag('renew-ms', 1000);

  const child: ChildProcess = spawn(process.execPath, [...process.execArgv, fileURLToPath(import.meta.url), '--loadgen',
    ...(booleanFlag('fixed-interval') ? ['--fixed-interval'] : [])], { stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
  const ask = <T>(message: Record<string, unknown>): Promise<T> => new Promise((resolve, reject) => {
    child.once('message', (m: { type: string; value?: T; error?: string }) => (m.type === 'done' ? resolve(m.value as T) : reject(new Error(m.error))));
    child.send(message);
  });

  /**
   * Connects every session to the service, which then heartbeats at 1 Hz, and starts the service's
   * ticker once every server was heard within the last second: judged before, a server still waiting
   * for its session would be failed by the 5 s timeout since its registration (connecting 10,000
   * sessions takes seconds), and the bench would measure a mesh whose every region is unavailable.
   */
  const connectService = async (service: Service) => {
    await ask({ type: 'connect', port: service.port, targets: service.targets });
    await new Promise((resolve) => setTimeout(resolve, 1500));
    service.startTicker();
  };

  // Paced rounds and the mass failure on one mesh, saturated rounds on a fresh one.
  const first = await serviceWithMesh(serverCount);
  const meshOnly = await memoryBreakdown();
  await connectService(first);
  await ask<RoundResult>({ type: 'round', durationMs: 3000, closedLoop: false, crashAtMs: null, crashFraction: 0 });
  const healthy = first.host.coordinator.status(first.host.now());
  const cpuOf = async (renewMs: number) => {
    const before = process.cpuUsage();
    const threadsBefore = threadCpu();
    const started = performance.now();
    const result = await ask<RoundResult>({ type: 'round', durationMs: roundMs, closedLoop: false, crashAtMs: null, crashFraction: 0, renewMs });
    const wallMs = performance.now() - started;
    const used = process.cpuUsage(before);
    const threads = threadCpuSince(threadsBefore);
    return { result, cpuShare: (used.user + used.system) / 1000 / wallMs, mainShare: threads === null ? NaN : threads.mainMs / wallMs };
  };
  const { result: paced, cpuShare: pacedCpu, mainShare: pacedMain } = await cpuOf(0);
  const memory = await memoryBreakdown();
  const snapshotFile = stringFlag('heap-snapshot');
  if (snapshotFile !== undefined) (await import('node:v8')).writeHeapSnapshot(snapshotFile);
  if (booleanFlag('memory-only')) {
    child.send({ type: 'exit' });
    await first.close();
    printMemory(serverCount, healthy, meshOnly, memory, pacedRows(paced, pacedCpu, pacedMain));
    return isHealthy(healthy) ? 0 : 1;
  }
  const { result: renewing, cpuShare: renewingCpu } = await cpuOf(renewMs);
  first.watch.start();
  const failure = await ask<RoundResult>({ type: 'round', durationMs: 13_000, closedLoop: false, crashAtMs: 2000, crashFraction: 0.3 });
  const loop = first.watch.stop();
  const afterFailure = first.host.coordinator.status(first.host.now());
  const failovers = first.host.coordinator.metrics().failovers;
  await first.close();

  const second = await serviceWithMesh(serverCount);
  const bare = await bareServer(second.targets);
  const rates: Record<'service' | 'bare', number[]> = { service: [], bare: [] };
  for (let r = 0; r < saturatedRounds; r++) {
    for (const label of ['service', 'bare'] as const) {
      if (label === 'service') await connectService(second);
      else await ask({ type: 'connect', port: bare.port, targets: second.targets });
      const result = await ask<RoundResult>({ type: 'round', durationMs: saturatedMs, closedLoop: true, crashAtMs: null, crashFraction: 0 });
      rates[label].push((result.count / result.elapsedMs) * 1000);
      // While the bare server has the sessions, this mesh hears nothing and must not fail them in the same process.
      if (label === 'service') second.stopTicker();
    }
  }
  const saturatedFailed = second.host.coordinator.status(second.host.now()).servers.failed;
  child.send({ type: 'exit' });
  await second.close();
  bare.close();

  const ratio = median(rates.service) / median(rates.bare);
  const r = renewing.renewals;
  const perRenewalUs = ((renewingCpu - pacedCpu) * renewing.elapsedMs * 1000) / Math.max(1, r.answered);
  const bytesPerRenewal = r.bytes / Math.max(1, r.sent + r.answered) * 2;
  const { defaultMeshConfig } = await import('../mesh/base/config.ts');
  const atDefault = (r.primaries * 1000) / defaultMeshConfig.sessionLeaseRenewalIntervalMs;
  heading(`${num(serverCount)} sessions, ${num(serverCount)} regions, lowdb store`);
  console.log(table(['quantity', 'value', 'target'], [
    healthRow(healthy),
    ...pacedRows(paced, pacedCpu, pacedMain),
    ...memoryRows(meshOnly, memory),
    ['service CPU, share of one core: with renewals', `${num(renewingCpu * 100, 1)}%`, ''],
    [`lease renewals: primaries renewing every ${num(renewMs)} ms; renewals / s sent / answered`,
      `${num(r.primaries)}; ${num(r.sent / (renewing.elapsedMs / 1000))} / ${num(r.answered / (renewing.elapsedMs / 1000))}`, ''],
    ['one renewal: service CPU; bytes (renew + lease frames)', `${num(perRenewalUs, 1)} us; ${num(bytesPerRenewal)} B`, ''],
    [`at the default cadence (${num(defaultMeshConfig.sessionLeaseRenewalIntervalMs)} ms): renewals / s; share of one core; bytes / s`,
      `${num(atDefault)}; ${num((atDefault * perRenewalUs) / 1e4, 0)}%; ${num(atDefault * bytesPerRenewal / 1024)} KiB/s`, ''],
    ['paced 1 Hz with renewals: reply latency p99', ms(pct(renewing.latenciesMs, 99)), ''],
    ['30% of servers crash, after 10 s: servers failed; failovers completed / started; regions active / unavailable',
      `${num(afterFailure.servers.failed)}; ${num(failovers.completed)} / ${num(failovers.total)}; ` +
      `${num(afterFailure.regions.active)} / ${num(afterFailure.regions.unavailable)}`, ''],
    ['heartbeats / s sent in the mass-failure round: before the crash; the busiest second after it; skipped (16 unanswered)',
      `${num(median(failure.sentPerSecond.slice(0, 2)))}; ${num(Math.max(...failure.sentPerSecond.slice(2)))}; ${num(failure.skipped)}`, ''],
    ['reply latency during the mass failure (10 s): p99 / p99.9 / max', [99, 99.9, 100].map((p) => ms(pct(failure.latenciesMs, p))).join(' / '),
      `p99.9 <= 100 ms: ${verdict(pct(failure.latenciesMs, 99.9) <= 100)}`],
    ['mass-failure round (13 s, the crash at 2 s): event-loop delay p99 / max', `${ms(loop.delayP99Ms)} / ${ms(loop.delayMaxMs)}`, ''],
    [`ticker steps: longest; over ${longMs} ms; their time`, holdsText(loop.timed), ''],
    [`GC pauses: longest; over ${longMs} ms; their time`, holdsText(loop.gc), ''],
    ['saturated heartbeats / s: service / bare ws (medians)', `${num(median(rates.service))} / ${num(median(rates.bare))}`, ''],
    ['ratio service / bare', num(ratio, 2), `>= 0.75: ${verdict(ratio >= 0.75)}`],
    ['servers failed on the saturated rounds\' mesh', num(saturatedFailed), '0'],
    ['errors (problem answers)', num(paced.errors + failure.errors), '0'],
  ]));
  return paced.errors + failure.errors === 0 && isHealthy(healthy) && saturatedFailed === 0 ? 0 : 1;
}

type MeshStatus = ReturnType<Service['host']['coordinator']['status']>;

/** Every server alive and every region active: the state the paced rounds and the mass failure must start from. */
function isHealthy(status: MeshStatus): boolean {
  return status.servers.alive === status.servers.total && status.regions.active === status.regions.total;
}

function healthRow(status: MeshStatus): string[] {
  return ['mesh before measuring: servers alive; regions active (of each)',
    `${num(status.servers.alive)}; ${num(status.regions.active)} (${num(status.servers.total)}; ${num(status.regions.total)})`,
    `all: ${isHealthy(status) ? 'yes' : 'NO, the numbers below do not measure a healthy mesh'}`];
}

function holdsText(h: Holds): string {
  return `${ms(h.maxMs)}; ${num(h.long)} of ${num(h.count)}; ${num(h.totalMs / 1000, 2)} s`;
}

/** The q-th percentile of `values` (nearest rank). */
function pct(values: readonly number[], q: number): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.max(0, Math.ceil((q / 100) * sorted.length) - 1)] ?? NaN;
}

/** The paced round; a main thread near 100% is saturated (its replies queue), whatever the helpers (GC, compiler) take. */
function pacedRows(paced: RoundResult, cpuShare: number, mainShare: number): string[][] {
  return [
    ['paced 1 Hz: replies / s', num(paced.count / (paced.elapsedMs / 1000)), ''],
    ['paced 1 Hz: reply latency p50 / p99 / p99.9 / max', [50, 99, 99.9, 100].map((p) => ms(pct(paced.latenciesMs, p))).join(' / '), ''],
    ['service CPU, share of one core, paced 1 Hz: the process; its main thread', `${num(cpuShare * 100, 1)}%; ${num(mainShare * 100, 1)}%`, ''],
  ];
}

/** RSS with every session open against the target, and where the memory is, before the sessions and with them. */
function memoryRows(meshOnly: MemoryBreakdown, memory: MemoryBreakdown): string[][] {
  const where = (m: MemoryBreakdown) => `${mib(m.rss)}: heap ${mib(m.heapUsed)} used of ${mib(m.heapTotal)} ` +
    `(new space ${mib(m.spaces.new_space ?? 0)}, code ${mib(m.spaces.code_space ?? 0)}), external ${mib(m.external)}, ` +
    `other ${mib(m.rss - m.heapTotal - m.external)}`;
  return [
    ['RSS of the service with every session open (after GC)', mib(memory.rss), `<= 300 MB: ${verdict(memory.rss <= 300e6)}`],
    ['memory before the sessions connect (mesh, store, app)', where(meshOnly), ''],
    ['memory with every session open', where(memory), ''],
  ];
}

function printMemory(serverCount: number, healthy: MeshStatus, meshOnly: MemoryBreakdown, memory: MemoryBreakdown, paced: string[][]): void {
  heading(`${num(serverCount)} sessions, ${num(serverCount)} regions, lowdb store: memory only`);
  console.log(table(['quantity', 'value', 'target'], [healthRow(healthy), ...paced, ...memoryRows(meshOnly, memory)]));
}

/** The real service over a fresh mesh with `count` servers and as many regions; its ticker is not started. */
async function serviceWithMesh(count: number) {
  const { RunningMesh } = await import('../src/mesh-host.ts');
  const { LowdbStore } = await import('../src/store/lowdb-store.ts');
  const { createLogger } = await import('../src/logger.ts');
  const { createApp } = await import('../api/app.ts');
  const { hashToken } = await import('../api/auth.ts');
  const { defaultMeshConfig } = await import('../mesh/base/config.ts');
  const { startTicker } = await import('../src/ticker.ts');
  const dataDir = await mkdtemp(join(tmpdir(), 'mesh-bench-session-'));
  process.once('exit', () => rmSync(dataDir, { recursive: true, force: true }));
  const store = new LowdbStore({ dataDir });
  const host = await RunningMesh.open({ config: defaultMeshConfig, clock: { now: () => Date.now() }, store, seed: 1, log: createLogger({ level: 'error' }) });
  const targets: Target[] = [];
  for (let i = 0; i < count; i++) {
    const token = `bench-token-${i}-${'x'.repeat(24)}`;
    const made = host.coordinator.registerServer({ address: `10.0.${i >> 8}.${i & 255}:7777`, zone: `zone-${(i % 4) + 1}`, capacity: 4, credentialHash: hashToken(token) }, host.now());
    if (!made.ok) throw new Error(made.detail);
    targets.push({ id: made.value.serverId, token });
  }
  const created = host.coordinator.createRegions(Array.from({ length: count }, () => ({ players: 10 })), host.now());
  if (!created.ok) throw new Error(created.detail);
  await host.durable(host.flush());
  const app = createApp({ host, adminToken: undefined, logError: (error) => console.error(error) });
  const server = createServer(app.callback());
  server.on('upgrade', app.sessions.handleUpgrade);
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  let ticker: { stop(): void } | null = null;
  const watch = new LoopWatch();
  const stopTicker = () => {
    ticker?.stop();
    ticker = null;
  };
  return {
    host, targets, port: (server.address() as AddressInfo).port,
    close: async () => { stopTicker(); app.closeStreams(); server.close(); await host.close(); },
    /** The ticker runs only while the sessions heartbeat this mesh (see connectService). */
    startTicker: () => { ticker ??= startTicker(() => watch.timed(() => host.tick()), defaultMeshConfig.tickIntervalMs, (error) => console.error(error)); },
    stopTicker,
    /** Times the ticker's steps, the GC's pauses and the loop's delay while started. */
    watch,
  };
}

type Service = Awaited<ReturnType<typeof serviceWithMesh>>;

/** A bare `ws` server: parses each frame and answers a reply of the service's size. */
async function bareServer(targets: Target[]): Promise<{ port: number; close: () => void }> {
  const reply = JSON.stringify({ type: 'heartbeat_reply', body: { server_id: targets[0]?.id, status: 'alive', degraded_level: 'NORMAL', fidelity: 1,
    heartbeat_interval_ms: 1000, regions: Array.from({ length: 3 }, (_, i) => ({ region_id: `region-${i}`, role: 'backup', epoch: 1,
      primary: { server_id: 'srv-1', address: '10.0.0.1:7777' }, backups: [{ server_id: 'srv-2', address: '10.0.0.2:7777' }], fidelity: 1, actions_pending: 0 })),
    demoted: [], lease_ms: 300 } });
  const server: Server = createServer();
  const wss = new WebSocketServer({ server, perMessageDeflate: false, handleProtocols: () => 'mesh.v1' });
  wss.on('connection', (socket) => socket.on('message', (data) => {
    JSON.parse(String(data));
    socket.send(reply);
  }));
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  return { port: (server.address() as AddressInfo).port, close: () => { wss.close(); server.close(); } };
}
