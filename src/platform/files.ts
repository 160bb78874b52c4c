/**
 * File streaming, kept here so the rest of the code sees only web streams. Reading is the
 * runtime's (#platform/files.ts: Bun.file on Bun, node:fs on Deno); writing is node:fs on both.
 */
import { closeSync, fdatasync, openSync, readSync, rmSync, writeSync } from "node:fs";
import { open } from "node:fs/promises";
import { promisify } from "node:util";
import { BLOCKING_WRITES, fileStream } from "#platform/files.ts";

export { fileSize, fileStream } from "#platform/files.ts";

export class StreamTooLarge extends Error {
  constructor(readonly limit: number) {
    super(`stream exceeds ${limit} bytes`);
  }
}

/**
 * How much a large file being written may hold unwritten before it is flushed
 * (`writeBehindBytes`): a sync waits for every dirty page of the file, and on ext4 other
 * users' commits wait behind it, so one sync of 100 MB at the end would stall every other
 * user's commit for as long as the disk takes to write it all.
 */
export const WRITE_BEHIND_BYTES = 4 * 1024 * 1024;

export interface WriteOptions {
  /** Read the rest of the stream (up to the limit) after a failure, so the client gets the answer. */
  drainOnError?: boolean;
  /**
   * Start a flush to disk (fdatasync) after every this many bytes, so the file never holds
   * much more than twice that unwritten (WRITE_BEHIND_BYTES); the writing goes on while a
   * flush runs. It does not make the end durable: the caller syncs.
   */
  writeBehindBytes?: number;
  /**
   * Plain blocking writes on the calling thread, for worker threads: an awaited write is a
   * round trip to the runtime's thread pool per chunk, and runs at the pool's priority rather
   * than the (lowered) priority of a task thread. Never asked for on the main thread; on Deno
   * every write is made this way (#platform/files.ts `BLOCKING_WRITES` says why).
   */
  blocking?: boolean;
}

/** Where writeStreamToFile puts the bytes: an awaited file handle, or a blocking descriptor. */
interface Sink {
  write(chunk: Uint8Array): void | Promise<void>;
  /** On the thread pool either way, so the writing can go on meanwhile. */
  datasync(): Promise<void>;
  close(): void | Promise<void>;
}

const datasyncFd = promisify(fdatasync);

async function openSink(path: string, blocking: boolean): Promise<Sink> {
  if (blocking || BLOCKING_WRITES) {
    const fd = openSync(path, "wx");
    return {
      write(chunk) {
        let done = 0;
        while (done < chunk.byteLength) done += writeSync(fd, chunk, done, chunk.byteLength - done);
      },
      datasync: () => datasyncFd(fd),
      close: () => closeSync(fd),
    };
  }
  const file = await open(path, "wx");
  return {
    async write(chunk) {
      let done = 0;
      while (done < chunk.byteLength)
        done += (await file.write(chunk, done, chunk.byteLength - done)).bytesWritten;
    },
    datasync: () => file.datasync(),
    close: () => file.close(),
  };
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
  options: WriteOptions = {},
): Promise<number> {
  const reader = stream.getReader();
  const flushEvery = options.writeBehindBytes ?? Number.POSITIVE_INFINITY;
  let sink: Sink | undefined;
  // At most one flush in flight; awaited before the next one starts and before closing.
  let flushing: Promise<void> | undefined;
  let total = 0;
  let unflushed = 0;
  try {
    sink = await openSink(path, options.blocking ?? false);
    for (;;) {
      const { done, value } = await reader.read();
      if (done) break;
      total += value.byteLength;
      if (total > maxBytes) throw new StreamTooLarge(maxBytes);
      await sink.write(value);
      unflushed += value.byteLength;
      if (unflushed >= flushEvery) {
        await flushing;
        flushing = sink.datasync();
        // Handled here so a failure is not an unhandled rejection; it is thrown when awaited.
        flushing.catch(() => {});
        unflushed = 0;
      }
    }
    await flushing;
    const closing = sink;
    sink = undefined;
    await closing.close();
    return total;
  } catch (err) {
    try {
      await flushing?.catch(() => {});
      await sink?.close();
    } catch {
      // Already failing: the first error is the one to report.
    }
    rmSync(path, { force: true });
    if (err instanceof StreamTooLarge) throw err;
    if (err instanceof Error) (err as NodeJS.ErrnoException).path ??= path;
    // A client still sending a request body sees an answer given before it is read as a
    // network error; read it (up to the limit) so it gets the status instead.
    if (options.drainOnError) await drainStream(reader, maxBytes - total);
    throw err;
  } finally {
    reader.releaseLock();
  }
}

/** Reads and drops up to `limit` more bytes (a client still sending gets the answer); never throws. */
export async function drainStream(reader: ReadableStreamDefaultReader<Uint8Array>, limit: number) {
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
 * to a new file at `path` instead (as writeStreamToFile, bounded by `maxBytes`), once
 * `beforeWriting` has not thrown (what it throws is thrown, the stream read on to the bound so
 * the client gets the answer).
 */
export async function readSmallOrToFile(
  stream: ReadableStream<Uint8Array>,
  smallBytes: number,
  path: string,
  maxBytes = Number.POSITIVE_INFINITY,
  beforeWriting?: () => void,
): Promise<{ bytes: Uint8Array } | { path: string }> {
  const reader = stream.getReader();
  const head: Uint8Array[] = [];
  let total = 0;
  for (;;) {
    const { done, value } = await reader.read();
    if (done) return { bytes: joinChunks(head, total) };
    total += value.byteLength;
    if (total > maxBytes) {
      await drainStream(reader, maxBytes);
      throw new StreamTooLarge(maxBytes);
    }
    head.push(value);
    if (total > smallBytes) break;
  }
  if (beforeWriting) {
    try {
      beforeWriting();
    } catch (err) {
      await drainStream(reader, maxBytes);
      throw err;
    }
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

/**
 * Copies the file open at `fd` to a new file at `target`, leaving `fd` open. Closing any
 * descriptor of a file drops every POSIX lock this process holds on it, SQLite's included, so a
 * copy made while a connection holds the file locked reads through a descriptor opened
 * beforehand and closed only once the lock is let go (a path copy opens and closes its own).
 */
export function copyFromDescriptor(fd: number, target: string): void {
  const out = openSync(target, "wx");
  try {
    const buffer = new Uint8Array(1024 * 1024);
    let position = 0;
    for (;;) {
      const read = readSync(fd, buffer, 0, buffer.length, position);
      if (read === 0) break;
      writeSync(out, buffer, 0, read);
      position += read;
    }
  } finally {
    closeSync(out);
  }
}

/** The chunks as one array (the one chunk itself, uncopied, when there is only one). */
export function joinChunks(chunks: Uint8Array[], total: number): Uint8Array {
  if (chunks.length === 1) return chunks[0] as Uint8Array;
  return concatBytes(chunks, total);
}

/** The chunks copied into one new array of its own (one that can be transferred). */
export function concatBytes(chunks: Uint8Array[], total: number): Uint8Array<ArrayBuffer> {
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
