/**
 * Checks a received collection file and turns it into our at-rest form (schema 11, rollback
 * journal) in place. Any problem throws CorruptCollection; the caller's stored collection is
 * never touched by this module.
 */

import type { Db } from "../../platform/sqlite.ts";
import { openDatabase } from "../../platform/sqlite.ts";
import { storageFault } from "../ioErrors.ts";
import { downgradeToSchema11 } from "./convert/downgrade.ts";
import { type Integrity, integrityOf } from "./integrity.ts";
import { REQUIRED_TABLES, SCHEMA11_VERSION } from "./schema11.ts";

/** The schema Anki writes at rest today; 12 and 13 were abandoned, 14-17 are transitional. */
export const SCHEMA18_VERSION = 18;

export class CorruptCollection extends Error {
  constructor(detail: string, options?: ErrorOptions) {
    super(detail, options);
    this.name = "CorruptCollection";
  }
}

/**
 * `checked`: the integrity check's verdict when it was made already, as the body was received
 * (it is a full read of the file, the longest part of the preparation).
 */
export function prepareReceivedCollection(
  path: string,
  checked?: Integrity,
): { convertedFrom: number } {
  if (checked && !checked.ok) throw new CorruptCollection(checked.detail);
  let db: Db;
  try {
    db = openDatabase(path, { unicase: true });
  } catch (err) {
    if (storageFault(err)) throw err;
    throw new CorruptCollection(`cannot open: ${(err as Error).message}`, { cause: err });
  }
  try {
    // The file is a temporary until the caller syncs it and swaps it in: no commit of the
    // conversion needs its own syncs (which would also flush the whole file at once).
    db.exec("PRAGMA synchronous = OFF");
    const version = checkCollection(db, checked === undefined);
    if (version === SCHEMA18_VERSION) downgradeToSchema11(db);
    db.exec("PRAGMA journal_mode = DELETE");
    return { convertedFrom: version };
  } catch (err) {
    // A full disk while converting says nothing about the upload.
    if (err instanceof CorruptCollection || storageFault(err)) throw err;
    throw new CorruptCollection((err as Error).message, { cause: err });
  } finally {
    db.close();
  }
}

function checkCollection(db: Db, checkIntegrity: boolean): number {
  const integrity = checkIntegrity ? integrityOf(db) : ({ ok: true } as const);
  if (!integrity.ok) throw new CorruptCollection(integrity.detail);
  const tables = new Set(
    (
      db.query("select name from sqlite_master where type = 'table'").all() as { name: string }[]
    ).map((r) => r.name),
  );
  const missing = REQUIRED_TABLES.filter((t) => !tables.has(t));
  if (missing.length) throw new CorruptCollection(`missing tables: ${missing.join(", ")}`);
  const col = db.query("select ver from col where id = 1").get() as { ver: number } | null;
  if (!col) throw new CorruptCollection("no col row");
  if (col.ver !== SCHEMA11_VERSION && col.ver !== SCHEMA18_VERSION) {
    throw new CorruptCollection(`unsupported schema version ${col.ver}`);
  }
  return col.ver;
}
