/**
 * Thread priority on Deno: not applied. Its node:os `setPriority` is not known to act on the
 * calling thread alone, and lowering the whole process would slow every request.
 */
export function lowerThreadPriority(_nice: number): boolean {
  return false;
}

/** Nothing to do: no thread is lowered (above). */
export async function startSharedThreads(): Promise<void> {}
