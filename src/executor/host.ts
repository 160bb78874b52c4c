/**
 * Runs jobs for the users pinned to one worker and holds their files: each user's collection,
 * media store and lock (`UserState`). Files stay open between the requests of a sync and are
 * closed when idle; unfinished normal syncs are rolled back after a timeout.
 */
import { setImmediate } from "node:timers";
import { encodeReply } from "../compression.ts";
import { createLogger, type Logger } from "../log.ts";
import { pruneBackupsAsync } from "../storage/collection/replace.ts";
import { ConversionNotLoaded, loadConversion } from "../storage/collection/userCollection.ts";
import { userPaths } from "../storage/paths.ts";
import {
  bumpStoredUsn,
  loadUpgradeSoon,
  snapshotForDownload,
} from "../sync/collection/download.ts";
import type { DownloadPlan } from "../sync/collection/downloadSchema.ts";
import { meta } from "../sync/collection/meta.ts";
import { runNormalSyncStep } from "../sync/collection/normalSync.ts";
import { copyForReadyDownload, takeReadyForDownload } from "../sync/collection/readyDownload.ts";
import { installUpload } from "../sync/collection/upload.ts";
import { runMediaOp } from "../sync/media/ops.ts";
import { rawBodyText } from "../sync/requestBody.ts";
import { asStorageError } from "../sync/storageErrors.ts";
import { DownloadCommits } from "./downloadCommits.ts";
import type {
  AheadReply,
  EncodedReply,
  Job,
  JobResult,
  NormalSyncJob,
  ReplyEncoding,
  WorkerSettings,
} from "./jobs.ts";
import { UserState } from "./userState.ts";

/**
 * A collection in WAL mode shuts Anki's library out (a web app beside the server) while it is
 * open, so it goes back to rest this long after the user's last request, unless a sync is in
 * progress: the steps of a sync and syncs in quick succession keep WAL's cheaper commits, and a
 * web app waits a few seconds at most after a sync, not until the idle close.
 */
export const WAL_REST_MS = 3000;

/** How recently another user's request makes them active (`UserHost.othersActive`). */
const OTHERS_ACTIVE_MS = WAL_REST_MS;

async function encodeJson(json: string, format: ReplyEncoding): Promise<EncodedReply> {
  const bytes = new TextEncoder().encode(json);
  return { body: await encodeReply(bytes, format), originalSize: bytes.byteLength };
}

export class UserHost {
  private readonly users = new Map<string, UserState>();
  private readonly downloads = new DownloadCommits();
  /** Users with work left until after a reply (`afterReplies`). */
  private readonly pendingAfter = new Set<UserState>();
  /** `afterReplies` runs again at the next turn of this thread's event loop. */
  private partsScheduled = false;
  private readonly log: Logger;
  private sweeper: ReturnType<typeof setInterval> | undefined;

  /** `offerAhead`: where a `chunk` reply made ahead goes (the main thread), if anywhere. */
  constructor(
    private readonly settings: WorkerSettings,
    private readonly offerAhead?: (ahead: AheadReply) => void,
  ) {
    this.log = createLogger(settings.logLevel, settings.logFormat);
    const everyMs = Math.min(settings.idleCloseSecs, settings.syncSessionTimeoutSecs) * 500;
    const sweepMs = Math.max(everyMs, 250);
    this.sweeper = setInterval(
      () => this.sweep(),
      settings.collectionWal ? Math.min(sweepMs, WAL_REST_MS / 2) : sweepMs,
    );
    this.sweeper.unref?.();
  }

  /** Users whose files are open here. */
  get openUsers(): number {
    return this.users.size;
  }

  /** `jobId`: the message's id, named by the replies this job's step makes ahead. */
  async handle<J extends Job>(job: J, jobId = 0): Promise<JobResult<J>> {
    const user = this.user(job.user.uuid);
    user.collection.lastUsed = Date.now();
    try {
      if (job.kind !== "release") user.acquire();
    } catch (err) {
      throw asStorageError(err, user.paths.dir);
    }
    // Normally run already, right after the reply was sent (the worker's `afterReplies`); a
    // chunk is planned and answered first while a few earlier chunks' writes are pending.
    if (!plannedAhead(job)) this.runAfterReply(user);
    else while (user.afterReply.length >= MAX_PENDING_AFTER) this.runAfterPart(user);
    user.busy++;
    try {
      // A download's copy already carries this bump: nothing may see the file before it.
      this.downloads.applyFor(job.user.uuid, (now) => bumpStoredUsn(user, now));
      // What the user's last media batch left for after its answer comes first.
      if (user.media.settling) await user.media.settled();
      if (startsWithOpen(job)) await user.collection.prepare();
      return (await this.dispatchConverting(user, job, jobId)) as JobResult<J>;
    } catch (err) {
      throw asStorageError(err, user.paths.dir);
    } finally {
      user.busy--;
      user.collection.lastUsed = Date.now();
    }
  }

  /**
   * A later step of a sync may meet a file another program swapped for one in another schema
   * while the collection was open; it fails at that first open, before doing anything, so the
   * conversion is loaded and the step runs again (instead of failing the client's sync once).
   */
  private async dispatchConverting(user: UserState, job: Job, jobId: number): Promise<unknown> {
    try {
      return await this.dispatch(user, job, jobId);
    } catch (err) {
      if (!(err instanceof ConversionNotLoaded)) throw err;
      await loadConversion();
      return await this.dispatch(user, job, jobId);
    }
  }

  private dispatch(user: UserState, job: Job, jobId: number): unknown {
    const s = this.settings;
    switch (job.kind) {
      case "meta":
        return meta(user, job.req, s);
      case "rest":
        // A full upload is being checked: its install then finds the file at rest already.
        if (user.session) return false;
        user.collection.close();
        return true;
      case "upload": {
        const outcome = installUpload(user, job.preparedPath, s.backupsKept);
        this.pruneBackupsSoon(job.user.uuid, user);
        if (!this.othersActive(job.user.uuid)) loadUpgradeSoon();
        return outcome;
      }
      case "download":
        return this.download(user, job.user.uuid, job.plan);
      case "copyForReady":
        return copyForReadyDownload(user, job.target);
      case "commitDownload":
        this.downloads.settle(job.user.uuid, job.token);
        return true;
      case "normalSync":
        return job.answered
          ? this.answeredChunk(user, job, jobId)
          : this.normalSync(user, job, jobId);
      case "media":
        return runMediaOp(user.media, job.op);
      case "release":
        if (job.ifIdle && user.session) return false;
        user.close();
        this.users.delete(job.user.uuid);
        return true;
    }
  }

  private async download(user: UserState, uuid: string, plan: DownloadPlan) {
    const ready = takeReadyForDownload(user, plan);
    if (ready) return { ...ready.snapshot, commit: this.downloads.add(uuid, ready.now) };
    const now = Date.now();
    const snapshot = await snapshotForDownload(user, plan, now);
    return { ...snapshot, commit: this.downloads.add(uuid, now) };
  }

  /**
   * Unpacks the body before the step: broken compression or too much of it is a 400 that
   * leaves the session untouched, as a body of the wrong shape is.
   */
  private async normalSync(
    user: UserState,
    job: NormalSyncJob,
    jobId: number,
  ): Promise<EncodedReply> {
    const payload = await rawBodyText(job.body);
    const ahead = user.replyAhead;
    user.replyAhead = undefined;
    const { json, after, afterPart } = runNormalSyncStep(user, job.method, job.skey, payload, {
      later: true,
      settle: () => this.runAfterReply(user),
    });
    const reply =
      ahead?.json === json && ahead.format === job.reply
        ? await ahead.encoded.catch(() => encodeJson(json, job.reply))
        : await encodeJson(json, job.reply);
    if (afterPart) this.leaveAfterReply(user, afterPart);
    else if (after) {
      this.leaveAfterReply(user, () => {
        const next = after();
        if (next !== undefined) this.makeAhead(user, job, jobId, next);
        return true;
      });
    }
    return reply;
  }

  private leaveAfterReply(user: UserState, part: () => boolean): void {
    user.afterReply.push(part);
    this.pendingAfter.add(user);
  }

  /** The next reply, encoded now and offered to the main thread once it is. */
  private makeAhead(user: UserState, job: NormalSyncJob, jobId: number, json: string): void {
    const encoded = encodeJson(json, job.reply);
    user.replyAhead = { json, format: job.reply, encoded };
    const offer = this.offerAhead;
    encoded.then(
      (reply) => {
        // Not when a later job took it meanwhile (the main thread would refuse it too).
        if (offer && user.replyAhead?.encoded === encoded)
          offer({ uuid: job.user.uuid, skey: job.skey, format: job.reply, afterJob: jobId, reply });
      },
      // Its request (or none) will see a failure and encode again.
      () => {},
    );
  }

  /**
   * A `chunk` the main thread answered with the reply offered: the step runs as if this thread
   * had answered, so the session moves on to the next chunk (and makes it ahead). Nothing else
   * of the user's ran between the offer and this job, so the step answers the same text.
   */
  private async answeredChunk(
    user: UserState,
    job: NormalSyncJob,
    jobId: number,
  ): Promise<EncodedReply> {
    const offered = user.replyAhead?.encoded.catch(() => undefined);
    let reply: EncodedReply;
    try {
      reply = await this.normalSync(user, job, jobId);
    } catch (err) {
      this.log.error("a chunk answered ahead was not taken by its session", {
        uuid: job.user.uuid,
        error: (err as Error).message,
      });
      throw err;
    }
    if (reply !== (await offered)) {
      this.log.error("a chunk answered ahead differs from its step's reply", {
        uuid: job.user.uuid,
      });
    }
    // Empty, and a buffer of its own: a reply's buffer is handed over to the main thread.
    return { body: new Uint8Array(0), originalSize: 0 };
  }

  /**
   * Runs the work steps left until their replies were sent: the worker calls this right after
   * posting a reply, so it overlaps with the client handling that reply and preparing its next
   * request. It goes a part at a time, letting this thread take a message between parts: the
   * client's next request then waits for one part of the writes, not for all of them.
   */
  afterReplies(): void {
    let left = false;
    for (const user of this.pendingAfter) {
      // The user's job under way (its body being unpacked, its reply encoded) answers first;
      // posting its reply calls this again.
      if (user.busy > 0) continue;
      this.runAfterPart(user);
      left ||= user.afterReply.length > 0;
    }
    if (!left || this.partsScheduled) return;
    this.partsScheduled = true;
    setImmediate(() => {
      this.partsScheduled = false;
      this.afterReplies();
    });
  }

  /** All of a user's work left until after replies, now. */
  private runAfterReply(user: UserState): void {
    while (user.afterReply.length > 0) this.runAfterPart(user);
  }

  private runAfterPart(user: UserState): void {
    const part = user.afterReply[0];
    if (!part) {
      this.pendingAfter.delete(user);
      return;
    }
    user.busy++;
    try {
      if (part()) user.afterReply.shift();
    } catch (err) {
      // The steps catch their own failures; this one must not keep the queue stuck.
      user.afterReply.shift();
      throw err;
    } finally {
      user.busy--;
      user.collection.lastUsed = Date.now();
      if (user.afterReply.length === 0) this.pendingAfter.delete(user);
    }
  }

  private user(uuid: string): UserState {
    let user = this.users.get(uuid);
    if (!user) {
      user = new UserState(
        userPaths(this.settings.dataDir, uuid),
        { networkFs: this.settings.networkFs },
        this.settings.collectionWal,
      );
      this.users.set(uuid, user);
    }
    return user;
  }

  /**
   * Whether a user other than `uuid` pinned to this worker is in a sync or made a request in
   * the last `OTHERS_ACTIVE_MS`. Loading the download conversion ahead after a full upload
   * (download.ts `loadUpgradeSoon`) holds this thread for ~100 ms, and such a user's next
   * request would wait behind it; then it is left to the uploader's own first download.
   */
  othersActive(uuid: string, now = Date.now()): boolean {
    for (const [other, user] of this.users) {
      if (other === uuid) continue;
      if (user.busy > 0 || user.session || now - user.collection.lastUsed < OTHERS_ACTIVE_MS)
        return true;
    }
    return false;
  }

  /** After the upload's answer has gone: the replaced collections past the number kept. */
  private pruneBackupsSoon(uuid: string, user: UserState): void {
    setTimeout(() => {
      pruneBackupsAsync(user.paths.backups, this.settings.backupsKept).catch((err: unknown) => {
        this.log.warn("old backups not removed; tried again after the next upload", {
          uuid,
          error: (err as Error).message,
        });
      });
    }, 0);
  }

  /** Closes idle collections and rolls back abandoned syncs. */
  sweep(now = Date.now()): void {
    for (const [uuid, user] of this.users) {
      if (user.busy > 0) continue;
      const idleMs = now - user.collection.lastUsed;
      if (user.session && idleMs > this.settings.syncSessionTimeoutSecs * 1000) {
        this.log.warn("normal sync abandoned; rolled back", {
          uuid,
          idleSecs: Math.round(idleMs / 1000),
        });
        user.abortSession();
      }
      if (user.session) continue;
      if (idleMs > this.settings.idleCloseSecs * 1000) {
        // Media files still owed their syncs are synced first; the user closes a sweep later.
        if (user.media.wantsCheckpoint) this.checkpointMedia(uuid, user);
        else if (!user.media.settling) this.closeUser(uuid, user);
      } else if (idleMs > WAL_REST_MS && user.collection.inWal) {
        this.restCollection(uuid, user);
      }
    }
  }

  /** The collection alone back at rest; the user's media and lock stay until the idle close. */
  private restCollection(uuid: string, user: UserState): void {
    try {
      user.collection.close();
    } catch (err) {
      this.log.warn("collection not put back at rest; tried again at the next sweep", {
        uuid,
        error: (err as Error).message,
      });
    }
  }

  /**
   * Syncs an idle user's journaled media files and empties the journal, off the request path
   * (docs/media.md#durability). Counted as a job, so the sweep leaves the user alone meanwhile;
   * a failure leaves the journal, replayed when the user is next opened.
   */
  private checkpointMedia(uuid: string, user: UserState): void {
    user.busy++;
    user.media
      .settled()
      .then(() => user.media.checkpoint())
      .catch((err: unknown) => {
        this.log.warn("media journal not emptied; it is replayed when the user is next opened", {
          uuid,
          error: (err as Error).message,
        });
      })
      .finally(() => {
        user.busy--;
      });
  }

  /**
   * On a stop: syncs every open user's journaled media files, so the next start has no journal
   * to replay. The stop waits only so long for it (executor.ts); a journal left is replayed.
   */
  async checkpointAll(): Promise<void> {
    const users = [...this.users.values()];
    await Promise.all(users.map((user) => user.media.settled()));
    await Promise.allSettled(
      users.filter((user) => user.media.wantsCheckpoint).map((user) => user.media.checkpoint()),
    );
  }

  shutdown(): void {
    if (this.sweeper) clearInterval(this.sweeper);
    for (const [uuid, user] of this.users) this.closeUser(uuid, user);
    this.users.clear();
  }

  /**
   * A collection that cannot be put back at rest (a backup still reads its WAL) stays open and
   * is tried again at the next sweep; at a stop, SQLite recovers its WAL at the next open.
   */
  private closeUser(uuid: string, user: UserState): void {
    try {
      user.close();
      this.users.delete(uuid);
    } catch (err) {
      this.log.warn("collection not closed; tried again when idle", {
        uuid,
        error: (err as Error).message,
      });
    }
  }
}

/**
 * Chunks' writes pending behind an `applyChunk` planned ahead of them, at most: past that, the
 * client sends faster than this thread writes, and the next chunk waits for the oldest chunk's
 * writes (only those: the rest keep this thread busy while the client prepares its next one).
 */
const MAX_PENDING_AFTER = 4;

/**
 * A job that may run before the user's pending later work: an `applyChunk`, which reads no
 * rows the earlier chunks' writes touch (`planChunkWrites`; it settles them first otherwise).
 */
function plannedAhead(job: Job): boolean {
  return job.kind === "normalSync" && job.method === "applyChunk";
}

/**
 * The jobs that may open a collection file not opened since it changed at rest (the first of a
 * sync); a normal sync's later steps find it open, inside their transaction. Not a download:
 * it only needs the file at rest (`closeForCopy`), and opening it here would switch it to WAL
 * and back on the way to its first byte; a file that needs the conversion fails it before the
 * copy, and `dispatchConverting` runs it again.
 */
function startsWithOpen(job: Job): boolean {
  return job.kind === "meta" || (job.kind === "normalSync" && job.method === "start");
}
