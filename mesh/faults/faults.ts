/**
 * Fault injection, as `POST /mesh/simulate_failure` asks for it. Targets are resolved here (a
 * server, a region's primary or a backup, a zone, a random fraction). Simulated servers carry out
 * their faults themselves (the fleet stops them or cuts their network); for servers that registered
 * themselves the fault layer (fault-layer.ts) applies an overlay: it acts as if their heartbeats,
 * and their peers' sightings of them, stopped arriving (crash, partition, the down half of a flap)
 * or arrived late (slow).
 */
import type { Random } from '../base/ports.ts';
import type { RegionRecord, ServerRecord } from '../failover/topology.ts';
import { reject, ok, type FaultMode, type Result, type RegionId, type Role, type ServerId } from '../base/types.ts';

/** Which servers a fault hits: exactly one of these. */
export type FaultTarget =
  | { readonly serverId: ServerId }
  | { readonly regionId: RegionId; readonly role: Role }
  | { readonly zone: string }
  | { readonly fraction: number };

/** A fault to inject. */
export interface FaultSpec {
  readonly target: FaultTarget;
  readonly mode: FaultMode;
  /** How long the fault lasts; required for partition, slow and flap. */
  readonly durationMs?: number;
  /** Extra heartbeat delay for `slow` (default 2.5 x the heartbeat interval). */
  readonly delayMs?: number;
}

/** An injected fault as recorded. */
export interface InjectedFault {
  readonly id: string;
  readonly mode: FaultMode;
  readonly serverIds: readonly ServerId[];
  readonly injectedAtMs: number;
  /** When it ends; null for a crash without duration (the server stays down). */
  readonly untilMs: number | null;
  readonly delayMs: number;
}

/**
 * A flapping server is unreachable for `flapDownMs`, then reachable for `flapUpMs`, repeatedly.
 * Three seconds down is long enough for confirmation to fail it over; the up phase lets it return,
 * which exercises fencing and re-replication on every cycle.
 */
export const flapDownMs = 3000;
/** See {@link flapDownMs}. */
export const flapUpMs = 3000;
/** How long a self-registered server's heartbeats are ignored for a crash without duration. */
export const defaultRealCrashMs = 60_000;

type TargetError = 'unknown_server' | 'unknown_region' | 'unknown_zone' | 'no_target';

/** The mesh's records as resolving a target reads them (the coordinator's `records()`). */
export interface MeshRecords {
  readonly servers: ReadonlyMap<ServerId, Readonly<ServerRecord>>;
  readonly regions: ReadonlyMap<RegionId, Readonly<RegionRecord>>;
}

/** Resolves a fault's target to the servers it hits. */
export function resolveTargets(mesh: MeshRecords, target: FaultTarget, random: Random): Result<ServerId[], TargetError> {
  const live = [...mesh.servers.values()].filter((s) => s.status !== 'left' && s.status !== 'failed');
  if ('serverId' in target) {
    return mesh.servers.has(target.serverId) ? ok([target.serverId])
      : reject('unknown_server', `no server ${target.serverId}`);
  }
  if ('regionId' in target) {
    const region = mesh.regions.get(target.regionId);
    if (!region) return reject('unknown_region', `no region ${target.regionId}`);
    const ids = target.role === 'primary' ? (region.primary === null ? [] : [region.primary]) : region.backups.slice(0, 1);
    return ids.length > 0 ? ok(ids) : reject('no_target', `region ${target.regionId} has no ${target.role} to fail`);
  }
  if ('zone' in target) {
    const ids = live.filter((s) => s.zone === target.zone).map((s) => s.id);
    return ids.length > 0 ? ok(ids) : reject('unknown_zone', `no live server in zone ${target.zone}`);
  }
  const count = Math.max(1, Math.round(live.length * target.fraction));
  if (live.length === 0) return reject('no_target', 'the mesh has no live server to fail');
  return ok(sample(live.map((s) => s.id), count, random));
}

/** Partial Fisher-Yates: `count` distinct items drawn uniformly. */
function sample<T>(items: T[], count: number, random: Random): T[] {
  const pool = [...items];
  for (let i = 0; i < count && i < pool.length; i++) {
    const j = i + Math.floor(random.next() * (pool.length - i));
    [pool[i], pool[j]] = [pool[j] as T, pool[i] as T];
  }
  return pool.slice(0, count);
}

/** Remembers injected faults and answers how they affect self-registered servers. */
export class FaultRegistry {
  private readonly faults: InjectedFault[] = [];
  private readonly byServer = new Map<ServerId, InjectedFault>();
  private nextId = 1;

  /** Records a fault and returns it. */
  record(spec: FaultSpec, serverIds: readonly ServerId[], nowMs: number, heartbeatIntervalMs: number): InjectedFault {
    const duration = spec.durationMs ?? null;
    const fault: InjectedFault = {
      id: `fault-${this.nextId++}`, mode: spec.mode, serverIds, injectedAtMs: nowMs,
      untilMs: duration === null ? null : nowMs + duration,
      delayMs: spec.delayMs ?? Math.round(2.5 * heartbeatIntervalMs),
    };
    this.faults.push(fault);
    if (this.faults.length > 1000) this.faults.shift();
    for (const id of serverIds) this.byServer.set(id, fault);
    return fault;
  }

  /** True when no fault was ever injected (or all were cleared). */
  isEmpty(): boolean {
    return this.byServer.size === 0;
  }

  /** The latest fault injected on a server, if any. */
  latest(serverId: ServerId): InjectedFault | undefined {
    return this.byServer.get(serverId);
  }

  /**
   * For a self-registered server: since when it has been unreachable because of an active fault
   * (its heartbeats are to be dropped), or null when it is reachable.
   */
  unreachableSince(serverId: ServerId, nowMs: number): number | null {
    const fault = this.byServer.get(serverId);
    if (!fault || fault.mode === 'slow' || nowMs < fault.injectedAtMs) return null;
    const until = fault.untilMs ?? (fault.mode === 'crash' ? fault.injectedAtMs + defaultRealCrashMs : fault.injectedAtMs);
    if (nowMs >= until) return null;
    if (fault.mode !== 'flap') return fault.injectedAtMs;
    const cycle = flapDownMs + flapUpMs;
    const into = (nowMs - fault.injectedAtMs) % cycle;
    return into < flapDownMs ? nowMs - into : null;
  }

  /** For a self-registered server under a `slow` fault: how late its heartbeats arrive. */
  heartbeatDelay(serverId: ServerId, nowMs: number): number {
    const fault = this.byServer.get(serverId);
    if (!fault || fault.mode !== 'slow' || nowMs < fault.injectedAtMs) return 0;
    return fault.untilMs !== null && nowMs < fault.untilMs ? fault.delayMs : 0;
  }

  /** Recent faults, newest first. */
  list(): InjectedFault[] {
    return [...this.faults].reverse();
  }

  clear(): void {
    this.faults.length = 0;
    this.byServer.clear();
  }
}
