/**
 * A full upload's work on the user's worker: the collection put back at rest while the body
 * arrives (`rest`), the swap, and the old backups pruned once the answer has gone (off the
 * worker's thread).
 */
import { afterEach, expect, test } from "bun:test";
import {
  copyFileSync,
  existsSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  writeFileSync,
} from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { openDatabase } from "../../src/platform/sqlite.ts";
import { fsyncPath, pruneBackupsAsync } from "../../src/storage/collection/replace.ts";
import { tempPathBeside, userPaths } from "../../src/storage/paths.ts";
import { normalSyncJobs, testUserHost } from "../helpers/userHost.ts";

const dirs: string[] = [];
afterEach(() => {
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});

function dataDir(): string {
  const dir = mkdtempSync(join(tmpdir(), "ankisyncd-install-"));
  dirs.push(dir);
  return dir;
}

const user = { uuid: "u1" };
const metaJob = { kind: "meta", user, req: { v: 11, cv: "anki,25.09" } } as const;

/** Bytes 18 and 19 of the header: 2 in WAL mode. */
function inWal(path: string): boolean {
  return readFileSync(path).subarray(18, 19)[0] === 2;
}

/** A prepared upload as `prepareUpload` leaves it: a schema 11 file beside the collection, synced. */
function preparedCopy(collection: string, usn: number): string {
  const prepared = tempPathBeside(collection, ".upload");
  copyFileSync(collection, prepared);
  const db = openDatabase(prepared);
  db.exec(`update col set usn = ${usn}`);
  db.close();
  fsyncPath(prepared);
  return prepared;
}

/** Waits (at most ~2 s) for `done`: the backups are removed on the thread pool after the answer. */
async function until(done: () => boolean): Promise<void> {
  for (let i = 0; i < 400 && !done(); i++) await Bun.sleep(5);
}

test("rest: an open collection goes back to rest; one a normal sync holds stays open", async () => {
  const dir = dataDir();
  const host = testUserHost(dir);
  const path = userPaths(dir, user.uuid).collection;
  try {
    await host.handle(metaJob);
    expect(inWal(path)).toBe(true);
    expect(await host.handle({ kind: "rest", user })).toBe(true);
    expect(inWal(path)).toBe(false);
    expect(existsSync(`${path}-wal`)).toBe(false);
    // Nothing open: nothing to do.
    expect(await host.handle({ kind: "rest", user })).toBe(true);

    await normalSyncJobs(host, user.uuid, "s")("start", { minUsn: 0, lnewer: false, graves: null });
    expect(await host.handle({ kind: "rest", user })).toBe(false);
    expect(inWal(path)).toBe(true);
  } finally {
    host.shutdown();
  }
});

test("an installed upload replaces the collection; backups past the kept number go after the answer", async () => {
  const dir = dataDir();
  const host = testUserHost(dir, { backupsKept: 1 });
  const paths = userPaths(dir, user.uuid);
  try {
    await host.handle(metaJob);
    for (const usn of [41, 42]) {
      const preparedPath = preparedCopy(paths.collection, usn);
      const outcome = await host.handle({ kind: "upload", user, preparedPath });
      expect(outcome.reply).toBe("OK");
      expect(existsSync(preparedPath)).toBe(false);
      await until(() => readdirSync(paths.backups).length === 1);
      expect(readdirSync(paths.backups)).toHaveLength(1);
    }
    const db = openDatabase(paths.collection, { readonly: true });
    expect(db.query("select usn from col").get()).toEqual({ usn: 42 });
    db.close();
    // The backup kept is the collection the last upload replaced.
    const [kept] = readdirSync(paths.backups);
    const backup = openDatabase(join(paths.backups, kept as string), { readonly: true });
    expect(backup.query("select usn from col").get()).toEqual({ usn: 41 });
    backup.close();
  } finally {
    host.shutdown();
  }
});

test("another user of the worker active keeps the download conversion from loading after an upload", async () => {
  const dir = dataDir();
  const host = testUserHost(dir);
  const other = { uuid: "u2" };
  try {
    await host.handle(metaJob);
    // Alone on the worker: the conversion may be loaded ahead (the thread holds nobody up).
    expect(host.othersActive(user.uuid)).toBe(false);
    await host.handle({ kind: "meta", user: other, req: metaJob.req });
    const now = Date.now();
    expect(host.othersActive(user.uuid, now)).toBe(true);
    expect(host.othersActive(other.uuid, now)).toBe(true);
    // A few seconds later neither counts, unless a normal sync is under way.
    expect(host.othersActive(user.uuid, now + 10_000)).toBe(false);
    await normalSyncJobs(
      host,
      other.uuid,
      "s",
    )("start", { minUsn: 0, lnewer: false, graves: null });
    expect(host.othersActive(user.uuid, Date.now() + 10_000)).toBe(true);
    expect(host.othersActive(other.uuid, Date.now() + 10_000)).toBe(false);
  } finally {
    host.shutdown();
  }
});

test("pruneBackupsAsync keeps the newest backups and nothing else goes", async () => {
  const dir = dataDir();
  const names = ["collection-2026-01-01.anki2", "collection-2026-02-01.anki2"];
  const all = [...names, "collection-2026-03-01.anki2", "notes.txt"];
  for (const name of all) writeFileSync(join(dir, name), "x");
  await pruneBackupsAsync(dir, 1);
  expect(readdirSync(dir).sort()).toEqual(["collection-2026-03-01.anki2", "notes.txt"]);
  await pruneBackupsAsync(join(dir, "absent"), 1);
});
