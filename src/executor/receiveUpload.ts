/**
 * Receiving an upload: the one pipeline behind a full upload (`/sync/upload`) and a media batch
 * (`/msync/uploadChanges`). Refuse while the user's temporaries are at their limit (409: the
 * client tries again later, so a retrying client cannot fill the disk); stream the body to a
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
import type { Integrity } from "../storage/collection/integrity.ts";
import { mediaTempPath, sqliteLeftovers, tempPathBeside, userPaths } from "../storage/paths.ts";
import { temporaryBytes } from "../storage/temporaries.ts";
import type { KeptUpload, UploadOutcome } from "../sync/collection/upload.ts";
import { UPLOAD_OK, UPLOAD_TOO_LARGE } from "../sync/collection/uploadReplies.ts";
import { badRequest, conflict } from "../sync/errors.ts";
import { IN_PLACE_MAX_BYTES } from "../sync/media/limits.ts";
import type { MediaOp } from "../sync/media/ops.ts";
import type { MediaUploadResult } from "../sync/media/upload.ts";
import type { CollectionExecutor } from "./executor.ts";
import type { Job, JobResult, UserRef } from "./jobs.ts";
import type { Task, TaskResult } from "./tasks.ts";
import { UndecodableBody, type UnpackLimits } from "./unpackBody.ts";
import { receiveUnpacked } from "./unpackOnTask.ts";

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

/**
 * A full upload. The reply is OK, or the sentence Anki shows (corrupt, too large). With
 * `keepForReady`, a schema 18 file is also kept as received; an OK outcome then names it
 * (`readySource`), and it is the caller's to use and remove.
 */
export async function receiveCollectionUpload(
  site: UploadSite,
  upload: Upload,
  keepForReady = false,
): Promise<UploadOutcome> {
  const paths = userPaths(site.dataDir, upload.user.uuid);
  const preparedPath = tempPathBeside(paths.collection, ".upload");
  const keepAt = keepForReady ? tempPathBeside(paths.collection, ".ready-source") : undefined;
  const max = site.limits.maxUncompressedBytes;
  let readySource: KeptUpload | undefined;
  let outcome: UploadOutcome;
  try {
    outcome = await receive<Of<Task, "prepareUpload">, Of<Job, "upload">>(site, upload, paths.dir, {
      incomingPath: preparedPath,
      // Anki refuses a collection of exactly the limit too, hence the minus one.
      unpack: { maxBodyBytes: max, maxBytes: max - 1 },
      tooLarge: (err) => ({ reply: UPLOAD_TOO_LARGE, detail: err.message }),
      task: {
        kind: "prepareUpload",
        input: keepAt ? { preparedPath, readySourcePath: keepAt } : { preparedPath },
      },
      checked: (task, integrity) => ({ ...task, input: { ...task.input, integrity } }),
      ahead: { kind: "rest", user: upload.user },
      taskTemporaries: [
        preparedPath,
        ...sqliteLeftovers(preparedPath),
        ...(keepAt ? [keepAt] : []),
      ],
      install: (prepared) => {
        if (!prepared.ready) return { answer: { reply: prepared.reply, detail: prepared.detail } };
        readySource = prepared.readySource;
        return {
          job: { kind: "upload", user: upload.user, preparedPath },
          temporaries: [preparedPath],
        };
      },
    });
  } catch (err) {
    if (keepAt) rmSync(keepAt, { force: true });
    throw err;
  }
  if (outcome.reply === UPLOAD_OK && readySource) return { ...outcome, readySource };
  if (keepAt) rmSync(keepAt, { force: true });
  return outcome;
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
   */
  unpack?: UnpackLimits;
  /** A body past the limit: the answer, or a thrown refusal. */
  tooLarge(err: StreamTooLarge): JobResult<J>;
  /** A body of at most `maxBytes` is first offered, in memory, to `job`: its null means "not small". */
  inPlace?: { maxBytes: number; job(body: Uint8Array): Job };
  task: T;
  /**
   * The body is a collection file, checked by the thread that unpacked it (unpackOnTask.ts):
   * the task, told the verdict, need not check it again.
   */
  checked?(task: T, integrity: Integrity): T;
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
  // One stat: a recursive mkdir of a folder that exists costs two system calls and more JS.
  if (!existsSync(userDir)) mkdirSync(userDir, { recursive: true });
  checkTemporarySpace(userDir, limits.maxTempBytes);
  // Its thread starts while the body arrives, rather than after it.
  if (plan.unpack) executor.warmTasks(plan.task.kind);
  let prepared: TaskResult<T>;
  // A small body kept in memory leaves nothing at incomingPath to remove.
  let incomingWritten = true;
  try {
    let received: Received;
    try {
      received = await receiveBody(executor, upload, plan, limits.maxUncompressedBytes);
    } catch (err) {
      if (err instanceof StreamTooLarge) return plan.tooLarge(err);
      if (err instanceof UndecodableBody) throw badRequest(err.message, { cause: err });
      throw err;
    }
    const { small, integrity } = received;
    if (small) {
      incomingWritten = false;
      const inPlace = plan.inPlace as NonNullable<typeof plan.inPlace>;
      // The in-place job answers for J, or null to hand the body on to the task.
      const answer = (await executor.run(inPlace.job(small))) as JobResult<J> | null;
      if (answer !== null) return answer;
      incomingWritten = true;
      writeFileSync(plan.incomingPath, small, { flag: "wx" });
    }
    // The body's chunks (megabytes) are garbage now; without this they would stay until the
    // heap grows by a share of its size, i.e. for the next few large batches too.
    collectSoon();
    if (plan.ahead) executor.run(plan.ahead).catch(() => undefined);
    const task = integrity && plan.checked ? plan.checked(plan.task, integrity) : plan.task;
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

/** A small body in memory, or what was learnt of the one written (its integrity, if checked). */
interface Received {
  small?: Uint8Array;
  integrity?: Integrity;
}

/**
 * Streams the body to `plan.incomingPath` (decompressed if the plan says so); returns it in
 * memory instead (nothing written) when the plan takes small bodies in place and this one is.
 * Past the limit: StreamTooLarge, with the body read on so the client gets the answer.
 */
async function receiveBody(
  executor: CollectionExecutor,
  { body, compression }: Upload,
  plan: UploadPlan<Task, Job>,
  maxBytes: number,
): Promise<Received> {
  if (plan.unpack) {
    const check = plan.checked !== undefined;
    return {
      integrity: await receiveUnpacked(
        executor,
        body,
        compression,
        plan.incomingPath,
        plan.unpack,
        check,
      ),
    };
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
  );
  return "bytes" in received ? { small: received.bytes } : {};
}

/** Refused with 409 while the user's temporaries already take `maxTempBytes`. */
function checkTemporarySpace(userDir: string, maxTempBytes: number): void {
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
