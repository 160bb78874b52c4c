/**
 * Makes a user's full download ahead after each full upload (sync/collection/readyDownload.ts).
 *
 * A current client's upload is made into the download's body while it is received and checked
 * (receiveUpload.ts): once it is installed, the body is published as soon as it is made, on a
 * task thread, and a download for that plan arriving meanwhile waits for it (at most
 * `READY_WAIT_MS`): the making is most of what the download would do again, and what is left of
 * it costs less than starting over beside it.
 *
 * An older client's (schema 11) upload leaves nothing to start from: once the user has been
 * quiet for `READY_AFTER_MS`, a copy of the collection is taken under the user's lock, then the
 * rest runs on a task thread. A download in that time is the one the making was for: it takes
 * the usual path and the making is called off, so its CPU and disk writes are not spent beside
 * that download's (and the usual download's bump would make it stale anyway).
 */
import { rmSync } from "node:fs";
import type { Logger } from "../log.ts";
import { tempPathBeside, userPaths } from "../storage/paths.ts";
import { type DownloadPlan, isReadyPlan } from "../sync/collection/downloadSchema.ts";
import type { ReadySource } from "../sync/collection/readyDownload.ts";
import type { CollectionExecutor } from "./executor.ts";
import type { UserRef } from "./jobs.ts";
import type { MadeAhead } from "./receiveUpload.ts";

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
   * After a full upload: the body made from it published (`made`, the caller's no more), or a
   * making scheduled (again: a later upload restarts the wait).
   */
  afterUpload(user: UserRef, made?: MadeAhead): void {
    this.userActive(user);
    if (made) {
      this.publishWhenMade(user, made);
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

  private publishWhenMade(user: UserRef, made: MadeAhead): void {
    const collection = userPaths(this.dataDir, user.uuid).collection;
    const publishing: Promise<void> = made.body
      .then(async (body) => {
        if (!body) return;
        const input = { collection, body, fingerprint: made.fingerprint };
        try {
          await this.executor.runTask({ kind: "publishReadyBody", input });
        } finally {
          rmSync(body.path, { force: true });
        }
      })
      .catch((err: unknown) => this.notMade(user, err))
      .then(() => {
        if (this.making.get(user.uuid) === publishing) this.making.delete(user.uuid);
      });
    this.making.set(user.uuid, publishing);
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
      this.notMade(user, err);
    }
  }

  private notMade(user: UserRef, err: unknown): void {
    this.log.warn("ready download not made", {
      uuid: user.uuid,
      error: err instanceof Error ? err.message : String(err),
    });
  }

  private async copyAndMake(user: UserRef, input: ReadySource): Promise<void> {
    const copied = await this.executor.run({ kind: "copyForReady", user, target: input.source });
    if (copied) await this.executor.runTask({ kind: "makeReadyDownload", input });
  }
}
