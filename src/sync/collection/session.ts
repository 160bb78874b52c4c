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
  /** Ids still to send, frozen on the first `chunk` call; chunks take from the end. */
  pendingChunks?: { revlog: ChunkId[]; cards: ChunkId[]; notes: ChunkId[] };
  /** The last chunk (`done`) was made: nothing is left to make ahead. */
  chunksDone?: boolean;
  /** The next chunk, made before its request (`chunks.ts` `chunkAhead`), and the ids it took. */
  chunkAhead?: {
    json: string;
    done: boolean;
    taken: { revlog: ChunkId[]; cards: ChunkId[]; notes: ChunkId[] };
  };
  /** Note-type shapes `applyChunk` checks notes against; dropped when note types change. */
  notetypes?: Map<string, NotetypeShape>;
  /** Rows the client sent in `applyChunk`s: a large sync checkpoints after `finish`'s reply. */
  rowsReceived: number;
  startedAt: number;
  lastUsed: number;
}

/** Row ids as SQLite returns them with safe integers (64-bit ids stay exact). */
export type ChunkId = number | bigint;

export interface NotetypeShape {
  /** Fields a note of this type must have (a type without fields counts as one). */
  fieldCount: number;
  /** Index of the sort field. */
  sortIdx: number;
}

export function beginSessionTransaction(db: Db): void {
  db.exec("BEGIN IMMEDIATE");
}

export function rollbackSessionTransaction(db: Db): void {
  if (db.inTransaction) db.exec("ROLLBACK");
}

export function commitSessionTransaction(db: Db): void {
  db.exec("COMMIT");
}
