/**
 * Receiving an upload: the one pipeline behind a full upload (`/sync/upload`) and a media batch
 * (`/msync/uploadChanges`). Refuse a body that would be written to the user's folder while the
 * user's temporaries are at their limit (409: the client tries again later, so a retrying
 * client cannot fill the disk; a small media batch kept in memory is none); stream the body to a
 * temporary in the user's folder (a full upload's decompressed on the way, on a task thread:
 * unpackOnTask.ts); prepare it on a task worker (check and convert, or stage: the heavy part,
 * off the user's worker); install the result with a job on the user's worker. Every temporary
 * is named here, so each one is removed whatever fails: the client, the disk, the task, or the
 * task's thread itself.
 */
import { existsSync, mkdirSync, rmSync, writeFileSync } from "node:fs";
import type { Compression } from "../compression.ts";
import { readSmallOrToFile, StreamTooLarge, writeStreamToFile } from "../platform/files.ts";
import { collectSoon } from "../platform/memory.ts";
import type { ZstdEffort } from "../platform/zstd.ts";
import { mediaTempPath, sqliteLeftovers, tempPathBeside, userPaths } from "../storage/paths.ts";
import { temporaryBytes } from "../storage/temporaries.ts";
import type { ReadyBody } from "../sync/collection/readyDownload.ts";
import type { UploadOutcome } from "../sync/collection/upload.ts";
import { UPLOAD_OK, UPLOAD_TOO_LARGE } from "../sync/collection/uploadReplies.ts";
import { badRequest, conflict } from "../sync/errors.ts";
import { IN_PLACE_MAX_BYTES } from "../sync/media/limits.ts";
import type { MediaOp } from "../sync/media/ops.ts";
import type { MediaUploadResult } from "../sync/media/upload.ts";
import type { CollectionExecutor } from "./executor.ts";
import type { Job, JobResult, UserRef } from "./jobs.ts";
import type { Task, TaskResult } from "./tasks.ts";
import { UndecodableBody, type UnpackLimits } from "./unpackBody.ts";
import { type KeepForReady, receiveUnpacked, type Unpacked } from "./unpackOnTask.ts";

export interface UploadLimits {
  /** Bound on the body as sent and on what it decompresses to. */
  maxUncompressedBytes: number;
  /** ANKISYNCD_MAX_TEMP_MEGS: uploads are refused while the user's temporaries take this much. */
  maxTempBytes: number;
}

/** Where uploads go and what bounds them; the same for every request. */
export interface UploadSite {
  executor: CollectionExecutor;
  dataDir: string;
  limits: UploadLimits;
}

export interface Upload {
  user: UserRef;
  /** The request body as sent (still compressed), unread. */
  body: ReadableStream<Uint8Array>;
  compression: Compression;
}

/** An installed upload's ready download in the making, and what the stored file is now. */
export interface MadeAhead {
  body: Promise<ReadyBody | undefined>;
  fingerprint: string;
}

/**
 * A full upload. The reply is OK, or the sentence Anki shows (corrupt, too large). With
 * `readyEffort`, the download a current client gets is made from a schema 18 file as received
 * meanwhile (unpackOnTask.ts), compressed with that effort: an OK outcome then has it (`ready`),
 * the caller's to publish; otherwise it is removed here.
 */
export async function receiveCollectionUpload(
  site: UploadSite,
  upload: Upload,
  readyEffort?: ZstdEffort,
): Promise<UploadOutcome & { ready?: MadeAhead }> {
  const paths = userPaths(site.dataDir, upload.user.uuid);
  const preparedPath = tempPathBeside(paths.collection, ".upload");
  const keep = readyEffort && {
    at: tempPathBeside(paths.collection, ".ready-source"),
    body: tempPathBeside(paths.collection, ".ready-body"),
    effort: readyEffort,
  };
  const max = site.limits.maxUncompressedBytes;
  let made: Promise<ReadyBody | undefined> | undefined;
  let fingerprint: string | undefined;
  let outcome: UploadOutcome | undefined;
  try {
    outcome = await receive<Of<Task, "prepareUpload">, Of<Job, "upload">>(site, upload, paths.dir, {
      incomingPath: preparedPath,
      // Anki refuses a collection of exactly the limit too, hence the minus one.
      unpack: { limits: { maxBodyBytes: max, maxBytes: max - 1 }, checkIntegrity: !keep, keep },
      tooLarge: (err) => ({ reply: UPLOAD_TOO_LARGE, detail: err.message }),
      task: { kind: "prepareUpload", input: { preparedPath } },
      received: (task, unpacked) => {
        made = unpacked.made;
        const input = { ...task.input, fingerprint: made !== undefined };
        const integrity = unpacked.integrity;
        return { ...task, input: integrity ? { ...input, integrity } : input };
      },
      ahead: { kind: "rest", user: upload.user },
      taskTemporaries: [preparedPath, ...sqliteLeftovers(preparedPath)],
      install: (prepared) => {
        if (!prepared.ready) return { answer: { reply: prepared.reply, detail: prepared.detail } };
        fingerprint = prepared.fingerprint;
        return {
          job: { kind: "upload", user: upload.user, preparedPath },
          temporaries: [preparedPath],
        };
      },
    });
    if (outcome.reply === UPLOAD_OK && made && fingerprint) {
      return { ...outcome, ready: { body: made, fingerprint } };
    }
    return outcome;
  } finally {
    // Not for the caller to publish: whatever the making leaves is removed once it ends.
    if (keep && !(outcome?.reply === UPLOAD_OK && made && fingerprint)) discard(keep, made);
  }
}

/** A making's files, once it ends (a body made, or what a thread that died left). */
function discard(keep: KeepForReady, made?: Promise<ReadyBody | undefined>): void {
  const remove = () => removeAll([keep.at, ...sqliteLeftovers(keep.at), keep.body]);
  if (made) made.then(remove, remove);
  else remove();
}

/** A media batch: `[entries processed, media usn after it]`. */
export function receiveMediaUpload(site: UploadSite, upload: Upload): Promise<MediaUploadResult> {
  const paths = userPaths(site.dataDir, upload.user.uuid);
  const incomingPath = mediaTempPath(paths, ".upload");
  const staging = {
    zipPath: mediaTempPath(paths, ".upload.zip"),
    staging: mediaTempPath(paths, ".staging"),
  };
  const limits = { maxUncompressedBytes: site.limits.maxUncompressedBytes };
  return receive<Of<Task, "stageMediaUpload">, MediaJob<"uploadChanges">>(site, upload, paths.dir, {
    incomingPath,
    tooLarge: (err) => {
      throw badRequest(`media upload body: ${err.message}`, { cause: err });
    },
    // The usual batch of a few small files is done in place on the user's worker, where a task
    // worker would cost more than the work; null when it turns out not to be small.
    inPlace: {
      maxBytes: IN_PLACE_MAX_BYTES,
      job: (body) => ({
        kind: "media",
        user: upload.user,
        op: { method: "uploadSmallChanges", body, compression: upload.compression, limits },
      }),
    },
    task: {
      kind: "stageMediaUpload",
      input: { incomingPath, compression: upload.compression },
      paths: staging,
      limits,
    },
    taskTemporaries: [staging.zipPath, staging.staging],
    install: (staged) => ({
      job: { kind: "media", user: upload.user, op: { method: "uploadChanges", staged } },
      temporaries: [staged.staging],
    }),
  });
}

type Of<U, K> = Extract<U, { kind: K }>;
type MediaJob<M> = Of<Job, "media"> & { op: Extract<MediaOp, { method: M }> };

/** One upload's steps: task `T` prepares the received body, job `J` installs what it made. */
interface UploadPlan<T extends Task, J extends Job> {
  /** Where the body is written. */
  incomingPath: string;
  /**
   * The body is decompressed on its way to `incomingPath` (then one of the task's temporaries,
   * which the task takes over), rather than written as sent; a task worker is started meanwhile.
   * The receiving thread then checks a collection's integrity, or makes a ready download from
   * it (unpackOnTask.ts).
   */
  unpack?: { limits: UnpackLimits; checkIntegrity?: boolean; keep?: KeepForReady | undefined };
  /** A body past the limit: the answer, or a thrown refusal. */
  tooLarge(err: StreamTooLarge): JobResult<J>;
  /** A body of at most `maxBytes` is first offered, in memory, to `job`: its null means "not small". */
  inPlace?: { maxBytes: number; job(body: Uint8Array): Job };
  task: T;
  /**
   * The task as told what the receiving thread learnt or started (unpackOnTask.ts): told the
   * integrity check's verdict, it need not check again.
   */
  received?(task: T, unpacked: Unpacked): T;
  /**
   * A job for the user's worker while the task runs: work the install would otherwise do after
   * the task, on the request's critical path. Sent once the body is in (a body that fails
   * leaves everything as it was). Its failure is the install's to meet.
   */
  ahead?: Job;
  /** What the task creates (it removes them itself unless its thread dies). */
  taskTemporaries: string[];
  /** The installing job and what it consumes, or the answer when there is nothing to install. */
  install(prepared: TaskResult<T>): { job: J; temporaries: string[] } | { answer: JobResult<J> };
}

async function receive<T extends Task, J extends Job>(
  site: UploadSite,
  upload: Upload,
  userDir: string,
  plan: UploadPlan<T, J>,
): Promise<JobResult<J>> {
  const { executor, limits } = site;
  const makeRoom = () => makeRoomForTemporaries(userDir, limits.maxTempBytes);
  // A body small enough to be kept in memory is not a temporary: the usual media batch then
  // costs the main thread no look at the user's folder (makeRoom runs once it is not small).
  if (!plan.inPlace) makeRoom();
  // Its thread starts while the body arrives, rather than after it.
  if (plan.unpack) executor.warmTasks(plan.task.kind);
  let prepared: TaskResult<T>;
  // A small body kept in memory leaves nothing at incomingPath to remove.
  let incomingWritten = true;
  try {
    let received: Received;
    try {
      received = await receiveBody(executor, upload, plan, limits.maxUncompressedBytes, makeRoom);
    } catch (err) {
      if (err instanceof StreamTooLarge) return plan.tooLarge(err);
      if (err instanceof UndecodableBody) throw badRequest(err.message, { cause: err });
      throw err;
    }
    const { small, ...unpacked } = received;
    if (small) {
      incomingWritten = false;
      const inPlace = plan.inPlace as NonNullable<typeof plan.inPlace>;
      // The in-place job answers for J, or null to hand the body on to the task.
      const answer = (await executor.run(inPlace.job(small))) as JobResult<J> | null;
      if (answer !== null) return answer;
      makeRoom();
      incomingWritten = true;
      writeFileSync(plan.incomingPath, small, { flag: "wx" });
    }
    // The body's chunks (megabytes) are garbage now; without this they would stay until the
    // heap grows by a share of its size, i.e. for the next few large batches too.
    collectSoon();
    if (plan.ahead) executor.run(plan.ahead).catch(() => undefined);
    const task = plan.received ? plan.received(plan.task, unpacked) : plan.task;
    prepared = await executor.runTask(task);
  } catch (err) {
    // The task removes what it made; this covers a task thread that died first.
    removeAll(plan.taskTemporaries);
    throw err;
  } finally {
    // An unpacked body is the task's own (removed by it, or above).
    if (!plan.unpack && incomingWritten) rmSync(plan.incomingPath, { force: true });
  }
  const next = plan.install(prepared);
  if ("answer" in next) {
    // Nothing to install: whatever the task made (it removes it itself) is not needed.
    removeAll(plan.taskTemporaries);
    return next.answer;
  }
  try {
    return await executor.run(next.job);
  } finally {
    // Gone already once installed; removed here if the job never ran or failed.
    removeAll(next.temporaries);
  }
}

/** A small body in memory, or what became of the one written. */
interface Received extends Unpacked {
  small?: Uint8Array;
}

/**
 * Streams the body to `plan.incomingPath` (decompressed if the plan says so); returns it in
 * memory instead (nothing written) when the plan takes small bodies in place and this one is,
 * and otherwise calls `makeRoom` before writing it.
 * Past the limit: StreamTooLarge, with the body read on so the client gets the answer.
 */
async function receiveBody(
  executor: CollectionExecutor,
  { body, compression }: Upload,
  plan: UploadPlan<Task, Job>,
  maxBytes: number,
  makeRoom: () => void,
): Promise<Received> {
  if (plan.unpack) {
    const { limits, ...after } = plan.unpack;
    return await receiveUnpacked(executor, body, compression, plan.incomingPath, limits, after);
  }
  if (!plan.inPlace) {
    await writeStreamToFile(body, plan.incomingPath, maxBytes, { drainOnError: true });
    return {};
  }
  const received = await readSmallOrToFile(
    body,
    plan.inPlace.maxBytes,
    plan.incomingPath,
    maxBytes,
    makeRoom,
  );
  return "bytes" in received ? { small: received.bytes } : {};
}

/**
 * Before a body is written to the user's folder: the folder made, and a 409 while the user's
 * temporaries already take `maxTempBytes`.
 */
function makeRoomForTemporaries(userDir: string, maxTempBytes: number): void {
  // One stat: a recursive mkdir of a folder that exists costs two system calls and more JS.
  if (!existsSync(userDir)) mkdirSync(userDir, { recursive: true });
  const used = temporaryBytes(userDir);
  if (used >= maxTempBytes) {
    throw conflict(
      `temporary files in ${userDir} take ${used} bytes (ANKISYNCD_MAX_TEMP_MEGS); try again later`,
    );
  }
}

function removeAll(paths: string[]): void {
  for (const path of paths) rmSync(path, { recursive: true, force: true });
}
