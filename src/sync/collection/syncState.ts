/**
 * What the protocol steps work on for one user between requests. The worker keeps it
 * (`executor/userState.ts` implements it); the steps take it, so sync knows nothing of the
 * executor.
 */
import type { UserCollection } from "../../storage/collection/userCollection.ts";
import type { MediaStore } from "../../storage/media/mediaStore.ts";
import type { UserPaths } from "../../storage/paths.ts";
import type { SyncSession } from "./session.ts";

export interface SyncState {
  readonly paths: UserPaths;
  readonly collection: UserCollection;
  readonly media: MediaStore;
  /** The normal sync under way, if any. */
  session: SyncSession | undefined;
  /**
   * A step's work done after its reply (`runNormalSyncStep`'s `after`) failed: the session was
   * rolled back, and the client's next request with that session key is answered with this.
   */
  laterFailure?: { skey: string; error: Error } | undefined;
  /** Drops any normal-sync session, discarding its uncommitted changes; true if there was one. */
  abortSession(): boolean;
}
