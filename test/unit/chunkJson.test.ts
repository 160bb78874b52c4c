/**
 * `chunk` rows written by SQLite as JSON (`readRowsAsJson`) against the JS path they replace:
 * the same text for the same rows, and the JS path taken whenever a row needs normalising.
 */
import { afterEach, beforeEach, describe, expect, test } from "bun:test";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { UserState } from "../../src/executor/userState.ts";
import { stringifyLegacyJson } from "../../src/legacyJson.ts";
import type { Db } from "../../src/platform/sqlite.ts";
import { normalizeCardData } from "../../src/storage/collection/cardData.ts";
import { normalizeNoteTags } from "../../src/storage/collection/names.ts";
import {
  type Int,
  readRowsAsJson,
  readRowsForWire,
  type SyncTable,
} from "../../src/storage/collection/syncRows.ts";
import { userPaths } from "../../src/storage/paths.ts";

let dir: string;
let user: UserState;
let db: Db;

beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), "ankisyncd-chunkjson-"));
  user = new UserState(userPaths(dir, "u1"));
  db = user.collection.open();
});

afterEach(() => {
  user.close();
  rmSync(dir, { recursive: true, force: true });
});

/** What the chunk step sent before SQLite wrote the rows: read, normalised, serialised. */
function inJs(table: SyncTable, ids: Int[]): string {
  const { rows, wide } = readRowsForWire(db, table, ids);
  for (const row of rows) {
    if (table === "cards") row[17] = normalizeCardData(String(row[17]));
    if (table === "notes") row[5] = normalizeNoteTags(String(row[5]));
  }
  return wide ? stringifyLegacyJson(rows as never) : JSON.stringify(rows);
}

const BIG = 2n ** 62n + 3n;
const AWKWARD =
  'quote " backslash \\ tab \t nl \n ctrl \x01\x1f del \x7f é 漢字 😀 \u2028 </script>';

function addNote(id: Int, tags: string, flds = AWKWARD): void {
  db.query("insert into notes values (?1, ?2, ?3, 1700000000, 10, ?4, ?5, 'x', 0, 0, '')").run(
    id,
    `g${id}\u0000"`,
    BIG,
    tags,
    flds,
  );
}

function addCard(id: Int, data: string): void {
  db.query(
    "insert into cards values (?1, ?2, 1, 0, -5, 10, 2, 2, -100000, 4, 2500, 3, 1, 1001, 0, 0, 7, ?3)",
  ).run(id, BIG, data);
}

describe("readRowsAsJson", () => {
  test("notes, cards and revlog come out as the JS path writes them, 64-bit ids exact", () => {
    addNote(3, " a b::c ");
    addNote(BIG, "");
    addNote(1, " 漢字 tag ");
    addCard(5, "{}");
    addCard(6, "");
    addCard(BIG, '{"pos":12,"lrt":-1700000000}');
    addCard(7, '{"lrt":0}');
    db.query("insert into revlog values (?1, ?2, 10, 3, -1, -20, 2500, 6000, 5)").run(BIG, BIG);
    db.query("insert into revlog values (9, 5, 10, 3, 1, 0, 0, 0, 0)").run();
    const cases: [SyncTable, Int[]][] = [
      ["notes", [BIG, 3, 99, 1]],
      ["cards", [7, BIG, 6, 5]],
      ["revlog", [9, BIG]],
    ];
    for (const [table, ids] of cases) {
      const text = readRowsAsJson(db, table, ids);
      expect(text).toBe(inJs(table, ids));
    }
    expect(readRowsAsJson(db, "notes", [BIG])).toContain(`[${BIG},`);
    expect(readRowsAsJson(db, "cards", [99])).toBe("[]");
    expect(readRowsAsJson(db, "cards", [])).toBe("[]");
  });

  test("tags or card data that need normalising leave the table to the JS path", () => {
    for (const [i, tags] of ["a b", " a  b ", " ", "  ", " a\u3000b ", " a"].entries()) {
      addNote(i + 1, tags);
      expect(readRowsAsJson(db, "notes", [i + 1])).toBeUndefined();
    }
    const datas = ['{"pos":1.0}', '{"s":1.23456,"d":5.5}', '{"pos":01}', "not json", '{"x":1}'];
    for (const [i, data] of datas.entries()) {
      addCard(i + 1, data);
      expect(readRowsAsJson(db, "cards", [i + 1])).toBeUndefined();
    }
  });

  test("a value SQLite cannot write as JSON (a blob) leaves the table to the JS path", () => {
    addNote(1, "");
    db.query("update notes set flds = x'00ff' where id = 1").run();
    expect(readRowsAsJson(db, "notes", [1])).toBeUndefined();
  });
});
