/** Everything the worker keeps for one user between requests. */
import { UserCollection } from "../storage/collection/userCollection.ts";
import type { UserPaths } from "../storage/paths.ts";
import { UserLock } from "../storage/userLock.ts";
import { rollbackSessionTransaction, type SyncSession } from "../sync/collection/session.ts";
import { conflict } from "../sync/errors.ts";

export class UserState {
  readonly collection: UserCollection;
  session: SyncSession | undefined;
  private lock: UserLock | null = null;

  constructor(readonly paths: UserPaths) {
    this.collection = new UserCollection(paths);
  }

  /** Takes the user's lock file before any of their files are touched. */
  acquire(): void {
    this.lock ??= UserLock.tryAcquire(this.paths.dir);
    if (!this.lock) throw conflict(`files of ${this.paths.dir} are in use by another process`);
  }

  /** Drops any normal-sync session, discarding its uncommitted changes. */
  abortSession(): boolean {
    const had = this.session !== undefined;
    if (this.collection.isOpen) rollbackSessionTransaction(this.collection.open());
    this.session = undefined;
    return had;
  }

  /** Closes the collection file (after rolling back any session). */
  close(): void {
    this.abortSession();
    this.collection.close();
    this.lock?.release();
    this.lock = null;
  }
}
