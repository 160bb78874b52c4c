/**
 * A full upload's body, decompressed as it arrives and written straight to the file the task
 * then checks. The client compresses while it sends, so the body takes a while to arrive (about
 * a third of a 10 MB upload's time on the server); decompressing and writing meanwhile, rather
 * than after, takes that work off the time the client waits. Where it runs: unpackOnTask.ts.
 */
import { type Compression, decompressor } from "../compression.ts";
import {
  drainStream,
  joinChunks,
  StreamTooLarge,
  WRITE_BEHIND_BYTES,
  writeStreamToFile,
} from "../platform/files.ts";

/**
 * The body arrives in chunks of ~16 KiB; Bun decompresses a chunk that small on the calling
 * thread, a larger one on its thread pool (10 MB fed in 16 KiB chunks: ~29 ms of this thread's
 * CPU; in 256 KiB chunks: 3-7 ms). So on the main thread chunks are joined up to this size
 * before they are fed.
 */
const FEED_BYTES = 256 * 1024;

/**
 * On a task thread the work is meant to stay on that (lowered) thread: Bun keeps feeds of up to
 * 128 KiB on the calling thread, so pieces are fed at most this large.
 */
const ON_THREAD_FEED_BYTES = 64 * 1024;

/** The body is not valid data of its compression (the whole body has been read). */
export class UndecodableBody extends Error {
  constructor(options: ErrorOptions) {
    super(
      `cannot decompress upload: ${(options.cause as Error)?.message ?? options.cause}`,
      options,
    );
    this.name = "UndecodableBody";
  }
}

export interface UnpackOptions {
  /**
   * Decompress and write on the calling thread (a task worker at a lowered priority): feeds
   * small enough for the runtime to keep them here, blocking writes. Otherwise the runtime's
   * thread pool does both and the calling thread only passes chunks on.
   */
  onThisThread?: boolean;
}

export interface UnpackLimits {
  /** Bound on the body as sent. */
  maxBodyBytes: number;
  /** Bound on what it decompresses to. */
  maxBytes: number;
}

/**
 * Writes the decompressed body to a new file at `path` (written behind, not synced: the task
 * syncs it once checked). Fails with StreamTooLarge past either limit, UndecodableBody on bad
 * data, or the disk's or the client's error; the partial file is removed, and except when the
 * client went away the rest of the body is read (bounded) so the client gets the answer.
 */
export async function writeUnpacked(
  body: ReadableStream<Uint8Array>,
  compression: Compression,
  path: string,
  limits: UnpackLimits,
  { onThisThread = false }: UnpackOptions = {},
): Promise<void> {
  const feedBytes = onThisThread ? ON_THREAD_FEED_BYTES : FEED_BYTES;
  // On a task thread no piece may be large enough for the runtime to hand it to its pool.
  const sliceBytes = onThisThread ? ON_THREAD_FEED_BYTES : Number.POSITIVE_INFINITY;
  const reader = body.getReader();
  const stage = decompressor(compression);
  const writer = stage.writable.getWriter();
  let received = 0;
  let clientError: { err: unknown } | null = null;
  let decodeError: { err: unknown } | null = null;
  // Fed by hand rather than piped, so this keeps the body's reader for draining it after a failure.
  const feeding = (async () => {
    const pending: Uint8Array[] = [];
    let pendingBytes = 0;
    for (;;) {
      const chunk = await reader.read().catch((err: unknown) => {
        clientError = { err };
        throw err;
      });
      if (!chunk.done) {
        received += chunk.value.byteLength;
        if (received > limits.maxBodyBytes) throw new StreamTooLarge(limits.maxBodyBytes);
        pending.push(chunk.value);
        pendingBytes += chunk.value.byteLength;
        if (pendingBytes < feedBytes) continue;
      }
      const joined = joinChunks(pending.splice(0), pendingBytes);
      for (let at = 0; at < pendingBytes; at += sliceBytes) {
        await writer.write(joined.subarray(at, at + sliceBytes));
      }
      pendingBytes = 0;
      if (chunk.done) return await writer.close();
    }
  })();
  const decoded = stage.readable.getReader();
  // The decompressor's failures are told apart from the disk's here.
  const output = new ReadableStream<Uint8Array>(
    {
      async pull(controller) {
        const chunk = await decoded.read().catch((err: unknown) => {
          decodeError ??= { err };
          throw err;
        });
        if (chunk.done) controller.close();
        else controller.enqueue(chunk.value);
      },
      cancel: (reason) => decoded.cancel(reason),
    },
    { highWaterMark: 0 },
  );
  // Either side failing stops the other: the feeder aborts the decompressor, a failed write
  // cancels it (which fails the feeder's pending write).
  feeding.catch((err) => writer.abort(err).catch(() => {}));
  const writing = writeStreamToFile(output, path, limits.maxBytes, {
    writeBehindBytes: WRITE_BEHIND_BYTES,
    blocking: onThisThread,
  });
  writing.catch((err) => output.cancel(err).catch(() => {}));
  const [fed, written] = await Promise.allSettled([feeding, writing]);
  if (fed.status === "fulfilled" && written.status === "fulfilled") {
    reader.releaseLock();
    return;
  }
  const failure = firstCause(fed, written, decodeError);
  if (clientError) throw (clientError as { err: unknown }).err;
  await drainStream(reader, limits.maxBodyBytes - received);
  reader.releaseLock();
  throw failure;
}

/** The error to report: a limit passed, then bad data, then the disk's. */
function firstCause(
  fed: PromiseSettledResult<void>,
  written: PromiseSettledResult<number>,
  decodeError: { err: unknown } | null,
): unknown {
  const fedErr = fed.status === "rejected" ? fed.reason : null;
  const writeErr = written.status === "rejected" ? written.reason : null;
  if (fedErr instanceof StreamTooLarge) return fedErr;
  if (writeErr instanceof StreamTooLarge) return writeErr;
  if (decodeError) return new UndecodableBody({ cause: decodeError.err });
  return writeErr ?? fedErr;
}
