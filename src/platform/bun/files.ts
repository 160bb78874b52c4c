/** Reading files on Bun: Bun.file (about 3x faster than node:fs streams on Bun). */
export function fileStream(path: string): ReadableStream<Uint8Array> {
  return Bun.file(path).stream();
}

export async function fileSize(path: string): Promise<number> {
  return Bun.file(path).size;
}

/** Writes on the main thread are awaited (the thread pool's); see deno/files.ts for Deno. */
export const BLOCKING_WRITES = false;
