/**
 * Changes another program made to a stored collection. Deployments run a web app beside the
 * server that opens collections with Anki's own library; that library marks what it changes
 * with usn -1 ("not yet sent to the server"), which a server never stores (every change it
 * records gets a real usn). Left so, those rows would reach no device and make every device's
 * sanity check fail. They are adopted as server changes at the current usn, so each device
 * fetches them in its next normal sync.
 */

import { isLegacyObject } from "../../legacyJson.ts";
import type { Db } from "../../platform/sqlite.ts";
import {
  type LegacyColumn,
  mapValues,
  objectUsn,
  readLegacyColumn,
  writeLegacyColumn,
} from "./legacyObjects.ts";

const ROW_TABLES = ["notes", "cards", "revlog", "graves"] as const;
const OBJECT_COLUMNS: LegacyColumn[] = ["models", "decks", "dconf"];

/** Stamps pending rows and objects with the collection's usn; returns how many there were. */
export function adoptPendingChanges(db: Db): number {
  if (!hasPendingRows(db) && !hasPendingObjects(db)) return 0;
  return db.transaction(() => {
    const { usn } = db.query("select usn from col where id = 1").get() as { usn: number };
    let adopted = 0;
    for (const table of ROW_TABLES)
      adopted += db.query(`update ${table} set usn = $usn where usn = -1`).run({ usn }).changes;
    for (const column of OBJECT_COLUMNS) {
      const map = readLegacyColumn(db, column);
      const pending = mapValues(map).filter((o) => objectUsn(o) === -1);
      for (const object of pending) object.usn = usn;
      if (pending.length > 0) writeLegacyColumn(db, column, map);
      adopted += pending.length;
    }
    const tags = readLegacyColumn(db, "tags");
    const pendingTags = Object.keys(tags).filter((t) => Number(tags[t]) === -1);
    for (const tag of pendingTags) tags[tag] = usn;
    if (pendingTags.length > 0) writeLegacyColumn(db, "tags", tags);
    return adopted + pendingTags.length;
  })();
}

function hasPendingRows(db: Db): boolean {
  return ROW_TABLES.some((t) => db.query(`select 1 from ${t} where usn = -1 limit 1`).get());
}

/** Cheap enough to run at every open: the JSON is scanned as text first. */
function hasPendingObjects(db: Db): boolean {
  const row = db
    .query("select models || decks || dconf || tags as all_json from col where id = 1")
    .get() as { all_json: string } | null;
  if (!row || !/"usn":\s*-1|:\s*-1\s*[,}]/.test(row.all_json)) return false;
  return (
    OBJECT_COLUMNS.some((c) =>
      mapValues(readLegacyColumn(db, c)).some((o) => isLegacyObject(o) && objectUsn(o) === -1),
    ) || Object.values(readLegacyColumn(db, "tags")).some((v) => Number(v) === -1)
  );
}
