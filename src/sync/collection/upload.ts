/**
 * Full upload: the client replaces the server's collection with its own. The body has already
 * been streamed to `incoming` (still compressed); here it is decompressed beside the collection,
 * checked, converted to our at-rest schema and swapped in atomically, keeping a backup.
 */
import { rmSync } from "node:fs";
import { type Compression, decompressStream } from "../../compression.ts";
import type { UserState } from "../../executor/userState.ts";
import { fileStream, StreamTooLarge, writeStreamToFile } from "../../platform/files.ts";
import { replaceWithBackup } from "../../storage/collection/replace.ts";
import {
  CorruptCollection,
  prepareReceivedCollection,
} from "../../storage/collection/uploadedFile.ts";
import { tempPathBeside } from "../../storage/paths.ts";
import { badRequest } from "../errors.ts";

/** The exact texts clients show; only `OK` means success. */
export const UPLOAD_OK = "OK";
export const UPLOAD_TOO_LARGE = "collection exceeds size limit";
export const UPLOAD_CORRUPT =
  "Your upload was corrupt. Please use Check Database, or restore from backup.";

export interface UploadInput {
  incomingPath: string;
  compression: Compression;
}

export interface UploadLimits {
  maxUncompressedBytes: number;
  backupsKept: number;
}

export interface UploadOutcome {
  reply: string;
  /** For the log: why a reply other than OK was given, what was converted, where the backup went. */
  detail: string;
}

export async function upload(
  user: UserState,
  input: UploadInput,
  limits: UploadLimits,
): Promise<UploadOutcome> {
  user.abortSession();
  const received = tempPathBeside(user.paths.collection, ".upload");
  try {
    try {
      await decompressTo(input, received, limits.maxUncompressedBytes);
    } catch (err) {
      if (err instanceof StreamTooLarge) return { reply: UPLOAD_TOO_LARGE, detail: err.message };
      throw badRequest(`cannot decompress upload: ${(err as Error).message}`);
    }
    let convertedFrom: number;
    try {
      ({ convertedFrom } = prepareReceivedCollection(received));
    } catch (err) {
      if (err instanceof CorruptCollection) return { reply: UPLOAD_CORRUPT, detail: err.message };
      throw err;
    }
    user.collection.close();
    const backup = replaceWithBackup(
      received,
      user.paths.collection,
      user.paths.backups,
      limits.backupsKept,
    );
    return {
      reply: UPLOAD_OK,
      detail: `schema ${convertedFrom} stored; previous kept as ${backup ?? "(none)"}`,
    };
  } finally {
    for (const leftover of [
      received,
      `${received}-journal`,
      `${received}-wal`,
      `${received}-shm`,
    ]) {
      rmSync(leftover, { force: true });
    }
    rmSync(input.incomingPath, { force: true });
  }
}

async function decompressTo(input: UploadInput, target: string, maxBytes: number): Promise<void> {
  const stream = decompressStream(fileStream(input.incomingPath), input.compression);
  // Anki refuses a collection of exactly the limit too, hence the minus one.
  await writeStreamToFile(stream, target, maxBytes - 1);
}
