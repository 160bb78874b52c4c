/**
 * `msync/downloadFiles`: a zip of the requested files (docs/protocol.md#media-download), in request
 * order, cut off once 2.5 MiB is passed (the client asks again for the rest). A batch of small
 * files is zipped (and zstd-compressed for v11 clients) in memory; a larger one is written to a
 * temporary file that the caller streams and deletes, so a 100 MiB file is never held in memory.
 */
import { readFileSync, rmSync } from "node:fs";
import { compressStream } from "../../compression.ts";
import { fileStream, writeStreamToFile } from "../../platform/files.ts";
import { zstdCompress } from "../../platform/zstd.ts";
import { mediaFilePath, unsafePathReason } from "../../storage/media/files.ts";
import type { MediaEntry } from "../../storage/media/mediaDb.ts";
import type { MediaStore } from "../../storage/media/mediaStore.ts";
import { badRequest, conflict } from "../errors.ts";
import { DOWNLOAD_TARGET_BYTES, MAX_FILES_PER_BATCH } from "./limits.ts";
import { StoredZipWriter, storedZipBytes } from "./zip.ts";

export type MediaDownloadOutcome = (
  | /** A temporary file the caller streams to the client and then deletes. */ { path: string }
  | /** The body itself, for a batch small enough to build in memory. */ { bytes: Uint8Array }
) & {
  /** Size of the zip itself (the `anki-original-size` of a v11 response). */
  originalSize: number;
};

/** Batches whose files add up to at most this are zipped in memory, not through files. */
const IN_MEMORY_MAX_BYTES = 4 * 1024 * 1024;

export async function downloadFiles(
  store: MediaStore,
  files: readonly string[],
  compress: boolean,
): Promise<MediaDownloadOutcome> {
  const batch = selectBatch(store, files);
  if (batch.reduce((sum, entry) => sum + entry.size, 0) <= IN_MEMORY_MAX_BYTES) {
    const zip = await zipInMemory(store, batch);
    return { bytes: compress ? await zstdCompress(zip) : zip, originalSize: zip.byteLength };
  }
  const zipPath = store.tempPath(".download.zip");
  const size = await writeZip(store, batch, zipPath);
  if (!compress) return { path: zipPath, originalSize: size };
  const compressed = store.tempPath(".download.zst");
  try {
    await writeStreamToFile(compressStream(fileStream(zipPath), "zstd"), compressed);
  } catch (err) {
    rmSync(compressed, { force: true });
    throw err;
  } finally {
    rmSync(zipPath, { force: true });
  }
  return { path: compressed, originalSize: size };
}

/** The entries to send: every name must be a present file; stops after the size target. */
export function selectBatch(store: MediaStore, files: readonly string[]): MediaEntry[] {
  if (files.length > MAX_FILES_PER_BATCH) {
    throw badRequest(
      `${files.length} media files requested, at most ${MAX_FILES_PER_BATCH} allowed`,
    );
  }
  const db = store.db();
  const batch: MediaEntry[] = [];
  let total = 0;
  for (const name of files) {
    // A name that could not be stored is unknown, like any other name we do not have.
    const entry = unsafePathReason(name) ? null : db.liveEntry(name);
    if (!entry)
      throw conflict(`requested media file is unknown or deleted: ${JSON.stringify(name)}`);
    batch.push(entry);
    total += entry.size;
    if (total > DOWNLOAD_TARGET_BYTES) break;
  }
  return batch;
}

async function zipInMemory(store: MediaStore, batch: MediaEntry[]): Promise<Uint8Array> {
  const entries: [string, Uint8Array][] = [];
  const names: Record<string, string> = {};
  for (const [index, entry] of batch.entries()) {
    try {
      entries.push([String(index), readFileSync(mediaFilePath(store.folder, entry.fname))]);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== "ENOENT") throw err;
      forgetMissingFile(store, entry);
      throw conflict(`media file missing on disk, forgotten: ${JSON.stringify(entry.fname)}`, {
        cause: err,
      });
    }
    names[String(index)] = entry.fname;
  }
  entries.push(["_meta", new TextEncoder().encode(JSON.stringify(names))]);
  return storedZipBytes(entries);
}

async function writeZip(store: MediaStore, batch: MediaEntry[], zipPath: string): Promise<number> {
  const writer = await StoredZipWriter.create(zipPath);
  try {
    const names: Record<string, string> = {};
    for (const [index, entry] of batch.entries()) {
      try {
        await writer.addFile(String(index), mediaFilePath(store.folder, entry.fname));
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code !== "ENOENT") throw err;
        forgetMissingFile(store, entry);
        throw conflict(`media file missing on disk, forgotten: ${JSON.stringify(entry.fname)}`, {
          cause: err,
        });
      }
      names[String(index)] = entry.fname;
    }
    writer.addBytes("_meta", new TextEncoder().encode(JSON.stringify(names)));
    return await writer.finish();
  } catch (err) {
    await writer.abort();
    rmSync(zipPath, { force: true });
    throw err;
  }
}

/**
 * A listed file that is gone from disk (say, an interrupted deletion) is dropped from the
 * database without a deletion record, so the loss does not spread to devices that have the
 * file; the next `mediaChanges` no longer lists it, so the failed client gets past it.
 */
function forgetMissingFile(store: MediaStore, entry: MediaEntry): void {
  const db = store.db();
  db.transaction(() => {
    const current = db.liveEntry(entry.fname);
    if (!current) return;
    const meta = db.meta();
    meta.totalBytes = Math.max(0, meta.totalBytes - current.size);
    meta.totalNonemptyFiles = Math.max(0, meta.totalNonemptyFiles - 1);
    db.dropEntry(entry.fname);
    db.writeMeta(meta);
  });
}
