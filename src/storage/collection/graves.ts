/**
 * Deletion records in the schema-11 `graves` table (usn, oid, type), which has no key: adding
 * a grave that already exists for (oid, type) keeps the old one, as Anki's keyed table does.
 */
import type { Db } from "../../platform/sqlite.ts";
import { type Int, narrow, pendingClause } from "./syncRows.ts";

export const GRAVE_CARD = 0;
export const GRAVE_NOTE = 1;
export const GRAVE_DECK = 2;

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

/** Adds graves, skipping (oid, type) pairs already recorded; one table scan per instance. */
export class GraveRecorder {
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
