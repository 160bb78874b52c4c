/** Parsed legacy columns: read-only views are shared until the column's text changes. */
import { afterEach, beforeEach, expect, test } from "bun:test";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { UserState } from "../../src/executor/userState.ts";
import type { Db } from "../../src/platform/sqlite.ts";
import {
  readLegacyColumn,
  viewLegacyColumn,
  viewLegacyColumns,
  writeLegacyColumn,
} from "../../src/storage/collection/legacyObjects.ts";
import { userPaths } from "../../src/storage/paths.ts";

let dir: string;
let user: UserState;
let db: Db;

beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), "ankisyncd-legacy-"));
  user = new UserState(userPaths(dir, "u1"));
  db = user.collection.open();
});

afterEach(() => {
  user.close();
  rmSync(dir, { recursive: true, force: true });
});

test("a view is parsed once and shared while the text stays the same", () => {
  const first = viewLegacyColumn(db, "decks");
  expect(viewLegacyColumn(db, "decks")).toBe(first);
  expect(readLegacyColumn(db, "decks")).not.toBe(first);
  expect(readLegacyColumn(db, "decks")).toEqual(first);
});

test("a view is frozen, down to nested objects", () => {
  const decks = viewLegacyColumn(db, "decks");
  const [deck] = Object.values(decks) as Record<string, unknown>[];
  expect(Object.isFrozen(decks)).toBe(true);
  expect(Object.isFrozen(deck)).toBe(true);
  expect(() => {
    (decks as Record<string, unknown>).x = 1;
  }).toThrow();
});

test("a written column gives a new view", () => {
  const before = viewLegacyColumn(db, "tags");
  const tags = readLegacyColumn(db, "tags");
  tags.added = 5;
  writeLegacyColumn(db, "tags", tags);
  const after = viewLegacyColumn(db, "tags");
  expect(after).not.toBe(before);
  expect(after.added).toBe(5);
});

test("a rolled-back write leaves the earlier view in force", () => {
  const before = viewLegacyColumn(db, "tags");
  db.exec("BEGIN");
  writeLegacyColumn(db, "tags", { ...readLegacyColumn(db, "tags"), gone: 1 });
  expect(viewLegacyColumn(db, "tags").gone).toBe(1);
  db.exec("ROLLBACK");
  expect(viewLegacyColumn(db, "tags")).toEqual(before);
  expect(viewLegacyColumn(db, "tags").gone).toBeUndefined();
});

test("columns viewed together share the views read one at a time", () => {
  const tags = viewLegacyColumn(db, "tags");
  const both = viewLegacyColumns(db, ["decks", "tags"]);
  expect(both.tags).toBe(tags);
  expect(both.decks).toBe(viewLegacyColumn(db, "decks"));
  writeLegacyColumn(db, "tags", { ...readLegacyColumn(db, "tags"), added: 5 });
  const after = viewLegacyColumns(db, ["decks", "tags"]);
  expect(after.tags.added).toBe(5);
  expect(after.decks).toBe(both.decks);
});
