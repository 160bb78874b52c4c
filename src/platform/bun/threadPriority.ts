/**
 * Thread priority on Bun: node:os `setPriority` without a pid calls setpriority(PRIO_PROCESS, 0),
 * which on Linux applies to the calling thread alone (nice values are per thread there, and
 * threads the thread starts later inherit it). Elsewhere the same call would lower the whole
 * process, so it is used on Linux only.
 */
import { setPriority } from "node:os";

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
