/**
 * Full download: the client replaces its collection with the server's. The usn is bumped (in
 * the copy sent and in the stored file alike) so the client's next normal sync does not fetch
 * again what the file already contains. The
 * user's worker only takes a snapshot; compressing and sending it happens while streaming.
 */
import { copyFileSync, rmSync } from "node:fs";
import { fileSize } from "../../platform/files.ts";
import { type Db, openDatabase } from "../../platform/sqlite.ts";
import { tempPathBeside } from "../../storage/paths.ts";
import type { SyncState } from "./syncState.ts";

export interface DownloadSnapshot {
  /** A temporary copy of the collection the caller streams to the client and then deletes. */
  path: string;
  /** Its size (the `anki-original-size` of a v11 response). */
  originalSize: number;
}

export async function snapshotForDownload(
  user: SyncState,
  now = Date.now(),
): Promise<DownloadSnapshot> {
  user.abortSession();
  user.collection.open(); // creates a new user's empty collection
  // Closed, the file on disk is complete and stable while it is copied.
  user.collection.close();
  const path = tempPathBeside(user.paths.collection, ".download");
  try {
    // The copy is made and bumped before the stored file is: if the disk is full, nothing
    // stored has changed and nothing is left behind.
    copyFileSync(user.paths.collection, path);
    bumpUsn(scratchDatabase(path), now, true);
    bumpUsn(user.collection.open(), now, false);
    return { path, originalSize: await fileSize(path) };
  } catch (err) {
    for (const leftover of [path, `${path}-journal`]) rmSync(leftover, { force: true });
    throw err;
  }
}

/**
 * The copy is a temporary file: a crash leaves it to the startup sweep, so its change needs no
 * journal and no fsync (those took 7-12 ms of every download here).
 */
function scratchDatabase(path: string): Db {
  const db = openDatabase(path, { create: false });
  try {
    db.exec("PRAGMA journal_mode = OFF");
    db.exec("PRAGMA synchronous = OFF");
    return db;
  } catch (err) {
    db.close();
    throw err;
  }
}

function bumpUsn(db: Db, now: number, close: boolean): void {
  try {
    db.query("update col set usn = usn + 1, mod = $now").run({ now });
  } finally {
    if (close) db.close();
  }
}
