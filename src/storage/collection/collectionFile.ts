/**
 * Opening and creating schema-11 collection files. Files at rest use a rollback journal, so a
 * closed file is always complete: it can be served, backed up or copied as is, and it is safe
 * on network filesystems. While a worker has a collection open on a local filesystem it is in
 * WAL mode (`synchronous = FULL`, so every commit is durable): a commit then syncs one file
 * instead of four (journal, its header, the folder, the file). `restCollection` checkpoints
 * the WAL and goes back to the rollback journal before the file is closed.
 */
import { existsSync, mkdirSync, renameSync, rmSync } from "node:fs";
import { dirname } from "node:path";
import { stringify } from "lossless-json";
import { type Db, openDatabase } from "../../platform/sqlite.ts";
import { tempPathBeside } from "../paths.ts";
import { SCHEMA11_DDL, SCHEMA11_VERSION } from "./schema11.ts";
import { defaultConfig, defaultDeck, defaultDeckConfig, stockNotetypes } from "./stockContent.ts";

export interface ColRow {
  crt: number;
  mod: number;
  scm: number;
  ver: number;
  usn: number;
  ls: number;
}

/**
 * How long a statement waits for a lock another program (a web app using Anki's library on the
 * same folder) holds; past it the client is told to try again later (409), never 500.
 */
export const BUSY_TIMEOUT_MS = 5000;

/**
 * Opens the file in its at-rest mode (a WAL left by a crash or by another program is
 * checkpointed into it); `useWal` (below) switches it for the time it is open.
 */
export function openCollection(path: string): Db {
  if (!existsSync(path)) createEmptyCollection(path);
  const db = openDatabase(path);
  try {
    // First, so that leaving WAL mode (after another program used the file) waits its turn too.
    db.exec(`PRAGMA busy_timeout = ${BUSY_TIMEOUT_MS}`);
    db.exec("PRAGMA synchronous = FULL");
    db.exec("PRAGMA journal_mode = DELETE");
  } catch (err) {
    db.close();
    throw err;
  }
  return db;
}

/** WAL mode while open: one file to sync per commit; every commit still synced (FULL). */
export function useWal(db: Db): void {
  db.exec("PRAGMA journal_mode = WAL");
}

/**
 * SQLite's own bound (pages in the WAL) past which a commit checkpoints before it returns,
 * named here because `commitCheckpointingLater` lifts it for one commit.
 */
const WAL_AUTOCHECKPOINT_PAGES = 1000;

/**
 * Commits without the checkpoint a large commit would run inside it (copying the WAL's pages
 * into the file and syncing the file: about as long as the commit itself), for a caller that
 * answers first and then calls `checkpointWal`. The commit is as durable either way: it is
 * synced in the WAL. A no-op difference in rollback-journal mode.
 */
export function commitCheckpointingLater(db: Db, commit: () => void): void {
  db.exec("PRAGMA wal_autocheckpoint = 0");
  try {
    commit();
  } finally {
    db.exec(`PRAGMA wal_autocheckpoint = ${WAL_AUTOCHECKPOINT_PAGES}`);
  }
}

/**
 * Copies the WAL's committed pages into the file without waiting for any reader (what the
 * autocheckpoint does). It only moves what is already durable, so a failure loses nothing:
 * the next checkpoint, or putting the file back at rest, does it again.
 */
export function checkpointWal(db: Db): void {
  db.query("PRAGMA wal_checkpoint(PASSIVE)").get();
}

/**
 * Back to the at-rest form: the WAL checkpointed into the file and removed, rollback journal
 * mode. Throws (SQLITE_BUSY, at once: changing the mode does not wait) if another connection
 * still reads the WAL (a backup's snapshot): the file must then stay open, as it is not
 * complete on its own.
 */
export function restCollection(db: Db): void {
  if (journalMode(db) === "wal") db.exec("PRAGMA journal_mode = DELETE");
  if (journalMode(db) !== "delete") throw new Error("collection file did not leave WAL mode");
}

function journalMode(db: Db): string {
  return (db.query("PRAGMA journal_mode").get() as { journal_mode: string }).journal_mode;
}

/**
 * Puts a file left in WAL mode by a crash back at rest (SQLite recovers the WAL into it), for
 * the startup sweep. Does not wait: a file another program holds is left for its next open.
 */
export function restCollectionFile(path: string): void {
  const db = openDatabase(path, { create: false });
  try {
    db.exec("PRAGMA busy_timeout = 0");
    db.exec("PRAGMA journal_mode = DELETE");
  } finally {
    db.close();
  }
}

export function readCol(db: Db): ColRow {
  const row = db
    .query("select crt, mod, scm, ver, usn, ls from col where id = 1")
    .get() as ColRow | null;
  if (!row) throw new Error("collection has no col row");
  return row;
}

export function hasCards(db: Db): boolean {
  return db.query("select 1 from cards limit 1").get() !== null;
}

/** Builds the new collection beside its final name and renames it in, so no half file is seen. */
export function createEmptyCollection(path: string, now = new Date()): void {
  mkdirSync(dirname(path), { recursive: true });
  const temp = tempPathBeside(path, ".anki2");
  try {
    const db = openDatabase(temp);
    try {
      db.exec("PRAGMA page_size = 4096");
      db.exec("PRAGMA journal_mode = DELETE");
      writeEmptyCollection(db, now);
    } finally {
      db.close();
    }
    renameSync(temp, path);
  } catch (err) {
    for (const leftover of [temp, `${temp}-journal`]) rmSync(leftover, { force: true });
    throw err;
  }
}

/** The tables and `col` row of a new, empty schema-11 collection, in one transaction, into `db`. */
export function writeEmptyCollection(db: Db, now = new Date()): void {
  db.transaction(() => {
    db.exec(SCHEMA11_DDL);
    insertEmptyColRow(db, now);
  })();
}

function insertEmptyColRow(db: Db, now: Date): void {
  const notetypes = stockNotetypes(now.getTime());
  const firstId = notetypes[0]?.id as number;
  const byId = <T extends Record<string, unknown>>(items: T[]) =>
    stringify(Object.fromEntries(items.map((item) => [String(item.id), item]))) as string;
  db.query(
    `insert into col (id, crt, mod, scm, ver, dty, usn, ls, conf, models, decks, dconf, tags)
     values (1, $crt, 0, $scm, $ver, 0, 0, 0, $conf, $models, $decks, $dconf, '{}')`,
  ).run({
    crt: dayStartSecs(now),
    scm: now.getTime(),
    ver: SCHEMA11_VERSION,
    conf: stringify(defaultConfig(firstId)) as string,
    models: byId(notetypes),
    decks: byId([defaultDeck()]),
    dconf: byId([defaultDeckConfig()]),
  });
}

/** The most recent 04:00 local time at or before `now`: the scheduler's day boundary. */
export function dayStartSecs(now: Date): number {
  const start = new Date(now);
  start.setHours(4, 0, 0, 0);
  if (start > now) start.setDate(start.getDate() - 1);
  return Math.floor(start.getTime() / 1000);
}
