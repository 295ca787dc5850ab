/**
 * Failure detection for one server: phi-accrual suspicion (Hayashibara et al., as in Akka and
 * Cassandra) followed by confirmation from the server's replication peers. A timeout short enough
 * to be fast would fail healthy servers over whenever a few heartbeats in a row are lost, so
 * suspicion only opens the door; a server is declared `failed` when
 *  1. phi of its coordinator heartbeats has reached `phiSuspectThreshold`, and
 *  2. a replication peer reports that it has not heard the server for `peerSilenceMs` counted from
 *     the last time anyone (the coordinator or any peer) saw it (`peer_confirmed`), or nobody at all
 *     has seen it for `failureTimeoutMs` (`timeout`, the seed's 5 s bound for servers with no
 *     reporting peer).
 * A server that only lost its link to the coordinator keeps being seen by its peers, so it stays
 * `suspect` and is never failed over.
 */
import type { MeshConfig } from '../base/config.ts';
import type { FailureReason } from '../effects/events.ts';
import type { ServerId } from '../base/types.ts';

/** The detector's judgement of one server at one instant. */
export type Verdict =
  | { readonly state: 'alive' }
  | { readonly state: 'suspect'; readonly phi: number }
  | { readonly state: 'failed'; readonly reason: FailureReason };

// The verdicts without a value are shared: every tick judges every server, most of them alive.
const alive: Verdict = Object.freeze({ state: 'alive' });
const peerConfirmed: Verdict = Object.freeze({ state: 'failed', reason: 'peer_confirmed' });
const timedOut: Verdict = Object.freeze({ state: 'failed', reason: 'timeout' });

/** The subset of MeshConfig the detector reads. */
export type DetectorConfig = Pick<
  MeshConfig,
  'heartbeatIntervalMs' | 'phiSuspectThreshold' | 'phiWindowSize' | 'phiMinStdDeviationMs' |
  'phiAcceptablePauseMs' | 'peerSilenceMs' | 'failureTimeoutMs' | 'sessionPeerSilenceMs'
>;

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

/**
 * The longest heartbeat inter-arrival interval the detector learns: one lost heartbeat (two
 * intervals) plus the acceptable pause. Under 1% loss a lost heartbeat is part of a link's rhythm,
 * and learning it makes phi tolerate the next one. Two or more heartbeats lost in a row, a stall or
 * a partition are outages: one such sample widens the window's deviation for the next
 * `phiWindowSize` heartbeats, most of all in a young window of a few samples, where a single 2.6 s
 * gap once delayed the detection of the server's crash to 4.5 s. Cassandra's detector leaves out
 * intervals above twice its 1 s gossip interval for the same reason.
 */
export function longestLearntIntervalMs(config: Pick<MeshConfig, 'heartbeatIntervalMs' | 'phiAcceptablePauseMs'>): number {
  return 2 * config.heartbeatIntervalMs + config.phiAcceptablePauseMs;
}

/** How many pseudo-samples of the expected interval a new detector's window starts with (even). */
export const bootstrapSamples = 10;

/** Detection state of one server. Mutated only through its methods. */
export class ServerDetector {
  private lastHeartbeatAt: number;
  /** False until the first heartbeat: the time before it is not an inter-arrival interval. */
  private heard = false;
  private readonly intervals: IntervalWindow;
  /**
   * Latest report per peer: who reported, when the report arrived, when the peer last heard the
   * server, and the generation it belongs to (only reports since the server's last heartbeat
   * count), one entry per index of four parallel arrays. A server has a handful of peers, so a
   * linear scan finds one; the arrays are what a mass failure's tick walks for thousands of servers
   * at once, and they are four small arrays instead of a hash table and an object per peer.
   * A heartbeat makes every report stale by starting a new generation instead of clearing them,
   * and a new report updates its peer's entry in place: the heartbeat path (every server, every
   * second, with a large long-lived heap) then allocates nothing here, which keeps young-generation
   * collections cheap. Entries of peers that stopped reporting (replicas move) are swept out when
   * they outnumber the fresh ones, so the arrays stay about the size of the current peer set.
   */
  private readonly reporters: ServerId[] = [];
  private readonly receivedAtMs: number[] = [];
  private readonly heardAtMs: number[] = [];
  private readonly reportGeneration: number[] = [];
  private generation = 0;
  /** Peers that reported in the current generation. */
  private freshReports = 0;
  /** When a player last reported the server unreachable (evidence for suspicion, never proof). */
  private playerReportAtMs = -Infinity;
  /** When the server's session last closed without a `leave` (evidence for suspicion, never proof). */
  private sessionClosedAtMs = -Infinity;
  /**
   * How many of the latest replies in a row asked for the regular interval, up to 2. An interval
   * is learnt only when the two replies before its end did: the server was then at the regular
   * cadence for the whole interval, not at one a reply asked for.
   */
  private regularReplies = 2;

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
   * Bootstrap, as Akka does, with samples either side of the expected interval; their spread is the
   * configured minimum deviation, the jitter a LAN shows, so that a server is judged from its first
   * heartbeat on as the window will judge it once it has learnt the server's rhythm. Akka adds one
   * pair; here {@link bootstrapSamples} samples weigh the expectation against the first real ones,
   * so that one lost heartbeat in a young window widens its deviation as it would in a window of a
   * dozen samples, not of three, which would make early-life detection slow. They are the oldest
   * samples, so the window has forgotten them once it has learnt `phiWindowSize` real intervals.
   */
  private bootstrap(): void {
    const expected = this.config.heartbeatIntervalMs;
    const spread = Math.min(this.config.phiMinStdDeviationMs, expected / 4);
    for (let i = 0; i < bootstrapSamples / 2; i++) {
      this.intervals.add(expected - spread);
      this.intervals.add(expected + spread);
    }
  }

  /** Time of the last heartbeat the coordinator received. */
  get lastHeartbeatAtMs(): number {
    return this.lastHeartbeatAt;
  }

  /**
   * Records a heartbeat arrival. Only a gap of at most {@link longestLearntIntervalMs} is learnt;
   * a longer one is an outage, not the server's rhythm, and is left out of the window so that it
   * does not blunt detection for the next `phiWindowSize` heartbeats.
   */
  heartbeat(nowMs: number): void {
    const interval = nowMs - this.lastHeartbeatAt;
    if (this.heard && this.regularReplies === 2 && interval > 0 && interval <= longestLearntIntervalMs(this.config)) {
      this.intervals.add(interval);
    }
    this.heard = true;
    this.lastHeartbeatAt = Math.max(this.lastHeartbeatAt, nowMs);
    this.nextGeneration();
  }

  /**
   * Records the interval the reply to the server's latest heartbeat asked for. Heartbeats asked for
   * sooner (a failover or a backup sync waits on the server) follow that request, not the server's
   * rhythm: learnt, they pulled the window's mean down and its deviation up, and a crash after them
   * was suspected up to 0.8 s later, or earlier, than after regular heartbeats. So intervals at a
   * requested cadence are kept out of the window, and phi judges every silence against the regular one.
   */
  asked(intervalMs: number): void {
    this.regularReplies = intervalMs === this.config.heartbeatIntervalMs ? Math.min(2, this.regularReplies + 1) : 0;
  }

  /** Records what a replication peer said: it last heard this server `silentForMs` ago. */
  peerReport(peer: ServerId, silentForMs: number, nowMs: number): void {
    let at = this.reporters.indexOf(peer);
    if (at === -1) {
      at = this.reporters.length;
      this.reporters.push(peer);
      this.freshReports += 1;
    } else if (this.reportGeneration[at] !== this.generation) {
      this.freshReports += 1;
    }
    this.receivedAtMs[at] = nowMs;
    this.heardAtMs[at] = nowMs - Math.max(0, silentForMs);
    this.reportGeneration[at] = this.generation;
  }

  /**
   * Records a player's report that it cannot reach this server. Until the server's next heartbeat,
   * a late heartbeat makes it `suspect` before phi says so, which asks its replication peers to
   * report sooner; only phi and a peer's silence or the timeout can still declare it failed.
   */
  playerReport(nowMs: number): void {
    this.playerReportAtMs = Math.max(this.playerReportAtMs, nowMs);
  }

  /**
   * Records that the server's session closed without a `leave`. Until its next heartbeat the server
   * is `suspect` whatever phi says, and a peer that reports it silent since before the close
   * (for `sessionPeerSilenceMs`) confirms the failure; a peer that still hears it clears nothing
   * but confirms nothing either (a network or coordinator hiccup), and the phi path goes on.
   */
  sessionClosed(nowMs: number): void {
    this.sessionClosedAtMs = Math.max(this.sessionClosedAtMs, nowMs);
  }

  /** True while the session closed after the server's last heartbeat. */
  get sessionLost(): boolean {
    return this.sessionClosedAtMs >= this.lastHeartbeatAt;
  }

  /** Forgets a peer that no longer replicates with this server. */
  forgetPeer(peer: ServerId): void {
    const at = this.reporters.indexOf(peer);
    if (at === -1) return;
    if (this.reportGeneration[at] === this.generation) this.freshReports -= 1;
    this.removeReport(at);
  }

  /** Removes the entry at `at` by moving the last entry into its place. */
  private removeReport(at: number): void {
    const last = this.reporters.length - 1;
    this.reporters[at] = this.reporters[last] as ServerId;
    this.receivedAtMs[at] = this.receivedAtMs[last] as number;
    this.heardAtMs[at] = this.heardAtMs[last] as number;
    this.reportGeneration[at] = this.reportGeneration[last] as number;
    this.reporters.pop();
    this.receivedAtMs.pop();
    this.heardAtMs.pop();
    this.reportGeneration.pop();
  }

  /** Restarts observation from `nowMs` (coordinator restart or the server's return). */
  restart(nowMs: number): void {
    this.lastHeartbeatAt = nowMs;
    this.heard = false;
    this.nextGeneration();
  }

  /** Number of peer reports held, stale ones included (for tests). */
  get peerReportCount(): number {
    return this.reporters.length;
  }

  /** Makes every report stale; first sweeps out those already stale if they outnumber the fresh. */
  private nextGeneration(): void {
    if (this.reporters.length > 2 * this.freshReports + 8) {
      for (let at = this.reporters.length - 1; at >= 0; at--) {
        if (this.reportGeneration[at] !== this.generation) this.removeReport(at);
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
    const sessionLost = this.sessionLost;
    if (!sessionLost && nowMs - this.lastHeartbeatAt <= this.config.heartbeatIntervalMs) return alive;
    const currentPhi = this.phi(nowMs);
    if (!sessionLost && currentPhi < this.config.phiSuspectThreshold) {
      return this.playerReportAtMs > this.lastHeartbeatAt ? { state: 'suspect', phi: currentPhi } : alive;
    }
    if (sessionLost && this.peerConfirmsSessionLoss(isPeer)) return peerConfirmed;
    // One pass over the current peers' reports: the latest instant anyone (the coordinator or a
    // current peer) saw the server, and the latest report of a current peer. A peer confirms the
    // failure when it reported a full silence window after that last sighting without hearing the
    // server; the latest report is the one that can, so comparing it alone is the same test.
    let lastSeen = this.lastHeartbeatAt;
    let latestReport = -Infinity;
    for (let at = 0; at < this.reporters.length; at++) {
      if (this.reportGeneration[at] !== this.generation) continue;
      const heardAtMs = this.heardAtMs[at] as number;
      const receivedAtMs = this.receivedAtMs[at] as number;
      // A report that raises neither maximum changes nothing, whoever sent it; the peer check walks
      // the server's regions, so it is made only for the reports that do.
      if ((heardAtMs <= lastSeen && receivedAtMs <= latestReport) || !isPeer(this.reporters[at] as ServerId)) continue;
      if (heardAtMs > lastSeen) lastSeen = heardAtMs;
      if (receivedAtMs > latestReport) latestReport = receivedAtMs;
    }
    if (latestReport - lastSeen >= this.config.peerSilenceMs) return peerConfirmed;
    if (nowMs + timeoutLeadMs - lastSeen >= this.config.failureTimeoutMs) return timedOut;
    return { state: 'suspect', phi: currentPhi };
  }

  /**
   * True when a current peer, in a report that arrived after the session closed, said it had not
   * heard the server since before the close, for at least `sessionPeerSilenceMs`: its link broke
   * when the session did, as the links of a dead process do. Reports sent before the close prove
   * nothing about it, and a peer that heard the server well after the close sees a live process.
   * "Since before the close" allows one confirmation window: the peer's sighting is dated from the
   * report's arrival, so it looks later than it was by the report's transit, and a close that
   * travelled faster would otherwise seem to follow it (tests/mesh/session-report-transit.test.ts).
   * A live server is still never confirmed this way: its peers keep hearing it.
   */
  private peerConfirmsSessionLoss(isPeer: (peer: ServerId) => boolean): boolean {
    const closedAt = this.sessionClosedAtMs;
    for (let at = 0; at < this.reporters.length; at++) {
      if (this.reportGeneration[at] !== this.generation) continue;
      const heardAtMs = this.heardAtMs[at] as number;
      const receivedAtMs = this.receivedAtMs[at] as number;
      if (receivedAtMs < closedAt || heardAtMs > closedAt + this.config.sessionPeerSilenceMs) continue;
      if (receivedAtMs - heardAtMs >= this.config.sessionPeerSilenceMs && isPeer(this.reporters[at] as ServerId)) return true;
    }
    return false;
  }
}
