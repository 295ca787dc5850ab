/**
 * Typed events the core emits. They mirror the seed's signals (server_failure_detected,
 * failover_initiated, failover_completed, backup_created, degraded_mode_activated,
 * degraded_mode_deactivated, administrator_alert, player_reconnected) and are published on
 * `GET /mesh/events`, logged, and asserted on by tests.
 */
import type { Alert } from '../health/alerts.ts';
import type { DegradedLevel, RegionId, ServerId, PlayerId, ServerStatus } from '../base/types.ts';

/** Why a server was declared failed. */
export type FailureReason = 'peer_confirmed' | 'timeout' | 'restarted' | 'removed';

/** Every event the core can emit, discriminated by `type`. */
export type MeshEventBody =
  | { type: 'server_failure_detected'; serverId: ServerId; lastHeartbeatAtMs: number; reason: FailureReason }
  | { type: 'server_status_changed'; serverId: ServerId; from: ServerStatus; to: ServerStatus }
  | { type: 'failover_initiated'; regionId: RegionId; failedServerId: ServerId | null; newPrimaryId: ServerId; epoch: number }
  | { type: 'failover_completed'; regionId: RegionId; newPrimaryId: ServerId; epoch: number; recoveryMs: number | null }
  | { type: 'failover_aborted'; regionId: RegionId; serverId: ServerId; epoch: number; reason: string }
  | { type: 'backup_created'; regionId: RegionId; backupServerId: ServerId }
  | { type: 'region_phase_changed'; regionId: RegionId; from: string; to: string }
  | { type: 'degraded_mode_activated'; level: DegradedLevel; previous: DegradedLevel; reason: string }
  | { type: 'degraded_mode_deactivated'; level: DegradedLevel; previous: DegradedLevel }
  | { type: 'administrator_alert'; alert: Alert }
  | { type: 'player_reconnected'; regionId: RegionId; playerId: PlayerId; serverId: ServerId }
  | { type: 'actions_expired'; regionId: RegionId; count: number };

/** An event with its position in the stream and the virtual or real time it happened at. */
export type MeshEvent = MeshEventBody & { readonly seq: number; readonly atMs: number };

/**
 * An event as the core builds it: a fresh literal that already holds `seq` (0, numbered by
 * `Outbox.emit`) and `atMs`, last, so that the published JSON keeps its order. The literal has
 * its final shape from the start: completing it afterwards cost a map transition and a property
 * store per event, and a mass failure's tick emits some 15,000 events.
 */
export type NewMeshEvent = MeshEventBody & { readonly seq: 0; readonly atMs: number };

/**
 * The id an event is published under: `<boot>.<seq>`. `seq` alone is not unique across restarts
 * (events are published before they are durable, and a restart numbers on from the last durable
 * `seq`), so it is qualified by the boot id of the coordinator's process, new at every start.
 */
export function eventId(bootId: string, seq: number): string {
  return `${bootId}.${seq}`;
}

/** Names of every event type, for filters and docs. */
export type MeshEventType = MeshEventBody['type'];
