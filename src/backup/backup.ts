/**
 * `admin backup <dir>`: a consistent copy of a data folder while the server runs and clients
 * sync. Databases are snapshotted by SQLite (copying.ts); media files are copied after their
 * media.db snapshot and checked against it, and the snapshot is retaken until every file
 * matches, because an upload can replace a file under the same name at any time. No user lock
 * is taken, so syncs carry on meanwhile. The manifest is written last.
 */
import { existsSync, mkdirSync, readdirSync } from "node:fs";
import { join } from "node:path";
import type { Config } from "../config.ts";
import type { Logger } from "../log.ts";
import { openDatabase } from "../platform/sqlite.ts";
import { readCol } from "../storage/collection/collectionFile.ts";
import { mediaFilePath } from "../storage/media/files.ts";
import { userPaths } from "../storage/paths.ts";
import {
  fileSha256,
  fsyncFile,
  readIfPresent,
  removeFile,
  sha1Hex,
  snapshotDatabase,
  writeDurably,
} from "./copying.ts";
import {
  BackupError,
  type CollectionEntry,
  type FileEntry,
  MANIFEST_FORMAT,
  MANIFEST_NAME,
  MANIFEST_VERSION,
  type Manifest,
  type MediaFileEntry,
  type UserEntry,
} from "./manifest.ts";

/** Snapshots of media.db taken before files that keep changing are recorded as they are. */
const MEDIA_PASSES = 5;

export interface BackupOptions {
  log: Logger;
  /** Pause between media passes, so an upload in flight can commit (tests shorten it). */
  passPauseMs?: number;
}

export async function backupDataFolder(
  config: Config,
  target: string,
  options: BackupOptions,
): Promise<Manifest> {
  if (config.databaseUrl) {
    throw new BackupError(
      "ANKISYNCD_DATABASE_URL is set: profiles and sessions are in PostgreSQL, which this command does not copy; back the database up with pg_dump and the data folder with a filesystem snapshot",
    );
  }
  if (!existsSync(config.sessionDbPath)) {
    throw new BackupError(
      `${config.sessionDbPath} does not exist: is SYNC_BASE (${config.dataDir}) the data folder?`,
    );
  }
  prepareEmptyFolder(target);
  const startedAt = new Date().toISOString();
  snapshotDatabase(config.sessionDbPath, join(target, "session.db"));
  const sessionDb = fileEntry(target, "session.db");
  const users: UserEntry[] = [];
  for (const uuid of userFolders(config.dataDir)) {
    const user = await backupUser(config.dataDir, target, uuid, options);
    for (const problem of user.problems) options.log.warn(problem, { uuid });
    users.push(user);
  }
  const manifest: Manifest = {
    format: MANIFEST_FORMAT,
    version: MANIFEST_VERSION,
    startedAt,
    finishedAt: new Date().toISOString(),
    source: config.dataDir,
    sessionDb,
    users,
  };
  writeDurably(join(target, MANIFEST_NAME), `${JSON.stringify(manifest, null, 1)}\n`);
  fsyncFile(target);
  return manifest;
}

/** Creates `dir`, or accepts it empty: a backup never mixes with other files. */
function prepareEmptyFolder(dir: string): void {
  if (existsSync(dir) && readdirSync(dir).length > 0) {
    throw new BackupError(`${dir} is not empty: give a new folder for each backup`);
  }
  mkdirSync(dir, { recursive: true });
}

function userFolders(dataDir: string): string[] {
  const root = join(dataDir, "collections");
  if (!existsSync(root)) return [];
  return readdirSync(root, { withFileTypes: true })
    .filter((e) => e.isDirectory() && isUserKey(dataDir, e.name))
    .map((e) => e.name)
    .sort();
}

function isUserKey(dataDir: string, name: string): boolean {
  try {
    userPaths(dataDir, name);
    return true;
  } catch {
    return false;
  }
}

async function backupUser(
  dataDir: string,
  target: string,
  uuid: string,
  options: BackupOptions,
): Promise<UserEntry> {
  const from = userPaths(dataDir, uuid);
  const to = userPaths(target, uuid);
  mkdirSync(to.dir, { recursive: true });
  const user: UserEntry = { uuid, collection: null, mediaDb: null, mediaFiles: [], problems: [] };
  if (existsSync(from.collection)) {
    // Collections adopted from another server may still be schema 18 (unicase indexes).
    snapshotDatabase(from.collection, to.collection, true);
    user.collection = collectionEntry(target, to.collection);
  }
  if (existsSync(from.mediaDb)) await backupMedia(from, to, user, target, options);
  return user;
}

function collectionEntry(root: string, path: string): CollectionEntry {
  const db = openDatabase(path, { readonly: true });
  try {
    const col = readCol(db);
    return { ...fileEntry(root, relative(root, path)), usn: col.usn, mod: col.mod, scm: col.scm };
  } finally {
    db.close();
  }
}

type Paths = ReturnType<typeof userPaths>;

/**
 * Copies media.db and the files it lists as present. A file whose bytes do not match the
 * snapshot changed after it (or is being replaced): take a new snapshot and copy again what
 * differs. Files copied for an earlier snapshot stay if their row is unchanged.
 */
async function backupMedia(
  from: Paths,
  to: Paths,
  user: UserEntry,
  root: string,
  options: BackupOptions,
): Promise<void> {
  mkdirSync(to.media, { recursive: true });
  const copied = new Map<string, string>();
  let mismatched: string[] = [];
  let live = new Map<string, LiveFile>();
  let lastUsn = 0;
  for (let pass = 1; pass <= MEDIA_PASSES; pass++) {
    if (pass > 1) await pause((options.passPauseMs ?? 500) * pass);
    removeFile(to.mediaDb);
    snapshotDatabase(from.mediaDb, to.mediaDb);
    ({ live, lastUsn } = readLiveMedia(to.mediaDb));
    for (const [name, sha1] of copied) {
      if (live.get(name)?.sha1 === sha1) continue;
      removeFile(mediaFilePath(to.media, name));
      copied.delete(name);
    }
    // Copies that did not match an earlier snapshot are not kept; only the last pass's are.
    for (const name of mismatched) removeFile(mediaFilePath(to.media, name));
    mismatched = [];
    for (const [name, file] of live) {
      if (copied.get(name) === file.sha1) continue;
      const sha1 = copyMediaFile(from.media, to.media, name);
      if (sha1 === file.sha1) copied.set(name, sha1);
      else mismatched.push(name);
    }
    if (mismatched.length === 0) break;
  }
  recordMedia(user, to, live, copied, mismatched);
  user.mediaDb = { ...fileEntry(root, relative(root, to.mediaDb)), lastUsn };
}

/** Files that never matched are kept as the server has them (or left out if it has none). */
function recordMedia(
  user: UserEntry,
  to: Paths,
  live: Map<string, LiveFile>,
  copied: Map<string, string>,
  mismatched: string[],
): void {
  for (const name of mismatched) {
    const bytes = readIfPresent(mediaFilePath(to.media, name));
    if (bytes === null) {
      user.problems.push(`media file ${name} is listed in media.db but missing on the server`);
      continue;
    }
    user.problems.push(`media file ${name} does not match its media.db checksum; copied as it is`);
    user.mediaFiles.push([name, bytes.byteLength, sha1Hex(bytes)]);
  }
  for (const [name, sha1] of copied) {
    user.mediaFiles.push([name, live.get(name)?.size ?? 0, sha1] as MediaFileEntry);
  }
  user.mediaFiles.sort((a, b) => (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : 0));
}

interface LiveFile {
  size: number;
  sha1: string;
}

function readLiveMedia(path: string): { live: Map<string, LiveFile>; lastUsn: number } {
  const db = openDatabase(path, { readonly: true });
  try {
    const rows = db
      .query("SELECT fname, size, lower(hex(csum)) AS sha1 FROM media WHERE size > 0")
      .all() as { fname: string; size: number; sha1: string }[];
    const meta = db.query("SELECT last_usn FROM meta LIMIT 1").get() as { last_usn: number } | null;
    return {
      live: new Map(rows.map((r) => [r.fname, { size: r.size, sha1: r.sha1 }])),
      lastUsn: meta?.last_usn ?? 0,
    };
  } finally {
    db.close();
  }
}

/** Copies one media file; its SHA-1 as read, or null if the server has no such file. */
function copyMediaFile(fromFolder: string, toFolder: string, name: string): string | null {
  const target = mediaFilePath(toFolder, name);
  removeFile(target);
  const bytes = readIfPresent(mediaFilePath(fromFolder, name));
  if (bytes === null) return null;
  writeDurably(target, bytes);
  return sha1Hex(bytes);
}

const pause = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

function fileEntry(root: string, path: string): FileEntry {
  return { path, ...fileSha256(join(root, path)) };
}

function relative(root: string, path: string): string {
  return path.slice(root.length + 1);
}
