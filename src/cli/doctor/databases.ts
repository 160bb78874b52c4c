/**
 * session.db, collections and media.db: leftover journals and WAL files, the journal mode and
 * integrity. --fix lets SQLite replay leftovers by opening the database; they are never deleted
 * by hand (a WAL holds committed data; deleting a hot journal corrupts the file). Then a database
 * in WAL mode that should not be is put back in rollback-journal mode, checkpointing its WAL.
 */
import { existsSync, rmSync } from "node:fs";
import { basename } from "node:path";
import { type Db, openDatabase, unicaseExtensionPath } from "../../platform/sqlite.ts";
import type { CheckContext } from "./report.ts";
import {
  journalHasData,
  type SqliteHeader,
  sidecarsOf,
  sizeOf,
  sqliteHeader,
} from "./sqliteFiles.ts";

/** What kind of database a file is, which decides its expected journal mode. */
export interface DbSpec {
  path: string;
  /** Always a rollback journal (collections), else WAL unless on a network filesystem. */
  rollbackOnly: boolean;
  /** No other process can have it open (we hold the user's lock), so leftovers are leftovers. */
  exclusive: boolean;
}

/** A database as found, before the doctor opens it. */
interface Found {
  /** What lies beside it from an interrupted write, e.g. `journal (4096 bytes)`. */
  leftovers: string[];
  /** It should use a rollback journal (always for collections; all on a network filesystem). */
  wantRollback: boolean;
  /** It is in WAL mode, but should use a rollback journal. */
  wrongMode: boolean;
}

const RESTORE_ADVICE =
  " (restore it from backups/, or have the client upload its copy: Tools > Check Database, then force a full upload)";

export function checkDatabase(ctx: CheckContext, spec: DbSpec): void {
  if (!existsSync(spec.path)) return;
  ctx.report.databases++;
  const header = databaseHeader(ctx, spec.path);
  if (!header) return;
  const found = inspect(spec, header, ctx.networkFs);
  const checkable = ctx.options.fix ? repair(ctx, spec, found) : reportUnrepaired(ctx, spec, found);
  if (checkable) checkIntegrity(ctx, spec);
}

/** The header of a file that is an SQLite database; anything else is reported. */
function databaseHeader(ctx: CheckContext, path: string): SqliteHeader | undefined {
  if ((sizeOf(path) ?? 0) === 0) {
    ctx.add(path, "problem", "empty file (not a database)");
    return undefined;
  }
  const header = sqliteHeader(path);
  if (!header.sqlite) {
    ctx.add(path, "problem", "not an SQLite database");
    return undefined;
  }
  return header;
}

function inspect(spec: DbSpec, header: SqliteHeader, networkFs: boolean): Found {
  const beside = sidecarsOf(spec.path);
  const journalSize = sizeOf(beside.journal);
  const walSize = sizeOf(beside.wal);
  const shmSize = sizeOf(beside.shm);
  // In WAL mode a shared database keeps its -wal and -shm while open: that is not a leftover.
  const walInUse = !spec.exclusive && header.wal;
  const leftovers: string[] = [];
  if (journalSize !== undefined) leftovers.push(`journal (${journalSize} bytes)`);
  if (walSize !== undefined && !walInUse) leftovers.push(`WAL (${walSize} bytes)`);
  if (shmSize !== undefined && !walInUse && walSize === undefined) leftovers.push("-shm");
  const wantRollback = spec.rollbackOnly || networkFs;
  return { leftovers, wantRollback, wrongMode: header.wal && wantRollback };
}

function wrongModeMessage(spec: DbSpec): string {
  return spec.rollbackOnly
    ? "in WAL mode; collections at rest use a rollback journal"
    : "in WAL mode on a network filesystem (unsafe there)";
}

/** Without --fix. False when leftovers make an integrity check meaningless until replayed. */
function reportUnrepaired(ctx: CheckContext, spec: DbSpec, found: Found): boolean {
  if (found.leftovers.length > 0) {
    // Without the user's lock (session.db) a journal may also be a write in progress.
    ctx.add(
      spec.path,
      spec.exclusive ? "problem" : "warning",
      `leftover ${found.leftovers.join(", ")} from an interrupted write${spec.exclusive ? "" : " (or a write in progress)"}: --fix replays it (not checked further until then)`,
    );
    return false;
  }
  if (found.wrongMode)
    ctx.add(spec.path, "problem", `${wrongModeMessage(spec)}: --fix converts it`);
  return true;
}

/** --fix: SQLite replays the leftovers, then the journal mode is restored. False if it failed. */
function repair(ctx: CheckContext, spec: DbSpec, found: Found): boolean {
  const db = openReplayed(ctx, spec.path);
  if (!db) return false;
  try {
    restoreJournalMode(db, spec, found.wantRollback);
  } catch {
    // reported below from the file's header and what is left beside it
  } finally {
    db.close();
  }
  const nowWal = sqliteHeader(spec.path).wal;
  if (found.leftovers.length > 0) reportReplay(ctx, spec, found.leftovers, nowWal);
  if (found.wrongMode) reportConversion(ctx, spec, nowWal);
  return true;
}

/** Opens the database and reads it, which makes SQLite replay what is left over. */
function openReplayed(ctx: CheckContext, path: string): Db | undefined {
  let db: Db;
  try {
    db = openExisting(path);
  } catch (err) {
    ctx.add(path, "problem", `cannot open: ${(err as Error).message}`);
    return undefined;
  }
  try {
    db.exec("PRAGMA busy_timeout = 5000");
    // The first read rolls back a hot journal or recovers the committed frames of a WAL.
    db.query("select count(*) from sqlite_master").get();
    return db;
  } catch (err) {
    ctx.add(path, "problem", `replaying its leftovers failed: ${(err as Error).message}`);
    db.close();
    return undefined;
  }
}

function restoreJournalMode(db: Db, spec: DbSpec, wantRollback: boolean): void {
  const mode = (db.query("PRAGMA journal_mode").get() as { journal_mode: string }).journal_mode;
  if (mode !== "wal") return;
  if (wantRollback) {
    // Checkpoints every committed frame into the main file, then removes the WAL. Needs
    // the database to itself: fails (reported by the caller) while a server has session.db open.
    db.exec("PRAGMA journal_mode = DELETE");
  } else if (spec.exclusive) {
    db.query("PRAGMA wal_checkpoint(TRUNCATE)").get();
  }
}

function reportReplay(ctx: CheckContext, spec: DbSpec, leftovers: string[], nowWal: boolean): void {
  const still = remainingLeftovers(spec, nowWal);
  if (still.length > 0) {
    ctx.add(spec.path, "problem", `leftover ${still.join(" and ")} still there after opening it`);
  } else {
    ctx.add(spec.path, "problem", `leftover ${leftovers.join(", ")} replayed by SQLite`, true);
  }
}

/** What SQLite left beside the database; files that provably hold nothing are removed. */
function remainingLeftovers(spec: DbSpec, nowWal: boolean): string[] {
  const { journal, wal, shm } = sidecarsOf(spec.path);
  const still: string[] = [];
  if (existsSync(journal)) {
    // SQLite found nothing to roll back in it (empty or already invalidated).
    if (spec.exclusive && !journalHasData(journal)) rmSync(journal, { force: true });
    else still.push("journal");
  }
  if (existsSync(wal) && (spec.exclusive || !nowWal)) still.push("WAL");
  if (existsSync(shm) && !existsSync(wal) && spec.exclusive) rmSync(shm, { force: true });
  return still;
}

function reportConversion(ctx: CheckContext, spec: DbSpec, nowWal: boolean): void {
  const problem = wrongModeMessage(spec);
  if (nowWal) {
    ctx.add(
      spec.path,
      "problem",
      `${problem}; could not convert it (in use? the server converts session.db at start)`,
    );
  } else ctx.add(spec.path, "problem", `${problem}: converted to a rollback journal`, true);
}

function checkIntegrity(ctx: CheckContext, spec: DbSpec): void {
  let db: Db | undefined;
  try {
    db = openExisting(spec.path);
    db.exec("PRAGMA busy_timeout = 5000");
    const pragma = ctx.options.quick ? "quick_check" : "integrity_check";
    const rows = db.query(`PRAGMA ${pragma}(20)`).all() as Record<string, string>[];
    const messages = rows.map((r) => Object.values(r)[0] ?? "");
    if (!(messages.length === 1 && messages[0] === "ok")) {
      ctx.add(
        spec.path,
        "problem",
        `${basename(spec.path)} fails the ${pragma}: ${messages.slice(0, 5).join("; ")}` +
          (spec.rollbackOnly ? RESTORE_ADVICE : ""),
      );
    }
  } catch (err) {
    ctx.add(spec.path, "problem", `cannot check integrity: ${(err as Error).message}`);
  } finally {
    db?.close();
  }
}

/**
 * With Anki's unicase collation when it is built: a schema-18 file cannot be checked without it,
 * but the doctor must still run where the extension is missing.
 */
function openExisting(path: string): Db {
  return openDatabase(path, { create: false, unicase: existsSync(unicaseExtensionPath()) });
}
