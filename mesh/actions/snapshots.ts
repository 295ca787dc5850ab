/**
 * Latest state snapshot of each player, as posted by the region's primary. When a backup is promoted
 * without having received a player's replicated state, the new primary restores the player from here.
 */
import type { MeshConfig } from '../base/config.ts';
import { invariantFor, type Invariant } from '../base/invariant.ts';
import { ok, reject, type PlayerId, type RegionId, type Result, type ServerId } from '../base/types.ts';

const invariant: Invariant = invariantFor('snapshots invariant');

/** The two limits the store needs; a whole `MeshConfig` satisfies it. */
export type SnapshotLimits = Pick<MeshConfig, 'snapshotMaxBytes' | 'snapshotsMaxPerRegion'>;

/** A snapshot as the primary posts it; `sizeBytes` is the byte length of its JSON text, measured by the caller. */
export interface SnapshotInput {
  readonly playerId: PlayerId;
  /** Opaque JSON value, handed back unchanged. */
  readonly state: unknown;
  readonly sizeBytes: number;
  /** The server that posted it, so a restoring primary can tell whose view it is. */
  readonly serverId: ServerId;
  /** The region epoch the poster held; a lower epoch than the stored one is a fenced primary. */
  readonly epoch: number;
}

/** A stored snapshot; `version` comes from one store-wide counter, so it only ever grows. */
export interface PlayerSnapshot extends SnapshotInput {
  readonly updatedAtMs: number;
  readonly version: number;
}

/**
 * Persisted form. Each region lists its snapshots from least to most recently posted, which is the
 * eviction order, so a restored store evicts exactly what the original would have.
 */
export interface SnapshotStoreJSON {
  readonly version: 1;
  readonly nextVersion: number;
  readonly regions: readonly { readonly regionId: RegionId; readonly snapshots: readonly PlayerSnapshot[] }[];
}

/**
 * Snapshots of every region. Each region is a `Map` kept in posting order (a re-post moves the player
 * to the end), so the least recently posted snapshot is the first entry and eviction is O(1).
 */
export class SnapshotStore {
  private readonly maxBytes: number;
  private readonly maxPerRegion: number;
  private readonly regions = new Map<RegionId, Map<PlayerId, PlayerSnapshot>>();
  private nextVersion = 1;
  private total = 0;

  /** Creates an empty store with the configured size and count bounds. */
  constructor(limits: SnapshotLimits) {
    this.maxBytes = limits.snapshotMaxBytes;
    this.maxPerRegion = limits.snapshotsMaxPerRegion;
    invariant(Number.isInteger(this.maxBytes) && this.maxBytes > 0, 'snapshotMaxBytes must be a positive integer');
    invariant(Number.isInteger(this.maxPerRegion) && this.maxPerRegion > 0, 'snapshotsMaxPerRegion must be a positive integer');
  }

  /**
   * Stores a player's latest snapshot, replacing the previous one. Refuses a snapshot larger than
   * `snapshotMaxBytes`, and one from an epoch lower than the stored snapshot's: that poster was
   * fenced by a promotion and its view of the player is older than what is kept. An equal epoch is
   * accepted, since the same primary posts repeatedly. When the region is over its bound, the least
   * recently posted snapshots are evicted (the stale-epoch memory of an evicted player goes with it).
   */
  put(regionId: RegionId, input: SnapshotInput, nowMs: number): Result<{ version: number }, 'snapshot_too_large' | 'stale_epoch'> {
    invariant(Number.isSafeInteger(input.sizeBytes) && input.sizeBytes >= 0, `sizeBytes must be a non-negative integer, got ${input.sizeBytes}`);
    invariant(Number.isSafeInteger(input.epoch) && input.epoch >= 0, `epoch must be a non-negative integer, got ${input.epoch}`);
    invariant(Number.isFinite(nowMs), 'nowMs must be finite');
    if (input.sizeBytes > this.maxBytes) {
      return reject('snapshot_too_large', `Snapshot of player ${input.playerId} is ${input.sizeBytes} bytes; the limit is ${this.maxBytes}.`, {
        data: { sizeBytes: input.sizeBytes, maxBytes: this.maxBytes },
      });
    }
    const region = this.regionFor(regionId);
    const stored = region.get(input.playerId);
    if (stored && input.epoch < stored.epoch) {
      const detail = `Snapshot of player ${input.playerId} in region ${regionId} is from epoch ${input.epoch}; the stored one is from epoch ${stored.epoch}.`;
      return reject('stale_epoch', detail, { data: { epoch: input.epoch, storedEpoch: stored.epoch } });
    }
    const version = this.nextVersion++;
    const { playerId, state, sizeBytes, serverId, epoch } = input;
    this.place(region, { playerId, state, sizeBytes, serverId, epoch, updatedAtMs: nowMs, version });
    this.evictOverflow(region);
    return ok({ version });
  }

  /** The latest snapshot of a player, or `undefined` when none is kept. */
  get(regionId: RegionId, playerId: PlayerId): PlayerSnapshot | undefined {
    const snapshot = this.regions.get(regionId)?.get(playerId);
    return snapshot && { ...snapshot };
  }

  /** Forgets every snapshot of a deleted region; returns how many were dropped. */
  dropRegion(regionId: RegionId): number {
    const dropped = this.regions.get(regionId)?.size ?? 0;
    this.regions.delete(regionId);
    this.total -= dropped;
    return dropped;
  }

  /** Number of snapshots kept in one region, or in all regions when no region is named. */
  count(regionId?: RegionId): number {
    return regionId === undefined ? this.total : (this.regions.get(regionId)?.size ?? 0);
  }

  /** Every snapshot, per region in eviction order, and the version counter. */
  toJSON(): SnapshotStoreJSON {
    const regions = [...this.regions.entries()].sort(([a], [b]) => compareText(a, b))
      .map(([regionId, snapshots]) => ({ regionId, snapshots: [...snapshots.values()].map((s) => ({ ...s })) }));
    return { version: 1, nextVersion: this.nextVersion, regions };
  }

  /** Restores a store from `toJSON` output; corrupt data is a programmer error and throws. */
  static fromJSON(data: SnapshotStoreJSON, limits: SnapshotLimits): SnapshotStore {
    invariant(data.version === 1, `unsupported snapshot store version ${String(data.version)}`);
    const store = new SnapshotStore(limits);
    for (const { regionId, snapshots } of data.regions) {
      const region = store.regionFor(regionId);
      for (const s of snapshots) {
        invariant(!region.has(s.playerId), `region ${regionId} lists player ${s.playerId} twice`);
        invariant(s.version < data.nextVersion, `snapshot version ${s.version} is not below nextVersion`);
        store.place(region, { ...s });
      }
      // A smaller bound configured since the data was written applies at once, oldest first.
      store.evictOverflow(region);
    }
    store.nextVersion = data.nextVersion;
    return store;
  }

  private regionFor(regionId: RegionId): Map<PlayerId, PlayerSnapshot> {
    let region = this.regions.get(regionId);
    if (!region) this.regions.set(regionId, (region = new Map()));
    return region;
  }

  /** Deleting before setting moves a re-posted player to the end of the posting order. */
  private place(region: Map<PlayerId, PlayerSnapshot>, snapshot: PlayerSnapshot): void {
    if (region.delete(snapshot.playerId)) this.total--;
    region.set(snapshot.playerId, snapshot);
    this.total++;
  }

  private evictOverflow(region: Map<PlayerId, PlayerSnapshot>): void {
    for (const playerId of region.keys()) {
      if (region.size <= this.maxPerRegion) return;
      region.delete(playerId);
      this.total--;
    }
  }
}

/** Code-unit order: deterministic on every platform, unlike `localeCompare`. */
function compareText(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}
