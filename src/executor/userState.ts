/** Everything the worker keeps for one user between requests. */
import { UserCollection } from "../storage/collection/userCollection.ts";
import type { UserPaths } from "../storage/paths.ts";
import { rollbackSessionTransaction, type SyncSession } from "../sync/collection/session.ts";

export class UserState {
  readonly collection: UserCollection;
  session: SyncSession | undefined;

  constructor(readonly paths: UserPaths) {
    this.collection = new UserCollection(paths);
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
  }
}
