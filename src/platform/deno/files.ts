/** Files on Deno: reading through node:fs (lazy, like Bun.file), and how writes are made. */
import { createReadStream } from "node:fs";
import { stat } from "node:fs/promises";
import { Readable } from "node:stream";

export function fileStream(path: string): ReadableStream<Uint8Array> {
  return Readable.toWeb(createReadStream(path)) as unknown as ReadableStream<Uint8Array>;
}

export async function fileSize(path: string): Promise<number> {
  return (await stat(path)).size;
}

/**
 * Every file write is a plain blocking one (platform/files.ts `writeStreamToFile`), the main
 * thread's too. Awaiting node:fs's thread-pool writes between the reads of a request body made
 * Deno 2.9's reads of that body slow down as it arrived: a fast client's 100 MiB media batch,
 * read and written to a file 64 KiB at a time, took 9-13 s (85% of the process in memmove
 * under the body stream's reads) and outlasted the real client's 30 s timeout in 3 runs of 3;
 * with blocking writes it takes ~2 s, and the real client's ~3 s with the reads of
 * deno/serve.ts. A 64 KiB write to the page cache holds the thread for tens of microseconds.
 */
export const BLOCKING_WRITES = true;
