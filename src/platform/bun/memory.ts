/** Memory on Bun: a full collection, after which Bun's allocator hands freed pages back. */
export function releaseMemory(): void {
  Bun.gc(true);
}

/**
 * Asks for a collection soon, without waiting for it: JavaScriptCore starts one on its own only
 * once the heap has grown by a share of its size, so megabytes of garbage buffers (a large
 * request body read in chunks) would otherwise stay for several more such requests.
 */
export function collectSoon(): void {
  Bun.gc(false);
}

/**
 * Once the server listens: at JavaScriptCore's next idle moment, the code it compiled for
 * start-up (migrations, the SYNC_USERn checks, building the app), which does not run again, is
 * dropped and the heap shrunk (`Bun.shrink`, typed deprecated but the one call for this). A
 * function a request uses again is compiled again on that call, once. ~1.7 MB of an idle
 * server's memory, half its JS heap.
 */
export function releaseStartupMemory(): void {
  Bun.shrink();
}
