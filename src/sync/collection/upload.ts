/**
 * Full upload: the client replaces the server's collection with its own, in two steps.
 * 1. `prepareUpload` (heavy, needs nothing of the user's open state, so it runs on a task
 *    worker and never delays other users pinned to the user's worker): decompress the body
 *    that was streamed to disk, check it and convert it to our at-rest schema, beside the
 *    collection.
 * 2. `installUpload` (light, on the user's worker under the user's lock): end any normal sync,
 *    close the collection and swap the prepared file in atomically, keeping a backup.
 */

import { rmSync } from "node:fs";
import { type Compression, decompressStream } from "../../compression.ts";
import {
  fileStream,
  StreamTooLarge,
  WRITE_BEHIND_BYTES,
  writeStreamToFile,
} from "../../platform/files.ts";
import { fsyncPath, replaceWithBackup } from "../../storage/collection/replace.ts";
import {
  CorruptCollection,
  prepareReceivedCollection,
} from "../../storage/collection/uploadedFile.ts";
import { storageFault } from "../../storage/ioErrors.ts";
import { sqliteLeftovers } from "../../storage/paths.ts";
import { badRequest } from "../errors.ts";
import type { SyncState } from "./syncState.ts";

import { UPLOAD_CORRUPT, UPLOAD_OK, UPLOAD_TOO_LARGE } from "./uploadReplies.ts";

export { UPLOAD_CORRUPT, UPLOAD_OK, UPLOAD_TOO_LARGE };

export interface UploadInput {
  /** The request body as received (still compressed). Always removed. */
  incomingPath: string;
  compression: Compression;
  /**
   * Where the prepared file goes: beside the collection, so the swap is a rename. Named by the
   * caller, which removes it (and its SQLite leftovers) should the task's thread die.
   */
  preparedPath: string;
  maxUncompressedBytes: number;
}

/** Either a file ready to install, or the reply that refuses the upload. */
export type PreparedUpload =
  | { ready: true; preparedPath: string; convertedFrom: number }
  | { ready: false; reply: string; detail: string };

export interface UploadOutcome {
  reply: string;
  /** For the log: why a reply other than OK was given, what was converted, where the backup went. */
  detail: string;
}

export async function prepareUpload(input: UploadInput): Promise<PreparedUpload> {
  const prepared = input.preparedPath;
  let ready = false;
  try {
    try {
      await decompressTo(input, prepared);
    } catch (err) {
      if (err instanceof StreamTooLarge) {
        return { ready: false, reply: UPLOAD_TOO_LARGE, detail: err.message };
      }
      if (storageFault(err)) throw err;
      throw badRequest(`cannot decompress upload: ${(err as Error).message}`, { cause: err });
    }
    try {
      const { convertedFrom } = prepareReceivedCollection(prepared);
      // On disk now, on this task thread: the install on the user's worker (which other users
      // share) then syncs a file that is already written, instead of waiting for all of it.
      fsyncPath(prepared);
      ready = true;
      return { ready, preparedPath: prepared, convertedFrom };
    } catch (err) {
      if (err instanceof CorruptCollection) {
        return { ready: false, reply: UPLOAD_CORRUPT, detail: err.message };
      }
      throw err;
    }
  } finally {
    removeSqliteLeftovers(prepared, !ready);
    rmSync(input.incomingPath, { force: true });
  }
}

export function installUpload(
  user: SyncState,
  preparedPath: string,
  backupsKept: number,
): UploadOutcome {
  try {
    user.abortSession();
    user.collection.close();
    const backup = replaceWithBackup(
      preparedPath,
      user.paths.collection,
      user.paths.backups,
      backupsKept,
    );
    return { reply: UPLOAD_OK, detail: `stored; previous kept as ${backup ?? "(none)"}` };
  } finally {
    rmSync(preparedPath, { force: true });
  }
}

async function decompressTo(input: UploadInput, target: string): Promise<void> {
  const stream = decompressStream(fileStream(input.incomingPath), input.compression);
  // Anki refuses a collection of exactly the limit too, hence the minus one. Written behind
  // (flushed every few MB), so neither the final sync nor any other user's commit meanwhile
  // waits for 100 MB at once; with blocking writes, as this runs on a task thread.
  await writeStreamToFile(stream, target, input.maxUncompressedBytes - 1, {
    writeBehindBytes: WRITE_BEHIND_BYTES,
    blocking: true,
  });
}

/** The files SQLite may have made beside a database at `path`. */
function removeSqliteLeftovers(path: string, includingFile: boolean): void {
  const leftovers = sqliteLeftovers(path);
  for (const leftover of includingFile ? [path, ...leftovers] : leftovers) {
    rmSync(leftover, { force: true });
  }
}
