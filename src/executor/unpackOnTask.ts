/**
 * Where a full upload's body is decompressed and written (unpackBody.ts): on a task thread,
 * whose priority is lowered (ANKISYNCD_TASK_NICE), rather than on the runtime's thread pool,
 * which serves every request at normal priority. A 100 MB upload is ~0.25 s of CPU there, spent
 * while other users sync. The main thread reads the body as it arrives and hands it on through
 * a message channel in pieces (transferred, not copied again), at most `WINDOW_BYTES` ahead of
 * what the task has taken; the task answers what became of it. When `max` bodies are being
 * received on task threads already (taskPool.ts `tryReceive`), the main thread unpacks this one
 * itself, as before.
 *
 * A current client's upload is also the source of the download its other devices get next
 * (sync/collection/readyDownload.ts): with `keep`, the task copies the file as soon as it is
 * written, tells the main thread (the upload's check and conversion start then, on another
 * task thread), and makes the download's body from the copy meanwhile, instead of after the
 * upload's answer, when the first download may already be asking for it.
 */
import type { Compression } from "../compression.ts";
import { concatBytes, StreamTooLarge } from "../platform/files.ts";
import type { ZstdEffort } from "../platform/zstd.ts";
import { fileIntegrity, type Integrity } from "../storage/collection/integrity.ts";
import type { ReadyBody } from "../sync/collection/readyDownload.ts";
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

/** From the task, besides how much it has taken: the file is written (and copied, if kept). */
const WRITTEN = "written";

/** Where the received file is copied to, and the body made from the copy is written. */
export interface KeepForReady {
  at: string;
  body: string;
  effort: ZstdEffort;
}

export interface UnpackTaskInput {
  port: MessagePort;
  compression: Compression;
  path: string;
  limits: UnpackLimits;
  /** The file is a collection: check its integrity once written (integrity.ts says why here). */
  checkIntegrity?: boolean;
  /** Make a ready download's body from the file once written (instead of a check). */
  keep?: KeepForReady;
}

/** The task's answer; a failure of the disk is thrown (a typed storage error). */
export type UnpackOutcome =
  | { ok: true; integrity?: Integrity; made?: ReadyBody; notMade?: string }
  | { tooLarge: number }
  | { undecodable: string };

/**
 * What became of a body written: its integrity, if the receiving thread checked it, or the
 * body of a ready download being made from it (undefined if no copy was taken, rejected if the
 * making failed; its temporaries are gone either way, unless the thread died). The upload's
 * preparation need not wait for `made`.
 */
export interface Unpacked {
  integrity?: Integrity;
  made?: Promise<ReadyBody | undefined>;
}

/**
 * Decompresses `body` to a new file at `path`, on a task thread when one may receive it, with
 * writeUnpacked's errors and limits. With `checkIntegrity`, that thread then checks the
 * collection file at once; with `keep`, it makes a ready download's body from it (see above).
 * Neither is done when the body is unpacked on this thread.
 */
export async function receiveUnpacked(
  executor: CollectionExecutor,
  body: ReadableStream<Uint8Array>,
  compression: Compression,
  path: string,
  limits: UnpackLimits,
  after: { checkIntegrity?: boolean; keep?: KeepForReady } = {},
): Promise<Unpacked> {
  const channel = new MessageChannel();
  const input: UnpackTaskInput = { port: channel.port2, compression, path, limits, ...after };
  const outcome = executor.tryReceiveOnTask({ kind: "unpackUpload", input }, [channel.port2]);
  if (!outcome) {
    channel.port1.close();
    await writeUnpacked(body, compression, path, limits);
    return {};
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
): Promise<Unpacked> {
  const reader = body.getReader();
  let sent = 0;
  let taken = 0;
  let settled = false;
  let wake: (() => void) | null = null;
  let written: () => void = () => {};
  const fileWritten = new Promise<"written">((resolve) => {
    written = () => resolve(WRITTEN);
  });
  const poke = () => {
    const waiting = wake;
    wake = null;
    waiting?.();
  };
  port.onmessage = (event: MessageEvent<number | typeof WRITTEN>) => {
    if (event.data === WRITTEN) return written();
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
  // A task that makes a ready download says when the file is written; the making goes on. Its
  // answer may come first all the same (the two travel apart): it then has the making's end.
  const result = await Promise.race([outcome, fileWritten]);
  if (result === WRITTEN || "made" in result || "notMade" in result) {
    const made = outcome.then(madeOf);
    // Handled later, when the upload has its answer: not a rejection nobody handles meanwhile.
    made.catch(() => {});
    return { made };
  }
  if ("tooLarge" in result) throw new StreamTooLarge(result.tooLarge);
  if ("undecodable" in result) {
    throw new UndecodableBody({ cause: new Error(result.undecodable) });
  }
  return result.integrity ? { integrity: result.integrity } : {};
}

/** The making's body; its failure (said by the task) as an error. */
function madeOf(result: UnpackOutcome): ReadyBody | undefined {
  if ("notMade" in result && result.notMade !== undefined) throw new Error(result.notMade);
  return "made" in result ? result.made : undefined;
}

function send(port: MessagePort, control: Control): void {
  port.postMessage(control);
}

/** The task's side (on a task thread): the body from the port, decompressed and written here. */
export async function unpackFromPort(input: UnpackTaskInput): Promise<UnpackOutcome> {
  // Loaded while the body arrives, and only here: the main thread imports this module too.
  const making = input.keep ? loadMaking() : undefined;
  making?.catch(() => {});
  try {
    await writeUnpacked(portStream(input.port), input.compression, input.path, input.limits, {
      onThisThread: true,
    });
    if (input.keep && making) {
      return await makeReadyFrom(input.path, input.keep, input.port, await making);
    }
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

/**
 * The file copied as received, the main thread told, the body made from the copy. A making
 * that fails is only a download that takes the usual path: said, not thrown.
 */
async function makeReadyFrom(
  path: string,
  keep: KeepForReady,
  port: MessagePort,
  { copyReadySource, makeReadyBody }: Making,
): Promise<UnpackOutcome> {
  const copied = copyReadySource(path, keep.at);
  port.postMessage(WRITTEN);
  if (!copied) return { ok: true };
  try {
    const made = await makeReadyBody({ source: keep.at, body: keep.body, effort: keep.effort });
    return { ok: true, made };
  } catch (err) {
    return { ok: true, notMade: err instanceof Error ? err.message : String(err) };
  }
}

type Making = Awaited<ReturnType<typeof loadMaking>>;

async function loadMaking() {
  const [{ copyReadySource }, { makeReadyBody }] = await Promise.all([
    import("../storage/collection/readyDownload.ts"),
    import("../sync/collection/readyDownload.ts"),
  ]);
  return { copyReadySource, makeReadyBody };
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
