/**
 * A collection is in WAL mode while a worker has it open and back at rest (checkpointed,
 * rollback journal, one complete file) once closed, after a crash, and on network filesystems.
 */
import { afterEach, describe, expect, test } from "bun:test";
import { copyFileSync, existsSync, mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { WAL_REST_MS } from "../../src/executor/host.ts";
import { UserState } from "../../src/executor/userState.ts";
import { createLogger } from "../../src/log.ts";
import { openDatabase } from "../../src/platform/sqlite.ts";
import {
  checkpointWal,
  commitCheckpointingLater,
} from "../../src/storage/collection/collectionFile.ts";
import { UserCollection } from "../../src/storage/collection/userCollection.ts";
import { userPaths } from "../../src/storage/paths.ts";
import { sweepDeadTemporaries } from "../../src/storage/startupSweep.ts";
import { testUserHost } from "../helpers/userHost.ts";

const dirs: string[] = [];
afterEach(() => {
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});

function dataDir(): string {
  const dir = mkdtempSync(join(tmpdir(), "ankisyncd-wal-"));
  dirs.push(dir);
  return dir;
}

/** Bytes 18 and 19 of the header: 1 for a rollback journal, 2 for WAL. */
function headerMode(path: string): "rollback" | "wal" {
  const header = readFileSync(path).subarray(0, 20);
  return header[18] === 2 && header[19] === 2 ? "wal" : "rollback";
}

function journalMode(db: ReturnType<UserCollection["open"]>): string {
  return (db.query("PRAGMA journal_mode").get() as { journal_mode: string }).journal_mode;
}

test("open: WAL, every commit synced; closed: one complete file with a rollback journal", () => {
  const col = new UserCollection(userPaths(dataDir(), "u1"), true);
  const db = col.open();
  expect(journalMode(db)).toBe("wal");
  expect(db.query("PRAGMA synchronous").get()).toEqual({ synchronous: 2 });
  db.exec("update col set usn = 7");
  expect(existsSync(`${col.paths.collection}-wal`)).toBe(true);
  col.close();
  for (const suffix of ["-wal", "-shm", "-journal"])
    expect(existsSync(`${col.paths.collection}${suffix}`)).toBe(false);
  expect(headerMode(col.paths.collection)).toBe("rollback");
  const copy = openDatabase(col.paths.collection, { readonly: true });
  expect(copy.query("select usn from col").get()).toEqual({ usn: 7 });
  copy.close();
});

test("a commit past the autocheckpoint bound checkpoints in it, unless told to leave that for later", () => {
  const col = new UserCollection(userPaths(dataDir(), "u1"), true);
  const db = col.open();
  db.exec("create table big (b blob)");
  /** 1,200 rows of 4 kB, over SQLite's bound of 1,000 pages, in one commit. */
  const bigCommit = (commit: (c: () => void) => void) => {
    db.exec("BEGIN IMMEDIATE");
    db.exec(`insert into big with recursive n(i) as (select 1 union all select i + 1 from n where i < 1200)
      select randomblob(4000) from n`);
    commit(() => db.exec("COMMIT"));
  };
  const rowsInFileAlone = () => {
    const copy = `${col.paths.collection}.alone`;
    copyFileSync(col.paths.collection, copy);
    const alone = openDatabase(copy, { readonly: true });
    const { n } = alone.query("select count() as n from big").get() as { n: number };
    alone.close();
    return n;
  };
  bigCommit((c) => c());
  expect(rowsInFileAlone()).toBe(1200);
  bigCommit((c) => commitCheckpointingLater(db, c));
  expect(rowsInFileAlone()).toBe(1200);
  expect(db.query("select count() as n from big").get()).toEqual({ n: 2400 });
  checkpointWal(db);
  expect(rowsInFileAlone()).toBe(2400);
  col.close();
});

test("without WAL (the setting off): the rollback journal throughout", () => {
  const col = new UserCollection(userPaths(dataDir(), "u1"), false);
  expect(journalMode(col.open())).toBe("delete");
  col.close();
});

test("a network filesystem keeps the rollback journal whatever the setting", () => {
  const user = new UserState(userPaths(dataDir(), "u1"), { networkFs: true }, true);
  expect(journalMode(user.collection.open())).toBe("delete");
  user.close();
  const local = new UserState(userPaths(dataDir(), "u1"), { networkFs: false }, true);
  expect(journalMode(local.collection.open())).toBe("wal");
  local.close();
});

test("a file another connection still reads stays open until it can be put back at rest", () => {
  const col = new UserCollection(userPaths(dataDir(), "u1"), true);
  col.open().exec("update col set usn = 3");
  const reader = openDatabase(col.paths.collection);
  reader.exec("BEGIN");
  reader.query("select usn from col").get();
  // Refused: the file is not whole without its WAL.
  expect(() => col.close()).toThrow();
  expect(col.isOpen).toBe(true);
  expect(existsSync(`${col.paths.collection}-wal`)).toBe(true);
  reader.exec("ROLLBACK");
  reader.close();
  col.close();
  expect(col.isOpen).toBe(false);
  expect(headerMode(col.paths.collection)).toBe("rollback");
  expect(existsSync(`${col.paths.collection}-wal`)).toBe(false);
}, 30_000);

test("Anki's library cannot open the file while the server has it in WAL mode, and can after", () => {
  const col = new UserCollection(userPaths(dataDir(), "u1"), true);
  col.open();
  const anki = () => {
    const other = openDatabase(col.paths.collection);
    try {
      other.exec("PRAGMA busy_timeout = 0");
      other.exec("PRAGMA locking_mode = exclusive");
      other.exec("PRAGMA journal_mode = WAL");
      other.exec("update col set mod = mod + 1");
    } finally {
      other.close();
    }
  };
  expect(anki).toThrow(/locked/);
  col.close();
  anki();
  // The server's next open puts it back in the rollback journal, then WAL while open.
  expect(journalMode(col.open())).toBe("wal");
  col.close();
  expect(headerMode(col.paths.collection)).toBe("rollback");
});

test("a crash leaves a WAL: recovered by the startup sweep or by the next open", async () => {
  const dir = dataDir();
  const paths = userPaths(dir, "u1");
  const script = `
    import { UserCollection } from "${join(import.meta.dir, "../../src/storage/collection/userCollection.ts")}";
    import { userPaths } from "${join(import.meta.dir, "../../src/storage/paths.ts")}";
    const col = new UserCollection(userPaths(${JSON.stringify(dir)}, "u1"), true);
    col.open().exec("update col set usn = 11");
    process.kill(process.pid, "SIGKILL"); // no close: the WAL holds the commit
  `;
  const crash = async () => {
    const proc = Bun.spawn(["bun", "-e", script], { stdout: "inherit", stderr: "inherit" });
    await proc.exited;
    expect(proc.signalCode).toBe("SIGKILL");
    expect(existsSync(`${paths.collection}-wal`)).toBe(true);
  };

  await crash();
  await sweepDeadTemporaries(dir, createLogger("error", "text"), { networkFs: false });
  expect(existsSync(`${paths.collection}-wal`)).toBe(false);
  expect(headerMode(paths.collection)).toBe("rollback");
  const check = openDatabase(paths.collection, { readonly: true });
  expect(check.query("select usn from col").get()).toEqual({ usn: 11 });
  check.close();

  rmSync(paths.collection);
  await crash();
  const col = new UserCollection(paths, true);
  expect(col.open().query("select usn from col").get()).toEqual({ usn: 11 });
  col.close();
  expect(headerMode(paths.collection)).toBe("rollback");
}, 60_000);

test("the worker puts a WAL collection back at rest a few seconds after the last request", async () => {
  const dir = dataDir();
  const host = testUserHost(dir);
  try {
    await host.handle({ kind: "meta", user: { uuid: "u3" }, req: { v: 11, cv: "anki,25.09" } });
    const path = userPaths(dir, "u3").collection;
    expect(headerMode(path)).toBe("wal");
    host.sweep(Date.now() + WAL_REST_MS / 2);
    expect(headerMode(path)).toBe("wal");
    host.sweep(Date.now() + WAL_REST_MS + 1);
    expect(headerMode(path)).toBe("rollback");
    expect(existsSync(`${path}-wal`)).toBe(false);
    // Only the collection: the user stays until the idle close, and the next request reopens it.
    expect(host.openUsers).toBe(1);
    await host.handle({ kind: "meta", user: { uuid: "u3" }, req: { v: 11, cv: "anki,25.09" } });
    expect(headerMode(path)).toBe("wal");
  } finally {
    host.shutdown();
  }
});

describe("closeForCopy: the file at rest for a full download's copy", () => {
  const wal = () => new UserCollection(userPaths(dataDir(), "u1"), true);

  test("a closed collection with nothing pending is not written at all", () => {
    const col = wal();
    col.open().exec("update col set usn = 5");
    col.close();
    const before = readFileSync(col.paths.collection);
    col.closeForCopy();
    // A switch to WAL and back would have rewritten the header (and its change counter).
    expect(readFileSync(col.paths.collection).equals(before)).toBe(true);
    expect(col.isOpen).toBe(false);
  });

  test("another program's pending rows are adopted in the file, which stays closed", () => {
    const col = wal();
    col.open().exec("update col set usn = 9");
    col.close();
    const other = openDatabase(col.paths.collection);
    other.exec(`insert into notes values (42, 'g', 1, 1, -1, '', 'a\x1fb', 'a', 1, 0, '')`);
    other.close();
    col.closeForCopy();
    expect(col.isOpen).toBe(false);
    expect(headerMode(col.paths.collection)).toBe("rollback");
    const copy = openDatabase(col.paths.collection, { readonly: true });
    expect(copy.query("select usn from notes where id = 42").get()).toEqual({ usn: 9 });
    copy.close();
  });

  test("an open collection is put back at rest with its commits; a new user's is created", () => {
    const col = wal();
    col.closeForCopy();
    expect(existsSync(col.paths.collection)).toBe(true);
    col.open().exec("update col set usn = 7");
    col.closeForCopy();
    expect(col.isOpen).toBe(false);
    for (const suffix of ["-wal", "-shm", "-journal"])
      expect(existsSync(`${col.paths.collection}${suffix}`)).toBe(false);
    const copy = openDatabase(col.paths.collection, { readonly: true });
    expect(copy.query("select usn from col").get()).toEqual({ usn: 7 });
    copy.close();
  });
});
