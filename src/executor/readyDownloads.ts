/**
 * Makes a user's full download ahead after each full upload (sync/collection/readyDownload.ts)
 * once the user has been quiet for `READY_AFTER_MS`: a copy of the collection under the user's
 * lock, then the rest on a task thread at the task threads' lowered priority. A download in
 * that time is the one the making was for: it takes the usual path and the making is called
 * off, so its CPU and disk writes are not spent beside that download's (and the usual
 * download's bump would make it stale anyway). A download arriving
 * later but before it is published takes the usual path rather than wait (the making yields to
 * every other user's work, and the usual path costs about as much as what is left of it).
 */
import { rmSync } from "node:fs";
import type { Logger } from "../log.ts";
import { tempPathBeside, userPaths } from "../storage/paths.ts";
import type { ReadySource } from "../sync/collection/readyDownload.ts";
import type { CollectionExecutor } from "./executor.ts";
import type { UserRef } from "./jobs.ts";

/** As long as a worker keeps a collection in WAL mode after a sync (host.ts `WAL_REST_MS`). */
export const READY_AFTER_MS = 3000;

export class ReadyDownloads {
  private readonly timers = new Map<string, ReturnType<typeof setTimeout>>();

  constructor(
    private readonly executor: Pick<CollectionExecutor, "run" | "runTask">,
    private readonly dataDir: string,
    private readonly log: Logger,
    private readonly afterMs = READY_AFTER_MS,
  ) {}

  /** Schedules the making (again: a later upload restarts the wait). */
  afterUpload(user: UserRef): void {
    clearTimeout(this.timers.get(user.uuid));
    const timer = setTimeout(() => {
      this.timers.delete(user.uuid);
      this.make(user);
    }, this.afterMs);
    timer.unref?.();
    this.timers.set(user.uuid, timer);
  }

  /** The user downloads (or syncs) now: a making not started yet is called off. */
  userActive(user: UserRef): void {
    const timer = this.timers.get(user.uuid);
    if (timer === undefined) return;
    clearTimeout(timer);
    this.timers.delete(user.uuid);
  }

  /** Pending makings are dropped (the server is stopping). */
  close(): void {
    for (const timer of this.timers.values()) clearTimeout(timer);
    this.timers.clear();
  }

  /** A failure only means downloads take the usual path, so it is logged. */
  private make(user: UserRef): void {
    const collection = userPaths(this.dataDir, user.uuid).collection;
    const source = tempPathBeside(collection, ".ready-source");
    this.copyAndMake(user, { collection, source }).catch((err) => {
      rmSync(source, { force: true });
      this.log.warn("ready download not made", {
        uuid: user.uuid,
        error: err instanceof Error ? err.message : String(err),
      });
    });
  }

  private async copyAndMake(user: UserRef, input: ReadySource): Promise<void> {
    const copied = await this.executor.run({ kind: "copyForReady", user, target: input.source });
    if (copied) await this.executor.runTask({ kind: "makeReadyDownload", input });
  }
}
