/**
 * `msync/uploadChanges`: the client's zip of added, changed and deleted files
 * (docs/protocol.md#media-upload). Everything is checked before anything changes; then one
 * transaction records the changes. Any problem with the zip or a name is a 400 and leaves the
 * store as it was. Two ways to make a batch durable (docs/media.md#durability): a small batch is
 * read into memory and its files written once to the user's media journal, with one sync, before
 * the commit, then put in place unsynced once it is answered; a large one is staged (written and synced beside the
 * media folder, on a task worker) and renamed into place before the commit.
 */

import { createHash } from "node:crypto";
import {
  closeSync,
  existsSync,
  fdatasync,
  mkdirSync,
  openSync,
  rmSync,
  writeFileSync,
  writeSync,
} from "node:fs";
import { rm } from "node:fs/promises";
import { join } from "node:path";
import { promisify } from "node:util";
import {
  BodyTooLarge,
  type Compression,
  decompressSmall as decompressInOneCall,
  decompressStream,
  readBytes,
} from "../../compression.ts";
import { fileStream, StreamTooLarge, writeStreamToFile } from "../../platform/files.ts";
import { fsyncPathAsync } from "../../storage/collection/replace.ts";
import { storageFault } from "../../storage/ioErrors.ts";
import {
  createNewFile,
  installFile,
  mediaFilePath,
  removeMediaFile,
  uploadNameProblem,
} from "../../storage/media/files.ts";
import type { JournalRecord, JournalRows } from "../../storage/media/journal.ts";
import type { MediaDb, MediaEntry, MediaMeta } from "../../storage/media/mediaDb.ts";
import { JOURNAL_CHECKPOINT_BYTES, type MediaStore } from "../../storage/media/mediaStore.ts";
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

interface Deletion {
  name: string;
  kind: "delete";
}
interface FileData {
  name: string;
  kind: "data";
  size: number;
  sha1: Uint8Array;
}
type StagedFile = FileData & { staged: string };
type FileInMemory = FileData & { bytes: Uint8Array };
type UploadedChange<F extends FileData> = Deletion | F;

/** A checked upload whose files wait in `staging`, in `_meta` order. */
export interface StagedMediaUpload {
  staging: string;
  changes: UploadedChange<StagedFile>[];
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
  const changes = await readUploadInMemory(
    await openZip(ZipReader.fromBytes(zipBytes, MAX_UPLOAD_ZIP_ENTRIES)),
    limits,
  );
  return applyJournaled(store, changes, Math.floor(now / 1000));
}

async function decompressSmall(
  body: Uint8Array,
  compression: Compression,
  maxBytes: number,
): Promise<Uint8Array | null> {
  if (compression === "none") return body.byteLength <= IN_PLACE_MAX_BYTES ? body : null;
  const bound = Math.min(IN_PLACE_MAX_BYTES, maxBytes);
  try {
    const whole = decompressInOneCall(body, compression, bound);
    if (whole) return whole;
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
    return await applyStaged(store, upload.changes, Math.floor(now / 1000));
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

type PlannedEntry = { name: string; entry: ZipEntry | null };

/** Validates `_meta` against the zip: names, entries, declared sizes; nothing is read yet. */
async function planUpload(zip: ZipReader, limits: MediaUploadLimits): Promise<PlannedEntry[]> {
  const metaEntry = zip.entries.get("_meta");
  if (!metaEntry) throw badRequest("media upload has no _meta");
  const listed = parseUploadMeta(await zip.readSmall(metaEntry, MAX_UPLOAD_META_BYTES));
  let declaredBytes = 0;
  const plan = listed.map(([name, entryName]): PlannedEntry => {
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
  return plan;
}

/** Runs `read` over the zip, closing it after and turning zip problems into 400s. */
async function readingZip<T>(zip: ZipReader, read: () => Promise<T>): Promise<T> {
  try {
    return await read();
  } catch (err) {
    throw err instanceof ZipError ? badRequest(`media upload: ${err.message}`) : err;
  } finally {
    await zip.close();
  }
}

/** Validates the whole zip, then stages its files; returns the changes in `_meta` order. */
async function readUpload(
  zip: ZipReader,
  staging: string,
  limits: MediaUploadLimits,
): Promise<UploadedChange<StagedFile>[]> {
  const written: number[] = [];
  try {
    return await readingZip(zip, async () => {
      const changes: UploadedChange<StagedFile>[] = [];
      for (const [index, { name, entry }] of (await planUpload(zip, limits)).entries()) {
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
      // syncs run at once, so the filesystem can commit them together rather than one by one.
      await Promise.all(written.map((fd) => datasync(fd)));
      return changes;
    });
  } finally {
    for (const fd of written) closeSync(fd);
  }
}

/** Validates the whole (small) zip and reads its files into memory, in `_meta` order. */
function readUploadInMemory(
  zip: ZipReader,
  limits: MediaUploadLimits,
): Promise<UploadedChange<FileInMemory>[]> {
  return readingZip(zip, async () => {
    const changes: UploadedChange<FileInMemory>[] = [];
    for (const { name, entry } of await planUpload(zip, limits)) {
      if (!entry) {
        changes.push({ name, kind: "delete" });
        continue;
      }
      const bytes = await zip.readSmall(entry, MAX_MEDIA_FILE_BYTES);
      const sha1 = new Uint8Array(createHash("sha1").update(bytes).digest());
      changes.push({ name, kind: "data", bytes, size: bytes.byteLength, sha1 });
    }
    return changes;
  });
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

/** What a batch does to the store, worked out before anything is written. */
interface ChangePlan<F extends FileData> {
  meta: MediaMeta;
  entries: MediaEntry[];
  /** Files to put in place, by name (the batch's last content of each). */
  toInstall: Map<string, F>;
  toRemove: Set<string>;
}

/**
 * The rows a batch writes (usn + 1 per real change, docs/protocol.md#media-usn) and the files it
 * puts in place or removes. Only this worker writes the user's media.db, and only one job of
 * the user runs at a time, so what is read here still holds at the commit.
 */
function planChanges<F extends FileData>(
  db: MediaDb,
  folder: string,
  changes: UploadedChange<F>[],
  mtime: number,
): ChangePlan<F> {
  const meta = db.meta();
  const entries: MediaEntry[] = [];
  const toInstall = new Map<string, F>();
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
      if (!existsSync(mediaFilePath(folder, change.name))) toInstall.set(change.name, change);
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
    toInstall.set(change.name, change);
    toRemove.delete(change.name);
  }
  return { meta, entries, toInstall, toRemove };
}

function commit(db: MediaDb, plan: ChangePlan<FileData>): void {
  db.transaction(() => {
    for (const entry of plan.entries) db.putEntry(entry);
    db.writeMeta(plan.meta);
  });
}

/**
 * The batch's records (files, rows) synced to the journal, then media.db committed; a failed
 * commit takes the records back, so a replay never applies a batch that was refused.
 */
async function journalThenCommit(
  store: MediaStore,
  db: MediaDb,
  plan: ChangePlan<FileData>,
  files: JournalRecord[],
  rows: JournalRows | null,
): Promise<void> {
  const mark = await store.journalBatch(files, rows);
  try {
    commit(db, plan);
  } catch (err) {
    store.batchFailed(mark);
    throw err;
  }
  store.batchCommitted();
}

/** Deleted files go only after the commit: a failure before it must not lose a listed file. */
function removeDeleted(folder: string, plan: ChangePlan<FileData>): void {
  for (const name of plan.toRemove) {
    try {
      removeMediaFile(mediaFilePath(folder, name));
    } catch {
      // Recorded as deleted; a file left behind is never served and is replaced by a re-upload.
    }
  }
}

/** The journal's copy of the rows a batch commits; null when it commits none. */
function journalRows(plan: ChangePlan<FileData>, prevUsn: number): JournalRows | null {
  return plan.entries.length > 0 ? { prevUsn, meta: plan.meta, entries: plan.entries } : null;
}

/**
 * A staged (large) batch: the synced staged files are renamed in and the folder synced, then
 * its rows are journaled (the journal makes media.db's commit durable), then the commit.
 */
async function applyStaged(
  store: MediaStore,
  changes: UploadedChange<StagedFile>[],
  mtime: number,
): Promise<MediaUploadResult> {
  await store.settled();
  const db = store.db();
  const prevUsn = db.meta().lastUsn;
  const plan = planChanges(db, store.folder, changes, mtime);
  for (const [name, file] of plan.toInstall)
    installFile(file.staged, mediaFilePath(store.folder, name));
  if (plan.toInstall.size > 0) await fsyncPathAsync(store.folder);
  const rows = journalRows(plan, prevUsn);
  if (rows) await journalThenCommit(store, db, plan, [], rows);
  removeDeleted(store.folder, plan);
  return [changes.length, plan.meta.lastUsn];
}

/**
 * A small batch: its files and rows are appended to the journal with one sync, then the commit
 * (itself unsynced), then the answer. A failure up to the commit leaves the store as it was
 * (the batch's records are taken back, and would be ignored on replay anyway). The files are
 * put in place after the answer, while the client sends its next batch, and before the store
 * is next used (MediaStore.afterAnswer); a failure or a crash meanwhile has the journal put
 * them there. The files' and media.db's syncs are owed until the store's next checkpoint.
 */
async function applyJournaled(
  store: MediaStore,
  changes: UploadedChange<FileInMemory>[],
  mtime: number,
): Promise<MediaUploadResult> {
  await store.settled();
  const db = store.db();
  const { prevUsn, plan } = db.reading(() => ({
    prevUsn: db.meta().lastUsn,
    plan: planChanges(db, store.folder, changes, mtime),
  }));
  const rows = journalRows(plan, prevUsn);
  if (plan.toInstall.size > 0 || rows) {
    const files = [...plan.toInstall.values()].map((f) => ({
      name: f.name,
      sha1: f.sha1,
      bytes: f.bytes,
    }));
    await journalThenCommit(store, db, plan, files, rows);
  }
  if (plan.toInstall.size > 0 || plan.toRemove.size > 0)
    store.afterAnswer(() => placeJournaled(store, plan));
  return [changes.length, plan.meta.lastUsn];
}

/** The rest of a committed small batch: its files in place, deleted ones removed. */
async function placeJournaled(store: MediaStore, plan: ChangePlan<FileInMemory>): Promise<void> {
  try {
    for (const [name, file] of plan.toInstall) placeFile(store, name, file.bytes);
  } catch (err) {
    store.needsReplay();
    throw err;
  }
  store.filesPlaced(plan.toInstall.keys());
  removeDeleted(store.folder, plan);
  if (store.journalBytes > JOURNAL_CHECKPOINT_BYTES) {
    // The batch is durable already; a checkpoint that fails leaves the journal to be replayed.
    await store.checkpoint().catch(() => false);
  }
}

/**
 * A new name is created in place; an existing file (a changed one, or one a crash left
 * unlisted) is replaced whole by a rename, so it is never seen half written.
 */
function placeFile(store: MediaStore, name: string, bytes: Uint8Array): void {
  const target = mediaFilePath(store.folder, name);
  if (createNewFile(target, bytes)) return;
  const temp = store.tempPath(".put");
  try {
    writeFileSync(temp, bytes, { flag: "wx" });
    installFile(temp, target);
  } catch (err) {
    rmSync(temp, { force: true });
    throw err;
  }
}

function sameBytes(a: Uint8Array, b: Uint8Array): boolean {
  return a.byteLength === b.byteLength && a.every((byte, i) => byte === b[i]);
}
