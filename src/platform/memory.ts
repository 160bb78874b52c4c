/**
 * Giving a thread's freed memory back to the system. A worker thread's heap grows with the
 * files and zips of a job and its allocator keeps the pages once freed, so every thread would
 * otherwise hold its largest job's memory for as long as it lives; the next sync's peak would
 * come on top of it.
 */
import { collectSoon, releaseMemory, releaseStartupMemory } from "#platform/memory.ts";

export { collectSoon, releaseMemory, releaseStartupMemory };

/**
 * Releases memory once the thread has had no work for `afterMs` (a full collection takes
 * ~10 ms: never in the middle of a burst of jobs, only once the burst is over).
 */
export class IdleRelease {
  private busy = 0;
  private timer: ReturnType<typeof setTimeout> | undefined;

  constructor(private readonly afterMs: number) {}

  started(): void {
    this.busy++;
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
  }

  finished(): void {
    this.busy--;
    if (this.busy > 0) return;
    this.timer = setTimeout(() => {
      this.timer = undefined;
      if (this.busy === 0) releaseMemory();
    }, this.afterMs);
    this.timer.unref?.();
  }
}
