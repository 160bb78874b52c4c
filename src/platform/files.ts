/**
 * File streaming, kept here so the rest of the code sees only web streams. Reading is the
 * runtime's (#platform/files.ts: Bun.file on Bun, node:fs on Deno); writing is node:fs on both.
 */
import { rmSync } from "node:fs";
import { type FileHandle, open } from "node:fs/promises";
import { fileStream } from "#platform/files.ts";

export { fileSize, fileStream } from "#platform/files.ts";

export class StreamTooLarge extends Error {
  constructor(readonly limit: number) {
    super(`stream exceeds ${limit} bytes`);
  }
}

/**
 * Writes a stream to a new file, failing with StreamTooLarge past `maxBytes`; on any failure
 * the partial file is removed and the error names the path. Returns the number of bytes
 * written. Plain file handles rather than Bun's FileSink, which drops write errors such as a
 * full disk (the file just comes out short).
 */
export async function writeStreamToFile(
  stream: ReadableStream<Uint8Array>,
  path: string,
  maxBytes = Number.POSITIVE_INFINITY,
  options: { drainOnError?: boolean } = {},
): Promise<number> {
  const reader = stream.getReader();
  let file: FileHandle | undefined;
  let total = 0;
  try {
    file = await open(path, "wx");
    for (;;) {
      const { done, value } = await reader.read();
      if (done) break;
      total += value.byteLength;
      if (total > maxBytes) throw new StreamTooLarge(maxBytes);
      let written = 0;
      while (written < value.byteLength)
        written += (await file.write(value, written, value.byteLength - written)).bytesWritten;
    }
    await file.close();
    file = undefined;
    return total;
  } catch (err) {
    await file?.close().catch(() => {});
    rmSync(path, { force: true });
    if (err instanceof StreamTooLarge) throw err;
    if (err instanceof Error) (err as NodeJS.ErrnoException).path ??= path;
    // A client still sending a request body sees an answer given before it is read as a
    // network error; read it (up to the limit) so it gets the status instead.
    if (options.drainOnError) await drain(reader, maxBytes - total);
    throw err;
  } finally {
    reader.releaseLock();
  }
}

async function drain(reader: ReadableStreamDefaultReader<Uint8Array>, limit: number) {
  try {
    let left = limit;
    while (left >= 0) {
      const { done, value } = await reader.read();
      if (done) return;
      left -= value.byteLength;
    }
  } catch {
    // The client went away: nothing left to answer.
  }
}

/**
 * Reads a stream into memory while it stays within `smallBytes`; past that, everything goes
 * to a new file at `path` instead (as writeStreamToFile, bounded by `maxBytes`).
 */
export async function readSmallOrToFile(
  stream: ReadableStream<Uint8Array>,
  smallBytes: number,
  path: string,
  maxBytes = Number.POSITIVE_INFINITY,
): Promise<{ bytes: Uint8Array } | { path: string }> {
  const reader = stream.getReader();
  const head: Uint8Array[] = [];
  let total = 0;
  for (;;) {
    const { done, value } = await reader.read();
    if (done) return { bytes: concat(head, total) };
    total += value.byteLength;
    if (total > maxBytes) {
      await drain(reader, maxBytes);
      throw new StreamTooLarge(maxBytes);
    }
    head.push(value);
    if (total > smallBytes) break;
  }
  const rest = new ReadableStream<Uint8Array>({
    start(controller) {
      for (const chunk of head) controller.enqueue(chunk);
    },
    async pull(controller) {
      const { done, value } = await reader.read();
      if (done) controller.close();
      else controller.enqueue(value);
    },
    cancel: (reason) => reader.cancel(reason),
  });
  await writeStreamToFile(rest, path, maxBytes, { drainOnError: true });
  return { path };
}

function concat(chunks: Uint8Array[], total: number): Uint8Array {
  if (chunks.length === 1) return chunks[0] as Uint8Array;
  const out = new Uint8Array(total);
  let offset = 0;
  for (const chunk of chunks) {
    out.set(chunk, offset);
    offset += chunk.byteLength;
  }
  return out;
}

/** A stream over a file that deletes the file once the stream is finished or cancelled. */
export function consumeTempFile(path: string): ReadableStream<Uint8Array> {
  const reader = fileStream(path).getReader();
  const cleanup = () => rmSync(path, { force: true });
  return new ReadableStream<Uint8Array>({
    async pull(controller) {
      const { done, value } = await reader.read();
      if (done) {
        cleanup();
        controller.close();
      } else controller.enqueue(value);
    },
    async cancel(reason) {
      await reader.cancel(reason);
      cleanup();
    },
  });
}
