/**
 * `msync/uploadChanges`: the client's zip of added, changed and deleted files
 * (docs/protocol.md#media-upload). Everything is checked and every file staged (written and synced
 * beside the media folder) before anything changes; then one transaction records the changes while
 * the staged files are renamed into place. Any problem with the zip or a name is a 400 and leaves
 * the store as it was.
 */

import { createHash } from "node:crypto";
import { closeSync, existsSync, fdatasync, mkdirSync, openSync, rmSync, writeSync } from "node:fs";
import { rm } from "node:fs/promises";
import { join } from "node:path";
import { promisify } from "node:util";
import { BodyTooLarge, type Compression, decompressStream, readBytes } from "../../compression.ts";
import { fileStream, StreamTooLarge, writeStreamToFile } from "../../platform/files.ts";
import { fsyncPathAsync } from "../../storage/collection/replace.ts";
import { storageFault } from "../../storage/ioErrors.ts";
import {
  installFile,
  mediaFilePath,
  removeMediaFile,
  uploadNameProblem,
} from "../../storage/media/files.ts";
import type { MediaEntry } from "../../storage/media/mediaDb.ts";
import type { MediaStore } from "../../storage/media/mediaStore.ts";
import { badRequest } from "../errors.ts";
import {
  IN_PLACE_MAX_BYTES,
  MAX_FILES_PER_BATCH,
  MAX_MEDIA_FILE_BYTES,
  MAX_UPLOAD_META_BYTES,
  MAX_UPLOAD_ZIP_ENTRIES,
} from "./limits.ts";
import { type ZipEntry, ZipError, ZipReader } from "./zip.ts";

export interface MediaUploadInput {
  /** The request body as received (still compressed), in the user's folder; always removed. */
  incomingPath: string;
  compression: Compression;
}

/** Where the staging happens: temporary paths beside the user's media folder. */
export interface MediaStagingPaths {
  /** The decompressed zip (unused when the body came uncompressed); always removed. */
  zipPath: string;
  /** A folder created for the staged files. */
  staging: string;
}

export interface MediaUploadLimits {
  /** Bound on the decompressed zip and on the files it holds together. */
  maxUncompressedBytes: number;
}

/** `[entries processed, media usn after the upload]`. */
export type MediaUploadResult = [number, number];

type UploadedChange =
  | { name: string; kind: "delete" }
  | { name: string; kind: "data"; staged: string; size: number; sha1: Uint8Array };

/** A checked upload whose files wait in `staging`, in `_meta` order. */
export interface StagedMediaUpload {
  staging: string;
  changes: UploadedChange[];
}

/**
 * The heavy, stateless step: decompress, check everything and stage every file. It touches no
 * database, so the server runs it on a task worker and users sharing the user's worker wait
 * for none of it. Any problem is a 400 and leaves nothing behind.
 */
export async function stageMediaUpload(
  input: MediaUploadInput,
  paths: MediaStagingPaths,
  limits: MediaUploadLimits,
): Promise<StagedMediaUpload> {
  const zipPath = input.compression === "none" ? input.incomingPath : paths.zipPath;
  let staged = false;
  try {
    if (zipPath !== input.incomingPath)
      await decompressTo(input, zipPath, limits.maxUncompressedBytes);
    mkdirSync(paths.staging);
    const changes = await readUpload(
      await openZip(ZipReader.open(zipPath, MAX_UPLOAD_ZIP_ENTRIES)),
      paths.staging,
      limits,
    );
    staged = true;
    return { staging: paths.staging, changes };
  } finally {
    if (!staged) rmSync(paths.staging, { recursive: true, force: true });
    rmSync(zipPath, { force: true });
    rmSync(input.incomingPath, { force: true });
  }
}

/**
 * A small upload (a few small files, the usual batch) in one step on the user's worker: a
 * task worker would cost more than the work. Returns null, having changed nothing, when the
 * body decompresses to more than IN_PLACE_MAX_BYTES: then it goes the task worker's way.
 */
export async function uploadSmallChanges(
  store: MediaStore,
  body: Uint8Array,
  compression: Compression,
  limits: MediaUploadLimits,
  now = Date.now(),
): Promise<MediaUploadResult | null> {
  const zipBytes = await decompressSmall(body, compression, limits.maxUncompressedBytes);
  if (!zipBytes) return null;
  store.db(); // creates the user's folders
  const staging = store.tempPath(".staging");
  mkdirSync(staging);
  let changes: UploadedChange[];
  try {
    changes = await readUpload(
      await openZip(ZipReader.fromBytes(zipBytes, MAX_UPLOAD_ZIP_ENTRIES)),
      staging,
      limits,
    );
  } catch (err) {
    rmSync(staging, { recursive: true, force: true });
    throw err;
  }
  return applyMediaUpload(store, { staging, changes }, now);
}

async function decompressSmall(
  body: Uint8Array,
  compression: Compression,
  maxBytes: number,
): Promise<Uint8Array | null> {
  if (compression === "none") return body.byteLength <= IN_PLACE_MAX_BYTES ? body : null;
  const bound = Math.min(IN_PLACE_MAX_BYTES, maxBytes);
  try {
    return await readBytes(
      decompressStream(new Blob([body as Uint8Array<ArrayBuffer>]).stream(), compression),
      bound,
    );
  } catch (err) {
    if (err instanceof BodyTooLarge) {
      if (bound < IN_PLACE_MAX_BYTES)
        throw badRequest(`media upload larger than ${maxBytes} bytes`, { cause: err });
      return null;
    }
    throw badRequest(`cannot decompress media upload: ${(err as Error).message}`, { cause: err });
  }
}

/**
 * The light step, on the user's worker: record the changes and move the staged files in. Its
 * waits for the disk (the folder's fsync, removing the staging folder) are awaited, not
 * blocking, so the worker serves other users' jobs meanwhile; this user's next job waits in
 * the executor's per-user queue.
 */
export async function applyMediaUpload(
  store: MediaStore,
  upload: StagedMediaUpload,
  now = Date.now(),
): Promise<MediaUploadResult> {
  try {
    return await applyChanges(store, upload.changes, Math.floor(now / 1000));
  } finally {
    await rm(upload.staging, { recursive: true, force: true });
  }
}

async function decompressTo(
  input: MediaUploadInput,
  target: string,
  maxBytes: number,
): Promise<void> {
  try {
    await writeStreamToFile(
      decompressStream(fileStream(input.incomingPath), input.compression),
      target,
      maxBytes,
    );
  } catch (err) {
    if (err instanceof StreamTooLarge)
      throw badRequest(`media upload larger than ${maxBytes} bytes`, { cause: err });
    if (storageFault(err)) throw err;
    throw badRequest(`cannot decompress media upload: ${(err as Error).message}`, { cause: err });
  }
}

async function openZip(opening: Promise<ZipReader>): Promise<ZipReader> {
  try {
    return await opening;
  } catch (err) {
    throw err instanceof ZipError ? badRequest(`media upload: ${err.message}`) : err;
  }
}

/** Validates the whole zip, then stages its files; returns the changes in `_meta` order. */
async function readUpload(
  zip: ZipReader,
  staging: string,
  limits: MediaUploadLimits,
): Promise<UploadedChange[]> {
  const written: number[] = [];
  try {
    const metaEntry = zip.entries.get("_meta");
    if (!metaEntry) throw badRequest("media upload has no _meta");
    const listed = parseUploadMeta(await zip.readSmall(metaEntry, MAX_UPLOAD_META_BYTES));
    let declaredBytes = 0;
    const plan = listed.map(([name, entryName]): { name: string; entry: ZipEntry | null } => {
      const problem = uploadNameProblem(name);
      if (problem) throw badRequest(`media upload: ${JSON.stringify(name)}: ${problem}`);
      // Older clients mark a deletion with "" rather than null.
      if (entryName === null || entryName === "") return { name, entry: null };
      const entry = zip.entries.get(entryName);
      if (!entry)
        throw badRequest(`media upload: no zip entry ${JSON.stringify(entryName)} for ${name}`);
      if (entry.uncompressedSize > MAX_MEDIA_FILE_BYTES)
        throw badRequest(`media upload: ${name} exceeds ${MAX_MEDIA_FILE_BYTES} bytes`);
      if (entry.uncompressedSize === 0) throw badRequest(`media upload: ${name} is empty`);
      declaredBytes += entry.uncompressedSize;
      return { name, entry };
    });
    if (declaredBytes > limits.maxUncompressedBytes) {
      throw badRequest(
        `media upload: ${declaredBytes} bytes of files exceed ${limits.maxUncompressedBytes}`,
      );
    }
    const changes: UploadedChange[] = [];
    for (const [index, { name, entry }] of plan.entries()) {
      if (!entry) {
        changes.push({ name, kind: "delete" });
        continue;
      }
      const staged = join(staging, String(index));
      const fd = openSync(staged, "wx");
      written.push(fd);
      changes.push({ name, kind: "data", staged, ...(await stage(zip, entry, fd)) });
    }
    // The whole batch is made durable together, once every file is written and checked: the
    // syncs run at once, so the filesystem commits them together rather than one by one.
    await Promise.all(written.map((fd) => datasync(fd)));
    return changes;
  } catch (err) {
    throw err instanceof ZipError ? badRequest(`media upload: ${err.message}`) : err;
  } finally {
    for (const fd of written) closeSync(fd);
    await zip.close();
  }
}

const datasync = promisify(fdatasync);

type MetaList = [string, string | null][];

/** `_meta` of an upload: a JSON array of `[name, zip entry | null | ""]`, at most 25 long. */
export function parseUploadMeta(bytes: Uint8Array): MetaList {
  let value: unknown;
  try {
    value = JSON.parse(new TextDecoder("utf-8", { fatal: true }).decode(bytes));
  } catch (err) {
    throw badRequest(`media upload: unreadable _meta: ${(err as Error).message}`, { cause: err });
  }
  if (!Array.isArray(value)) throw badRequest("media upload: _meta is not a list");
  if (value.length > MAX_FILES_PER_BATCH) {
    throw badRequest(`media upload: ${value.length} files, at most ${MAX_FILES_PER_BATCH} allowed`);
  }
  for (const item of value) {
    if (
      !Array.isArray(item) ||
      item.length !== 2 ||
      typeof item[0] !== "string" ||
      (item[1] !== null && typeof item[1] !== "string")
    ) {
      throw badRequest("media upload: _meta items must be [name, entry or null]");
    }
  }
  return value as MetaList;
}

/**
 * Writes one entry to the open file `fd` (synced later, with the rest of the batch), returning
 * its size and SHA-1. Plain blocking writes: this runs on a worker thread, and an awaited write
 * per chunk cost a thread-pool round trip each.
 */
async function stage(
  zip: ZipReader,
  entry: ZipEntry,
  fd: number,
): Promise<{ size: number; sha1: Uint8Array }> {
  const hash = createHash("sha1");
  const size = await zip.extract(entry, (chunk) => {
    hash.update(chunk);
    let done = 0;
    while (done < chunk.byteLength) done += writeSync(fd, chunk, done, chunk.byteLength - done);
  });
  return { size, sha1: new Uint8Array(hash.digest()) };
}

/**
 * Records the changes in one transaction (usn + 1 per real change, docs/protocol.md#media-usn)
 * and puts staged files in place. Staged files are renamed in and the folder synced before the
 * commit that lists them; deleted files are removed only after it: a failure before it must
 * not lose a file the database still lists. Only this worker writes the user's media.db, and
 * only one job of the user runs at a time, so what is read before the transaction still holds.
 */
async function applyChanges(
  store: MediaStore,
  changes: UploadedChange[],
  mtime: number,
): Promise<MediaUploadResult> {
  const db = store.db();
  const meta = db.meta();
  const entries: MediaEntry[] = [];
  const toInstall = new Map<string, string>();
  const toRemove = new Set<string>();
  // What this batch has recorded so far: a name may come twice (added, then deleted).
  const recorded = new Map<string, MediaEntry | null>();
  const live = (name: string) => (recorded.has(name) ? recorded.get(name) : db.liveEntry(name));
  for (const change of changes) {
    const existing = live(change.name);
    if (change.kind === "delete") {
      if (!existing) continue;
      meta.totalBytes = Math.max(0, meta.totalBytes - existing.size);
      meta.totalNonemptyFiles = Math.max(0, meta.totalNonemptyFiles - 1);
      meta.lastUsn++;
      entries.push({ ...existing, size: 0, usn: meta.lastUsn, mtime });
      recorded.set(change.name, null);
      toRemove.add(change.name);
      toInstall.delete(change.name);
      continue;
    }
    if (existing && sameBytes(existing.csum, change.sha1)) {
      // Nothing to record; but a file that went missing from disk is put back.
      if (!existsSync(mediaFilePath(store.folder, change.name)))
        toInstall.set(change.name, change.staged);
      continue;
    }
    if (existing) meta.totalBytes = Math.max(0, meta.totalBytes - existing.size) + change.size;
    else {
      meta.totalBytes += change.size;
      meta.totalNonemptyFiles++;
    }
    meta.lastUsn++;
    const entry = {
      fname: change.name,
      csum: change.sha1,
      size: change.size,
      usn: meta.lastUsn,
      mtime,
    };
    entries.push(entry);
    recorded.set(change.name, entry);
    toInstall.set(change.name, change.staged);
    toRemove.delete(change.name);
  }
  for (const [name, staged] of toInstall) installFile(staged, mediaFilePath(store.folder, name));
  if (toInstall.size > 0) await fsyncPathAsync(store.folder);
  db.transaction(() => {
    for (const entry of entries) db.putEntry(entry);
    db.writeMeta(meta);
  });
  for (const name of toRemove) {
    try {
      removeMediaFile(mediaFilePath(store.folder, name));
    } catch {
      // Recorded as deleted; a file left behind is never served and is replaced by a re-upload.
    }
  }
  return [changes.length, meta.lastUsn];
}

function sameBytes(a: Uint8Array, b: Uint8Array): boolean {
  return a.byteLength === b.byteLength && a.every((byte, i) => byte === b[i]);
}
