/**
 * Full upload: the client replaces the server's collection with its own, in two steps.
 * 1. `prepareUpload` (prepareUpload.ts; heavy, needs nothing of the user's open state, so it
 *    runs on a task worker and never delays other users pinned to the user's worker): check the
 *    file the body was decompressed to as it arrived (executor/unpackBody.ts), beside the
 *    collection, and convert it to our at-rest schema.
 * 2. `installUpload` (light, on the user's worker under the user's lock): end any normal sync,
 *    close the collection and swap the prepared file in atomically, keeping a backup.
 */

import { rmSync } from "node:fs";
import type { Integrity } from "../../storage/collection/integrity.ts";
import { removeReadyDownload } from "../../storage/collection/readyDownload.ts";
import { replaceWithBackup } from "../../storage/collection/replace.ts";
import type { SyncState } from "./syncState.ts";

import { UPLOAD_CORRUPT, UPLOAD_OK, UPLOAD_TOO_LARGE } from "./uploadReplies.ts";

export { UPLOAD_CORRUPT, UPLOAD_OK, UPLOAD_TOO_LARGE };

export interface UploadInput {
  /**
   * The uploaded collection as received (decompressed, not yet synced), beside the collection
   * so the swap is a rename; prepared in place, and removed unless ready. Named by the caller,
   * which removes it (and its SQLite leftovers) should the task's thread die.
   */
  preparedPath: string;
  /** The integrity check's verdict, when the thread that received the body made it already. */
  integrity?: Integrity;
  /**
   * A download is being made from the file as received: the fingerprint of the prepared file
   * is wanted, if it was schema 18 (the file the body is made from is then what it stands for).
   */
  fingerprint?: boolean;
}

/** Either a file ready to install, or the reply that refuses the upload. */
export type PreparedUpload =
  | { ready: true; preparedPath: string; convertedFrom: number; fingerprint?: string }
  | { ready: false; reply: string; detail: string };

export interface UploadOutcome {
  reply: string;
  /** For the log: why a reply other than OK was given, what was converted, where the backup went. */
  detail: string;
}

/**
 * The prepared file is on disk already (`prepareUpload` synced it). Backups past `backupsKept`
 * are left for the caller to prune once the client has its answer (`pruneBackups`).
 */
export function installUpload(
  user: SyncState,
  preparedPath: string,
  backupsKept: number,
): UploadOutcome {
  try {
    user.abortSession();
    user.collection.close();
    removeReadyDownload(user.paths.collection);
    const backup = replaceWithBackup(preparedPath, user.paths.collection, user.paths.backups, {
      keep: backupsKept,
      synced: true,
      pruneLater: true,
    });
    return { reply: UPLOAD_OK, detail: `stored; previous kept as ${backup ?? "(none)"}` };
  } finally {
    rmSync(preparedPath, { force: true });
  }
}
