/** Adoption of media left by the earlier Python server (collection.media/, collection.media.server.db). */
import { Database } from "bun:sqlite";
import { afterEach, describe, expect, test } from "bun:test";
import { createHash } from "node:crypto";
import {
  existsSync,
  mkdirSync,
  mkdtempSync,
  readFileSync,
  renameSync,
  rmSync,
  writeFileSync,
} from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { adoptPythonServerMedia } from "../../src/adoption/pythonServerLayout.ts";
import { silentLogger } from "../../src/log.ts";
import { MediaDb } from "../../src/storage/media/mediaDb.ts";
import { userPaths } from "../../src/storage/paths.ts";
import { UserLock } from "../../src/storage/userLock.ts";

const UUID = "5e768ca5-a29d-440c-9849-900301a2c96e";
const dirs: string[] = [];
afterEach(() => {
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});

const sha1 = (data: string) => createHash("sha1").update(data).digest("hex");

/** A user folder as the Python server left it; its media table is ankicommunity's. */
function oldLayout(): { dataDir: string; dir: string } {
  const dataDir = mkdtempSync(join(tmpdir(), "ankisyncd-pylayout-"));
  dirs.push(dataDir);
  const dir = join(dataDir, "collections", UUID);
  mkdirSync(join(dir, "collection.media"), { recursive: true });
  writeFileSync(join(dir, "collection.anki2"), "not read by the adoption");
  writeFileSync(join(dir, "collection.media", "a.jpg"), "aaaa");
  writeFileSync(join(dir, "collection.media", "b ü.mp3"), "bbbbbbbb");
  const db = new Database(join(dir, "collection.media.server.db"));
  db.exec(`CREATE TABLE media (fname TEXT NOT NULL PRIMARY KEY, usn INT NOT NULL, csum TEXT);
           CREATE INDEX idx_media_usn ON media (usn);`);
  const insert = db.prepare("INSERT INTO media VALUES (?, ?, ?)");
  insert.run("a.jpg", 1, sha1("aaaa"));
  insert.run("b ü.mp3", 3, "not-a-checksum"); // recomputed from the file
  insert.run("gone.png", 5, null); // deleted
  insert.run("lost.gif", 4, sha1("lost")); // listed, but the file is missing
  db.close();
  return { dataDir, dir };
}

function mediaRows(dataDir: string) {
  const db = MediaDb.open(userPaths(dataDir, UUID).mediaDb, { networkFs: true });
  try {
    return { meta: db.meta(), changes: db.changesAfter(0, 100), a: db.entry("a.jpg") };
  } finally {
    db.close();
  }
}

describe("adopting the Python server's media", () => {
  test("converts the database, renames the folder, keeps the old database", () => {
    const { dataDir, dir } = oldLayout();
    const reports = adoptPythonServerMedia(dataDir, silentLogger);
    expect(reports).toEqual([{ uuid: UUID, files: 2, deleted: 1, missing: 1 }]);
    expect(existsSync(join(dir, "collection.media"))).toBe(false);
    expect(readFileSync(join(dir, "media", "b ü.mp3"), "utf8")).toBe("bbbbbbbb");
    expect(existsSync(join(dir, "collection.media.server.db"))).toBe(true);
    const { meta, changes, a } = mediaRows(dataDir);
    expect(meta).toEqual({ lastUsn: 5, totalBytes: 12, totalNonemptyFiles: 2 });
    expect(changes).toEqual([
      ["a.jpg", 1, sha1("aaaa")],
      ["b ü.mp3", 3, sha1("bbbbbbbb")],
      ["gone.png", 5, ""],
    ]);
    expect(a?.size).toBe(4);
    // nothing left to do the second time
    expect(adoptPythonServerMedia(dataDir, silentLogger)).toEqual([]);
  });

  test("an adoption interrupted after the folder rename completes at the next start", () => {
    const { dataDir, dir } = oldLayout();
    renameSync(join(dir, "collection.media"), join(dir, "media"));
    expect(adoptPythonServerMedia(dataDir, silentLogger)).toHaveLength(1);
    expect(mediaRows(dataDir).meta.totalNonemptyFiles).toBe(2);
  });

  test("an unknown database schema leaves everything untouched", () => {
    const { dataDir, dir } = oldLayout();
    const db = new Database(join(dir, "collection.media.server.db"));
    db.exec("ALTER TABLE media ADD COLUMN extra TEXT");
    db.close();
    expect(adoptPythonServerMedia(dataDir, silentLogger)).toEqual([]);
    expect(existsSync(join(dir, "collection.media", "a.jpg"))).toBe(true);
    expect(existsSync(join(dir, "media"))).toBe(false);
    expect(existsSync(join(dir, "media.db"))).toBe(false);
  });

  test("a user whose files are in use is skipped", () => {
    const { dataDir, dir } = oldLayout();
    const lock = UserLock.tryAcquire(dir);
    try {
      expect(adoptPythonServerMedia(dataDir, silentLogger)).toEqual([]);
      expect(existsSync(join(dir, "collection.media"))).toBe(true);
    } finally {
      lock?.release();
    }
  });
});
