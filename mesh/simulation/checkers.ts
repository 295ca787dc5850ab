/**
 * Checkers of the simulation, separate from the workloads that drive it (ARCHITECTURE.md, "Time and the
 * simulator"). They only read: the coordinator's state, the simulated servers' beliefs and what the
 * core was told and answered (through `observeCore`). Each returns or collects plain sentences
 * naming the region, server, epoch and virtual time involved, so a failing property says what broke.
 *
 * - `SafetyChecker`: after every step. At most one primary per region per epoch (as the
 *   coordinator records it, as it announces it, and as the servers believe it); epochs never
 *   decrease; a server claiming primary with an old epoch is answered demoted; the phase and status
 *   counters match the records; buffered actions neither lost nor duplicated; buffer bounds.
 * - `livenessProblems`: after the faults heal and the mesh settles. Every recoverable region has an
 *   acknowledged primary and its full confirmed backups wherever capacity allows, and the servers
 *   agree; a region is left unavailable only when no live server still holds its state.
 */
import { Coordinator } from '../core/coordinator.ts';
import { phaseOf } from '../failover/region-state.ts';
import type { FailoverRecord } from '../health/failover-metrics.ts';
import type { HeartbeatInput, HeartbeatReply } from '../core/heartbeat.ts';
import { confirmedBackups, isUsable, replicasOf, type RegionRecord } from '../failover/topology.ts';
import type { RegionId, RegionPhase, Role, ServerId, ServerStatus } from '../base/types.ts';
import type { SimulatedFleet } from './fleet.ts';
import type { CoreObserver } from './scenario.ts';

const actionKey = (regionId: RegionId, playerId: string, seq: number) => `${regionId}/${playerId}/${seq}`;

/** What one server believes about one region. */
export interface Belief {
  readonly serverId: ServerId;
  readonly regionId: RegionId;
  readonly role: Role;
  readonly epoch: number;
}

/** region -> epoch -> the one server that may lead it. */
class PrimaryLedger {
  private readonly byRegion = new Map<RegionId, Map<number, ServerId>>();

  /** Records `primary` for (region, epoch); returns the other server if one was recorded before. */
  claim(regionId: RegionId, epoch: number, primary: ServerId): ServerId | null {
    let epochs = this.byRegion.get(regionId);
    if (!epochs) this.byRegion.set(regionId, (epochs = new Map()));
    const earlier = epochs.get(epoch);
    if (earlier === undefined) epochs.set(epoch, primary);
    return earlier !== undefined && earlier !== primary ? earlier : null;
  }
}

interface RegionSeen { epoch: number; announced: number; primary: ServerId | null }

/**
 * Kinds of violation a test may declare known (a reported, unfixed bug): they are collected in
 * `known` instead of `violations`, so that they do not hide the other invariants.
 */
export type KnownKind = 'stale-phase' | 'over-capacity';

/** Safety invariants, checked after every step and on every heartbeat. */
export class SafetyChecker {
  readonly violations: string[] = [];
  /**
   * Regions served again after every server holding their state was lost (kept apart from
   * `violations` so that a known bug of this kind does not hide the other invariants).
   */
  readonly lostState: string[] = [];
  /** Per coordinator lifetime: what it recorded (a restart may forget what was never durable). */
  private recorded = new PrimaryLedger();
  private seen = new Map<RegionId, RegionSeen>();
  /** Announced (durable) primaries and epochs, and what servers believed: kept across restarts. */
  private announced = new PrimaryLedger();
  private readonly believed = new PrimaryLedger();
  private readonly maxAnnounced = new Map<RegionId, number>();
  private readonly lineage = new Lineage();
  /** The highest epoch each holding (a server's continuous hold of a region) was seen with. */
  private tokens = new Map<string, number>();
  readonly accepted = new Set<string>();
  readonly handedOut = new Map<string, number>();
  readonly acknowledged = new Set<string>();
  readonly expiredKeys = new Set<string>();
  private durable = { accepted: new Set<string>(), acknowledged: new Set<string>(), expired: new Set<string>() };
  /** With a simulated store: what each write in flight makes durable, as of when it took the changes. */
  private writes: SafetyChecker['durable'][] = [];
  private steps = 0;
  /** Violations of the kinds declared known, by kind. */
  readonly known: Record<KnownKind, string[]> = { 'stale-phase': [], 'over-capacity': [] };

  /**
   * @param core the coordinator now (the model-based test swaps it on restart)
   * @param fleet the simulated fleet, if any (its servers' beliefs and the ground truth of state)
   */
  constructor(private readonly core: () => Coordinator, private readonly fleet: () => SimulatedFleet | null = () => null,
    private readonly knownKinds: readonly KnownKind[] = []) {}

  private fail(nowMs: number, message: string, kind?: KnownKind): void {
    const list = kind !== undefined && this.knownKinds.includes(kind) ? this.known[kind] : this.violations;
    if (list.length < 20) list.push(`t=${nowMs}ms: ${message}`);
  }

  /** Every check that reads state; call after every tick and command. */
  afterStep(nowMs: number): void {
    this.steps++;
    this.checkRegions(nowMs);
    this.checkCounts(nowMs);
    const fleet = this.fleet();
    if (fleet) {
      this.checkBeliefs(fleetBeliefs(fleet), nowMs);
      this.checkFencingTokens(fleet, nowMs);
      for (const problem of this.lineage.update(this.core(), fleet, nowMs)) if (this.lostState.length < 20) this.lostState.push(problem);
    }
    this.checkActions(nowMs);
  }

  /**
   * Fencing tokens never go back: the epoch a server holds for a region, for as long as it holds it
   * (one holding), never decreases, across coordinator restarts and restores of older states.
   */
  private checkFencingTokens(fleet: SimulatedFleet, nowMs: number): void {
    const still = new Map<string, number>();
    for (const sim of fleet.servers.values()) {
      for (const held of sim.regions.values()) {
        const before = this.tokens.get(held.holding);
        if (before !== undefined && held.epoch < before) this.fail(nowMs, `${sim.id} holds ${held.holding} at epoch ${held.epoch}, down from ${before}`);
        still.set(held.holding, Math.max(before ?? 0, held.epoch));
      }
    }
    this.tokens = still;
  }

  /** Servers' beliefs: two servers must never believe they lead one region at one epoch. */
  checkBeliefs(beliefs: Iterable<Belief>, nowMs: number): void {
    for (const b of beliefs) {
      if (b.role !== 'primary') continue;
      const other = this.believed.claim(b.regionId, b.epoch, b.serverId);
      if (other !== null) this.fail(nowMs, `${other} and ${b.serverId} both believe they lead ${b.regionId} at epoch ${b.epoch}`);
    }
  }

  /**
   * A write completed: what it took is durable (with a simulated store, as of when it took the
   * changes); without one, everything so far (the model-based test's group commit completed).
   */
  persisted(): void {
    this.durable = this.writes.shift() ?? this.snapshot();
  }

  /** A write took the core's changes (simulated store): it makes durable what was done by now. */
  writeStarted(): void {
    this.writes.push(this.snapshot());
  }

  /** A write failed: the next one carries its records and takes everything since. */
  writeFailed(): void {
    this.writes.shift();
  }

  /** Acknowledged and expired actions as of the last durable write (keys `region/player/seq`). */
  durableFates(): { readonly acknowledged: ReadonlySet<string>; readonly expired: ReadonlySet<string> } {
    return this.durable;
  }

  private snapshot(): SafetyChecker['durable'] {
    return { accepted: new Set(this.accepted), acknowledged: new Set(this.acknowledged), expired: new Set(this.expiredKeys) };
  }

  /**
   * The coordinator restarted from its last persisted state: what it decided but never made durable
   * may be gone (accepted actions never confirmed, acknowledgements and expiries not yet written),
   * so its per-lifetime records restart; announced epochs must still never go back. `restored`:
   * an operator restored an older state on purpose, which takes back what came after it (its
   * actions included); then the restored buffer is the new baseline, and the epochs are guarded by
   * the servers' fencing tokens (the ratchet), not by the restored records.
   */
  coordinatorRestarted(nowMs: number, restored = false): void {
    this.writes = [];
    this.recorded = new PrimaryLedger();
    this.seen = new Map();
    if (restored) {
      this.restartFromRestore();
      return;
    }
    this.accepted.clear();
    for (const key of this.durable.accepted) this.accepted.add(key);
    this.acknowledged.clear();
    for (const key of this.durable.acknowledged) this.acknowledged.add(key);
    this.expiredKeys.clear();
    for (const key of this.durable.expired) this.expiredKeys.add(key);
    this.handedOut.clear();
    for (const region of this.core().records().regions.values()) {
      const highest = this.maxAnnounced.get(region.id) ?? 0;
      if (region.epoch < highest) this.fail(nowMs, `after a restart ${region.id} is at epoch ${region.epoch}, below the announced ${highest}`);
    }
  }

  private restartFromRestore(): void {
    // What the coordinator announced after the restored state is forgotten with it; what servers
    // took from those announcements stays in `believed`, and their fencing tokens ratchet it.
    this.announced = new PrimaryLedger();
    this.maxAnnounced.clear();
    this.accepted.clear();
    for (const region of Coordinator.partsForTests(this.core()).buffer.toJSON().regions) {
      for (const player of region.players) for (const a of player.actions) this.accepted.add(actionKey(region.regionId, player.playerId, a.seq));
    }
    this.acknowledged.clear();
    this.expiredKeys.clear();
    this.handedOut.clear();
    this.persisted();
  }

  private checkRegions(nowMs: number): void {
    for (const region of this.core().records().regions.values()) {
      const id = region.id;
      const before = this.seen.get(id);
      if (before === undefined || before.epoch !== region.epoch || before.announced !== region.announcedEpoch || before.primary !== region.primary) {
        if (before && region.epoch < before.epoch) this.fail(nowMs, `epoch of ${id} went back from ${before.epoch} to ${region.epoch}`);
        if (before && region.announcedEpoch < before.announced) {
          this.fail(nowMs, `announced epoch of ${id} went back from ${before.announced} to ${region.announcedEpoch}`);
        }
        if (region.announcedEpoch > region.epoch) this.fail(nowMs, `${id} announces epoch ${region.announcedEpoch} above its epoch ${region.epoch}`);
        this.seen.set(id, { epoch: region.epoch, announced: region.announcedEpoch, primary: region.primary });
        // Rule 2 covers the epochs the coordinator chose (announced with their primary once durable);
        // an epoch ratcheted up from a server's claim is announced at once and learnt again after a crash.
        if (region.primary !== null && region.announcedEpoch === region.epoch) {
          this.maxAnnounced.set(id, Math.max(this.maxAnnounced.get(id) ?? 0, region.announcedEpoch));
        }
        if (region.primary !== null) this.recordPrimary(region, region.primary, nowMs);
      }
      this.checkShape(region, nowMs);
    }
  }

  private recordPrimary(region: RegionRecord, primary: ServerId, nowMs: number): void {
    const other = this.recorded.claim(region.id, region.epoch, primary);
    if (other !== null) this.fail(nowMs, `two primaries recorded for ${region.id} at epoch ${region.epoch}: ${other} and ${primary}`);
    if (region.announcedEpoch !== region.epoch) return;
    const announcedOther = this.announced.claim(region.id, region.epoch, primary);
    if (announcedOther !== null) this.fail(nowMs, `two primaries announced for ${region.id} at epoch ${region.epoch}: ${announcedOther} and ${primary}`);
  }

  private checkShape(region: RegionRecord, nowMs: number): void {
    const { topology } = Coordinator.partsForTests(this.core());
    const { backups, primary, id } = region;
    for (let i = 0; i < backups.length; i++) {
      const backup = backups[i] as ServerId;
      if (backup === primary) this.fail(nowMs, `${primary} is both primary and backup of ${id}`);
      if (backups.indexOf(backup, i + 1) >= 0) this.fail(nowMs, `${id} lists backup ${backup} twice`);
      if (!topology.regionsOf(backup).has(region)) this.fail(nowMs, `hosted index misses ${id} on its backup ${backup}`);
    }
    if (primary !== null && !topology.regionsOf(primary).has(region)) this.fail(nowMs, `hosted index misses ${id} on its primary ${primary}`);
    const phase = phaseOf(region);
    if (phase !== region.phase) this.fail(nowMs, `${id} is in phase ${region.phase} but its replicas say ${phase}`, 'stale-phase');
  }

  private checkCounts(nowMs: number): void {
    const { topology, counts } = Coordinator.partsForTests(this.core());
    const phases: Record<RegionPhase, number> = { active: 0, failing_over: 0, under_replicated: 0, unavailable: 0 };
    for (const region of topology.regions.values()) phases[region.phase]++;
    const statuses: Record<ServerStatus, number> = { alive: 0, suspect: 0, failed: 0, draining: 0, left: 0 };
    for (const server of topology.servers.values()) {
      statuses[server.status]++;
      const hosted = topology.hostedCount(server.id);
      if (hosted > server.capacity) this.fail(nowMs, `${server.id} hosts ${hosted} regions above its capacity ${server.capacity}`, 'over-capacity');
    }
    for (const phase of Object.keys(phases) as RegionPhase[]) {
      if (phases[phase] !== counts.phases[phase]) this.fail(nowMs, `${phase} counter ${counts.phases[phase]} but ${phases[phase]} regions are ${phase}`);
    }
    for (const status of Object.keys(statuses) as ServerStatus[]) {
      if (statuses[status] !== counts.statuses[status]) this.fail(nowMs, `${status} counter ${counts.statuses[status]} but ${statuses[status]} servers are ${status}`);
    }
  }

  private checkActions(nowMs: number): void {
    const { buffer, config } = Coordinator.partsForTests(this.core());
    const c = buffer.counters();
    const pending = buffer.pendingTotal();
    if (c.buffered !== c.replayed + c.expired + pending) {
      this.fail(nowMs, `action counters: buffered ${c.buffered} != replayed ${c.replayed} + expired ${c.expired} + pending ${pending}`);
    }
    if (pending > 0) {
      for (const region of buffer.toJSON().regions) {
        for (const player of region.players) {
          if (player.actions.length > config.actionBufferMaxPerPlayer) {
            this.fail(nowMs, `player ${player.playerId} of ${region.regionId} has ${player.actions.length} actions pending, above ${config.actionBufferMaxPerPlayer}`);
          }
        }
      }
    }
    const ledger = this.fleet()?.ledger;
    if (ledger && this.steps % 10 === 0) for (const problem of ledger.violations().slice(0, 3)) this.fail(nowMs, `ledger: ${problem}`);
  }

  // ---- observations of the core's inputs and answers -----------------------------------------

  /** A server claiming primary that no longer leads, or with an old epoch, must be answered demoted. */
  onHeartbeat(serverId: ServerId, input: HeartbeatInput, reply: HeartbeatReply, nowMs: number): void {
    const { topology } = Coordinator.partsForTests(this.core());
    for (const claim of input.regions) {
      if (claim.role !== 'primary') continue;
      const region = topology.regions.get(claim.regionId);
      if (!region) continue;
      const demotion = reply.demoted.find((d) => d.regionId === claim.regionId);
      const assignment = reply.regions.find((a) => a.regionId === claim.regionId);
      const toldBackup = assignment?.role === 'backup';
      if (region.primary !== serverId && demotion === undefined && !toldBackup) {
        this.fail(nowMs, `${serverId} claimed primary of ${claim.regionId} at epoch ${claim.epoch}; the primary is ${region.primary} ` +
          `at epoch ${region.epoch}, yet the reply did not demote it`);
      }
      const promotedFurther = assignment?.role === 'primary' && assignment.epoch > claim.epoch;
      if (claim.epoch < region.announcedEpoch && demotion === undefined && !toldBackup && !promotedFurther) {
        this.fail(nowMs, `${serverId} claimed primary of ${claim.regionId} with old epoch ${claim.epoch} < ${region.announcedEpoch} and was not demoted`);
      }
      if (demotion !== undefined && demotion.epoch < claim.epoch) {
        this.fail(nowMs, `${serverId} was demoted from ${claim.regionId} with epoch ${demotion.epoch} below its claim ${claim.epoch}`);
      }
    }
    for (const claim of input.regions) {
      const told = reply.regions.find((a) => a.regionId === claim.regionId);
      if (told !== undefined && told.epoch < claim.epoch) {
        this.fail(nowMs, `${serverId} holds ${claim.regionId} at epoch ${claim.epoch} and was told epoch ${told.epoch}`);
      }
    }
  }

  onAccepted(regionId: RegionId, playerId: string, seq: number): void {
    this.accepted.add(actionKey(regionId, playerId, seq));
  }

  onCollected(regionId: RegionId, actions: readonly { playerId: string; seq: number }[], nowMs: number): void {
    for (const a of actions) {
      const key = actionKey(regionId, a.playerId, a.seq);
      const times = (this.handedOut.get(key) ?? 0) + 1;
      this.handedOut.set(key, times);
      if (this.acknowledged.has(key)) this.fail(nowMs, `action ${key} handed out again after its acknowledgement`);
      if (!this.accepted.has(key)) this.fail(nowMs, `action ${key} handed out but never accepted`);
      if (this.expiredKeys.has(key)) this.fail(nowMs, `action ${key} handed out after it was reported expired`);
    }
  }

  onAcknowledged(regionId: RegionId, acks: readonly { playerId: string; seq: number }[]): void {
    for (const a of acks) {
      const key = actionKey(regionId, a.playerId, a.seq);
      if (this.handedOut.has(key)) this.acknowledged.add(key);
    }
  }

  onExpired(refs: readonly { regionId: RegionId; playerId: string; seq: number }[], nowMs: number): void {
    for (const r of refs) {
      const key = actionKey(r.regionId, r.playerId, r.seq);
      if (this.acknowledged.has(key)) this.fail(nowMs, `action ${key} reported expired after it was acknowledged (replayed)`);
      if (this.expiredKeys.has(key)) this.fail(nowMs, `action ${key} reported expired twice`);
      this.expiredKeys.add(key);
    }
  }

  /** The observer to pass to `observeCore`. */
  observer(): CoreObserver {
    return {
      heartbeat: (id, input, reply, nowMs) => this.onHeartbeat(id, input, reply, nowMs),
      accepted: (regionId, playerId, seq) => this.onAccepted(regionId, playerId, seq),
      collected: (regionId, _serverId, actions, nowMs) => this.onCollected(regionId, actions, nowMs),
      acknowledged: (regionId, _serverId, acks) => this.onAcknowledged(regionId, acks),
      expired: (refs, nowMs) => this.onExpired(refs, nowMs),
    };
  }

  /**
   * Every accepted action is, at any instant, in exactly one of three states: replayed
   * (acknowledged), reported expired, or pending in the buffer; and nothing else is in them.
   */
  accountingProblems(): string[] {
    const problems: string[] = [];
    const pending = new Set<string>();
    for (const region of Coordinator.partsForTests(this.core()).buffer.toJSON().regions) {
      for (const player of region.players) for (const a of player.actions) pending.add(actionKey(region.regionId, player.playerId, a.seq));
    }
    for (const key of this.accepted) {
      const ends = [this.acknowledged.has(key), this.expiredKeys.has(key), pending.has(key)].filter(Boolean).length;
      if (ends !== 1) problems.push(`action ${key} is in ${ends} of the states acknowledged/expired/pending`);
      if (problems.length >= 10) return problems;
    }
    for (const key of [...this.acknowledged, ...this.expiredKeys, ...pending]) {
      if (!this.accepted.has(key)) problems.push(`action ${key} is accounted for but was never accepted`);
      if (problems.length >= 10) return problems;
    }
    return problems;
  }
}

function* fleetBeliefs(fleet: SimulatedFleet): Iterable<Belief> {
  for (const server of fleet.servers.values()) {
    if (!server.up) continue;
    for (const [regionId, held] of server.regions) {
      if (held.role === 'primary') yield { serverId: server.id, regionId, role: held.role, epoch: held.epoch };
    }
  }
}

/**
 * Who really holds each region's state, from the servers' side (the simulation's ground truth):
 * the first replicas (a new region has no state yet), then every server whose holding of the region
 * received its state from a holding that had it (`SimRegion.copiedFrom`: a copy at assignment, a
 * catch-up or the stream). A crash loses the state; dropping the region does too. A region none of
 * whose holders survives must never be served again by a live server: it can only come back with a
 * former replica that still holds its state.
 *
 * The checker runs after each tick, but the simulator moves state when messages arrive, between
 * ticks: a new backup may copy from its primary a few ms before that primary crashes. Sampling who
 * holds what at ticks alone (as this checker once did) then misses a real copy, and the backup that
 * rightly holds the state is taken for one promoted without it. So the simulator records where each
 * holding's state came from, and the checker follows that link: copies are credited first, against
 * the holdings known at the previous step (even one lost since), and only then are losses applied.
 * A holding is credited only through a recorded transfer from a holding that had the state, never
 * for its role or its `applied_seq`: a backup that copied nothing, copied from a server that
 * restarted empty, or a primary that started the region from nothing, is never a holder.
 */
class Lineage {
  /** region -> server -> the holding (`SimRegion.holding`) through which it holds the state. */
  private readonly holders = new Map<RegionId, Map<ServerId, string>>();
  private readonly reported = new Set<RegionId>();

  update(core: Coordinator, fleet: SimulatedFleet, nowMs: number): string[] {
    const { topology } = Coordinator.partsForTests(core);
    for (const region of topology.regions.values()) if (!this.holders.has(region.id)) this.seed(region, fleet);
    // Every holding known to carry the state at the last step stays a valid source for this step's
    // copies, even if it was lost or replaced since. Repeated in case one copy was made from another.
    const sources = new Map<RegionId, Set<string>>();
    for (const [regionId, set] of this.holders) sources.set(regionId, new Set(set.values()));
    while (this.creditCopies(fleet, sources)) { /* again */ }
    for (const [regionId, set] of this.holders) {
      for (const [serverId, holding] of set) {
        const sim = fleet.servers.get(serverId);
        if (!sim?.up || sim.regions.get(regionId)?.holding !== holding) set.delete(serverId);
      }
    }
    const problems: string[] = [];
    for (const region of topology.regions.values()) {
      if (region.primary === null || !region.primaryAcked || (this.holders.get(region.id)?.size ?? 0) > 0) continue;
      // Serving means the primary runs and believes it leads the region: a crashed or restarted
      // primary the coordinator has not noticed yet serves nothing.
      const serving = fleet.servers.get(region.primary);
      if (this.reported.has(region.id) || !serving?.up || serving.regions.get(region.id)?.role !== 'primary') continue;
      this.reported.add(region.id);
      problems.push(`t=${nowMs}ms: ${region.id} is served by ${region.primary} at epoch ${region.epoch} although every server ` +
        `that held its state was lost (former replicas ${region.formerReplicas.join(',')})`);
    }
    return problems;
  }

  /** A region seen for the first time: its replicas that already hold it start its lineage. */
  private seed(region: RegionRecord, fleet: SimulatedFleet): void {
    const set = new Map<ServerId, string>();
    for (const id of replicasOf(region)) {
      const held = fleet.servers.get(id)?.regions.get(region.id);
      if (held !== undefined) set.set(id, held.holding);
    }
    if (set.size > 0) this.holders.set(region.id, set);
  }

  /** Credits every holding whose state came from one of `sources`; true when one was new. */
  private creditCopies(fleet: SimulatedFleet, sources: Map<RegionId, Set<string>>): boolean {
    let credited = false;
    for (const sim of fleet.servers.values()) {
      if (!sim.up) continue;
      for (const [regionId, held] of sim.regions) {
        const known = sources.get(regionId);
        if (known === undefined || held.copiedFrom === null || known.has(held.holding) || !known.has(held.copiedFrom)) continue;
        this.holders.get(regionId)?.set(sim.id, held.holding);
        known.add(held.holding);
        credited = true;
      }
    }
    return credited;
  }
}

/** True when some usable server has room for one more replica of `region` and does not host it. */
export function capacityAllows(core: Coordinator, region: RegionRecord): boolean {
  const { topology } = Coordinator.partsForTests(core);
  const hosting = new Set(replicasOf(region));
  for (const server of topology.servers.values()) {
    if (isUsable(server.status) && !hosting.has(server.id) && topology.hostedCount(server.id) < server.capacity) return true;
  }
  return false;
}

/**
 * Problems with the mesh after the faults healed and it settled: regions not back to a primary and
 * their backups where capacity allows, servers that disagree with the coordinator, reachable
 * servers judged failed, and unavailable regions whose state a live server still holds.
 */
export function livenessProblems(core: Coordinator, fleet: SimulatedFleet): string[] {
  const problems: string[] = [];
  const { topology } = Coordinator.partsForTests(core);
  const add = (p: string) => { if (problems.length < 20) problems.push(p); };
  for (const sim of fleet.servers.values()) {
    const status = topology.servers.get(sim.id)?.status;
    // Suspect is a passing state (one lost heartbeat makes phi spike); failed is not.
    if (sim.reachable && status !== 'alive' && status !== 'suspect') add(`${sim.id} is up and reachable but the coordinator has it ${status}`);
  }
  for (const region of topology.regions.values()) {
    if (region.phase === 'unavailable') {
      const holders = [...fleet.servers.values()].filter((s) => s.reachable && s.regions.has(region.id)).map((s) => s.id);
      if (holders.length > 0) add(`${region.id} is unavailable although ${holders.join(',')} still hold its state`);
      continue;
    }
    const primary = region.primary;
    if (primary === null || !region.primaryAcked || region.announcedEpoch !== region.epoch) {
      add(`${region.id} has no acknowledged announced primary (phase ${region.phase}, primary ${primary}, epoch ${region.epoch}/${region.announcedEpoch})`);
      continue;
    }
    const held = fleet.servers.get(primary)?.regions.get(region.id);
    if (held?.role !== 'primary' || held.epoch !== region.epoch) {
      add(`${region.id}: primary ${primary} believes ${held ? `${held.role}@${held.epoch}` : 'nothing'}, coordinator says primary@${region.epoch}`);
    }
    const confirmed = confirmedBackups(region);
    if (confirmed.length < region.backupTarget && capacityAllows(core, region)) {
      add(`${region.id} has ${confirmed.length}/${region.backupTarget} confirmed backups (${region.backups.length} assigned) although capacity allows more`);
    }
    for (const backup of confirmed) {
      if (fleet.servers.get(backup)?.regions.get(region.id)?.role !== 'backup') add(`${region.id}: backup ${backup} does not hold it as a backup`);
    }
  }
  return problems;
}

/** Replication coverage over the regions that are not unavailable (1.0: every replica in place). */
export function recoverableCoverage(core: Coordinator): number {
  let wanted = 0;
  let have = 0;
  for (const region of core.records().regions.values()) {
    if (region.phase === 'unavailable') continue;
    wanted += 1 + region.backupTarget;
    if (region.primary !== null && region.primaryAcked) have += 1;
    have += Math.min(region.backupTarget, confirmedBackups(region).length);
  }
  return wanted === 0 ? 1 : have / wanted;
}

/** Every failover record the coordinator keeps, oldest first. */
export function failoverRecords(core: Coordinator): FailoverRecord[] {
  return [...Coordinator.partsForTests(core).metrics.toJSON().records];
}

/**
 * Critical-first ordering of one burst of failovers:
 * 1. a critical region is never promoted in a later tick than a non-critical region whose failure
 *    was detected in the same tick as the critical one's or later;
 * 2. the slowest critical promotion, counted from the first tick at which its region could be
 *    promoted (failure detected, and its lost primary's lease plus the drift margin over), is no
 *    later than the slowest non-critical one. Promotions are compared, not acknowledgements: a
 *    promoted server learns of its promotion at its next heartbeat, whose phase the coordinator
 *    does not choose, and each region's lease ends when its own lost primary was last answered.
 * `firstPromotion` is each region's first promotion time (from `failover_initiated` events).
 * Critical regions in `waited` are left out of both: their failover waited for the failure
 * detector, not for other regions, and priority cannot hurry the detector. That is the case when
 * at some tick after losing their primary they had a confirmed backup but none that could be
 * promoted (a suspect one), and when the backup they promoted had crashed too, unnoticed yet, so
 * that they were promoted again once it was declared failed. `leaseEnds` says when each region's
 * lost primary's lease (plus the drift margin) was over: no region may be promoted before.
 * `tickMs` rounds that moment up to the tick that can act on it.
 */
export function criticalOrderingProblems(records: readonly FailoverRecord[], firstPromotion: ReadonlyMap<RegionId, number>,
  waited: ReadonlySet<RegionId> = new Set(), leaseEnds: ReadonlyMap<RegionId, number> = new Map(), tickMs = 1): string[] {
  const problems: string[] = [];
  const promoted = (r: FailoverRecord) => firstPromotion.get(r.regionId);
  const eligibleAt = (r: FailoverRecord) => Math.max(r.detectedAtMs, leaseEnds.get(r.regionId) ?? -Infinity);
  for (const c of records.filter((r) => r.critical && !waited.has(r.regionId))) {
    const cAt = promoted(c);
    if (cAt === undefined) continue;
    // Only a non-critical region promoted once the critical one could have been has overtaken it.
    const overtaken = records.find((n) => !n.critical && n.detectedAtMs >= c.detectedAtMs && (promoted(n) ?? Infinity) < cAt &&
      (promoted(n) ?? -Infinity) >= eligibleAt(c));
    if (overtaken) {
      problems.push(`critical ${c.regionId} (detected ${c.detectedAtMs}, promoted ${cAt}) promoted after non-critical ` +
        `${overtaken.regionId} (detected ${overtaken.detectedAtMs}, promoted ${promoted(overtaken)})`);
    }
    if (problems.length >= 10) break;
  }
  const delayOf = (r: FailoverRecord) => (promoted(r) as number) - Math.ceil(eligibleAt(r) / tickMs) * tickMs;
  const considered = records.filter((r) => promoted(r) !== undefined && !(r.critical && waited.has(r.regionId)));
  const maxDelay = (rs: readonly FailoverRecord[]) => Math.max(-Infinity, ...rs.map(delayOf));
  const critical = considered.filter((r) => r.critical);
  const others = considered.filter((r) => !r.critical);
  if (critical.length > 0 && others.length > 0 && maxDelay(critical) > maxDelay(others)) {
    problems.push(`slowest critical promotion ${maxDelay(critical).toFixed(0)} ms after its region could be promoted exceeds ` +
      `slowest non-critical ${maxDelay(others).toFixed(0)} ms`);
  }
  return problems;
}
