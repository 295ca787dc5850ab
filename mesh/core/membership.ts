/**
 * Who is alive: the per-tick observation of every server (observe, then act), failure declaration,
 * the return of a failed server, and the end of a graceful drain.
 */
import { raiseAlert, resolveAlert, setServerStatus, type CoreContext } from '../failover/context.ts';
import type { FailureReason } from '../effects/events.ts';
import type { Recovery } from '../failover/recovery.ts';
import { replicatesWith, type ServerRecord } from '../failover/topology.ts';
import type { ServerId } from '../base/types.ts';

/** Dedup key of the alert that covers the servers of a mass failure. */
export const massServerFailureKey = 'mass-server-failure';

/** Dedup key of the alert about one failed server. */
function serverFailedKey(server: ServerRecord): string {
  return `server-failed:${server.id}`;
}

/** A server just declared failed, as its alert describes it. */
interface Declared {
  readonly server: ServerRecord;
  readonly reason: FailureReason;
  readonly silentForMs: number;
}

/**
 * `zone-a: 1000, zone-b: 998`: how many of the declared servers each zone lost, the eight hardest
 * hit first, so that the message stays short whatever the number of zones.
 */
function perZone(declared: readonly Declared[]): string {
  const counts = new Map<string, number>();
  for (const { server } of declared) counts.set(server.zone, (counts.get(server.zone) ?? 0) + 1);
  const zones = [...counts].sort((a, b) => b[1] - a[1]);
  const listed = zones.slice(0, 8).map(([zone, n]) => `${zone}: ${n}`).join(', ');
  return zones.length > 8 ? `${listed} and ${zones.length - 8} more zones` : listed;
}

/**
 * True when an expected outage ending at `untilMs` (null: open ended; undefined: none) lasted until
 * `sinceMs` or later, so that a failure declared after `sinceMs` is explained by it.
 */
export function outageCovers(untilMs: number | null | undefined, sinceMs: number): boolean {
  return untilMs !== undefined && (untilMs === null || untilMs >= sinceMs);
}

/** Server life-cycle transitions driven by the failure detector. */
export class Membership {
  /** Failed servers that the open `mass-server-failure` alert covers (they have no alert of their own). */
  private readonly coveredByMassAlert = new Set<ServerId>();
  /** The server `observe` is judging, for the one peer predicate of the whole tick below. */
  private judged: ServerRecord | null = null;
  /** Whether a reporter replicates with the server being judged (no closure per server per tick). */
  private readonly replicatesWithJudged = (peer: ServerId): boolean => this.judged !== null && replicatesWith(this.judged, peer);
  /**
   * Outages someone announced on purpose (injected faults), per server: until when (null: open
   * ended). A failure they explain is not a false failover. Only the latest per server is kept.
   */
  private readonly expectedOutages = new Map<ServerId, number | null>();

  constructor(
    private readonly ctx: CoreContext,
    private readonly recovery: Recovery,
  ) {}

  /** Records that the servers are down on purpose until `untilMs` (null: until further notice). */
  expectOutage(serverIds: readonly ServerId[], untilMs: number | null): void {
    for (const id of serverIds) this.expectedOutages.set(id, untilMs);
  }

  /** Forgets every expected outage (a reset of the test mesh). */
  forgetExpectedOutages(): void {
    this.expectedOutages.clear();
  }

  /**
   * Judges every watched server. While the coordinator is in TILT (it stalled itself), a server that
   * would be failed is only marked suspect: the silence may be the coordinator's own. The servers
   * declared failed are alerted about together, once the judging is done; the phases of their
   * regions are refreshed by the recovery run that follows in the same tick.
   */
  observe(nowMs: number, tilted: boolean): void {
    const declared: Declared[] = [];
    for (const server of this.ctx.topology.servers.values()) {
      if (server.status !== 'alive' && server.status !== 'suspect') continue;
      // Judged again at the next tick: a timeout that would expire before then is declared now.
      this.judged = server;
      const verdict = server.detector.assess(nowMs, this.replicatesWithJudged, this.ctx.config.tickIntervalMs);
      if (verdict.state === 'alive') {
        // A suspect server cleared of suspicion is usable again: regions waiting for room retry.
        if (server.status === 'suspect') this.recovery.capacityChanged();
        setServerStatus(this.ctx, server, 'alive', nowMs);
      } else if (verdict.state === 'suspect' || tilted) {
        setServerStatus(this.ctx, server, 'suspect', nowMs);
      } else {
        declared.push(this.declare(server, verdict.reason, nowMs, false));
      }
    }
    this.judged = null;
    this.alertFailures(declared, nowMs);
  }

  /**
   * A server's session closed without a `leave`: evidence, not proof. A live server becomes
   * `suspect` at once (its peers are asked for news sooner); the next tick's judging fails it over
   * only when a replication peer confirms the silence (see `ServerDetector.sessionClosed`).
   */
  sessionClosed(server: ServerRecord, nowMs: number): void {
    if (server.status !== 'alive' && server.status !== 'suspect') return;
    server.detector.sessionClosed(nowMs);
    setServerStatus(this.ctx, server, 'suspect', nowMs);
  }

  /** Declares a server failed and hands its regions to recovery (outside a tick's judging). */
  declareFailed(server: ServerRecord, reason: FailureReason, nowMs: number): void {
    this.alertFailures([this.declare(server, reason, nowMs, true)], nowMs);
  }

  /**
   * A simulated server removed by a reset of the test mesh while it held replicas of regions that
   * stay: they are failed over as for a failure (`server_failure_detected` with reason `removed`,
   * failover records), but nothing failed, so no alert is raised and degraded mode counts nothing.
   */
  removeWithReplicas(server: ServerRecord, nowMs: number): void {
    this.declare(server, 'removed', nowMs, true);
  }

  /**
   * `refreshPhases`: false within a tick's judging, whose recovery run refreshes the phases of the
   * regions it takes over (see Recovery.serverFailed); true outside a tick, so that views show the
   * regions' new phases at once.
   */
  private declare(server: ServerRecord, reason: FailureReason, nowMs: number, refreshPhases: boolean): Declared {
    const lastHeartbeatAtMs = server.detector.lastHeartbeatAtMs;
    setServerStatus(this.ctx, server, 'failed', nowMs);
    // A removal is not a failure: degraded mode counts only servers that failed.
    if (reason !== 'removed') this.ctx.degraded.recordFailure(nowMs);
    this.ctx.outbox.emit({ type: 'server_failure_detected', serverId: server.id, lastHeartbeatAtMs, reason, seq: 0, atMs: nowMs });
    this.recovery.serverFailed(server, lastHeartbeatAtMs, nowMs, refreshPhases);
    return { server, reason, silentForMs: nowMs - lastHeartbeatAtMs };
  }

  /**
   * One alert per declared server, or, when more were declared at once than
   * `serverFailureAlertsPerTick`, one `mass-server-failure` alert that covers them all.
   */
  private alertFailures(declared: readonly Declared[], nowMs: number): void {
    if (declared.length <= this.ctx.config.serverFailureAlertsPerTick) {
      for (const { server, reason, silentForMs } of declared) {
        raiseAlert(this.ctx, {
          dedupKey: serverFailedKey(server), severity: 'warning', title: `Server ${server.id} failed`,
          message: `Server ${server.id} (zone ${server.zone}) was declared failed (${reason.replace('_', ' ')}); ` +
            `last heartbeat ${silentForMs} ms before detection. Its regions are being failed over.`,
          subject: { serverId: server.id },
        }, nowMs);
      }
      return;
    }
    for (const { server } of declared) this.coveredByMassAlert.add(server.id);
    raiseAlert(this.ctx, {
      dedupKey: massServerFailureKey, severity: 'critical', title: `${declared.length} servers failed at once`,
      message: `${declared.length} servers were declared failed together (${perZone(declared)}), among them ` +
        `${declared.slice(0, 5).map((d) => d.server.id).join(', ')}. Their regions are being failed over. ` +
        `${this.coveredByMassAlert.size} servers covered by this alert are still failed (GET /mesh/servers?status=failed).`,
    }, nowMs);
  }

  /**
   * A server is back or removed from the mesh (a reset of the test mesh): nothing about its failure
   * stays open, and the mass alert resolves with the last server it covers.
   */
  forgetFailure(server: ServerRecord, nowMs: number): void {
    resolveAlert(this.ctx, serverFailedKey(server), nowMs);
    if (this.coveredByMassAlert.delete(server.id) && this.coveredByMassAlert.size === 0) {
      resolveAlert(this.ctx, massServerFailureKey, nowMs);
    }
  }

  /**
   * After a restart: the failed servers that have no alert of their own are those the open
   * `mass-server-failure` alert covers (the alert book is persisted, this set is not).
   */
  rebuildAlertCoverage(nowMs: number): void {
    if (!this.ctx.alerts.isOpen(massServerFailureKey)) return;
    for (const server of this.ctx.topology.servers.values()) {
      if (server.status === 'failed' && !this.ctx.alerts.isOpen(serverFailedKey(server))) this.coveredByMassAlert.add(server.id);
    }
    if (this.coveredByMassAlert.size === 0) resolveAlert(this.ctx, massServerFailureKey, nowMs);
  }

  /**
   * A failed server heartbeats again. It holds no region any more (its claims are fenced) and
   * becomes spare capacity. If it never restarted and no fault was injected on it, declaring it
   * failed was a mistake, and the false failover is counted.
   */
  returned(server: ServerRecord, incarnation: string, nowMs: number): void {
    const sameProcess = server.incarnation !== null && server.incarnation === incarnation;
    if (sameProcess && !this.outageExpected(server.id, server.statusSinceMs - this.ctx.config.failureTimeoutMs)) {
      this.ctx.metrics.recordFalseFailover();
    }
    server.detector.restart(nowMs);
    setServerStatus(this.ctx, server, 'alive', nowMs);
    this.forgetFailure(server, nowMs);
    this.recovery.capacityChanged();
  }

  private outageExpected(serverId: ServerId, sinceMs: number): boolean {
    return outageCovers(this.expectedOutages.get(serverId), sinceMs);
  }

  /** Draining servers that host nothing any more have left. */
  finishDrains(nowMs: number): void {
    if (this.ctx.counts.statuses.draining === 0) return;
    for (const server of this.ctx.topology.servers.values()) {
      if (server.status === 'draining' && server.hosted.size === 0) {
        setServerStatus(this.ctx, server, 'left', nowMs);
      }
    }
  }
}
