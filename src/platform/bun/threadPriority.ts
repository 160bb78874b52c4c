/**
 * Thread priority on Bun: node:os `setPriority` without a pid calls setpriority(PRIO_PROCESS, 0),
 * which on Linux applies to the calling thread alone (nice values are per thread there). Elsewhere
 * the same call would lower the whole process, so it is used on Linux only.
 */
import { stat } from "node:fs/promises";
import { availableParallelism, setPriority } from "node:os";

/** Nice value `nice` (1-19) for the calling thread; false when not applied (0, not Linux, refused). */
export function lowerThreadPriority(nice: number): boolean {
  if (nice <= 0 || process.platform !== "linux") return false;
  try {
    setPriority(Math.min(19, Math.trunc(nice)));
    return true;
  } catch {
    return false;
  }
}

/**
 * A thread inherits the nice value of the thread that starts it, and the runtime's shared
 * threads (the thread pool behind async file I/O and large (de)compressions, the garbage
 * collector's helpers) start on first need, from whichever thread needs them: were that a
 * lowered thread, every request's work on them would run at its priority from then on. Started
 * here, from the calling thread, before any thread is lowered: one concurrent file operation
 * per CPU for the pool (it grows up to about that many), one collection for the helpers.
 */
export async function startSharedThreads(): Promise<void> {
  Bun.gc(true);
  await Promise.all(Array.from({ length: Math.max(2, availableParallelism()) }, () => stat("/")));
}
