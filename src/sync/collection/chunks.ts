/**
 * `chunk` streams the server's changed revlog entries, notes and cards; `applyChunk` merges
 * the client's. Conflict rule for notes and cards: a row changed on the server in this sync
 * window (usn >= the client's minUsn) is only replaced by a strictly newer one; revlog
 * entries are immutable (insert or ignore).
 */

import { isLegacyObject, type LegacyJson, stringifyLegacyJson } from "../../legacyJson.ts";
import type { Db } from "../../platform/sqlite.ts";
import { normalizeCardData } from "../../storage/collection/cardData.ts";
import { mapValues, viewLegacyColumn } from "../../storage/collection/legacyObjects.ts";
import { normalizeNoteTags } from "../../storage/collection/names.ts";
import { FIELD_SEPARATOR, noteCaches, noteFields } from "../../storage/collection/noteFields.ts";
import {
  type ChunkWriter,
  chunkWriter,
  type Int,
  pendingIds,
  readRowsAsJson,
  readRowsForWire,
  rowSyncState,
} from "../../storage/collection/syncRows.ts";
import type { IncomingChunk, IncomingNote } from "./chunkRows.ts";
import { isPending, MergeError } from "./legacyMerge.ts";
import type { ChunkId, NotetypeShape, SyncSession } from "./session.ts";
import { intLess } from "./wire.ts";

export const CHUNK_SIZE = 250;

type Taken = { revlog: ChunkId[]; notes: ChunkId[]; cards: ChunkId[] };

/**
 * One chunk of server rows. The id lists are frozen on the first call. Each round takes one
 * revlog entry, one note and one card; rounds continue while fewer than 250 objects were
 * taken, so a chunk can hold up to 252. `done` means the chunk was not full: a final chunk
 * of exactly 250 is followed by an empty one with `done: true`. A chunk made ahead
 * (`chunkAhead`) is the answer when there is one.
 */
export function chunk(db: Db, session: SyncSession): string {
  const ahead = session.chunkAhead;
  if (ahead) {
    session.chunkAhead = undefined;
    return ahead.json;
  }
  const { taken, done } = takeChunk(db, session);
  if (done) session.chunksDone = true;
  return serializeChunk(db, done, taken);
}

/**
 * The next chunk, made while the client is still reading the one it was sent (only `chunk`
 * can follow a chunk that was not the last). Its rows are read inside the session's
 * transaction, which nothing else writes, so it is the chunk the next request would make.
 * Undefined when there is no next chunk or it is already made.
 */
export function chunkAhead(db: Db, session: SyncSession): string | undefined {
  if (session.chunkAhead || session.chunksDone || !session.pendingChunks) return undefined;
  const { taken, done } = takeChunk(db, session);
  let json: string;
  try {
    json = serializeChunk(db, done, taken);
  } catch {
    // The request for it will meet the same failure and answer it.
    putBack(session, taken);
    return undefined;
  }
  if (done) session.chunksDone = true;
  session.chunkAhead = { json, taken, done };
  return json;
}

/** Another step came instead of `chunk`: its rows go back, as if never taken. */
export function dropChunkAhead(session: SyncSession): void {
  const ahead = session.chunkAhead;
  if (!ahead) return;
  session.chunkAhead = undefined;
  if (ahead.done) session.chunksDone = false;
  putBack(session, ahead.taken);
}

function takeChunk(db: Db, session: SyncSession): { taken: Taken; done: boolean } {
  session.pendingChunks ??= {
    revlog: pendingIds(db, "revlog", session.clientUsn),
    cards: pendingIds(db, "cards", session.clientUsn),
    notes: pendingIds(db, "notes", session.clientUsn),
  };
  const ids = session.pendingChunks;
  const taken: Taken = { revlog: [], notes: [], cards: [] };
  let limit = CHUNK_SIZE;
  while (limit > 0) {
    const before = limit;
    for (const kind of ["revlog", "notes", "cards"] as const) {
      const id = ids[kind].pop();
      if (id !== undefined) {
        taken[kind].push(id);
        limit--;
      }
    }
    if (limit === before) break;
  }
  return { taken, done: limit > 0 };
}

/** Ids were popped from the end of each list, so they go back in reverse. */
function putBack(session: SyncSession, taken: Taken): void {
  const ids = session.pendingChunks;
  if (!ids) return;
  for (const kind of ["revlog", "notes", "cards"] as const) {
    for (let i = taken[kind].length - 1; i >= 0; i--) ids[kind].push(taken[kind][i] as ChunkId);
  }
}

const WIRE_TABLES = ["revlog", "cards", "notes"] as const;

/**
 * The reply text, each table's rows written by SQLite as JSON where they need no change
 * (`readRowsAsJson`), else read and normalised here; tables with no rows are left out.
 */
function serializeChunk(db: Db, done: boolean, taken: Taken): string {
  let reply = `{"done":${done}`;
  for (const table of WIRE_TABLES) {
    const rows = readRowsAsJson(db, table, taken[table]) ?? rowsInJs(db, table, taken[table]);
    if (rows !== "[]") reply += `,"${table}":${rows}`;
  }
  return `${reply}}`;
}

function rowsInJs(db: Db, table: (typeof WIRE_TABLES)[number], ids: ChunkId[]): string {
  const read = readRowsForWire(db, table, ids);
  const rows =
    table === "cards"
      ? read.rows.map(cardForWire)
      : table === "notes"
        ? read.rows.map(noteForWire)
        : read.rows;
  // Rows hold strings, numbers and, for ids past 2^53, bigints; without a bigint the native
  // serialiser writes exactly the same text, several times faster.
  return read.wide ? stringifyLegacyJson(rows as LegacyJson[]) : JSON.stringify(rows);
}

/** Card data goes out normalised, as Anki re-serialises it when reading a card. */
function cardForWire(row: unknown[]): unknown[] {
  row[17] = normalizeCardData(String(row[17]));
  return row;
}

function noteForWire(row: unknown[]): unknown[] {
  row[5] = normalizeNoteTags(String(row[5]));
  return row;
}

/** Revlog first, then cards, then notes, as Anki merges them. */
export function applyChunk(db: Db, session: SyncSession, incoming: IncomingChunk): string {
  const writes = planChunkWrites(db, session, incoming);
  if (writes) writes(Number.POSITIVE_INFINITY);
  else mergeInOrder(db, session, incoming);
  return "null";
}

/**
 * A chunk's planned writes, made in order a part at a time: each call writes up to `rows`
 * rows and says whether all are written. Parts let the worker take a new request between them.
 */
export type ChunkWrites = (rows: number) => boolean;

/**
 * Everything about an incoming chunk that can refuse it, done now: the rows' shapes were
 * checked when parsing, here card data is normalised and every note checked against its note
 * type. What is left, the writes, is returned to be run later (after the reply, while the
 * client prepares its next chunk); only a fault of the database itself can still fail them.
 * Undefined when a note does not fit its note type: whether that refuses the chunk depends on
 * the stored row, so the caller merges such a chunk row by row at once (`mergeInOrder`). Nothing
 * planned here reads rows, so a chunk can be planned while an earlier one's writes are pending.
 */
export function planChunkWrites(
  db: Db,
  session: SyncSession,
  incoming: IncomingChunk,
): ChunkWrites | undefined {
  const shapes = incoming.notes.length > 0 ? notetypeShapes(db, session) : undefined;
  const notes: NotePlan[] = [];
  for (const note of incoming.notes) {
    const shape = shapes?.get(String(note.mid));
    const fields = noteFields(note.flds);
    if (!shape || fields.length !== shape.fieldCount) return undefined;
    const { sfld, csum } = noteCaches(fields, shape.sortIdx);
    notes.push({ note, flds: fields.join(FIELD_SEPARATOR), sfld, csum });
  }
  // The parsed rows are this request's own: they are normalised in place.
  for (const card of incoming.cards) card[17] = normalizeCardData(card[17]);
  for (const entry of notes) {
    entry.note.tags = normalizeNoteTags(entry.note.tags);
    entry.note.flds = entry.flds;
  }
  const { revlog, cards } = incoming;
  const total = revlog.length + cards.length + notes.length;
  let next = 0;
  let write: ChunkWriter | undefined;
  return (rows) => {
    write ??= chunkWriter(db, session.clientUsn);
    const end = Math.min(total, next + rows);
    for (; next < end; next++) {
      if (next < revlog.length) write.revlog(revlog[next] as (typeof revlog)[number]);
      else if (next < revlog.length + cards.length)
        write.card(cards[next - revlog.length] as (typeof cards)[number]);
      else {
        const { note, sfld, csum } = notes[next - revlog.length - cards.length] as NotePlan;
        write.note(note, sfld, csum);
      }
    }
    return next >= total;
  };
}

type NotePlan = { note: IncomingNote; flds: string; sfld: string; csum: number };

function mergeInOrder(db: Db, session: SyncSession, incoming: IncomingChunk): void {
  const write = chunkWriter(db, session.clientUsn);
  for (const entry of incoming.revlog) write.revlog(entry);
  for (const card of incoming.cards) {
    card[17] = normalizeCardData(card[17]);
    write.card(card);
  }
  if (incoming.notes.length > 0) {
    const shapes = notetypeShapes(db, session);
    for (const note of incoming.notes) mergeNote(db, session, write, shapes, note);
  }
}

/** Whether the stored row wins over the incoming one (docs/protocol.md#apply-chunk). */
function storedWins(
  db: Db,
  session: SyncSession,
  table: "notes" | "cards",
  id: Int,
  mod: Int,
): boolean {
  const existing = rowSyncState(db, table, id);
  if (!existing) return false;
  return isPending(Number(existing.usn), session.clientUsn) && !intLess(existing.mod, mod);
}

function mergeNote(
  db: Db,
  session: SyncSession,
  write: ChunkWriter,
  shapes: Map<string, NotetypeShape>,
  note: IncomingNote,
): void {
  const shape = shapes.get(String(note.mid));
  const fields = noteFields(note.flds);
  const problem = !shape
    ? `note ${note.id}: note type ${note.mid} missing`
    : fields.length !== shape.fieldCount
      ? `note ${note.id} has ${fields.length} fields, expected ${shape.fieldCount}`
      : undefined;
  if (problem || !shape) {
    // A note the stored copy beats is skipped before it is looked at, as Anki does.
    if (storedWins(db, session, "notes", note.id, note.mod)) return;
    throw new MergeError(problem);
  }
  const { sfld, csum } = noteCaches(fields, shape.sortIdx);
  note.tags = normalizeNoteTags(note.tags);
  note.flds = fields.join(FIELD_SEPARATOR);
  write.note(note, sfld, csum);
}

/** Field count and sort field of each note type by id, kept until note types change. */
function notetypeShapes(db: Db, session: SyncSession): Map<string, NotetypeShape> {
  if (session.notetypes) return session.notetypes;
  const shapes = new Map<string, NotetypeShape>();
  for (const nt of mapValues(viewLegacyColumn(db, "models"))) {
    const fieldCount = Array.isArray(nt.flds) ? nt.flds.filter(isLegacyObject).length : 0;
    shapes.set(String(nt.id), {
      fieldCount: Math.max(fieldCount, 1),
      sortIdx: Number(nt.sortf ?? 0),
    });
  }
  session.notetypes = shapes;
  return shapes;
}
