/**
 * Where a full upload's body is decompressed and written (unpackBody.ts): on a task thread,
 * whose priority is lowered (ANKISYNCD_TASK_NICE), rather than on the runtime's thread pool,
 * which serves every request at normal priority. A 100 MB upload is ~0.25 s of CPU there, spent
 * while other users sync. The main thread reads the body as it arrives and hands it on through
 * a message channel in pieces (transferred, not copied again), at most `WINDOW_BYTES` ahead of
 * what the task has taken; the task answers what became of it. When `max` bodies are being
 * received on task threads already (taskPool.ts `tryReceive`), the main thread unpacks this one
 * itself, as before.
 */
import type { Compression } from "../compression.ts";
import { concatBytes, StreamTooLarge } from "../platform/files.ts";
import { fileIntegrity, type Integrity } from "../storage/collection/integrity.ts";
import type { CollectionExecutor } from "./executor.ts";
import { UndecodableBody, type UnpackLimits, writeUnpacked } from "./unpackBody.ts";

/** The body's pieces as handed on: about the size the task thread feeds its decompressor. */
const PIECE_BYTES = 64 * 1024;
/** How far the main thread may run ahead of the task: memory held per upload in flight. */
const WINDOW_BYTES = 8 * 1024 * 1024;
/** The task says how much it has taken after every this many bytes. */
const ACK_BYTES = 1024 * 1024;

/** Besides the pieces: the body's end, or the client gone (the task removes its file). */
type Control = "end" | "abort";

export interface UnpackTaskInput {
  port: MessagePort;
  compression: Compression;
  path: string;
  limits: UnpackLimits;
  /** The file is a collection: check its integrity once written (integrity.ts says why here). */
  checkIntegrity?: boolean;
}

/** The task's answer; a failure of the disk is thrown (a typed storage error). */
export type UnpackOutcome =
  | { ok: true; integrity?: Integrity }
  | { tooLarge: number }
  | { undecodable: string };

/**
 * Decompresses `body` to a new file at `path`, on a task thread when one may receive it, with
 * writeUnpacked's errors and limits. With `checkIntegrity`, that thread then checks the
 * collection file at once: the verdict, or undefined when no check was made (the body unpacked
 * on this thread, or the file not checkable there).
 */
export async function receiveUnpacked(
  executor: CollectionExecutor,
  body: ReadableStream<Uint8Array>,
  compression: Compression,
  path: string,
  limits: UnpackLimits,
  checkIntegrity = false,
): Promise<Integrity | undefined> {
  const channel = new MessageChannel();
  const input: UnpackTaskInput = { port: channel.port2, compression, path, limits, checkIntegrity };
  const outcome = executor.tryReceiveOnTask({ kind: "unpackUpload", input }, [channel.port2]);
  if (!outcome) {
    channel.port1.close();
    await writeUnpacked(body, compression, path, limits);
    return undefined;
  }
  try {
    return await feed(body, channel.port1, outcome);
  } finally {
    channel.port1.close();
  }
}

/** Hands the body to the task; throws what the task found, or the client's error. */
async function feed(
  body: ReadableStream<Uint8Array>,
  port: MessagePort,
  outcome: Promise<UnpackOutcome>,
): Promise<Integrity | undefined> {
  const reader = body.getReader();
  let sent = 0;
  let taken = 0;
  let settled = false;
  let wake: (() => void) | null = null;
  const poke = () => {
    const waiting = wake;
    wake = null;
    waiting?.();
  };
  port.onmessage = (event: MessageEvent<number>) => {
    taken = event.data;
    poke();
  };
  const done = () => {
    settled = true;
    poke();
  };
  outcome.then(done, done);
  const pending: Uint8Array[] = [];
  let pendingBytes = 0;
  try {
    for (;;) {
      let chunk: Awaited<ReturnType<typeof reader.read>>;
      try {
        chunk = await reader.read();
      } catch (err) {
        send(port, "abort");
        await outcome.catch(() => {});
        throw err;
      }
      // The task stopped before the end (refused the body, or failed): its answer says why. It
      // has read on past a refusal as far as the limit allows, so the client gets the answer.
      if (settled) break;
      if (!chunk.done) {
        pending.push(chunk.value);
        pendingBytes += chunk.value.byteLength;
        if (pendingBytes < PIECE_BYTES) continue;
      }
      if (pendingBytes > 0) {
        // A copy of its own: a chunk of the request may share its buffer with others.
        const piece = concatBytes(pending.splice(0), pendingBytes);
        port.postMessage(piece, [piece.buffer]);
        sent += pendingBytes;
        pendingBytes = 0;
      }
      if (chunk.done) {
        send(port, "end");
        break;
      }
      while (sent - taken > WINDOW_BYTES && !settled) {
        await new Promise<void>((resolve) => {
          wake = resolve;
        });
      }
    }
  } finally {
    reader.releaseLock();
  }
  const result = await outcome;
  if ("tooLarge" in result) throw new StreamTooLarge(result.tooLarge);
  if ("undecodable" in result) {
    throw new UndecodableBody({ cause: new Error(result.undecodable) });
  }
  return result.integrity;
}

function send(port: MessagePort, control: Control): void {
  port.postMessage(control);
}

/** The task's side (on a task thread): the body from the port, decompressed and written here. */
export async function unpackFromPort(input: UnpackTaskInput): Promise<UnpackOutcome> {
  try {
    await writeUnpacked(portStream(input.port), input.compression, input.path, input.limits, {
      onThisThread: true,
    });
    // This thread is ready now, where the one warmed for the preparation may still be loading
    // the conversion's code (a new thread, a short body): the check need not wait for that.
    return input.checkIntegrity ? { ok: true, integrity: fileIntegrity(input.path) } : { ok: true };
  } catch (err) {
    if (err instanceof StreamTooLarge) return { tooLarge: err.limit };
    if (err instanceof UndecodableBody) {
      const cause = err.cause;
      return { undecodable: cause instanceof Error ? cause.message : String(cause) };
    }
    throw err;
  } finally {
    input.port.close();
  }
}

export class ClientGone extends Error {
  constructor() {
    super("the client went away before the end of the body");
    this.name = "ClientGone";
  }
}

/** The pieces the main thread sends, as a stream; what is read is acknowledged as it goes. */
function portStream(port: MessagePort): ReadableStream<Uint8Array> {
  const queue: Uint8Array[] = [];
  let end: "end" | Error | null = null;
  let wake: (() => void) | null = null;
  let taken = 0;
  let acked = 0;
  port.onmessage = (event: MessageEvent<Uint8Array | Control>) => {
    const data = event.data;
    if (data instanceof Uint8Array) queue.push(data);
    else end = data === "end" ? "end" : new ClientGone();
    const waiting = wake;
    wake = null;
    waiting?.();
  };
  return new ReadableStream<Uint8Array>(
    {
      async pull(controller) {
        while (queue.length === 0 && end === null) {
          await new Promise<void>((resolve) => {
            wake = resolve;
          });
        }
        if (end instanceof Error) return controller.error(end);
        const piece = queue.shift();
        if (!piece) return controller.close();
        taken += piece.byteLength;
        if (taken - acked >= ACK_BYTES) {
          acked = taken;
          port.postMessage(taken);
        }
        controller.enqueue(piece);
      },
    },
    { highWaterMark: 0 },
  );
}
