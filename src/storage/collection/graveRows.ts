/**
 * Deletions in the collection: the schema-11 `graves` table (usn, oid, type), read for the
 * client and written when a client's deletions are applied (the protocol step is
 * sync/collection/graves.ts). The table has no key: adding a grave that already exists for
 * (oid, type) keeps the old one, as Anki's keyed table does.
 */
import type { Db } from "../../platform/sqlite.ts";
import { keyOfId, readLegacyColumn, writeLegacyColumn } from "./legacyObjects.ts";
import { deleteRow, type Int, narrow, pendingClause } from "./syncRows.ts";

const GRAVE_CARD = 0;
const GRAVE_NOTE = 1;
const GRAVE_DECK = 2;

export interface GraveIds {
  cards: Int[];
  decks: Int[];
  notes: Int[];
}

export function pendingGraves(db: Db, usn: number): GraveIds {
  const graves: GraveIds = { cards: [], decks: [], notes: [] };
  const rows = db
    .query(`select oid, type from graves where ${pendingClause(usn)}`)
    .safeIntegers(true)
    .values({ usn }) as [bigint, bigint][];
  for (const [oid, type] of rows) {
    const list = listFor(graves, Number(type));
    list?.push(narrow(oid));
  }
  return graves;
}

function listFor(graves: GraveIds, type: number): Int[] | undefined {
  if (type === GRAVE_CARD) return graves.cards;
  if (type === GRAVE_NOTE) return graves.notes;
  if (type === GRAVE_DECK) return graves.decks;
  return undefined;
}

/**
 * Deletes the rows (and decks) and records a grave for each, stamped `usn`: notes, then cards,
 * then decks, as Anki applies them. A note's deletion leaves its cards, a deck's leaves its
 * cards: the client sends those separately.
 */
export function applyDeletions(db: Db, usn: number, graves: GraveIds): void {
  const recorder = new GraveRecorder(db, usn);
  for (const id of graves.notes) {
    deleteRow(db, "notes", id);
    recorder.add(id, GRAVE_NOTE);
  }
  for (const id of graves.cards) {
    deleteRow(db, "cards", id);
    recorder.add(id, GRAVE_CARD);
  }
  if (graves.decks.length > 0) deleteDecks(db, graves.decks, recorder);
}

function deleteDecks(db: Db, ids: Int[], recorder: GraveRecorder): void {
  const decks = readLegacyColumn(db, "decks");
  for (const id of ids) {
    const key = keyOfId(decks, id);
    if (key !== undefined) delete decks[key];
    recorder.add(id, GRAVE_DECK);
  }
  writeLegacyColumn(db, "decks", decks);
}

/** Adds graves, skipping (oid, type) pairs already recorded; one table scan per instance. */
class GraveRecorder {
  private readonly existing = new Set<string>();

  constructor(
    private readonly db: Db,
    private readonly usn: number,
  ) {
    const rows = db.query("select oid, type from graves").safeIntegers(true).values() as [
      bigint,
      bigint,
    ][];
    for (const [oid, type] of rows) this.existing.add(`${type}:${oid}`);
  }

  add(oid: Int, type: number): void {
    const key = `${type}:${oid}`;
    if (this.existing.has(key)) return;
    this.existing.add(key);
    this.db
      .query("insert into graves (usn, oid, type) values ($usn, $oid, $type)")
      .run({ usn: this.usn, oid, type });
  }
}
