/**
 * SQLite's full integrity check of a received collection (Anki's server makes the same check
 * of an upload), in a module of its own: the thread that received a full upload's body runs it
 * right after writing the file, and must not load the conversion's code for that.
 */
import { type Db, openDatabase } from "../../platform/sqlite.ts";

/** What the check found: `detail` says what is wrong (the first few problems). */
export type Integrity = { ok: true } | { ok: false; detail: string };

export function integrityOf(db: Db): Integrity {
  const rows = db.query("PRAGMA integrity_check").all() as { integrity_check: string }[];
  if (rows.length === 1 && rows[0]?.integrity_check === "ok") return { ok: true };
  const detail = rows
    .slice(0, 3)
    .map((r) => r.integrity_check)
    .join("; ");
  return { ok: false, detail: `integrity check failed: ${detail}` };
}

/**
 * The check of the file at `path`, or undefined when it could not be made here (the file does
 * not open, the disk fails): the preparation meets that again and says what it is.
 */
export function fileIntegrity(path: string): Integrity | undefined {
  let db: Db;
  try {
    db = openDatabase(path, { create: false, unicase: true });
  } catch {
    return undefined;
  }
  try {
    return integrityOf(db);
  } catch {
    return undefined;
  } finally {
    db.close();
  }
}
