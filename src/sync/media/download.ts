/**
 * `msync/downloadFiles`: a zip of the requested files (docs/protocol.md#media-download), in request
 * order, cut off once 2.5 MiB is passed (the client asks again for the rest). The files are
 * opened first (a missing one fails the batch before anything is built), then each is read
 * straight into its place in a zip of stored entries (zip.ts StoredZipLayout). A zip of up to
 * IN_MEMORY_MAX_BYTES is built in memory and zstd-compressed here for v11 clients; a larger one
 * (a batch holding a file of a few MiB or more) is written once to a temporary file that the
 * caller compresses while streaming it, then deletes.
 */
import { closeSync, fstatSync, openSync, readSync, rmSync } from "node:fs";
import { type FileHandle, open } from "node:fs/promises";
import { crc32 } from "node:zlib";
import { zstdCompress } from "../../platform/zstd.ts";
import { mediaFilePath, unsafePathReason } from "../../storage/media/files.ts";
import type { MediaEntry } from "../../storage/media/mediaDb.ts";
import type { MediaStore } from "../../storage/media/mediaStore.ts";
import { badRequest, conflict } from "../errors.ts";
import { DOWNLOAD_TARGET_BYTES, MAX_FILES_PER_BATCH } from "./limits.ts";
import { StoredZipLayout } from "./zip.ts";

export type MediaDownloadOutcome = (
  | /** The body in its final encoding (zstd-compressed when asked to). */ { bytes: Uint8Array }
  | /**
   * The zip, uncompressed, in a temporary file the caller streams (compressing it for v11
   * clients) and then deletes.
   */ { path: string }
) & {
  /** Size of the zip itself (the `anki-original-size` of a v11 response). */
  originalSize: number;
};

/**
 * Zips up to this size are built in memory: every batch of small files (the 2.5 MiB target plus
 * the file that crosses it). A larger one goes through a file even though Anki's server builds
 * every batch in memory: for a batch of one 5 MB file that was both faster here (the client
 * receives while the rest is compressed) and 40 MB lighter at peak than building and compressing
 * it in memory.
 */
const IN_MEMORY_MAX_BYTES = 4 * 1024 * 1024;
/** Read and write size when a zip goes through a file. */
const FILE_CHUNK_BYTES = 1024 * 1024;

/** An open media file of the batch, with its size on disk. */
interface Source {
  fd: number;
  size: number;
}

export async function downloadFiles(
  store: MediaStore,
  files: readonly string[],
  compress: boolean,
): Promise<MediaDownloadOutcome> {
  const batch = selectBatch(store, files);
  const sources = openSources(store, batch);
  try {
    const names: Record<string, string> = {};
    for (const [index, entry] of batch.entries()) names[String(index)] = entry.fname;
    const meta = new TextEncoder().encode(JSON.stringify(names));
    const layout = new StoredZipLayout([
      ...sources.map((source, index) => ({ name: String(index), size: source.size })),
      { name: "_meta", size: meta.byteLength },
    ]);
    if (layout.size <= IN_MEMORY_MAX_BYTES) {
      const zip = zipInMemory(layout, sources, meta);
      return { bytes: compress ? await zstdCompress(zip) : zip, originalSize: zip.byteLength };
    }
    const path = store.tempPath(".download.zip");
    await zipToFile(layout, sources, meta, path);
    return { path, originalSize: layout.size };
  } finally {
    for (const source of sources) closeSync(source.fd);
  }
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

/**
 * Opens every file of the batch. A file that is gone is forgotten (forgetMissingFile) and fails
 * the batch with a 409; any file already opened is closed again.
 */
function openSources(store: MediaStore, batch: readonly MediaEntry[]): Source[] {
  const sources: Source[] = [];
  try {
    for (const entry of batch) {
      let fd: number;
      try {
        fd = openSync(mediaFilePath(store.folder, entry.fname), "r");
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code !== "ENOENT") throw err;
        forgetMissingFile(store, entry);
        throw conflict(`media file missing on disk, forgotten: ${JSON.stringify(entry.fname)}`, {
          cause: err,
        });
      }
      const source = { fd, size: 0 };
      sources.push(source); // before fstat, so that a failure there closes it too
      source.size = fstatSync(fd).size;
    }
    return sources;
  } catch (err) {
    for (const source of sources) closeSync(source.fd);
    throw err;
  }
}

function zipInMemory(layout: StoredZipLayout, sources: readonly Source[], meta: Uint8Array) {
  // Every byte is written below: headers, data and directory tile the zip exactly.
  const zip = Buffer.allocUnsafe(layout.size);
  const crcs: number[] = [];
  const place = (i: number, data: Uint8Array) => {
    crcs.push(crc32(data));
    zip.set(layout.localHeader(i, crcs[i] as number), layout.offsets[i]);
  };
  sources.forEach((source, i) => {
    const start = layout.dataOffset(i);
    const data = zip.subarray(start, start + source.size);
    readFully(source, data, 0);
    place(i, data);
  });
  zip.set(meta, layout.dataOffset(sources.length));
  place(sources.length, meta);
  zip.set(layout.directory(crcs), layout.directoryOffset);
  return zip;
}

/** Reads `into.byteLength` bytes of the file from `position`; a file that shrank is an error. */
function readFully(source: Source, into: Uint8Array, position: number): void {
  let done = 0;
  while (done < into.byteLength) {
    const n = readSync(source.fd, into, done, into.byteLength - done, position + done);
    if (n === 0) throw new Error("media file shrank while it was read for a download");
    done += n;
  }
}

/**
 * The same zip written to a new file, in chunks (the thread stays free for other users between
 * them); each local header is written once its file's CRC-32 is known.
 */
async function zipToFile(
  layout: StoredZipLayout,
  sources: readonly Source[],
  meta: Uint8Array,
  path: string,
): Promise<void> {
  let out: FileHandle | undefined;
  try {
    out = await open(path, "wx");
    const chunk = Buffer.allocUnsafe(FILE_CHUNK_BYTES);
    const crcs: number[] = [];
    for (const [i, source] of sources.entries()) {
      let crc = 0;
      const start = layout.dataOffset(i);
      for (let done = 0; done < source.size; ) {
        const piece = chunk.subarray(0, Math.min(FILE_CHUNK_BYTES, source.size - done));
        readFully(source, piece, done);
        crc = crc32(piece, crc);
        await writeAt(out, piece, start + done);
        done += piece.byteLength;
      }
      crcs.push(crc);
      await writeAt(out, layout.localHeader(i, crc), layout.offsets[i] as number);
    }
    crcs.push(crc32(meta));
    await writeAt(
      out,
      layout.localHeader(sources.length, crcs.at(-1) as number),
      layout.offsets[sources.length] as number,
    );
    await writeAt(out, meta, layout.dataOffset(sources.length));
    await writeAt(out, layout.directory(crcs), layout.directoryOffset);
    await out.close();
  } catch (err) {
    await out?.close().catch(() => {});
    rmSync(path, { force: true });
    throw err;
  }
}

async function writeAt(file: FileHandle, data: Uint8Array, position: number): Promise<void> {
  for (let done = 0; done < data.byteLength; )
    done += (await file.write(data, done, data.byteLength - done, position + done)).bytesWritten;
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
