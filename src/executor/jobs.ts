/** The typed messages the main thread sends to the collection workers, and their results. */

import type { LogFormat, LogLevel } from "../config.ts";
import type { DownloadSnapshot } from "../sync/collection/download.ts";
import type { DownloadPlan } from "../sync/collection/downloadSchema.ts";
import type { MetaRequest, MetaResponse } from "../sync/collection/meta.ts";
import type { NormalSyncMethod } from "../sync/collection/normalSync.ts";
import type { UploadOutcome } from "../sync/collection/upload.ts";
import type { SyncErrorKind } from "../sync/errors.ts";
import type { MediaOp, MediaOpResult } from "../sync/media/ops.ts";
import type { RawBody } from "../sync/requestBody.ts";

export interface UserRef {
  uuid: string;
}

export type Job =
  | { kind: "meta"; user: UserRef; req: MetaRequest }
  /**
   * The collection back at rest (closed), unless a normal sync holds it open (false): sent while
   * a full upload is checked, so its install does not wait for that after the check.
   */
  | { kind: "rest"; user: UserRef }
  /** Swap in a collection already prepared by the `prepareUpload` task (executor/tasks.ts). */
  | { kind: "upload"; user: UserRef; preparedPath: string }
  | { kind: "download"; user: UserRef; plan: DownloadPlan }
  /**
   * A copy of the stored file at rest at `target`, for a download made ahead; false (no copy)
   * while a normal sync holds the collection or the disk is short.
   */
  | { kind: "copyForReady"; user: UserRef; target: string }

  /** Waits until the stored file's bump of the download `token` names is durable (true), or throws. */
  | { kind: "commitDownload"; user: UserRef; token: number }
  /**
   * `body` is the request body as the client sent it: the worker unpacks it (bounded) and
   * parses the JSON (64-bit ids stay exact), and encodes its reply as `reply` says (zstd for
   * protocol v11, none for legacy clients), so neither is done on the main thread.
   */
  | {
      kind: "normalSync";
      user: UserRef;
      method: NormalSyncMethod;
      skey: string;
      body: RawBody;
      reply: ReplyEncoding;
      /**
       * The main thread has already answered this `chunk` with the reply the worker offered
       * (`AheadReply`): the step runs for the session's state alone, and its reply is empty.
       */
      answered?: boolean;
    }
  /** A media-sync step (src/sync/media/ops.ts); its result type depends on `op.method`. */
  | { kind: "media"; user: UserRef; op: MediaOp }
  /**
   * Close the user's files (rolling back any sync) so an admin tool or another node can act on
   * them. `ifIdle`: only when no normal sync is under way (answers false otherwise).
   */
  | { kind: "release"; user: UserRef; ifIdle?: boolean };

export type NormalSyncJob = Extract<Job, { kind: "normalSync" }>;

export interface JobResults {
  meta: MetaResponse;
  rest: boolean;
  upload: UploadOutcome;
  /** `commit`: the token of the stored file's bump, for `commitDownload`. */
  download: DownloadSnapshot & { commit: number };
  copyForReady: boolean;
  commitDownload: true;
  normalSync: EncodedReply;
  /** Whether the files were closed. */
  release: boolean;
  media: unknown;
}

export type ReplyEncoding = "zstd" | "none";

/**
 * A reply body in its final encoding (legacy JSON keeps 64-bit ids exact), and its size before
 * compression (`anki-original-size`). Its buffer is transferred to the main thread, not copied.
 */
export interface EncodedReply {
  body: Uint8Array<ArrayBuffer>;
  originalSize: number;
}

export type JobResult<J extends Job> = J extends { kind: "media"; op: infer O extends MediaOp }
  ? MediaOpResult<O>
  : JobResults[J["kind"]];

/** What a worker needs to know; plain data so it can cross the thread boundary. */
export interface WorkerSettings {
  dataDir: string;
  maxUncompressedBytes: number;
  backupsKept: number;
  idleCloseSecs: number;
  syncSessionTimeoutSecs: number;
  /** ANKISYNCD_NETWORK_FS as configured; media.db avoids WAL on network filesystems. */
  networkFs: "auto" | boolean;
  /** ANKISYNCD_COLLECTION_WAL: collections in WAL mode while open (not on a network filesystem). */
  collectionWal: boolean;
  /** ANKISYNCD_TASK_NICE: the task threads' nice value (0: not lowered). */
  taskNice: number;
  logLevel: LogLevel;
  logFormat: LogFormat;
  /** The process's tag for temporary names (storage/instance.ts); threads share it. */
  instance: string;
  /** Path of the unicase extension (platform/sqlite.ts `useUnicaseExtension`). */
  unicaseExtension: string;
}

export interface JobRequestMessage {
  id: number;
  job: Job;
}

/**
 * The buffers a message may hand over instead of copying: a byte array that is the whole of its
 * own ArrayBuffer (a view into a shared or pooled buffer is copied as usual).
 */
export function transferables(value: unknown): ArrayBuffer[] {
  if (typeof value !== "object" || value === null) return [];
  const found: ArrayBuffer[] = [];
  for (const field of Object.values(value)) {
    if (
      field instanceof Uint8Array &&
      field.buffer instanceof ArrayBuffer &&
      field.byteOffset === 0 &&
      field.byteLength === field.buffer.byteLength
    )
      found.push(field.buffer);
  }
  return found;
}

export type JobReplyMessage =
  | { id: number; ok: true; value: unknown }
  | { id: number; ok: false; error: { kind: SyncErrorKind; message: string } };

/**
 * The user's next `chunk` reply, made and encoded ahead, offered to the main thread so it can
 * answer that request at once, without a round trip to the worker and so without an event-loop
 * turn between the request's read and its answer (Bun writes such a response in one send).
 */
export interface AheadReply {
  uuid: string;
  /** The session and the encoding it was made for: the request must match both. */
  skey: string;
  format: ReplyEncoding;
  reply: EncodedReply;
  /** The job whose step made it: it stands only while no later job of the user was sent. */
  afterJob: number;
}

export type WorkerMessage = JobReplyMessage | { ahead: AheadReply };
