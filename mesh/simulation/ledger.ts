/**
 * The players' side of the exactly-once contract: which actions the coordinator accepted and how
 * often a primary applied each. A checker, not part of the workload's decisions.
 */
import type { RegionId } from '../base/types.ts';

/** Accepted and applied actions of the simulated players. */
export class ActionLedger {
  private readonly acceptedKeys = new Set<string>();
  private readonly appliedCount = new Map<string, number>();

  accepted(regionId: RegionId, playerId: string, seq: number): void {
    this.acceptedKeys.add(`${regionId}/${playerId}/${seq}`);
  }

  /** True when a primary of the region already applied the action (its state replicates to the next). */
  wasApplied(regionId: RegionId, playerId: string, seq: number): boolean {
    return this.appliedCount.has(`${regionId}/${playerId}/${seq}`);
  }

  applied(regionId: RegionId, playerId: string, seq: number): void {
    const key = `${regionId}/${playerId}/${seq}`;
    this.appliedCount.set(key, (this.appliedCount.get(key) ?? 0) + 1);
  }

  /** Actions a primary applied more than once, or applied without having been accepted. */
  violations(): string[] {
    const problems: string[] = [];
    for (const [key, count] of this.appliedCount) {
      if (count > 1) problems.push(`${key} applied ${count} times`);
      if (!this.acceptedKeys.has(key)) problems.push(`${key} applied but never accepted`);
    }
    return problems;
  }

  get acceptedCount(): number {
    return this.acceptedKeys.size;
  }

  get appliedTotal(): number {
    return this.appliedCount.size;
  }
}
