/**
 * Row access for normal sync on a schema-11 collection: which rows are pending for a usn,
 * reading rows in wire order, and writing received rows. Integers are read as SQLite
 * stores them (`safeIntegers`), so 64-bit ids pass through exactly.
 */
import type { Db } from "../../platform/sqlite.ts";
import { isPlainCardData } from "./cardData.ts";

export type Int = number | bigint;
export type SyncTable = "notes" | "cards" | "revlog";

export interface NoteRow {
  id: Int;
  guid: string;
  mid: Int;
  mod: Int;
  usn: Int;
  tags: string;
  flds: string;
  sfld: string;
  csum: number;
}

export type CardValues = [
  id: Int,
  nid: Int,
  did: Int,
  ord: Int,
  mod: Int,
  usn: Int,
  type: Int,
  queue: Int,
  due: Int,
  ivl: Int,
  factor: Int,
  reps: Int,
  lapses: Int,
  left: Int,
  odue: Int,
  odid: Int,
  flags: Int,
  data: string,
];

export type RevlogValues = [
  id: Int,
  cid: Int,
  usn: Int,
  ease: Int,
  ivl: Int,
  lastIvl: Int,
  factor: Int,
  time: Int,
  type: Int,
];

/**
 * Anki's pending rule: usn -1 means "changed locally"; any other threshold selects rows
 * stamped at or after it.
 */
export function pendingClause(usn: number): string {
  return usn === -1 ? "usn = $usn" : "usn >= $usn";
}

/**
 * Ids of pending rows in rowid order. Read as plain numbers, and again as exact integers only
 * when one is past 2^53 (a bigint per id cost more than the query).
 */
export function pendingIds(db: Db, table: SyncTable | "graves", usn: number): Int[] {
  const column = table === "graves" ? "oid" : "id";
  const sql = `select ${column} from ${table} where ${pendingClause(usn)}`;
  const ids = (db.query(sql).values({ usn }) as [number][]).map(([id]) => id);
  if (ids.every((id) => Number.isSafeInteger(id))) return ids;
  const exact = db.query(`${sql} -- exact`).safeIntegers(true).values({ usn }) as [bigint][];
  return exact.map(([id]) => narrow(id));
}

export function narrow(value: bigint): Int {
  return Number.isSafeInteger(Number(value)) ? Number(value) : value;
}

function narrowRow(row: unknown[]): unknown[] {
  return row.map((v) => (typeof v === "bigint" ? narrow(v) : v));
}

/** Columns of each table in wire order; notes send empty sfld/csum, zero flags, empty data. */
const WIRE_COLUMNS: Record<SyncTable, string> = {
  notes: "t.id, t.guid, t.mid, t.mod, t.usn, t.tags, t.flds, '', '', 0, ''",
  cards: `t.id, t.nid, t.did, t.ord, t.mod, t.usn, t.type, t.queue, t.due, t.ivl, t.factor,
          t.reps, t.lapses, t.left, t.odue, t.odid, t.flags, t.data`,
  revlog: "t.id, t.cid, t.usn, t.ease, t.ivl, t.lastIvl, t.factor, t.time, t.type",
};

/** Rows in the order of the id list (json_each's `key` is the index in it). */
const READ_FOR_WIRE = Object.fromEntries(
  (Object.keys(WIRE_COLUMNS) as SyncTable[]).map((table) => [
    table,
    `select ${WIRE_COLUMNS[table]} from json_each(?1) as j join ${table} as t on t.id = j.value
     order by j.key`,
  ]),
) as Record<SyncTable, string>;

export interface WireRows {
  rows: unknown[][];
  /** Some value is a bigint (an id past 2^53): JSON.stringify cannot write these rows. */
  wide: boolean;
}

/**
 * Rows for the wire, in the order of `ids`, read with one query; ids with no row (deleted
 * since they were listed) are left out. Read as plain numbers first, which is cheaper than
 * bigints for every integer; only when an integer came back past 2^53 (so possibly rounded)
 * are the rows read again exactly.
 */
export function readRowsForWire(db: Db, table: SyncTable, ids: readonly Int[]): WireRows {
  if (ids.length === 0) return { rows: [], wide: false };
  const list = `[${ids.join(",")}]`;
  const sql = READ_FOR_WIRE[table];
  const rows = db.query(sql).values(list);
  if (!rows.some(hasUnsafeInteger)) return { rows, wide: false };
  // A text of its own, so the cached statement above keeps reading plain numbers.
  const exact = db.query(`${sql} -- exact`).safeIntegers(true).values(list).map(narrowRow);
  return { rows: exact, wide: exact.some((row) => row.some((v) => typeof v === "bigint")) };
}

/**
 * The wire columns with what Anki's reading of a row would change already settled in SQL: an
 * empty card `data` goes out as `{}`.
 */
const JSON_COLUMNS: Record<SyncTable, string> = {
  ...WIRE_COLUMNS,
  cards: WIRE_COLUMNS.cards.replace("t.data", "iif(t.data = '', '{}', t.data)"),
};

/**
 * Rows that `readRowsAsJson` must leave to the JS path, counted in the same query: note tags
 * not already in their normal form (" a b ", or empty; see `normalizeNoteTags`), and card data
 * other than `{}`, returned as a JSON list for `isPlainCardData`.
 */
const JSON_CHECK: Record<SyncTable, string> = {
  notes: `json_group_array(t.id) filter (where not (typeof(t.tags) = 'text' and (t.tags = '' or
    (length(t.tags) > 2 and substr(t.tags, 1, 1) = ' ' and substr(t.tags, -1) = ' '
     and instr(t.tags, '  ') = 0 and instr(t.tags, char(12288)) = 0))))`,
  cards: "json_group_array(t.data) filter (where t.data not in ('', '{}'))",
  revlog: "'[]'",
};

/**
 * In id-list order without sorting: SQLite keeps the left table of a CROSS JOIN as the outer
 * loop, json_each walks the list in order, and each id finds at most one row by rowid (an
 * `order by j.key` sorted every chunk's rows again, a quarter of the query's time).
 */
const READ_AS_JSON = Object.fromEntries(
  (Object.keys(WIRE_COLUMNS) as SyncTable[]).map((table) => [
    table,
    `select json_group_array(json_array(${JSON_COLUMNS[table]})), ${JSON_CHECK[table]}
     from json_each(?1) as j cross join ${table} as t on t.id = j.value`,
  ]),
) as Record<SyncTable, string>;

/**
 * Rows for the wire as one JSON array text, in the order of `ids`, written by SQLite itself
 * (integers exact at any width, no value passing through JS): the same rows, in the same
 * order, as `readRowsForWire`. Undefined when a row needs normalising first (tags, card data
 * that is not plainly in normal form) or SQLite cannot write a value (a blob): the caller then
 * takes the JS path.
 */
export function readRowsAsJson(db: Db, table: SyncTable, ids: readonly Int[]): string | undefined {
  if (ids.length === 0) return "[]";
  let row: [string, string] | null;
  try {
    row = db.query(READ_AS_JSON[table]).values(`[${ids.join(",")}]`)[0] as [string, string];
  } catch {
    return undefined;
  }
  if (!row) return undefined;
  const [rows, check] = row;
  if (check !== "[]") {
    if (table !== "cards") return undefined;
    const data = JSON.parse(check) as unknown[];
    if (!data.every((d) => typeof d === "string" && isPlainCardData(d))) return undefined;
  }
  return rows;
}

function hasUnsafeInteger(row: unknown[]): boolean {
  for (const value of row) {
    if (typeof value === "number" && Number.isInteger(value) && !Number.isSafeInteger(value)) {
      return true;
    }
  }
  return false;
}

export interface SyncState {
  usn: Int;
  mod: Int;
}

/** usn and mod of an existing row, for the conflict rule. */
export function rowSyncState(db: Db, table: "notes" | "cards", id: Int): SyncState | null {
  const row = db
    .query(`select usn, mod from ${table} where id = $id`)
    .safeIntegers(true)
    .get({ id }) as { usn: bigint; mod: bigint } | null;
  return row ? { usn: narrow(row.usn), mod: narrow(row.mod) } : null;
}

const INSERT_REVLOG = `insert or ignore into revlog
  (id, cid, usn, ease, ivl, lastIvl, factor, time, type)
  values (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)`;

/**
 * The conflict rule of `applyChunk` (docs/protocol.md#apply-chunk) as the upsert's condition: an
 * existing row is overwritten unless it changed in this sync window (Anki's pending rule for
 * the client's usn, the statement's last parameter: -1 means "changed locally") and is not
 * older than the incoming one. One statement per row, no select before it, its text built
 * once so the connection's statement cache finds it directly.
 */
function overwritable(table: "notes" | "cards", clientUsn: string): string {
  const pending = `case when ${clientUsn} = -1 then ${table}.usn = -1 else ${table}.usn >= ${clientUsn} end`;
  return `not (${pending}) or ${table}.mod < excluded.mod`;
}

const CARD_COLUMNS = [
  "id",
  "nid",
  "did",
  "ord",
  "mod",
  "usn",
  "type",
  "queue",
  "due",
  "ivl",
  "factor",
  "reps",
  "lapses",
  "left",
  "odue",
  "odid",
  "flags",
  "data",
] as const;

const MERGE_CARD = `insert into cards (${CARD_COLUMNS.join(", ")})
   values (${CARD_COLUMNS.map((_, i) => `?${i + 1}`).join(", ")})
   on conflict(id) do update set
     ${CARD_COLUMNS.slice(1)
       .map((c) => `${c} = excluded.${c}`)
       .join(", ")}
   where ${overwritable("cards", `?${CARD_COLUMNS.length + 1}`)}`;

const MERGE_NOTE = `insert into notes (id, guid, mid, mod, usn, tags, flds, sfld, csum, flags, data)
   values (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, 0, '')
   on conflict(id) do update set
     guid = excluded.guid, mid = excluded.mid, mod = excluded.mod, usn = excluded.usn,
     tags = excluded.tags, flds = excluded.flds, sfld = excluded.sfld, csum = excluded.csum,
     flags = 0, data = ''
   where ${overwritable("notes", "?10")}`;

/**
 * The writes of one `applyChunk`, each statement looked up once for all its rows (the lookup by
 * SQL text cost about as much as binding a row).
 */
export interface ChunkWriter {
  /** Inserts a received revlog entry unless one with its id exists. */
  revlog(v: RevlogValues): void;
  /** Writes a received card unless the stored one wins the conflict rule. */
  card(v: CardValues): void;
  /**
   * Writes a received note unless the stored one wins the conflict rule. Flags and data are
   * always stored empty, as Anki's storage layer does; `sfld` and `csum` are the receiver's.
   */
  note(note: Omit<NoteRow, "sfld" | "csum">, sfld: string, csum: number): void;
}

export function chunkWriter(db: Db, clientUsn: number): ChunkWriter {
  const revlog = db.query(INSERT_REVLOG);
  const card = db.query(MERGE_CARD);
  const note = db.query(MERGE_NOTE);
  return {
    revlog: (v) => revlog.run(...v),
    card: (v) => card.run(...v, clientUsn),
    note: (n, sfld, csum) =>
      note.run(n.id, n.guid, n.mid, n.mod, n.usn, n.tags, n.flds, sfld, csum, clientUsn),
  };
}

export function deleteRow(db: Db, table: "notes" | "cards", id: Int): void {
  db.query(`delete from ${table} where id = $id`).run({ id });
}

export interface RowTally {
  cards: number;
  notes: number;
  revlog: number;
  /** A row of cards, notes, revlog or graves still marked as locally changed (usn -1). */
  pending: boolean;
}

/**
 * What `sanityCheck2` compares and refuses on, in one statement rather than seven: every
 * statement on a worker serving many users costs more than its own work.
 */
export function tallyRows(db: Db): RowTally {
  const row = db
    .query(
      `select (select count() from cards) as cards, (select count() from notes) as notes,
        (select count() from revlog) as revlog,
        exists (select 1 from cards where usn = -1) or exists (select 1 from notes where usn = -1)
          or exists (select 1 from revlog where usn = -1)
          or exists (select 1 from graves where usn = -1) as pending`,
    )
    .get() as { cards: number; notes: number; revlog: number; pending: number };
  return { cards: row.cards, notes: row.notes, revlog: row.revlog, pending: row.pending === 1 };
}
