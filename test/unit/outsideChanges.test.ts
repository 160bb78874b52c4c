/**
 * Another program writing a collection the server has open: the change is noticed at the next
 * use (SQLite's data_version, the file's inode), the file opened afresh, and that program's
 * pending rows (usn -1, as Anki's library writes them) become server changes at the current usn.
 */
import { afterEach, expect, test } from "bun:test";
import { copyFileSync, mkdtempSync, renameSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { openDatabase } from "../../src/platform/sqlite.ts";
import { readLegacyColumn } from "../../src/storage/collection/legacyObjects.ts";
import { adoptPendingChanges } from "../../src/storage/collection/outsideChanges.ts";
import { UserCollection } from "../../src/storage/collection/userCollection.ts";
import { userPaths } from "../../src/storage/paths.ts";

const dirs: string[] = [];
afterEach(() => {
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});

function collection(): UserCollection {
  const dir = mkdtempSync(join(tmpdir(), "ankisyncd-outside-"));
  dirs.push(dir);
  return new UserCollection(userPaths(dir, "user-1"));
}

/** What Anki's library does to a note, a grave, a deck and a tag it changes. */
function writeLikeAnki(path: string): void {
  const other = openDatabase(path);
  other.exec("PRAGMA busy_timeout = 1000");
  other.exec(`insert into notes values (42, 'g', 1, 1, -1, '', 'a\x1fb', 'a', 1, 0, '')`);
  other.exec("insert into graves values (-1, 7, 0)");
  const decks = JSON.parse(
    (other.query("select decks from col").get() as { decks: string }).decks,
  ) as Record<string, { usn: number }>;
  for (const deck of Object.values(decks)) deck.usn = -1;
  other
    .query("update col set decks = ?, tags = ?, mod = mod + 1")
    .run(JSON.stringify(decks), JSON.stringify({ webapp: -1 }));
  other.close();
}

test("a commit by another program behind the open handle is noticed and adopted", () => {
  const col = collection();
  const db = col.open();
  db.exec("update col set usn = 5");
  writeLikeAnki(col.paths.collection);
  const fresh = col.open();
  expect(fresh).not.toBe(db);
  expect(fresh.query("select usn from notes where id = 42").get()).toEqual({ usn: 5 });
  expect(fresh.query("select usn from graves").all()).toEqual([{ usn: 5 }]);
  const decks = readLegacyColumn(fresh, "decks");
  expect(Object.values(decks).map((d) => (d as { usn: unknown }).usn)).toEqual([5]);
  expect(readLegacyColumn(fresh, "tags")).toEqual({ webapp: 5 });
  // Nothing changed since: the same handle is kept.
  expect(col.open()).toBe(fresh);
  col.close();
});

test("a file replaced behind the open handle is reopened", () => {
  const col = collection();
  const db = col.open();
  db.exec("update col set usn = 9");
  const copy = `${col.paths.collection}.copy`;
  copyFileSync(col.paths.collection, copy);
  const other = openDatabase(copy);
  other.exec("update col set usn = 10");
  other.close();
  renameSync(copy, col.paths.collection);
  expect(col.open().query("select usn from col").get()).toEqual({ usn: 10 });
  col.close();
});

test("nothing pending: nothing written", () => {
  const col = collection();
  const db = col.open();
  const before = (db.query("PRAGMA data_version").get() as { data_version: number }).data_version;
  expect(adoptPendingChanges(db)).toBe(0);
  expect(db.query("select total_changes() as n").get()).toEqual({ n: 0 });
  expect((db.query("PRAGMA data_version").get() as { data_version: number }).data_version).toBe(
    before,
  );
  col.close();
});
