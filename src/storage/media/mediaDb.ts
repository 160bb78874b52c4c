/**
 * A user's `media.db`, in the layout Anki's own sync server uses (user_version 4), so a data
 * folder moves between the two servers unchanged:
 * - `media(fname, csum, size, usn, mtime)`: one row per name ever synced; `size = 0` marks a
 *   deletion (the checksum is kept), `csum` is the raw 20-byte SHA-1, `mtime` in seconds;
 * - `meta(last_usn, total_bytes, total_nonempty_files)`: exactly one row.
 * Opened with WAL, or a rollback journal on network filesystems. Only the worker owning the user
 * writes it, but `admin backup` reads it meanwhile, so it is not held in exclusive locking mode
 * and a writer waits briefly for such a reader.
 *
 * With WAL its commits are not synced (`synchronous = NORMAL`: a crash of the process loses
 * nothing, a power loss may roll back the latest commits): every upload's rows are in the
 * user's synced media journal first, which restores them, and the journal is emptied only
 * after `sync()` (docs/media.md#durability). With a rollback journal every commit is synced.
 */
import { closeSync, existsSync, fdatasync, fdatasyncSync, openSync } from "node:fs";
import { promisify } from "node:util";
import { type Db, openDatabase } from "../../platform/sqlite.ts";

export const MEDIA_DB_VERSION = 4;

export interface MediaEntry {
  fname: string;
  /** Raw SHA-1 of the content (20 bytes). */
  csum: Uint8Array;
  /** Bytes; 0 means deleted. */
  size: number;
  usn: number;
  /** Seconds. */
  mtime: number;
}

export interface MediaMeta {
  lastUsn: number;
  totalBytes: number;
  totalNonemptyFiles: number;
}

/** `[fname, usn, sha1 hex or "" for a deletion]`, as `mediaChanges` sends it. */
export type MediaChange = [string, number, string];

export interface MediaDbOptions {
  /** Use a rollback journal instead of WAL. */
  networkFs: boolean;
}

export class MediaDbError extends Error {}

/** Anki's server media tables (schema version 4); `size` 0 marks a deleted file. */
const MEDIA_TABLE_V4 = `
  CREATE TABLE media (
    fname text NOT NULL PRIMARY KEY,
    csum blob NOT NULL,
    size int NOT NULL,
    usn int NOT NULL,
    mtime int NOT NULL
  );
  CREATE INDEX ix_usn ON media (usn);
`;
const META_TABLE_V4 = `
  CREATE TABLE meta (
    last_usn int NOT NULL,
    total_bytes int NOT NULL,
    total_nonempty_files int NOT NULL
  );
`;

const CREATE_V4 = `
  ${MEDIA_TABLE_V4}
  ${META_TABLE_V4}
  INSERT INTO meta (last_usn, total_bytes, total_nonempty_files) VALUES (0, 0, 0);
`;

/**
 * Version 3 stored `media(fname, csum nullable, sz, usn, deleted)` and `meta(usn, sz)`. Rows
 * without a checksum carry nothing a client could use and are dropped; the totals are
 * recomputed from what remains.
 */
const UPGRADE_V3_TO_V4 = `
  ALTER TABLE media RENAME TO media_v3;
  DROP INDEX IF EXISTS ix_usn;
  ${MEDIA_TABLE_V4}
  INSERT INTO media (fname, csum, size, usn, mtime)
    SELECT fname, csum, sz, usn, deleted FROM media_v3 WHERE csum IS NOT NULL;
  DROP TABLE media_v3;
  DROP TABLE meta;
  ${META_TABLE_V4}
  INSERT INTO meta (last_usn, total_bytes, total_nonempty_files)
    SELECT coalesce(max(usn), 0), coalesce(sum(size), 0), count(CASE WHEN size > 0 THEN 1 END)
    FROM media;
`;

const datasync = promisify(fdatasync);

export class MediaDb {
  /**
   * The committed meta row, read once and kept until a write: every media request reads it
   * (begin, a collection's meta, each batch, mediaSanity). Only this object writes the row
   * (the user's lock keeps other processes out), and only a read outside a transaction is
   * kept, so neither a pending write nor a rolled-back one is ever remembered.
   */
  private committedMeta: MediaMeta | undefined;

  private constructor(
    private readonly db: Db,
    /** The WAL file whose sync makes the commits durable; null when every commit is synced. */
    private readonly wal: string | null,
  ) {}

  static open(path: string, options: MediaDbOptions): MediaDb {
    const db = openDatabase(path);
    try {
      db.exec("PRAGMA busy_timeout = 5000");
      db.exec(`PRAGMA journal_mode = ${options.networkFs ? "DELETE" : "WAL"}`);
      if (!options.networkFs) db.exec("PRAGMA synchronous = NORMAL");
      migrate(db);
      return new MediaDb(db, options.networkFs ? null : `${path}-wal`);
    } catch (err) {
      db.close();
      throw err;
    }
  }

  /**
   * Makes every commit so far durable. Commits live in the WAL until SQLite checkpoints them
   * into the database file, which it syncs before the WAL is reused; so syncing the WAL
   * suffices, whatever a reader lets the checkpoints do.
   */
  async sync(): Promise<void> {
    const fd = this.openWal();
    if (fd === null) return;
    try {
      await datasync(fd);
    } finally {
      closeSync(fd);
    }
  }

  /** `sync()`, blocking (for the replay at open). */
  syncNow(): void {
    const fd = this.openWal();
    if (fd === null) return;
    try {
      fdatasyncSync(fd);
    } finally {
      closeSync(fd);
    }
  }

  private openWal(): number | null {
    if (!this.wal || !existsSync(this.wal)) return null;
    return openSync(this.wal, "r");
  }

  close(): void {
    this.db.close();
  }

  meta(): MediaMeta {
    if (this.committedMeta) return { ...this.committedMeta };
    const meta = this.readMeta();
    if (!this.db.inTransaction) this.committedMeta = meta;
    return { ...meta };
  }

  private readMeta(): MediaMeta {
    const row = this.db
      .query("SELECT last_usn, total_bytes, total_nonempty_files FROM meta LIMIT 1")
      .get() as { last_usn: number; total_bytes: number; total_nonempty_files: number } | null;
    if (!row) throw new MediaDbError("media.db has no meta row");
    return {
      lastUsn: row.last_usn,
      totalBytes: row.total_bytes,
      totalNonemptyFiles: row.total_nonempty_files,
    };
  }

  writeMeta(meta: MediaMeta): void {
    this.committedMeta = undefined;
    this.db
      .query("UPDATE meta SET last_usn = ?, total_bytes = ?, total_nonempty_files = ?")
      .run(meta.lastUsn, meta.totalBytes, meta.totalNonemptyFiles);
  }

  /** The row for `fname`, deleted or not. */
  entry(fname: string): MediaEntry | null {
    const row = this.db
      .query("SELECT fname, csum, size, usn, mtime FROM media WHERE fname = ?")
      .get(fname) as MediaEntry | null;
    return row ? { ...row, csum: new Uint8Array(row.csum) } : null;
  }

  /** The row for `fname` if the file is present (not deleted). */
  liveEntry(fname: string): MediaEntry | null {
    const entry = this.entry(fname);
    return entry && entry.size > 0 ? entry : null;
  }

  putEntry(entry: MediaEntry): void {
    this.db
      .query("INSERT OR REPLACE INTO media (fname, csum, size, usn, mtime) VALUES (?, ?, ?, ?, ?)")
      .run(entry.fname, entry.csum, entry.size, entry.usn, entry.mtime);
  }

  /** Removes the row without leaving a deletion behind (the "forget a missing file" case). */
  dropEntry(fname: string): void {
    this.db.query("DELETE FROM media WHERE fname = ?").run(fname);
  }

  /** Rows changed after `usn`, oldest first: clients page on the last row's usn. */
  changesAfter(usn: number, limit: number): MediaChange[] {
    // Most clients are up to date: an index probe answers them, without the sorted query's
    // setup (several times the probe's cost even when it finds nothing).
    if (this.db.query("SELECT 1 FROM media WHERE usn > ? LIMIT 1").get(usn) === null) return [];
    const rows = this.db
      .query(
        `SELECT fname, usn, CASE WHEN size > 0 THEN lower(hex(csum)) ELSE '' END AS sha1
         FROM media WHERE usn > ? ORDER BY usn, fname LIMIT ?`,
      )
      .all(usn, limit) as { fname: string; usn: number; sha1: string }[];
    return rows.map((r) => [r.fname, r.usn, r.sha1]);
  }

  /**
   * Runs `fn`'s reads in one read transaction: one snapshot, and WAL's read lock taken once
   * rather than by each statement (two `fcntl`s each: 50 for a batch's lookups).
   */
  reading<T>(fn: () => T): T {
    if (this.db.inTransaction) return fn();
    this.db.exec("BEGIN");
    try {
      return fn();
    } finally {
      if (this.db.inTransaction) this.db.exec("COMMIT");
    }
  }

  /** Runs `fn` in an exclusive transaction; any throw rolls everything back. */
  transaction<T>(fn: () => T): T {
    this.db.exec("BEGIN EXCLUSIVE");
    try {
      const result = fn();
      this.db.exec("COMMIT");
      return result;
    } catch (err) {
      if (this.db.inTransaction) this.db.exec("ROLLBACK");
      throw err;
    }
  }
}

function migrate(db: Db): void {
  const version = (db.query("PRAGMA user_version").get() as { user_version: number }).user_version;
  if (version === MEDIA_DB_VERSION) return;
  if (version > MEDIA_DB_VERSION) throw new MediaDbError(`media.db has unknown version ${version}`);
  const tables = db.query("SELECT name FROM sqlite_master WHERE type = 'table'").all() as {
    name: string;
  }[];
  db.exec("BEGIN EXCLUSIVE");
  try {
    if (version === 3) db.exec(UPGRADE_V3_TO_V4);
    else if (tables.length === 0) db.exec(CREATE_V4);
    else
      throw new MediaDbError(
        `media.db version ${version} with tables ${tables.map((t) => t.name).join(", ")}`,
      );
    db.exec(`PRAGMA user_version = ${MEDIA_DB_VERSION}`);
    db.exec("COMMIT");
  } catch (err) {
    if (db.inTransaction) db.exec("ROLLBACK");
    throw err;
  }
}
