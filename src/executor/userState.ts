/** Everything the worker keeps for one user between requests. */
import { UserCollection } from "../storage/collection/userCollection.ts";
import { MediaStore, type MediaStoreOptions } from "../storage/media/mediaStore.ts";
import { resolveNetworkFs } from "../storage/networkFs.ts";
import type { UserPaths } from "../storage/paths.ts";
import { removeDeadTemporaries } from "../storage/temporaries.ts";
import { UserLock } from "../storage/userLock.ts";
import { rollbackSessionTransaction, type SyncSession } from "../sync/collection/session.ts";
import type { SyncState } from "../sync/collection/syncState.ts";
import { conflict } from "../sync/errors.ts";
import type { EncodedReply, ReplyEncoding } from "./jobs.ts";

export class UserState implements SyncState {
  readonly collection: UserCollection;
  readonly media: MediaStore;
  session: SyncSession | undefined;
  laterFailure: { skey: string; error: Error } | undefined;
  /**
   * Work steps left until their replies were sent, oldest first (`UserHost.afterReplies`):
   * each call does a part of it and says whether it is done.
   */
  readonly afterReply: (() => boolean)[] = [];
  /** A reply made ahead of its request, already encoded (the next normal-sync `chunk`). */
  replyAhead: { json: string; format: ReplyEncoding; encoded: Promise<EncodedReply> } | undefined;
  /** Jobs under way (a media upload awaits I/O); the idle sweep leaves a busy user alone. */
  busy = 0;
  private lock: UserLock | null = null;

  /** `collectionWal`: ANKISYNCD_COLLECTION_WAL; never on a network filesystem (WAL needs shared memory). */
  constructor(
    readonly paths: UserPaths,
    mediaOptions: MediaStoreOptions = { networkFs: "auto" },
    collectionWal = false,
  ) {
    const wal = collectionWal && !resolveNetworkFs(mediaOptions.networkFs, paths.dir);
    this.collection = new UserCollection(paths, wal);
    this.media = new MediaStore(paths, mediaOptions);
  }

  /** Takes the user's lock file before any of their files are touched. */
  acquire(): void {
    if (this.lock) return;
    this.lock = UserLock.tryAcquire(this.paths.dir);
    if (!this.lock) throw conflict(`files of ${this.paths.dir} are in use by another process`);
    // Holding the lock, nobody else syncs this user: what dead processes left can go.
    removeDeadTemporaries(this.paths.dataDir, this.paths.dir);
  }

  /** Drops any normal-sync session, discarding its uncommitted changes. */
  abortSession(): boolean {
    const had = this.session !== undefined;
    const db = this.collection.openHandle;
    if (db) rollbackSessionTransaction(db);
    this.session = undefined;
    this.replyAhead = undefined;
    return had;
  }

  /** Closes the collection file (after rolling back any session) and the media database. */
  close(): void {
    this.abortSession();
    this.collection.close();
    this.media.close();
    this.lock?.release();
    this.lock = null;
  }
}
