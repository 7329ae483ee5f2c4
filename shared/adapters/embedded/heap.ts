/** A binary min-heap ordered by (at, seq): the queue's timers (delays and visibility timeouts). */
export interface Timer<T> {
  readonly at: number;
  readonly seq: number;
  readonly value: T;
}

const before = <T>(a: Timer<T>, b: Timer<T>): boolean => a.at < b.at || (a.at === b.at && a.seq < b.seq);

export class TimerHeap<T> {
  readonly #items: Timer<T>[] = [];

  get size(): number {
    return this.#items.length;
  }

  peek(): Timer<T> | undefined {
    return this.#items[0];
  }

  push(timer: Timer<T>): void {
    const items = this.#items;
    items.push(timer);
    let i = items.length - 1;
    while (i > 0) {
      const parent = (i - 1) >> 1;
      if (!before(items[i]!, items[parent]!)) break;
      [items[i], items[parent]] = [items[parent]!, items[i]!];
      i = parent;
    }
  }

  pop(): Timer<T> | undefined {
    const items = this.#items;
    const top = items[0];
    const last = items.pop();
    if (items.length === 0 || !last) return top;
    items[0] = last;
    let i = 0;
    for (;;) {
      const l = 2 * i + 1;
      const r = l + 1;
      let m = i;
      if (l < items.length && before(items[l]!, items[m]!)) m = l;
      if (r < items.length && before(items[r]!, items[m]!)) m = r;
      if (m === i) break;
      [items[i], items[m]] = [items[m]!, items[i]!];
      i = m;
    }
    return top;
  }
}
