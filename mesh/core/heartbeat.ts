/**
 * One heartbeat in, one reply out. A heartbeat updates memory only (rule 1: it never causes a
 * write by itself); it records the server's claims (acknowledging promotions and new backups,
 * fencing stale primaries), its replicated progress and what it says about its peers. The reply is
 * the server's authoritative assignment: every region it hosts with its role, the announced epoch,
 * the primary to replicate from, the fidelity to run at and whether actions wait to be collected.
 * Anything the server claims that is not in the reply, it must drop.
 */
import { fidelityFor } from '../health/degraded-mode.ts';
import type { CoreContext } from '../failover/context.ts';
import type { Recovery } from '../failover/recovery.ts';
import type { Membership } from './membership.ts';
import { acknowledgesPromotion, confirmsBackup, isAnnounced } from '../failover/region-state.ts';
import { replicatesWith, type RegionRecord, type ServerRecord } from '../failover/topology.ts';
import type { DegradedLevel, RegionId, Role, ServerId, ServerStatus } from '../base/types.ts';

/** What a server believes about one region it hosts. */
export interface RegionClaim {
  readonly regionId: RegionId;
  readonly role: Role;
  readonly epoch: number;
  /** How much replicated state the server holds for the region. */
  readonly appliedSeq: number;
}

/** How long ago a server last heard one of its replication peers. */
export interface PeerSilence {
  readonly serverId: ServerId;
  readonly silentForMs: number;
}

/** Body of a heartbeat. */
export interface HeartbeatInput {
  /** Boot identifier; a new value means the process restarted and lost its state. */
  readonly incarnation: string;
  /**
   * Increases with every heartbeat of one incarnation. When given, a heartbeat that arrives after
   * a later one of the same incarnation (reordered on the network) is answered but not applied,
   * so stale claims never overwrite fresh ones.
   */
  readonly seq?: number;
  readonly players: number;
  readonly regions: readonly RegionClaim[];
  readonly peers: readonly PeerSilence[];
  /**
   * The lease the reply grants if it names the server primary: a session asks for its shorter
   * `sessionLeaseMs`, renewed often; default `primaryLeaseMs`, which is also the most granted.
   */
  readonly leaseMs?: number;
}

/** A server's address as other servers and players need it. */
export interface Endpoint {
  readonly serverId: ServerId;
  readonly address: string;
}

/** One region in a heartbeat reply. */
export interface RegionAssignment {
  readonly regionId: RegionId;
  readonly role: Role;
  readonly epoch: number;
  readonly primary: Endpoint | null;
  readonly backups: readonly Endpoint[];
  readonly fidelity: number;
  readonly actionsPending: number;
}

/** Reply to a heartbeat. */
export interface HeartbeatReply {
  readonly serverId: ServerId;
  readonly status: ServerStatus;
  readonly degradedLevel: DegradedLevel;
  readonly fidelity: number;
  /** When to send the next heartbeat: the regular interval, or sooner while something is pending. */
  readonly heartbeatIntervalMs: number;
  readonly regions: readonly RegionAssignment[];
  /** Regions the server claimed as primary but no longer leads: it must stop serving them. */
  readonly demoted: readonly { regionId: RegionId; epoch: number }[];
  /**
   * The lease this reply grants for every region it names the server primary of (0: none). The
   * server serves those regions' players until `leaseMs` after it sent the heartbeat this reply
   * answers, and no longer unless a later reply renews it (mesh/failover/leases.ts).
   */
  readonly leaseMs: number;
}

/** Applies one heartbeat to the core's state. */
export function applyHeartbeat(ctx: CoreContext, recovery: Recovery, membership: Membership, server: ServerRecord, input: HeartbeatInput, nowMs: number): { demoted: { regionId: RegionId; epoch: number }[]; reportedSilence: boolean } {
  if (isReordered(server, input)) return { demoted: [], reportedSilence: false };
  restartCheck(ctx, membership, server, input, nowMs);
  if (input.seq !== undefined) server.lastSeq = input.seq;
  server.detector.heartbeat(nowMs);
  if (server.status === 'failed') membership.returned(server, input.incarnation, nowMs);
  // Assigned only when changed: the record is long-lived and the string is new with every request.
  if (server.incarnation !== input.incarnation) {
    server.incarnation = input.incarnation;
    // Persisted with the next write (it tells a restarted server from a returning one), not on its own.
    ctx.topology.changedServers.add(server.id);
  }
  server.players = input.players;
  const demoted: { regionId: RegionId; epoch: number }[] = [];
  for (const claim of input.regions) applyClaim(ctx, recovery, server, claim, nowMs, demoted);
  let reportedSilence = false;
  for (const peer of input.peers) reportedSilence = applyPeer(ctx, server, peer, nowMs) || reportedSilence;
  return { demoted, reportedSilence };
}

/** True for a heartbeat older than one already applied from the same incarnation. */
function isReordered(server: ServerRecord, input: HeartbeatInput): boolean {
  return input.seq !== undefined && server.lastSeq !== null && server.incarnation === input.incarnation &&
    input.seq <= server.lastSeq;
}

/** A live server that comes back with a new incarnation has restarted: its regions are lost now. */
function restartCheck(ctx: CoreContext, membership: Membership, server: ServerRecord, input: HeartbeatInput,
  nowMs: number): void {
  const restarted = server.incarnation !== null && server.incarnation !== input.incarnation;
  // The old process is gone and the new one holds nothing: no lease of the old one can still serve.
  if (restarted) ctx.leases.forget(server.id);
  if (restarted && (server.status === 'alive' || server.status === 'suspect') && server.hosted.size > 0) {
    membership.declareFailed(server, 'restarted', nowMs);
  }
}

function applyClaim(ctx: CoreContext, recovery: Recovery, server: ServerRecord, claim: RegionClaim, nowMs: number,
  demoted: { regionId: RegionId; epoch: number }[]): void {
  const region = ctx.topology.regions.get(claim.regionId);
  if (!region) return;
  // Epochs never go backwards, whatever this coordinator's record says (a restored old data file),
  // and a primary at the region's epoch that is not the record's means that epoch was given twice.
  if (claim.epoch > region.epoch || (claim.role === 'primary' && claim.epoch === region.epoch && region.primary !== null &&
    region.primary !== server.id)) {
    recovery.ratchetEpoch(region, claim.epoch, nowMs);
  }
  const role = ctx.topology.roleOf(region, server.id);
  if (role === null) {
    if (region.phase === 'unavailable' && region.formerReplicas.includes(server.id) && server.status === 'alive' &&
      server.hosted.size < server.capacity && nowMs >= ctx.restartGraceUntilMs) {
      region.appliedSeq.set(server.id, claim.appliedSeq);
      recovery.readopt(region, server.id, nowMs);
      return;
    }
    // The reply will not list the region, so the server drops what it holds of it: it can no
    // longer bring the region back. A claim sent before it dropped the region and delivered later
    // (heartbeats are in flight for up to the network delay, longer when slow) must not re-adopt it.
    recovery.forgetFormerReplica(region, server.id);
    if (claim.role === 'primary') demoted.push({ regionId: region.id, epoch: region.announcedEpoch });
    return;
  }
  region.appliedSeq.set(server.id, Math.max(region.appliedSeq.get(server.id) ?? 0, claim.appliedSeq));
  if (role === 'primary' && acknowledgesPromotion(region, server.id, claim)) {
    recovery.primaryAcknowledged(region, nowMs);
  } else if (role === 'backup' && confirmsBackup(region, server.id, claim)) {
    recovery.backupConfirmed(region, server.id, nowMs);
  } else if (claim.role === 'primary' && role === 'backup') {
    demoted.push({ regionId: region.id, epoch: region.announcedEpoch });
  }
}

/** Records a peer's sighting; only current peers count. */
function applyPeer(ctx: CoreContext, reporter: ServerRecord, peer: PeerSilence, nowMs: number): boolean {
  const target = ctx.topology.servers.get(peer.serverId);
  if (target === undefined || !replicatesWith(reporter, peer.serverId)) return false;
  target.detector.peerReport(reporter.id, peer.silentForMs, nowMs);
  return peer.silentForMs >= ctx.config.peerSilenceMs;
}

/** Builds the reply from the announced (durable) state of every region the server hosts. */
export function buildReply(ctx: CoreContext, server: ServerRecord, demoted: { regionId: RegionId; epoch: number }[],
  pendingActions: (regionId: RegionId) => number, nowMs: number, reportedSilence = false, asked?: number): HeartbeatReply {
  const level = ctx.degraded.level;
  const regions: RegionAssignment[] = [];
  // A server that reports a silent peer is asked back soon: its next report may confirm a failure.
  let expedite = reportedSilence;
  for (const region of server.hosted) {
    // A region not yet durable does not exist for servers (epoch 0 is never announced).
    if (region.announcedEpoch === 0) {
      expedite = true;
      continue;
    }
    regions.push(assignmentFor(ctx, region, server.id, level, pendingActions));
    expedite ||= hasPending(ctx, region, server.id);
  }
  const heartbeatIntervalMs = ctx.cadence.intervalFor(server.id, expedite);
  server.detector.asked(heartbeatIntervalMs);
  const leaseMs = leaseFor(ctx, server, regions, nowMs, asked);
  if (leaseMs > 0) ctx.leases.grant(server.id, nowMs, leaseMs);
  return {
    serverId: server.id, status: server.status, degradedLevel: level, fidelity: fidelityFor(level, false),
    heartbeatIntervalMs, regions, demoted, leaseMs,
  };
}

/**
 * The lease a reply grants: `primaryLeaseMs` when it names the server primary of a region, none
 * otherwise. A draining server is granted none, so that its lease runs out and its regions can be
 * handed over without two primaries serving at once; nor is any server during the restart grace.
 */
function leaseFor(ctx: CoreContext, server: ServerRecord, regions: readonly RegionAssignment[], nowMs: number, asked?: number): number {
  if (!mayHoldLease(ctx, server, nowMs)) return 0;
  for (const region of regions) if (region.role === 'primary') return Math.min(asked ?? ctx.config.primaryLeaseMs, ctx.config.primaryLeaseMs);
  return 0;
}

/**
 * Renews a session's lease without a heartbeat (a small `renew` message, sent far more often):
 * grants `sessionLeaseMs` when the server is primary of an announced region and may hold a lease
 * (as {@link buildReply} would), 0 otherwise. Returns the length granted.
 */
export function renewLease(ctx: CoreContext, server: ServerRecord, nowMs: number): number {
  if (!mayHoldLease(ctx, server, nowMs)) return 0;
  for (const region of server.hosted) {
    if (region.primary !== server.id || !isAnnounced(region)) continue;
    ctx.leases.grant(server.id, nowMs, ctx.config.sessionLeaseMs);
    return ctx.config.sessionLeaseMs;
  }
  return 0;
}

/**
 * A lease may be granted to a live server, outside the restart grace: a server the restored records
 * name primary may not be the newest one (an operator restored an older data file), and a lease the
 * previous process granted to that newer one may still run (`CoreContext.restartGraceUntilMs`).
 */
function mayHoldLease(ctx: CoreContext, server: ServerRecord, nowMs: number): boolean {
  return (server.status === 'alive' || server.status === 'suspect') && nowMs >= ctx.restartGraceUntilMs;
}

/**
 * True when the region waits on this server (a promotion to acknowledge, a backup to confirm) or
 * on news about its primary (suspect or gone), which this server's next heartbeat may bring.
 */
function hasPending(ctx: CoreContext, region: RegionRecord, serverId: ServerId): boolean {
  if (region.primary === null) return true;
  if (region.primary === serverId) return !region.primaryAcked || !isAnnounced(region);
  if (region.syncing.has(serverId) || !isAnnounced(region)) return true;
  return ctx.topology.servers.get(region.primary)?.status !== 'alive';
}

function assignmentFor(ctx: CoreContext, region: RegionRecord, serverId: ServerId, level: DegradedLevel,
  pendingActions: (regionId: RegionId) => number): RegionAssignment {
  const announced = isAnnounced(region);
  const isPrimary = region.primary === serverId;
  // Until the new epoch is durable, the promoted backup is still told it is a backup.
  const role: Role = isPrimary && announced ? 'primary' : 'backup';
  return {
    regionId: region.id, role, epoch: region.announcedEpoch,
    primary: announced ? endpoint(ctx, region.primary) : null,
    backups: announced ? region.backups.map((b) => endpoint(ctx, b)).filter((e): e is Endpoint => e !== null) : [],
    fidelity: fidelityFor(level, region.critical),
    actionsPending: role === 'primary' ? pendingActions(region.id) : 0,
  };
}

/** Address of a server as peers and players need it. */
export function endpoint(ctx: CoreContext, id: ServerId | null): Endpoint | null {
  if (id === null) return null;
  const server = ctx.topology.servers.get(id);
  return server ? { serverId: id, address: server.address } : null;
}
