/**
 * `admin doctor` against crafted leftovers: a hot rollback journal, a WAL holding committed
 * data, WAL mode where a rollback journal belongs, NFS silly-rename files, stale temporaries,
 * files the server's user cannot use, a busy user and a corrupt database.
 */
import { afterEach, describe, expect, test } from "bun:test";
import {
  chmodSync,
  copyFileSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readFileSync,
  rmSync,
  statSync,
  writeFileSync,
} from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import {
  type DoctorOptions,
  type Finding,
  runDoctor,
  summarize,
} from "../../src/cli/doctor/index.ts";
import { loadConfig } from "../../src/config.ts";
import { type Db, openDatabase } from "../../src/platform/sqlite.ts";
import { MediaStore } from "../../src/storage/media/mediaStore.ts";
import { userPaths } from "../../src/storage/paths.ts";
import { UserLock } from "../../src/storage/userLock.ts";
import { uploadSmallChanges } from "../../src/sync/media/upload.ts";
import { uploadZip } from "../helpers/mediaZip.ts";

const UUID = "0f7c9a52-user";
const dirs: string[] = [];

afterEach(() => {
  for (const dir of dirs.splice(0)) rmSync(dir, { recursive: true, force: true });
});

function dataDir(): string {
  const dir = mkdtempSync(join(tmpdir(), "doctor-"));
  dirs.push(dir);
  mkdirSync(join(dir, "collections", UUID), { recursive: true });
  return dir;
}

const userFile = (data: string, name: string) => join(data, "collections", UUID, name);

function options(overrides: Partial<DoctorOptions> = {}): DoctorOptions {
  return {
    fix: false,
    quick: false,
    uid: process.getuid?.() ?? 0,
    gid: process.getgid?.() ?? 0,
    lockWaitMs: 300,
    ...overrides,
  };
}

async function doctor(data: string, opts: Partial<DoctorOptions> = {}, networkFs = "0") {
  const config = loadConfig({ SYNC_BASE: data, ANKISYNCD_NETWORK_FS: networkFs });
  return runDoctor(config, options(opts));
}

const about = (findings: Finding[], suffix: string) =>
  findings.filter((f) => f.path.endsWith(suffix));

function count(path: string): number {
  const db = openDatabase(path, { create: false });
  try {
    return (db.query("select count(*) as n from t").get() as { n: number }).n;
  } finally {
    db.close();
  }
}

/** Total payload bytes: committed rows hold 800 each, the crafted uncommitted ones 900. */
function payloadBytes(path: string): number {
  const db = openDatabase(path, { create: false });
  try {
    return (db.query("select total(length(payload)) as n from t").get() as { n: number }).n;
  } finally {
    db.close();
  }
}

function integrityOk(path: string): boolean {
  const db = openDatabase(path, { create: false });
  try {
    return (
      (db.query("PRAGMA integrity_check").get() as { integrity_check: string }).integrity_check ===
      "ok"
    );
  } finally {
    db.close();
  }
}

function journalMode(path: string): string {
  const db = openDatabase(path, { create: false });
  try {
    return (db.query("PRAGMA journal_mode").get() as { journal_mode: string }).journal_mode;
  } finally {
    db.close();
  }
}

/** Opens a scratch database with `rows` committed rows in table t. */
function scratch(dir: string, mode: "DELETE" | "WAL", rows: number): { db: Db; path: string } {
  const path = join(dir, `scratch-${mode}-${Math.random().toString(36).slice(2)}.db`);
  const db = openDatabase(path);
  db.exec("PRAGMA page_size = 1024");
  db.exec(`PRAGMA journal_mode = ${mode}`);
  if (mode === "WAL") db.exec("PRAGMA wal_autocheckpoint = 0");
  db.exec("create table t (id integer primary key, payload blob)");
  const insert = db.query("insert into t (payload) values (randomblob(800))");
  db.transaction(() => {
    for (let i = 0; i < rows; i++) insert.run();
  })();
  return { db, path };
}

/**
 * A collection as a crash leaves it in rollback-journal mode: the main file already holds pages
 * of an uncommitted transaction (spilled from a tiny cache) and the hot journal holds the
 * originals. Copied while the transaction is open, as if the process had died there.
 */
function craftHotJournal(data: string, target: string, committed: number): void {
  const { db, path } = scratch(data, "DELETE", committed);
  db.exec("PRAGMA cache_size = 10");
  db.exec("BEGIN");
  db.exec("update t set payload = randomblob(900)");
  const insert = db.query("insert into t (payload) values (randomblob(900))");
  for (let i = 0; i < 300; i++) insert.run();
  copyFileSync(path, target);
  copyFileSync(`${path}-journal`, `${target}-journal`);
  db.exec("ROLLBACK");
  db.close();
}

/** A database whose committed rows are only in its WAL (never checkpointed), as after a crash. */
function craftWal(data: string, target: string, committed: number): void {
  const { db, path } = scratch(data, "WAL", committed);
  copyFileSync(path, target);
  copyFileSync(`${path}-wal`, `${target}-wal`);
  db.close();
}

describe("admin doctor", () => {
  test("a clean data folder has nothing to report", async () => {
    const data = dataDir();
    const { db, path } = scratch(data, "DELETE", 5);
    db.close();
    copyFileSync(path, userFile(data, "collection.anki2"));
    rmSync(path);
    const report = await doctor(data);
    expect(report.findings).toEqual([]);
    expect(report.users).toBe(1);
    expect(report.databases).toBe(1);
  });

  test("a hot rollback journal is reported, then rolled back by SQLite with --fix", async () => {
    const data = dataDir();
    const col = userFile(data, "collection.anki2");
    craftHotJournal(data, col, 40);
    // The crafted state matters: without its journal the file is not the committed state.
    const probe = join(data, "probe.db");
    copyFileSync(col, probe);
    let probeBytes: number | string;
    try {
      probeBytes = integrityOk(probe) ? payloadBytes(probe) : "corrupt";
    } catch (err) {
      probeBytes = String(err);
    }
    expect(probeBytes).not.toBe(40 * 800);
    const journalBytes = readFileSync(`${col}-journal`);

    const check = await doctor(data);
    expect(about(check.findings, "collection.anki2")).toMatchObject([
      { severity: "problem", message: expect.stringContaining("leftover journal") },
    ]);
    expect(readFileSync(`${col}-journal`)).toEqual(journalBytes); // untouched without --fix

    const fix = await doctor(data, { fix: true });
    expect(about(fix.findings, "collection.anki2")).toMatchObject([
      { fixed: true, message: expect.stringContaining("replayed") },
    ]);
    expect(existsSync(`${col}-journal`)).toBe(false);
    expect(count(col)).toBe(40);
    expect(payloadBytes(col)).toBe(40 * 800);
    expect(integrityOk(col)).toBe(true);
    expect((await doctor(data)).findings).toEqual([]);
  });

  test("a WAL with committed data is checkpointed into the collection, never dropped", async () => {
    const data = dataDir();
    const col = userFile(data, "collection.anki2");
    craftWal(data, col, 25);
    const probe = join(data, "probe.db");
    copyFileSync(col, probe); // the main file alone does not even have the table yet
    expect(() => count(probe)).toThrow();

    const check = await doctor(data);
    expect(about(check.findings, "collection.anki2")).toMatchObject([
      { severity: "problem", message: expect.stringContaining("leftover WAL") },
    ]);
    expect(existsSync(`${col}-wal`)).toBe(true);

    const fix = await doctor(data, { fix: true });
    const found = about(fix.findings, "collection.anki2");
    expect(found.every((f) => f.fixed)).toBe(true);
    expect(found.map((f) => f.message).join("\n")).toContain("converted to a rollback journal");
    expect(existsSync(`${col}-wal`)).toBe(false);
    expect(existsSync(`${col}-shm`)).toBe(false);
    expect(journalMode(col)).toBe("delete");
    expect(count(col)).toBe(25);
    expect(integrityOk(col)).toBe(true);
    expect(summarize(await doctor(data)).remaining).toBe(0);
  });

  test("media.db keeps WAL on a local disk but its leftover WAL is checkpointed", async () => {
    const data = dataDir();
    const media = userFile(data, "media.db");
    craftWal(data, media, 12);
    const fix = await doctor(data, { fix: true });
    expect(about(fix.findings, "media.db")).toMatchObject([{ fixed: true }]);
    expect(existsSync(`${media}-wal`)).toBe(false);
    expect(count(media)).toBe(12);
    expect(journalMode(media)).toBe("wal");
  });

  test("on a network filesystem session.db and media.db lose WAL mode, keeping their data", async () => {
    const data = dataDir();
    const session = join(data, "session.db");
    const media = userFile(data, "media.db");
    craftWal(data, session, 7);
    craftWal(data, media, 9);
    const check = await doctor(data, {}, "1");
    expect(check.networkFs).toBe(true);
    expect(about(check.findings, "media.db")).toMatchObject([{ severity: "problem" }]);

    const fix = await doctor(data, { fix: true }, "1");
    for (const path of [session, media]) {
      expect(existsSync(`${path}-wal`)).toBe(false);
      expect(journalMode(path)).toBe("delete");
    }
    expect(count(session)).toBe(7);
    expect(count(media)).toBe(9);
    expect(summarize(fix).remaining).toBe(0);
    expect(summarize(await doctor(data, {}, "1")).remaining).toBe(0);
  });

  test("a session.db in WAL mode that the server holds open is left alone on a local disk", async () => {
    const data = dataDir();
    const { db, path } = scratch(data, "WAL", 3);
    const session = join(data, "session.db");
    db.close();
    copyFileSync(path, session);
    const server = openDatabase(session);
    server.exec("insert into t (payload) values (x'00')"); // a live -wal and -shm
    try {
      expect(existsSync(`${session}-wal`)).toBe(true);
      const report = await doctor(data, { fix: true });
      expect(about(report.findings, "session.db")).toEqual([]);
      expect(existsSync(`${session}-wal`)).toBe(true);
    } finally {
      server.close();
    }
  });

  test("NFS silly-rename files: removed from a user's folder, only reported at the top", async () => {
    const data = dataDir();
    writeFileSync(userFile(data, ".nfs0000000000a1b2c300000001"), "x");
    mkdirSync(userFile(data, "media"));
    writeFileSync(join(userFile(data, "media"), ".nfs0000000000a1b2c300000002"), "x");
    writeFileSync(join(data, ".nfs0000000000ffff0000000003"), "x");
    const check = await doctor(data);
    expect(check.findings.filter((f) => f.message.includes("silly-rename"))).toHaveLength(3);
    const fix = await doctor(data, { fix: true });
    expect(fix.findings.filter((f) => f.fixed)).toHaveLength(2);
    expect(existsSync(userFile(data, ".nfs0000000000a1b2c300000001"))).toBe(false);
    expect(existsSync(join(data, ".nfs0000000000ffff0000000003"))).toBe(true);
    expect(summarize(fix)).toMatchObject({ remaining: 0, warnings: 1 });
  });

  test("a media journal left by a crash is reported, and replayed by --fix", async () => {
    const data = dataDir();
    const store = new MediaStore(userPaths(data, UUID), { networkFs: false });
    const result = await uploadSmallChanges(store, uploadZip([["a.jpg", "aaa"]]), "none", {
      maxUncompressedBytes: 1e9,
    });
    expect(result).toEqual([1, 1]);
    await store.settled();
    store.close(); // as a crash would leave it: the journal not emptied
    rmSync(join(userFile(data, "media"), "a.jpg")); // and the file never synced
    const check = await doctor(data);
    expect(about(check.findings, "media.journal")).toMatchObject([{ severity: "warning" }]);
    const fix = await doctor(data, { fix: true });
    expect(about(fix.findings, "media.journal")).toMatchObject([{ fixed: true }]);
    expect(readFileSync(join(userFile(data, "media"), "a.jpg"), "utf8")).toBe("aaa");
    expect(about((await doctor(data)).findings, "media.journal")).toEqual([]);
  });

  test("temporaries of dead processes are removed whatever their age; a live one's stay", async () => {
    const data = dataDir();
    const oldForm = userFile(data, "collection.anki2.tmp-12-345.incoming");
    const deadFresh = userFile(data, "collection.anki2.tmp-77xbeef-678.upload");
    const deadStaging = userFile(data, "media.tmp-77xbeef-679.staging");
    const live = userFile(data, "collection.anki2.tmp-88xcafe-901.incoming");
    writeFileSync(oldForm, "partial upload");
    writeFileSync(deadFresh, "prepared upload of a killed server");
    mkdirSync(deadStaging);
    writeFileSync(join(deadStaging, "0"), "staged media");
    writeFileSync(live, "upload in progress");
    // 88xcafe runs: it holds its lease. 77xbeef died: its lease file stayed, unlocked.
    mkdirSync(join(data, ".instances"));
    const lease = openDatabase(join(data, ".instances", "88xcafe.lock"));
    lease.exec("BEGIN EXCLUSIVE");
    writeFileSync(join(data, ".instances", "77xbeef.lock"), "");
    try {
      const check = await doctor(data);
      expect(check.findings.map((f) => f.path).sort()).toEqual(
        [oldForm, deadFresh, deadStaging].map((p) => p.slice(data.length + 1)).sort(),
      );
      const fix = await doctor(data, { fix: true });
      expect(fix.findings.every((f) => f.fixed)).toBe(true);
      for (const gone of [oldForm, deadFresh, deadStaging]) expect(existsSync(gone)).toBe(false);
      expect(existsSync(live)).toBe(true);
      expect(existsSync(join(data, ".instances", "77xbeef.lock"))).toBe(false);
      expect(existsSync(join(data, ".instances", "88xcafe.lock"))).toBe(true);
    } finally {
      lease.exec("ROLLBACK");
      lease.close();
    }
  });

  test("a user in the middle of a sync is skipped as busy, and its files are not touched", async () => {
    const data = dataDir();
    const col = userFile(data, "collection.anki2");
    craftWal(data, col, 4);
    const lock = UserLock.tryAcquire(join(data, "collections", UUID));
    expect(lock).not.toBeNull();
    try {
      const report = await doctor(data, { fix: true });
      expect(report.findings).toMatchObject([{ severity: "busy" }]);
      expect(summarize(report).busy).toBe(1);
      expect(existsSync(`${col}-wal`)).toBe(true);
    } finally {
      lock?.release();
    }
  });

  test("a corrupt database is reported and not 'fixed'", async () => {
    const data = dataDir();
    const col = userFile(data, "collection.anki2");
    const { db, path } = scratch(data, "DELETE", 60);
    db.close();
    const bytes = readFileSync(path);
    bytes.fill(0x5a, 3 * 1024 + 10, 6 * 1024); // scribble over interior pages
    writeFileSync(col, bytes);
    for (const fix of [false, true]) {
      const report = await doctor(data, { fix });
      const found = about(report.findings, "collection.anki2");
      expect(found.length).toBeGreaterThan(0);
      expect(found.every((f) => f.severity === "problem" && !f.fixed)).toBe(true);
    }
  });

  test("files the server's user cannot use are reported; as root --fix gives them to it", async () => {
    const data = dataDir();
    const col = userFile(data, "collection.anki2");
    const { db, path } = scratch(data, "DELETE", 2);
    db.close();
    copyFileSync(path, col);
    rmSync(path);
    chmodSync(col, 0o600);
    const root = process.getuid?.() === 0;
    // Another user when we are root; ourselves with the file made unreadable otherwise.
    const uid = root ? 4242 : (process.getuid?.() ?? 0);
    const gid = root ? 4343 : (process.getgid?.() ?? 0);
    if (!root) chmodSync(col, 0o200);
    const check = await doctor(data, { uid, gid });
    expect(
      about(check.findings, "collection.anki2")
        .map((f) => f.message)
        .join(),
    ).toContain(`user ${uid}:${gid} cannot read and write`);
    if (!root) {
      chmodSync(col, 0o600);
      return;
    }
    const fix = await doctor(data, { uid, gid, fix: true });
    expect(summarize(fix).remaining).toBe(0);
    expect(statSync(col).uid).toBe(uid);
    expect(statSync(join(data, "collections", UUID, ".lock")).uid).toBe(uid);
    expect(statSync(data).uid).toBe(uid);
  });
});
