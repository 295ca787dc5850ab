/**
 * Failure detection for one server: phi-accrual suspicion (Hayashibara et al., as in Akka and
 * Cassandra) followed by confirmation from the server's replication peers.
 *
 * A plain timeout cannot both detect a crash within 3 s and stay quiet under 1% heartbeat loss:
 * three heartbeats in a row are lost about once per 280 server-hours, so a timeout short enough to
 * be fast fails healthy servers over. Suspicion therefore only opens the door; a server is declared
 * `failed` when
 *  1. phi of its coordinator heartbeats has reached `phiSuspectThreshold`, and
 *  2. a replication peer reports that it has not heard the server for `peerSilenceMs` counted from
 *     the last time anyone (the coordinator or any peer) saw it (`peer_confirmed`), or nobody at all
 *     has seen it for `failureTimeoutMs` (`timeout`, the seed's 5 s bound for servers with no
 *     reporting peer).
 * A server that only lost its link to the coordinator keeps being seen by its peers, so it stays
 * `suspect` and is never failed over.
 */
import type { MeshConfig } from './config.ts';
import type { FailureReason } from './events.ts';
import type { ServerId } from './types.ts';

/** The detector's judgement of one server at one instant. */
export type Verdict =
  | { readonly state: 'alive' }
  | { readonly state: 'suspect'; readonly phi: number }
  | { readonly state: 'failed'; readonly reason: FailureReason };

/** The subset of MeshConfig the detector reads. */
export type DetectorConfig = Pick<
  MeshConfig,
  'heartbeatIntervalMs' | 'phiSuspectThreshold' | 'phiWindowSize' | 'phiMinStdDeviationMs' |
  'phiAcceptablePauseMs' | 'peerSilenceMs' | 'failureTimeoutMs'
>;

/**
 * What one peer last said about the server: when its report arrived and when it last heard it.
 * Only reports of the current `generation` (since the server's last heartbeat) count.
 */
interface PeerReport {
  receivedAtMs: number;
  heardAtMs: number;
  generation: number;
}

/**
 * Phi of a silence given the mean and standard deviation of past inter-arrival times, using the
 * logistic approximation of the normal CDF that Akka uses (accurate to 1e-3, no erf needed).
 */
export function phi(silenceMs: number, meanMs: number, stdDevMs: number): number {
  const y = (silenceMs - meanMs) / stdDevMs;
  const e = Math.exp(-y * (1.5976 + 0.070566 * y * y));
  if (silenceMs > meanMs) return -Math.log10(e / (1 + e));
  return -Math.log10(1 - 1 / (1 + e));
}

/** Sliding window of heartbeat inter-arrival times with O(1) mean and variance. */
export class IntervalWindow {
  private readonly samples: number[] = [];
  private next = 0;
  private sum = 0;
  private sumOfSquares = 0;

  constructor(private readonly capacity: number) {}

  /** Adds one interval, evicting the oldest when full. */
  add(intervalMs: number): void {
    if (this.samples.length < this.capacity) {
      this.samples.push(intervalMs);
    } else {
      const evicted = this.samples[this.next] ?? 0;
      this.sum -= evicted;
      this.sumOfSquares -= evicted * evicted;
      this.samples[this.next] = intervalMs;
      this.next = (this.next + 1) % this.capacity;
    }
    this.sum += intervalMs;
    this.sumOfSquares += intervalMs * intervalMs;
  }

  get size(): number {
    return this.samples.length;
  }

  mean(): number {
    return this.sum / this.samples.length;
  }

  stdDev(): number {
    const mean = this.mean();
    return Math.sqrt(Math.max(0, this.sumOfSquares / this.samples.length - mean * mean));
  }
}

/** Detection state of one server. Mutated only through its methods. */
export class ServerDetector {
  private lastHeartbeatAt: number;
  /** False until the first heartbeat: the time before it is not an inter-arrival interval. */
  private heard = false;
  private readonly intervals: IntervalWindow;
  /**
   * Latest report per peer. A heartbeat makes every report stale by starting a new generation
   * instead of clearing the map, and a new report updates its peer's record in place: the
   * heartbeat path (every server, every second, with a large long-lived heap) then allocates
   * nothing here, which keeps young-generation collections cheap. Reports of peers that stopped
   * reporting (replicas move) are swept out when they outnumber the fresh ones, so the map stays
   * about the size of the server's current peer set.
   */
  private readonly peerReports = new Map<ServerId, PeerReport>();
  private generation = 0;
  /** Peers that reported in the current generation. */
  private freshReports = 0;

  /**
   * @param startMs when observation starts; the server is treated as heard at this instant, which
   *   gives every server one full detection window after registration or a coordinator restart.
   */
  constructor(private readonly config: DetectorConfig, startMs: number) {
    this.lastHeartbeatAt = startMs;
    this.intervals = new IntervalWindow(config.phiWindowSize);
    this.bootstrap();
  }

  /**
   * Bootstrap, as Akka does, with two samples either side of the expected interval; their spread is
   * the configured minimum deviation, the jitter a LAN shows, so that a server is judged from its
   * first heartbeat on as the window will judge it once it has learnt the server's rhythm.
   */
  private bootstrap(): void {
    const expected = this.config.heartbeatIntervalMs;
    const spread = Math.min(this.config.phiMinStdDeviationMs, expected / 4);
    this.intervals.add(expected - spread);
    this.intervals.add(expected + spread);
  }

  /** Time of the last heartbeat the coordinator received. */
  get lastHeartbeatAtMs(): number {
    return this.lastHeartbeatAt;
  }

  /**
   * Records a heartbeat arrival. Gaps longer than the failure timeout are outages, not jitter, and
   * are left out of the window so that one outage does not blunt detection for the next hundred.
   */
  heartbeat(nowMs: number): void {
    const interval = nowMs - this.lastHeartbeatAt;
    if (this.heard && interval > 0 && interval < this.config.failureTimeoutMs) this.intervals.add(interval);
    this.heard = true;
    this.lastHeartbeatAt = Math.max(this.lastHeartbeatAt, nowMs);
    this.nextGeneration();
  }

  /** Records what a replication peer said: it last heard this server `silentForMs` ago. */
  peerReport(peer: ServerId, silentForMs: number, nowMs: number): void {
    const heardAtMs = nowMs - Math.max(0, silentForMs);
    const report = this.peerReports.get(peer);
    if (report === undefined || report.generation !== this.generation) this.freshReports += 1;
    if (report === undefined) {
      this.peerReports.set(peer, { receivedAtMs: nowMs, heardAtMs, generation: this.generation });
    } else {
      report.receivedAtMs = nowMs;
      report.heardAtMs = heardAtMs;
      report.generation = this.generation;
    }
  }

  /** Forgets a peer that no longer replicates with this server. */
  forgetPeer(peer: ServerId): void {
    this.peerReports.delete(peer);
  }

  /** Restarts observation from `nowMs` (coordinator restart or the server's return). */
  restart(nowMs: number): void {
    this.lastHeartbeatAt = nowMs;
    this.heard = false;
    this.nextGeneration();
  }

  /** Number of peer reports held, stale ones included (for tests). */
  get peerReportCount(): number {
    return this.peerReports.size;
  }

  /** Makes every report stale; first sweeps out those already stale if they outnumber the fresh. */
  private nextGeneration(): void {
    if (this.peerReports.size > 2 * this.freshReports + 8) {
      for (const [peer, report] of this.peerReports) {
        if (report.generation !== this.generation) this.peerReports.delete(peer);
      }
    }
    this.generation += 1;
    this.freshReports = 0;
  }

  /** Current phi of the coordinator's own heartbeat stream. */
  phi(nowMs: number): number {
    const mean = this.intervals.mean() + this.config.phiAcceptablePauseMs;
    const std = Math.max(this.intervals.stdDev(), this.config.phiMinStdDeviationMs);
    return phi(nowMs - this.lastHeartbeatAt, mean, std);
  }

  /**
   * Judges the server. `isPeer` says whether a reporter still replicates with this server; reports
   * from former peers are ignored because they no longer watch its replication stream.
   * `timeoutLeadMs` is how long until the caller judges again (its tick interval): a silence that
   * would reach `failureTimeoutMs` before then is declared now, so that the timeout is never
   * overshot by up to a tick.
   */
  assess(nowMs: number, isPeer: (peer: ServerId) => boolean, timeoutLeadMs = 0): Verdict {
    if (nowMs - this.lastHeartbeatAt <= this.config.heartbeatIntervalMs) return { state: 'alive' };
    const currentPhi = this.phi(nowMs);
    if (currentPhi < this.config.phiSuspectThreshold) return { state: 'alive' };
    // One pass over the current peers' reports: the latest instant anyone (the coordinator or a
    // current peer) saw the server, and the latest report of a current peer. A peer confirms the
    // failure when it reported a full silence window after that last sighting without hearing the
    // server; the latest report is the one that can, so comparing it alone is the same test.
    let lastSeen = this.lastHeartbeatAt;
    let latestReport = -Infinity;
    for (const [peer, report] of this.peerReports) {
      if (report.generation !== this.generation || !isPeer(peer)) continue;
      if (report.heardAtMs > lastSeen) lastSeen = report.heardAtMs;
      if (report.receivedAtMs > latestReport) latestReport = report.receivedAtMs;
    }
    if (latestReport - lastSeen >= this.config.peerSilenceMs) return { state: 'failed', reason: 'peer_confirmed' };
    if (nowMs + timeoutLeadMs - lastSeen >= this.config.failureTimeoutMs) return { state: 'failed', reason: 'timeout' };
    return { state: 'suspect', phi: currentPhi };
  }
}
