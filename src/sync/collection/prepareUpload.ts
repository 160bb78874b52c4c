/**
 * Full upload, step 1 (upload.ts): check and convert the received file, on a task worker. A
 * module of its own, so the conversion's code (protobufjs and its schema) is loaded by the
 * task threads that need it and not by every collection worker that installs uploads.
 */
import { rmSync } from "node:fs";
import { warmUpConversion } from "../../storage/collection/convert/warmUp.ts";
import { collectionFingerprint } from "../../storage/collection/readyDownload.ts";
import { fsyncPath } from "../../storage/collection/replace.ts";
import {
  CorruptCollection,
  prepareReceivedCollection,
  SCHEMA18_VERSION,
} from "../../storage/collection/uploadedFile.ts";
import { sqliteLeftovers } from "../../storage/paths.ts";
import type { PreparedUpload, UploadInput } from "./upload.ts";
import { UPLOAD_CORRUPT } from "./uploadReplies.ts";

export function prepareUpload(input: UploadInput): PreparedUpload {
  const prepared = input.preparedPath;
  let ready = false;
  try {
    const { convertedFrom } = prepareReceivedCollection(prepared, input.integrity);
    // What the stored file will hold once this is installed (a rename): the download made from
    // the file as received is served only while the stored file still has this fingerprint.
    const fingerprint =
      input.fingerprint && convertedFrom === SCHEMA18_VERSION
        ? collectionFingerprint(prepared)
        : undefined;
    // On disk now, on this task thread: the install on the user's worker (which other users
    // share) then syncs a file that is already written, instead of waiting for all of it.
    fsyncPath(prepared);
    ready = true;
    const out = { ready: true as const, preparedPath: prepared, convertedFrom };
    return fingerprint ? { ...out, fingerprint } : out;
  } catch (err) {
    if (err instanceof CorruptCollection) {
      return { ready: false, reply: UPLOAD_CORRUPT, detail: err.message };
    }
    throw err;
  } finally {
    removeSqliteLeftovers(prepared, !ready);
  }
}

/** Ahead of a task on a new thread (tasks.ts `preload`): see warmUp.ts. */
export function warmUp(): void {
  warmUpConversion();
}

/** The files SQLite may have made beside a database at `path`. */
function removeSqliteLeftovers(path: string, includingFile: boolean): void {
  const leftovers = sqliteLeftovers(path);
  for (const leftover of includingFile ? [path, ...leftovers] : leftovers) {
    rmSync(leftover, { force: true });
  }
}
