/** A binary min-heap ordered by a comparator; used for placement and timed queues. */
export class MinHeap<T> {
  /**
   * @param items initial contents, taken over (not copied) and ordered bottom-up in O(n), which is
   *   cheaper than pushing them one by one
   */
  constructor(private readonly less: (a: T, b: T) => boolean, private readonly items: T[] = []) {
    for (let i = (items.length >> 1) - 1; i >= 0; i--) this.siftDown(i);
  }

  get size(): number {
    return this.items.length;
  }

  peek(): T | undefined {
    return this.items[0];
  }

  push(item: T): void {
    this.items.push(item);
    let i = this.items.length - 1;
    while (i > 0) {
      const parent = (i - 1) >> 1;
      if (!this.less(this.at(i), this.at(parent))) break;
      this.swap(i, parent);
      i = parent;
    }
  }

  pop(): T | undefined {
    const top = this.items[0];
    const last = this.items.pop();
    if (this.items.length > 0 && last !== undefined) {
      this.items[0] = last;
      this.siftDown(0);
    }
    return top;
  }

  /** Keeps only the items that pass and restores the heap order in O(n). */
  retain(keep: (item: T) => boolean): void {
    let kept = 0;
    for (const item of this.items) if (keep(item)) this.items[kept++] = item;
    this.items.length = kept;
    for (let i = (kept >> 1) - 1; i >= 0; i--) this.siftDown(i);
  }

  private siftDown(start: number): void {
    let i = start;
    for (;;) {
      const left = 2 * i + 1;
      const right = left + 1;
      let smallest = i;
      if (left < this.items.length && this.less(this.at(left), this.at(smallest))) smallest = left;
      if (right < this.items.length && this.less(this.at(right), this.at(smallest))) smallest = right;
      if (smallest === i) return;
      this.swap(i, smallest);
      i = smallest;
    }
  }

  private at(i: number): T {
    return this.items[i] as T;
  }

  private swap(i: number, j: number): void {
    const tmp = this.at(i);
    this.items[i] = this.at(j);
    this.items[j] = tmp;
  }
}
