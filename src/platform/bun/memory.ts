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
