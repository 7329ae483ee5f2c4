/**
 * The queue's timers (delays and visibility timeouts), earliest (at, seq) first. Most timers are pushed in
 * time order (one visibility timeout per queue, delays from a clock that only moves forward): those go to a
 * FIFO in O(1); the rest to a binary min-heap. Pop takes the earlier of the two heads.
 */
export interface Timer<T> {
  readonly at: number;
  readonly seq: number;
  readonly value: T;
}

const before = <T>(a: Timer<T>, b: Timer<T>): boolean => a.at < b.at || (a.at === b.at && a.seq < b.seq);

export class TimerHeap<T> {
  readonly #heap: Timer<T>[] = [];
  #fifo: Timer<T>[] = [];
  #fifoHead = 0;

  get size(): number {
    return this.#heap.length + this.#fifo.length - this.#fifoHead;
  }

  peek(): Timer<T> | undefined {
    const fromFifo = this.#fifo[this.#fifoHead];
    const fromHeap = this.#heap[0];
    if (!fromFifo) return fromHeap;
    return fromHeap && before(fromHeap, fromFifo) ? fromHeap : fromFifo;
  }

  push(timer: Timer<T>): void {
    const last = this.#fifo[this.#fifo.length - 1];
    if (this.#fifoHead === this.#fifo.length || (last && !before(timer, last))) this.#fifo.push(timer);
    else this.#heapPush(timer);
  }

  pop(): Timer<T> | undefined {
    const fromFifo = this.#fifo[this.#fifoHead];
    const fromHeap = this.#heap[0];
    if (fromFifo && !(fromHeap && before(fromHeap, fromFifo))) {
      this.#fifoHead += 1;
      if (this.#fifoHead === this.#fifo.length) {
        this.#fifo = [];
        this.#fifoHead = 0;
      } else if (this.#fifoHead > 4096 && this.#fifoHead * 2 > this.#fifo.length) {
        this.#fifo = this.#fifo.slice(this.#fifoHead);
        this.#fifoHead = 0;
      }
      return fromFifo;
    }
    return this.#heapPop();
  }

  #heapPush(timer: Timer<T>): void {
    const items = this.#heap;
    items.push(timer);
    let i = items.length - 1;
    while (i > 0) {
      const parent = (i - 1) >> 1;
      const p = items[parent]!;
      if (!before(timer, p)) break;
      items[i] = p;
      i = parent;
    }
    items[i] = timer;
  }

  #heapPop(): Timer<T> | undefined {
    const items = this.#heap;
    const top = items[0];
    const last = items.pop();
    if (items.length === 0 || !last) return top;
    let i = 0;
    for (;;) {
      const l = 2 * i + 1;
      const r = l + 1;
      let m = l;
      if (l >= items.length) break;
      if (r < items.length && before(items[r]!, items[l]!)) m = r;
      if (!before(items[m]!, last)) break;
      items[i] = items[m]!;
      i = m;
    }
    items[i] = last;
    return top;
  }
}
