/** media.db: Anki's server layout (user_version 4), the v3 upgrade, journal modes. */
import { Database } from "bun:sqlite";
import { afterEach, beforeEach, describe, expect, test } from "bun:test";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { unsafePathReason, uploadNameProblem } from "../../src/storage/media/files.ts";
import { MediaDb, MediaDbError } from "../../src/storage/media/mediaDb.ts";

let dir: string;
beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), "ankisyncd-mediadb-"));
});
afterEach(() => rmSync(dir, { recursive: true, force: true }));

function columns(db: Database, table: string) {
  return db.query(`PRAGMA table_info(${table})`).all() as {
    name: string;
    type: string;
    notnull: number;
    pk: number;
  }[];
}

describe("a new media.db", () => {
  test("has Anki's server schema, version 4, one meta row of zeros", () => {
    const path = join(dir, "media.db");
    MediaDb.open(path, { networkFs: false }).close();
    const db = new Database(path, { readonly: true });
    expect(db.query("PRAGMA user_version").get()).toEqual({ user_version: 4 });
    expect(columns(db, "media").map((c) => [c.name, c.type, c.notnull, c.pk])).toEqual([
      ["fname", "TEXT", 1, 1],
      ["csum", "BLOB", 1, 0],
      ["size", "INT", 1, 0],
      ["usn", "INT", 1, 0],
      ["mtime", "INT", 1, 0],
    ]);
    expect(columns(db, "meta").map((c) => [c.name, c.type, c.notnull])).toEqual([
      ["last_usn", "INT", 1],
      ["total_bytes", "INT", 1],
      ["total_nonempty_files", "INT", 1],
    ]);
    expect(db.query("SELECT * FROM meta").all()).toEqual([
      { last_usn: 0, total_bytes: 0, total_nonempty_files: 0 },
    ]);
    expect(
      db
        .query("SELECT name, tbl_name FROM sqlite_master WHERE type = 'index' AND sql IS NOT NULL")
        .all(),
    ).toEqual([{ name: "ix_usn", tbl_name: "media" }]);
    expect(db.query("PRAGMA journal_mode").get()).toEqual({ journal_mode: "wal" });
    db.close();
  });

  test("uses a rollback journal on a network filesystem", () => {
    const path = join(dir, "media.db");
    MediaDb.open(path, { networkFs: true }).close();
    const db = new Database(path, { readonly: true });
    expect(db.query("PRAGMA journal_mode").get()).toEqual({ journal_mode: "delete" });
    db.close();
  });

  test("can be read by another connection while open (admin backup)", () => {
    const path = join(dir, "media.db");
    const media = MediaDb.open(path, { networkFs: false });
    media.transaction(() => media.writeMeta({ lastUsn: 1, totalBytes: 0, totalNonemptyFiles: 0 }));
    const other = new Database(path);
    other.exec("BEGIN");
    expect(other.query("SELECT last_usn FROM meta").get()).toEqual({ last_usn: 1 });
    // A reader in WAL mode does not hold the writer up; it keeps seeing its snapshot.
    media.transaction(() => media.writeMeta({ lastUsn: 2, totalBytes: 0, totalNonemptyFiles: 0 }));
    expect(other.query("SELECT last_usn FROM meta").get()).toEqual({ last_usn: 1 });
    other.exec("COMMIT");
    other.close();
    media.close();
  });

  test("a failed transaction leaves nothing behind", () => {
    const media = MediaDb.open(join(dir, "media.db"), { networkFs: false });
    expect(() =>
      media.transaction(() => {
        media.putEntry({ fname: "a", csum: new Uint8Array(20), size: 1, usn: 1, mtime: 1 });
        media.writeMeta({ lastUsn: 1, totalBytes: 1, totalNonemptyFiles: 1 });
        throw new Error("boom");
      }),
    ).toThrow("boom");
    expect(media.entry("a")).toBeNull();
    expect(media.meta()).toEqual({ lastUsn: 0, totalBytes: 0, totalNonemptyFiles: 0 });
    media.close();
  });

  test("the meta row it keeps follows commits, and not writes that were rolled back", () => {
    const media = MediaDb.open(join(dir, "media.db"), { networkFs: false });
    const zero = { lastUsn: 0, totalBytes: 0, totalNonemptyFiles: 0 };
    expect(media.meta()).toEqual(zero);
    media.meta().lastUsn = 99; // a copy: the caller's to change
    expect(media.meta()).toEqual(zero);
    expect(() =>
      media.transaction(() => {
        media.writeMeta({ lastUsn: 5, totalBytes: 5, totalNonemptyFiles: 5 });
        expect(media.meta().lastUsn).toBe(5);
        throw new Error("boom");
      }),
    ).toThrow("boom");
    expect(media.meta()).toEqual(zero);
    media.transaction(() => media.writeMeta({ lastUsn: 2, totalBytes: 3, totalNonemptyFiles: 1 }));
    expect(media.meta()).toEqual({ lastUsn: 2, totalBytes: 3, totalNonemptyFiles: 1 });
    expect(media.meta()).toEqual({ lastUsn: 2, totalBytes: 3, totalNonemptyFiles: 1 });
    media.close();
  });
});

describe("an older or foreign media.db", () => {
  test("version 3 is upgraded: rows without checksum dropped, totals recomputed", () => {
    const path = join(dir, "media.db");
    const old = new Database(path);
    old.exec(`
      CREATE TABLE media (fname text NOT NULL PRIMARY KEY, csum blob, sz int NOT NULL, usn int NOT NULL, deleted int NOT NULL);
      CREATE INDEX ix_usn ON media (usn);
      CREATE TABLE meta (usn int NOT NULL, sz int NOT NULL);
      INSERT INTO meta VALUES (9, 0);
      INSERT INTO media VALUES ('a.jpg', x'${"11".repeat(20)}', 100, 3, 1700000000);
      INSERT INTO media VALUES ('b.jpg', x'${"22".repeat(20)}', 0, 7, 1700000001);
      INSERT INTO media VALUES ('c.jpg', NULL, 0, 9, 1700000002);
      INSERT INTO media VALUES ('d.jpg', x'${"33".repeat(20)}', 50, 5, 1700000003);
      PRAGMA user_version = 3;
    `);
    old.close();
    const media = MediaDb.open(path, { networkFs: false });
    expect(media.meta()).toEqual({ lastUsn: 7, totalBytes: 150, totalNonemptyFiles: 2 });
    expect(media.entry("a.jpg")).toMatchObject({ size: 100, usn: 3, mtime: 1700000000 });
    expect(media.entry("c.jpg")).toBeNull();
    expect(media.changesAfter(0, 10)).toEqual([
      ["a.jpg", 3, "11".repeat(20)],
      ["d.jpg", 5, "33".repeat(20)],
      ["b.jpg", 7, ""],
    ]);
    expect(media.changesAfter(5, 10)).toEqual([["b.jpg", 7, ""]]);
    expect(media.changesAfter(7, 10)).toEqual([]);
    media.close();
    const db = new Database(path, { readonly: true });
    expect(db.query("PRAGMA user_version").get()).toEqual({ user_version: 4 });
    expect(
      db.query("SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name").all(),
    ).toEqual([{ name: "media" }, { name: "meta" }]);
    db.close();
  });

  test("a newer version or an unrelated database is refused untouched", () => {
    const newer = join(dir, "newer.db");
    const n = new Database(newer);
    n.exec("PRAGMA user_version = 5");
    n.close();
    expect(() => MediaDb.open(newer, { networkFs: false })).toThrow(MediaDbError);
    const foreign = join(dir, "foreign.db");
    const f = new Database(foreign);
    f.exec("CREATE TABLE notes (id int)");
    f.close();
    expect(() => MediaDb.open(foreign, { networkFs: false })).toThrow(/tables notes/);
  });
});

describe("media file names", () => {
  test("what may be stored", () => {
    for (const ok of [
      "a.jpg",
      "naïve café.jpg",
      "日本語.mp3",
      "smile 😀.gif",
      "..a",
      "a..",
      ".hidden",
      "con_.jpg",
      "CONSOLE.jpg",
    ]) {
      expect([ok, uploadNameProblem(ok)]).toEqual([ok, null]);
    }
    for (const bad of [
      "",
      ".",
      "..",
      "a/b",
      "a\\b",
      "a\0b",
      "CON",
      "nul.txt",
      "Com1.mp3",
      "e\u0301",
      "\udc00",
      "x".repeat(256),
    ]) {
      expect(uploadNameProblem(bad)).not.toBeNull();
    }
  });

  test("what may be read: only path safety, so files adopted from Anki's server stay reachable", () => {
    expect(unsafePathReason("CON.jpg")).toBeNull();
    expect(unsafePathReason("e\u0301.jpg")).toBeNull();
    expect(unsafePathReason("../x")).not.toBeNull();
  });
});
