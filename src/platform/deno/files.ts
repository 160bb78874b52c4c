/** Reading files on Deno: node:fs (lazy, like Bun.file). */
import { createReadStream } from "node:fs";
import { stat } from "node:fs/promises";
import { Readable } from "node:stream";

export function fileStream(path: string): ReadableStream<Uint8Array> {
  return Readable.toWeb(createReadStream(path)) as unknown as ReadableStream<Uint8Array>;
}

export async function fileSize(path: string): Promise<number> {
  return (await stat(path)).size;
}
