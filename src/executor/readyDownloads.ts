/**
 * Makes a user's full download ahead after each full upload (sync/collection/readyDownload.ts):
 * the copy under the user's lock as a job, queued after whatever the user sent meanwhile, then
 * the rest on a task thread, at the task threads' lowered priority. A download arriving while
 * one is being made waits for it rather than compress the same file a second time alongside.
 */
import type { Logger } from "../log.ts";
import type { CollectionExecutor } from "./executor.ts";
import type { UserRef } from "./jobs.ts";

export class ReadyDownloads {
  private readonly making = new Map<string, Promise<void>>();

  constructor(
    private readonly executor: Pick<CollectionExecutor, "run" | "runTask">,
    private readonly log: Logger,
  ) {}

  /** Starts the making; a failure only means downloads take the usual path, so it is logged. */
  afterUpload(user: UserRef): void {
    const made = this.make(user).catch((err: unknown) => {
      this.log.warn("ready download not made", {
        uuid: user.uuid,
        error: err instanceof Error ? err.message : String(err),
      });
    });
    this.making.set(user.uuid, made);
    void made.finally(() => {
      if (this.making.get(user.uuid) === made) this.making.delete(user.uuid);
    });
  }

  /** Settles once the user's ready download being made (if any) is published or given up. */
  settled(user: UserRef): Promise<void> | undefined {
    return this.making.get(user.uuid);
  }

  private async make(user: UserRef): Promise<void> {
    const source = await this.executor.run({ kind: "readySource", user });
    if (source) await this.executor.runTask({ kind: "makeReadyDownload", input: source });
  }
}
