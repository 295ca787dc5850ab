/**
 * Who is alive: the per-tick observation of every server (observe, then act), failure declaration,
 * the return of a failed server, and the end of a graceful drain.
 */
import { raiseAlert, resolveAlert, setServerStatus, type CoreContext } from './context.ts';
import type { FailureReason } from './events.ts';
import type { Recovery } from './failover.ts';
import type { FaultRegistry } from './faults.ts';
import { replicatesWith, type ServerRecord } from './topology.ts';

/** Server life-cycle transitions driven by the failure detector. */
export class Membership {
  constructor(
    private readonly ctx: CoreContext,
    private readonly recovery: Recovery,
    private readonly faults: FaultRegistry,
  ) {}

  /**
   * Judges every watched server. While the coordinator is in TILT (it stalled itself), a server that
   * would be failed is only marked suspect: the silence may be the coordinator's own.
   */
  observe(nowMs: number, tilted: boolean): void {
    for (const server of this.ctx.topology.servers.values()) {
      if (server.status !== 'alive' && server.status !== 'suspect') continue;
      // Judged again at the next tick: a timeout that would expire before then is declared now.
      const verdict = server.detector.assess(nowMs, (peer) => replicatesWith(server, peer), this.ctx.config.tickIntervalMs);
      if (verdict.state === 'alive') {
        // A suspect server cleared of suspicion is usable again: regions waiting for room retry.
        if (server.status === 'suspect') this.recovery.capacityChanged();
        setServerStatus(this.ctx, server, 'alive', nowMs);
      } else if (verdict.state === 'suspect' || tilted) {
        setServerStatus(this.ctx, server, 'suspect', nowMs);
      } else {
        this.declareFailed(server, verdict.reason, nowMs);
      }
    }
  }

  /** Declares a server failed and hands its regions to recovery. */
  declareFailed(server: ServerRecord, reason: FailureReason, nowMs: number): void {
    const lastHeartbeatAtMs = server.detector.lastHeartbeatAtMs;
    setServerStatus(this.ctx, server, 'failed', nowMs);
    this.ctx.degraded.recordFailure(nowMs);
    this.ctx.outbox.emit({ type: 'server_failure_detected', serverId: server.id, lastHeartbeatAtMs, reason }, nowMs);
    raiseAlert(this.ctx, {
      dedupKey: `server-failed:${server.id}`, severity: 'warning', title: `Server ${server.id} failed`,
      message: `Server ${server.id} (zone ${server.zone}) was declared failed (${reason.replace('_', ' ')}); ` +
        `last heartbeat ${nowMs - lastHeartbeatAtMs} ms before detection. Its regions are being failed over.`,
      subject: { serverId: server.id },
    }, nowMs);
    this.recovery.serverFailed(server, lastHeartbeatAtMs, nowMs);
  }

  /**
   * A failed server heartbeats again. It holds no region any more (its claims are fenced) and
   * becomes spare capacity. If it never restarted and no fault was injected on it, declaring it
   * failed was a mistake, and the false failover is counted.
   */
  returned(server: ServerRecord, incarnation: string, nowMs: number): void {
    const sameProcess = server.incarnation !== null && server.incarnation === incarnation;
    if (sameProcess && !this.faults.injectedSince(server.id, server.statusSinceMs - this.ctx.config.failureTimeoutMs)) {
      this.ctx.metrics.recordFalseFailover();
    }
    server.detector.restart(nowMs);
    setServerStatus(this.ctx, server, 'alive', nowMs);
    resolveAlert(this.ctx, `server-failed:${server.id}`, nowMs);
    this.recovery.capacityChanged();
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
