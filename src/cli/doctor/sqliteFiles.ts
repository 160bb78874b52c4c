/**
 * SQLite files read as bytes, without opening them with SQLite (which would replay leftovers):
 * the database header, whether a rollback journal still holds data, the files beside a database.
 */
import { closeSync, openSync, readSync, statSync } from "node:fs";

export interface SqliteHeader {
  sqlite: boolean;
  wal: boolean;
}

/** The files SQLite keeps beside a database while writing to it. */
export interface Sidecars {
  journal: string;
  wal: string;
  shm: string;
}

const JOURNAL_MAGIC = Uint8Array.of(0xd9, 0xd5, 0x05, 0xf9, 0x20, 0xa1, 0x63, 0xd7);

export function sidecarsOf(path: string): Sidecars {
  return { journal: `${path}-journal`, wal: `${path}-wal`, shm: `${path}-shm` };
}

export function sqliteHeader(path: string): SqliteHeader {
  const h = readStart(path, 100);
  const magic = new TextDecoder().decode(h.subarray(0, 16));
  // Bytes 18 and 19: file format write/read version, 1 = rollback journal, 2 = WAL.
  return { sqlite: magic === "SQLite format 3\0", wal: h[18] === 2 || h[19] === 2 };
}

/** A journal that still holds rollback data (SQLite treats it as hot if nobody has a lock). */
export function journalHasData(path: string): boolean {
  const header = readStart(path, 8);
  return header.length === 8 && header.every((b, i) => b === JOURNAL_MAGIC[i]);
}

export function sizeOf(path: string): number | undefined {
  try {
    return statSync(path).size;
  } catch {
    return undefined;
  }
}

function readStart(path: string, bytes: number): Uint8Array {
  const fd = openSync(path, "r");
  try {
    const buf = new Uint8Array(bytes);
    const n = readSync(fd, buf, 0, bytes, 0);
    return buf.subarray(0, n);
  } finally {
    closeSync(fd);
  }
}
