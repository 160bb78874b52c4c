/**
 * Full download: the client replaces its collection with the server's. The usn is bumped first
 * so the client's next normal sync does not fetch again what the file already contains. The
 * user's worker only takes a snapshot; compressing and sending it happens while streaming.
 */
import { copyFileSync, rmSync } from "node:fs";
import type { UserState } from "../../executor/userState.ts";
import { fileSize } from "../../platform/files.ts";
import { tempPathBeside } from "../../storage/paths.ts";

export interface DownloadSnapshot {
  /** A temporary copy of the collection the caller streams to the client and then deletes. */
  path: string;
  /** Its size (the `anki-original-size` of a v11 response). */
  originalSize: number;
}

export async function snapshotForDownload(
  user: UserState,
  now = Date.now(),
): Promise<DownloadSnapshot> {
  user.abortSession();
  const db = user.collection.open();
  db.query("update col set usn = usn + 1, mod = $now").run({ now });
  // Closing makes the file on disk complete and stable while it is copied.
  user.collection.close();
  const path = tempPathBeside(user.paths.collection, ".download");
  try {
    copyFileSync(user.paths.collection, path);
    return { path, originalSize: await fileSize(path) };
  } catch (err) {
    rmSync(path, { force: true });
    throw err;
  }
}
