/**
 * A rendezvous channel: `send` resolves only once a receiver has taken the value, so a producer can
 * never run ahead of its consumer by more than one item. Iterating receives until `close`.
 */
export class Channel<T> implements AsyncIterable<T> {
  #items: { value: T; taken: () => void }[] = [];
  #waiting: ((r: IteratorResult<T>) => void)[] = [];
  #closed = false;

  /** Hands `value` to the next receiver; resolves when it was taken (or the channel closed). */
  send(value: T): Promise<void> {
    if (this.#closed) return Promise.resolve();
    return new Promise<void>((taken) => {
      const receiver = this.#waiting.shift();
      if (receiver) {
        receiver({ value, done: false });
        taken();
      } else {
        this.#items.push({ value, taken });
      }
    });
  }

  /** Ends the iteration; pending and later sends resolve without being received. */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    for (const item of this.#items.splice(0)) item.taken();
    for (const receiver of this.#waiting.splice(0)) receiver({ value: undefined, done: true });
  }

  /** True once closed. */
  get closed(): boolean {
    return this.#closed;
  }

  /** Takes the next value, or `done` once closed. */
  next(): Promise<IteratorResult<T>> {
    const item = this.#items.shift();
    if (item) {
      item.taken();
      return Promise.resolve({ value: item.value, done: false });
    }
    if (this.#closed) return Promise.resolve({ value: undefined, done: true });
    return new Promise((resolve) => this.#waiting.push(resolve));
  }

  [Symbol.asyncIterator](): AsyncIterator<T> {
    return { next: () => this.next() };
  }
}
