/**
 * Readers-writer locks keyed by string, in one process. Readers share; a writer waits for the
 * readers before it and excludes everyone after it until it releases. Entries vanish when idle.
 */
export class KeyedRwLock {
  private readonly states = new Map<string, { readers: number; writer: boolean; queue: (() => void)[] }>();

  private state(key: string) {
    let s = this.states.get(key);
    if (!s) {
      s = { readers: 0, writer: false, queue: [] };
      this.states.set(key, s);
    }
    return s;
  }

  /** Runs `fn` holding the shared lock of `key`. */
  async read<T>(key: string, fn: () => Promise<T>): Promise<T> {
    const s = this.state(key);
    while (s.writer || s.queue.length > 0) await new Promise<void>((r) => s.queue.push(r));
    s.readers += 1;
    try {
      return await fn();
    } finally {
      s.readers -= 1;
      this.wake(key);
    }
  }

  /** Runs `fn` holding the exclusive lock of `key`. */
  async write<T>(key: string, fn: () => Promise<T>): Promise<T> {
    const s = this.state(key);
    while (s.writer || s.readers > 0) await new Promise<void>((r) => s.queue.push(r));
    s.writer = true;
    try {
      return await fn();
    } finally {
      s.writer = false;
      this.wake(key);
    }
  }

  private wake(key: string) {
    const s = this.states.get(key);
    if (!s) return;
    const waiting = s.queue.splice(0);
    for (const w of waiting) w();
    if (waiting.length === 0 && s.readers === 0 && !s.writer) this.states.delete(key);
  }
}
