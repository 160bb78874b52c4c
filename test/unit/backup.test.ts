/**
 * The media pass of `admin backup` (src/backup/backup.ts): a file whose bytes do not match its
 * media.db snapshot is copied again from a fresh snapshot, and one that never matches is
 * reported rather than hidden. The whole command against a server with syncing clients is in
 * test/e2e/test_backup.py.
 */
import { afterEach, beforeEach, describe, expect, test } from "bun:test";
import { createHash } from "node:crypto";
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { backupDataFolder } from "../../src/backup/backup.ts";
import { readManifest } from "../../src/backup/manifest.ts";
import { restoreDataFolder } from "../../src/backup/restore.ts";
import { type Config, loadConfig } from "../../src/config.ts";
import { openSessionDb } from "../../src/identity/sessionDb.ts";
import { silentLogger } from "../../src/log.ts";
import { MediaDb } from "../../src/storage/media/mediaDb.ts";
import { userPaths } from "../../src/storage/paths.ts";

const UUID = "user-1";
let root: string;
let config: Config;

beforeEach(async () => {
  root = mkdtempSync(join(tmpdir(), "ankisyncd-backup-"));
  config = loadConfig({ SYNC_BASE: join(root, "data") });
  mkdirSync(config.dataDir);
  await openSessionDb(config.sessionDbPath).close();
});
afterEach(() => rmSync(root, { recursive: true, force: true }));

const sha1 = (bytes: Uint8Array) => new Uint8Array(createHash("sha1").update(bytes).digest());
const hex = (bytes: Uint8Array) => Buffer.from(bytes).toString("hex");

/** media.db says `name` holds `recorded`; the file on disk holds `onDisk`. */
function mediaWith(name: string, recorded: Uint8Array, onDisk: Uint8Array | null): string {
  const paths = userPaths(config.dataDir, UUID);
  mkdirSync(paths.media, { recursive: true });
  const db = MediaDb.open(paths.mediaDb, { networkFs: false });
  db.transaction(() => {
    db.putEntry({ fname: name, csum: sha1(recorded), size: recorded.byteLength, usn: 1, mtime: 1 });
    db.writeMeta({ lastUsn: 1, totalBytes: recorded.byteLength, totalNonemptyFiles: 1 });
  });
  db.close();
  const path = join(paths.media, name);
  if (onDisk) writeFileSync(path, onDisk);
  return path;
}

const run = (target: string) =>
  backupDataFolder(config, target, { log: silentLogger, passPauseMs: 40 });

describe("admin backup: media", () => {
  test("a file replaced while the backup runs is copied again until it matches media.db", async () => {
    const final = new TextEncoder().encode("the committed content");
    const path = mediaWith("a.png", final, new TextEncoder().encode("an upload in flight"));
    // The upload's transaction commits while the backup waits between passes.
    setTimeout(() => writeFileSync(path, final), 5);
    const target = join(root, "bk");
    const manifest = await run(target);
    const user = manifest.users.find((u) => u.uuid === UUID);
    expect(user?.problems).toEqual([]);
    expect(user?.mediaFiles).toEqual([["a.png", final.byteLength, hex(sha1(final))]]);
    expect(readFileSync(join(userPaths(target, UUID).media, "a.png"))).toEqual(Buffer.from(final));
  });

  test("a file that never matches is copied as it is and reported", async () => {
    const recorded = new TextEncoder().encode("what media.db says");
    const actual = new TextEncoder().encode("what the disk has");
    mediaWith("b.png", recorded, actual);
    const manifest = await run(join(root, "bk"));
    const user = manifest.users.find((u) => u.uuid === UUID);
    expect(user?.problems).toEqual([
      "media file b.png does not match its media.db checksum; copied as it is",
    ]);
    expect(user?.mediaFiles).toEqual([["b.png", actual.byteLength, hex(sha1(actual))]]);
  });

  test("a file media.db lists but the disk lacks is reported, and the backup still restores", async () => {
    mediaWith("gone.png", new TextEncoder().encode("x"), null);
    const target = join(root, "bk");
    const manifest = await run(target);
    expect(manifest.users[0]?.problems).toEqual([
      "media file gone.png is listed in media.db but missing on the server",
    ]);
    expect(readManifest(target).users[0]?.mediaFiles).toEqual([]);
    const restored = loadConfig({ SYNC_BASE: join(root, "restored") });
    restoreDataFolder(restored, target);
    const db = MediaDb.open(userPaths(restored.dataDir, UUID).mediaDb, { networkFs: false });
    expect(db.liveEntry("gone.png")?.size).toBe(1);
    db.close();
  });
});
