/** A promise queue per key: jobs for one user run one at a time, other users are not delayed. */
export class KeyedMutex {
  private readonly tails = new Map<string, Promise<unknown>>();

  /** No job of this key is queued or running. */
  idle(key: string): boolean {
    return !this.tails.has(key);
  }

  run<T>(key: string, task: () => Promise<T>): Promise<T> {
    const previous = this.tails.get(key) ?? Promise.resolve();
    const result = previous.then(task, task);
    const tail = result.catch(() => {});
    this.tails.set(key, tail);
    void tail.then(() => {
      if (this.tails.get(key) === tail) this.tails.delete(key);
    });
    return result;
  }
}
