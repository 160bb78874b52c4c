/**
 * Makes a user's full download ahead after each full upload (sync/collection/readyDownload.ts).
 *
 * A current client's upload leaves the file it sent: the making starts at once, on a task thread
 * at the task threads' lowered priority, and a download for that plan arriving meanwhile waits
 * for it (at most `READY_WAIT_MS`): the making is most of what the download would do again, and
 * what is left of it costs less than starting over beside it.
 *
 * An older client's (schema 11) upload leaves nothing to start from: once the user has been
 * quiet for `READY_AFTER_MS`, a copy of the collection is taken under the user's lock, then the
 * rest runs on a task thread. A download in that time is the one the making was for: it takes
 * the usual path and the making is called off, so its CPU and disk writes are not spent beside
 * that download's (and the usual download's bump would make it stale anyway).
 */
import { rmSync } from "node:fs";
import type { Logger } from "../log.ts";
import type { ZstdEffort } from "../platform/zstd.ts";
import { tempPathBeside, userPaths } from "../storage/paths.ts";
import { type DownloadPlan, isReadyPlan } from "../sync/collection/downloadSchema.ts";
import type { ReadySource } from "../sync/collection/readyDownload.ts";
import type { KeptUpload } from "../sync/collection/upload.ts";
import type { CollectionExecutor } from "./executor.ts";
import type { UserRef } from "./jobs.ts";

/** As long as a worker keeps a collection in WAL mode after a sync (host.ts `WAL_REST_MS`). */
export const READY_AFTER_MS = 3000;

/**
 * The longest a download waits for a making under way (a 100 MB collection's takes ~1.5 s
 * here); past it the download takes the usual path.
 */
export const READY_WAIT_MS = 10_000;

export class ReadyDownloads {
  private readonly timers = new Map<string, ReturnType<typeof setTimeout>>();
  /** Makings under way from a kept upload, by user: settled either way. */
  private readonly making = new Map<string, Promise<void>>();

  constructor(
    private readonly executor: Pick<CollectionExecutor, "run" | "runTask">,
    private readonly dataDir: string,
    private readonly log: Logger,
    private readonly afterMs = READY_AFTER_MS,
    private readonly waitMs = READY_WAIT_MS,
  ) {}

  /**
   * After a full upload: made now from `kept` (the uploaded file, the caller's no more), its
   * body compressed with `effort`, or scheduled (again: a later upload restarts the wait).
   */
  afterUpload(user: UserRef, kept?: KeptUpload, effort: ZstdEffort = "small"): void {
    this.userActive(user);
    if (kept) {
      this.makeFromUpload(user, kept, effort);
      return;
    }
    const timer = setTimeout(() => {
      this.timers.delete(user.uuid);
      this.make(user);
    }, this.afterMs);
    timer.unref?.();
    this.timers.set(user.uuid, timer);
  }

  /** The user syncs now: a making not started yet is called off. */
  userActive(user: UserRef): void {
    const timer = this.timers.get(user.uuid);
    if (timer === undefined) return;
    clearTimeout(timer);
    this.timers.delete(user.uuid);
  }

  /**
   * Before a download with `plan`: a making not started yet is called off, and one under way
   * for this plan is waited for (bounded).
   */
  async beforeDownload(user: UserRef, plan: DownloadPlan): Promise<void> {
    this.userActive(user);
    const making = this.making.get(user.uuid);
    if (!making || !isReadyPlan(plan)) return;
    let timer: ReturnType<typeof setTimeout> | undefined;
    const waited = new Promise<void>((resolve) => {
      timer = setTimeout(resolve, this.waitMs);
    });
    await Promise.race([making, waited]);
    clearTimeout(timer);
  }

  /** Pending makings are dropped (the server is stopping). */
  close(): void {
    for (const timer of this.timers.values()) clearTimeout(timer);
    this.timers.clear();
  }

  private makeFromUpload(user: UserRef, kept: KeptUpload, effort: ZstdEffort): void {
    const collection = userPaths(this.dataDir, user.uuid).collection;
    const input = { collection, source: kept.path, storedFingerprint: kept.fingerprint, effort };
    const making: Promise<void> = this.run(user, input, () =>
      this.executor.runTask({ kind: "makeReadyDownload", input }),
    ).then(() => {
      if (this.making.get(user.uuid) === making) this.making.delete(user.uuid);
    });
    this.making.set(user.uuid, making);
  }

  private make(user: UserRef): void {
    const collection = userPaths(this.dataDir, user.uuid).collection;
    const input = { collection, source: tempPathBeside(collection, ".ready-source") };
    void this.run(user, input, () => this.copyAndMake(user, input));
  }

  /** A failure only means downloads take the usual path, so it is logged; never rejects. */
  private async run(user: UserRef, input: ReadySource, steps: () => Promise<unknown>) {
    try {
      await steps();
    } catch (err) {
      rmSync(input.source, { force: true });
      this.log.warn("ready download not made", {
        uuid: user.uuid,
        error: err instanceof Error ? err.message : String(err),
      });
    }
  }

  private async copyAndMake(user: UserRef, input: ReadySource): Promise<void> {
    const copied = await this.executor.run({ kind: "copyForReady", user, target: input.source });
    if (copied) await this.executor.runTask({ kind: "makeReadyDownload", input });
  }
}
