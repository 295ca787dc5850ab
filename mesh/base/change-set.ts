/**
 * A set of changed ids with two readers that drain it at their own pace: persistence (which reads
 * and clears the set itself) and the views that push changes to servers (which take what was added
 * since they last looked). One set noted at every change site, instead of a second `add` beside
 * each, so that a new change site cannot note one reader and forget the other.
 */
export class ChangeSet<T> extends Set<T> {
  /** Members added since {@link takeForViews} last ran; created lazily (Set's constructor calls add). */
  private forViews: Set<T> | undefined;

  override add(value: T): this {
    (this.forViews ??= new Set()).add(value);
    return super.add(value);
  }

  /** What was added since the last call, and forgets it (persistence's reading is unaffected). */
  takeForViews(): Set<T> {
    const taken = this.forViews ?? new Set<T>();
    this.forViews = new Set();
    return taken;
  }
}
