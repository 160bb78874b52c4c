/**
 * The normal-sync session of one user: at most one, keyed by the client's session key, holding
 * an open transaction from `start` until `finish`. Rolling back restores the collection exactly
 * as it was before `start`.
 */
import type { Db } from "../../platform/sqlite.ts";

export interface SyncSession {
  skey: string;
  /** col.usn when the session started: the usn stamped on everything written during it. */
  serverUsn: number;
  /** The client's minUsn: rows with usn >= this are sent to the client. */
  clientUsn: number;
  clientIsNewer: boolean;
  /** Frozen on the first `chunk` call. */
  pendingChunks?: { revlog: number[]; cards: number[]; notes: number[] };
  startedAt: number;
  lastUsed: number;
}

export function beginSessionTransaction(db: Db): void {
  db.exec("BEGIN IMMEDIATE");
}

export function rollbackSessionTransaction(db: Db): void {
  if (db.inTransaction) db.exec("ROLLBACK");
}
