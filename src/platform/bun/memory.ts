/** Memory on Bun: a full collection, after which Bun's allocator hands freed pages back. */
export function releaseMemory(): void {
  Bun.gc(true);
}
