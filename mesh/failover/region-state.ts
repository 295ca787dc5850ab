/**
 * The failover state machine of one region: its states, the events that move it, and the
 * transition table of ARCHITECTURE.md as data. The state is derived from the region's facts (its
 * primary, whether that primary acknowledged, whether its epoch is announced, its confirmed
 * backups), so it cannot drift from them; the region's public `phase` is that state as servers and
 * operators see it, stored with the time it was entered (context.ts `refreshPhase`). What happens
 * in each state is decided by one function per state in recovery.ts, in the style of Redis
 * Sentinel's `sentinelFailoverStateMachine`. tests/mesh/region-state.test.ts keeps this table and
 * ARCHITECTURE.md equal, and checks that simulated failures take no transition outside it.
 */
import type { RegionPhase } from '../base/types.ts';
import { confirmedBackupCount, type RegionRecord } from './topology.ts';

/**
 * Where a region stands:
 * - `active`: an acknowledged primary and every backup confirmed.
 * - `under_replicated`: an acknowledged primary, fewer confirmed backups than its target.
 * - `awaiting_promotion`: no primary; a confirmed backup can be promoted.
 * - `awaiting_announcement`: a backup was promoted under a new epoch that is not durable yet, so
 *   servers are not told (rule 2); the promotion's deadline runs.
 * - `awaiting_ack`: the new epoch is announced; the new primary has not acknowledged it yet.
 * - `unavailable`: no primary and no backup holding the state.
 */
export type FailoverState =
  | 'active' | 'under_replicated' | 'awaiting_promotion' | 'awaiting_announcement' | 'awaiting_ack' | 'unavailable';

/** What moves a region from one state to another, named as in the table. */
export type FailoverEvent =
  | 'replica_lost' | 'backup_drained' | 'promote' | 'give_up' | 'epoch_durable' | 'primary_ack' | 'ack_timeout'
  | 'backup_assigned' | 'backup_confirmed' | 'sync_timeout' | 'replica_returns' | 'epoch_ratchet' | 'backup_released'
  | 'hand_off';

/** One row of the transition table. */
export interface Transition {
  readonly state: FailoverState;
  readonly event: FailoverEvent;
  /** The condition under which this row applies, in words ('-' when always). */
  readonly guard: string;
  readonly next: FailoverState;
  /** What the core does on the way, in words. */
  readonly effect: string;
}

const row = (state: FailoverState, event: FailoverEvent, guard: string, next: FailoverState, effect: string): Transition =>
  ({ state, event, guard, next, effect });

/**
 * Every transition a region can take (recovery.ts carries them out). Rows with the same state and
 * event differ in their guard. A region that loses a replica (`replica_lost`) may lose its last
 * confirmed one, which is why several states lead to `unavailable`.
 */
export const transitions: readonly Transition[] = [
  row('active', 'replica_lost', 'the primary; a confirmed backup is left', 'awaiting_promotion', 'remember the lost primary; drop syncing backups'),
  row('active', 'replica_lost', 'the primary; no confirmed backup is left', 'unavailable', 'remember the lost primary and who held the region'),
  row('active', 'replica_lost', 'a backup', 'under_replicated', 'remember who held the region'),
  row('active', 'backup_drained', 'a backup leaves gracefully', 'under_replicated', 'remove the backup'),
  row('active', 'backup_drained', 'a backup leaves gracefully; the confirmed ones left still meet the target', 'active', 'remove the backup'),
  row('active', 'promote', 'the primary drains; its last lease is over (a draining server is granted none)', 'awaiting_announcement', 'epoch + 1; hold the announcement; start the ack deadline'),
  row('active', 'hand_off', 'a planned hand-off to a confirmed backup (rebalancing)', 'awaiting_promotion', 'the old primary becomes a confirmed backup (no later lease covers the region); fence: its lease end + drift margin'),
  row('awaiting_promotion', 'promote', 'a planned hand-off; the old primary\'s lease is over; the planned backup (or, if it left, the best one) has a free transition slot', 'awaiting_announcement', 'epoch + 1; hold the announcement; start the ack deadline; no failover record'),
  row('active', 'replica_lost', 'a backup; the confirmed ones left still meet the target (a planned move\'s extra backup)', 'active', 'remember who held the region'),
  row('active', 'backup_assigned', 'a planned move copies the region to its target first', 'active', 'add a syncing backup beyond the target with a sync deadline'),
  row('active', 'backup_confirmed', 'it reports the primary\'s state (a planned move\'s extra backup)', 'active', 'publish backup_created'),
  row('active', 'sync_timeout', 'a planned move\'s extra backup did not confirm in time', 'active', 'remove it; the move is abandoned'),
  row('active', 'backup_released', 'a planned move is done or abandoned with a backup beyond the target', 'active', 'remove the surplus backup'),
  row('under_replicated', 'replica_lost', 'the primary; a confirmed backup is left', 'awaiting_promotion', 'remember the lost primary; drop syncing backups'),
  row('under_replicated', 'replica_lost', 'the primary; no confirmed backup is left', 'unavailable', 'remember the lost primary and who held the region'),
  row('under_replicated', 'replica_lost', 'a backup', 'under_replicated', 'remember who held the region (if it was confirmed)'),
  row('under_replicated', 'backup_drained', 'a backup leaves gracefully', 'under_replicated', 'remove the backup'),
  row('under_replicated', 'promote', 'the primary drains; its last lease is over (a draining server is granted none)', 'awaiting_announcement', 'epoch + 1; hold the announcement; start the ack deadline'),
  row('under_replicated', 'backup_assigned', 'a server has room and the tick has budget', 'under_replicated', 'add a syncing backup with a sync deadline'),
  row('under_replicated', 'backup_confirmed', 'it reports the primary\'s state; backups still missing', 'under_replicated', 'publish backup_created'),
  row('under_replicated', 'backup_confirmed', 'it reports the primary\'s state; the last one missing', 'active', 'publish backup_created'),
  row('under_replicated', 'sync_timeout', 'a syncing backup did not confirm in time', 'under_replicated', 'remove it; assign another'),
  row('awaiting_promotion', 'promote', 'the lost primary\'s lease is over; a healthy confirmed backup with a free transition slot', 'awaiting_announcement', 'epoch + 1; hold the announcement; start the ack deadline; open the failover record'),
  row('awaiting_promotion', 'replica_lost', 'a confirmed backup is left', 'awaiting_promotion', 'remember who held the region'),
  row('awaiting_promotion', 'replica_lost', 'no confirmed backup is left', 'unavailable', 'remember who held the region'),
  row('awaiting_promotion', 'backup_drained', 'a backup leaves gracefully; a confirmed backup is left', 'awaiting_promotion', 'remove the backup'),
  row('awaiting_promotion', 'backup_drained', 'a backup leaves gracefully; it was the last confirmed one', 'unavailable', 'remove the backup (its copy of the state leaves with it)'),
  row('awaiting_announcement', 'epoch_durable', '-', 'awaiting_ack', 'tell the new primary (heartbeat replies carry the new epoch)'),
  row('awaiting_announcement', 'replica_lost', 'the new primary; a confirmed backup is left', 'awaiting_promotion', 'drop syncing backups'),
  row('awaiting_announcement', 'replica_lost', 'the new primary; no confirmed backup is left', 'unavailable', 'remember who held the region'),
  row('awaiting_announcement', 'replica_lost', 'a backup', 'awaiting_announcement', 'remember who held the region'),
  row('awaiting_announcement', 'ack_timeout', 'a confirmed backup is left', 'awaiting_promotion', 'publish failover_aborted; alert; try the next backup'),
  row('awaiting_announcement', 'ack_timeout', 'no confirmed backup is left', 'unavailable', 'publish failover_aborted; alert'),
  row('awaiting_ack', 'primary_ack', 'its heartbeat claims primary at the announced epoch; every backup confirmed', 'active', 'complete the failover record; publish failover_completed'),
  row('awaiting_ack', 'primary_ack', 'its heartbeat claims primary at the announced epoch; backups missing', 'under_replicated', 'complete the failover record; publish failover_completed'),
  row('awaiting_ack', 'replica_lost', 'the new primary; a confirmed backup is left', 'awaiting_promotion', 'drop syncing backups'),
  row('awaiting_ack', 'replica_lost', 'the new primary; no confirmed backup is left', 'unavailable', 'remember who held the region'),
  row('awaiting_ack', 'replica_lost', 'a backup', 'awaiting_ack', 'remember who held the region'),
  row('awaiting_ack', 'ack_timeout', 'a confirmed backup is left', 'awaiting_promotion', 'publish failover_aborted; alert; try the next backup'),
  row('awaiting_ack', 'ack_timeout', 'no confirmed backup is left', 'unavailable', 'publish failover_aborted; alert'),
  row('unavailable', 'give_up', 'no backup may become promotable', 'unavailable', 'fail the failover record; alert (critical)'),
  row('unavailable', 'replica_returns', 'a former replica heartbeats with the region and has room; the lost primary\'s lease is over', 'awaiting_announcement', 'epoch + 1; it becomes the primary'),
  row('unavailable', 'replica_returns', 'a former replica heartbeats with the region and has room; the lost primary\'s lease may still run', 'awaiting_promotion', 'it becomes a confirmed backup, promoted once the lease is over'),
  row('active', 'epoch_ratchet', 'a server claims an epoch above the region\'s, or primary at its epoch without being the named primary; a primary is named', 'awaiting_promotion', 'epoch := the highest claim, announced; the named primary becomes a confirmed backup; a promotion under that epoch + 1 follows'),
  row('under_replicated', 'epoch_ratchet', 'a server claims an epoch above the region\'s, or primary at its epoch without being the named primary; a primary is named', 'awaiting_promotion', 'epoch := the highest claim, announced; the named primary becomes a confirmed backup; a promotion under that epoch + 1 follows'),
  row('awaiting_announcement', 'epoch_ratchet', 'a server claims an epoch above the region\'s, or primary at its epoch without being the named primary; a primary is named', 'awaiting_promotion', 'epoch := the highest claim, announced; the named primary becomes a confirmed backup; a promotion under that epoch + 1 follows'),
  row('awaiting_ack', 'epoch_ratchet', 'a server claims an epoch above the region\'s, or primary at its epoch without being the named primary; a primary is named', 'awaiting_promotion', 'epoch := the highest claim, announced; the named primary becomes a confirmed backup; a promotion under that epoch + 1 follows'),
  row('awaiting_promotion', 'epoch_ratchet', 'a server claims an epoch above the region\'s; no primary', 'awaiting_promotion', 'epoch := the claim, announced'),
  row('unavailable', 'epoch_ratchet', 'a server claims an epoch above the region\'s; no primary', 'unavailable', 'epoch := the claim, announced'),
];

/**
 * The announced-epoch rule: servers and players are told a region's epoch only once it is durable
 * (rule 2), so a promotion counts for them only when the region's epoch is its announced one.
 */
export function isAnnounced(region: RegionRecord): boolean {
  return region.announcedEpoch === region.epoch;
}

/** What a server's heartbeat says about one region it holds (the guards below read it). */
export interface Claim {
  readonly role: 'primary' | 'backup';
  readonly epoch: number;
  readonly appliedSeq: number;
}

/** Guard of `primary_ack`: the promoted server claims primary at the region's announced epoch. */
export function acknowledgesPromotion(region: RegionRecord, serverId: RegionRecord['primary'], claim: Claim): boolean {
  return region.primary === serverId && claim.role === 'primary' && !region.primaryAcked && claim.epoch === region.epoch &&
    isAnnounced(region);
}

/**
 * Guard of `backup_confirmed`: a syncing backup claims backup at the announced epoch and holds at
 * least what the primary held when it was assigned.
 */
export function confirmsBackup(region: RegionRecord, serverId: NonNullable<RegionRecord['primary']>, claim: Claim): boolean {
  return region.syncing.has(serverId) && claim.role === 'backup' && claim.epoch === region.announcedEpoch &&
    claim.appliedSeq >= (region.syncTarget.get(serverId) ?? 0);
}

/** Everything up to `epoch` is durable: the region may announce it (never beyond its own epoch). */
export function announce(region: RegionRecord, epoch: number): void {
  if (region.announcedEpoch < epoch) region.announcedEpoch = Math.min(epoch, region.epoch);
}

/** The state a region's facts put it in. */
export function stateOf(region: RegionRecord): FailoverState {
  if (region.primary === null) return confirmedBackupCount(region) > 0 ? 'awaiting_promotion' : 'unavailable';
  if (!region.primaryAcked) return isAnnounced(region) ? 'awaiting_ack' : 'awaiting_announcement';
  return confirmedBackupCount(region) >= region.backupTarget ? 'active' : 'under_replicated';
}

/** The public phase of each state: a promotion in progress is `failing_over` until acknowledged. */
export const phaseOfState: Readonly<Record<FailoverState, RegionPhase>> = {
  active: 'active', under_replicated: 'under_replicated', awaiting_promotion: 'failing_over',
  awaiting_announcement: 'failing_over', awaiting_ack: 'failing_over', unavailable: 'unavailable',
};

/** The phase a region's replicas put it in. */
export function phaseOf(region: RegionRecord): RegionPhase {
  return phaseOfState[stateOf(region)];
}

/** Observer of every transition (tests only; the core runs without one). */
export type TransitionTrace = (region: RegionRecord, from: FailoverState, event: FailoverEvent, to: FailoverState) => void;
