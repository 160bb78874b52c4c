import { afterEach, beforeEach, describe, expect, test } from "bun:test";
import {
  copyFileSync,
  existsSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  statSync,
  writeFileSync,
} from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { Job } from "../../src/executor/jobs.ts";
import { ReadyDownloads } from "../../src/executor/readyDownloads.ts";
import type { Task } from "../../src/executor/tasks.ts";
import { createLogger } from "../../src/log.ts";
import { openDatabase } from "../../src/platform/sqlite.ts";
import { createEmptyCollection } from "../../src/storage/collection/collectionFile.ts";
import { upgradeToSchema18 } from "../../src/storage/collection/convert/upgrade.ts";
import {
  collectionFingerprint,
  copyReadySource,
} from "../../src/storage/collection/readyDownload.ts";
import { tempPathBeside, userPaths } from "../../src/storage/paths.ts";
import { loadUpgrade, makeClientCopy } from "../../src/sync/collection/download.ts";
import { prepareUpload } from "../../src/sync/collection/prepareUpload.ts";
import {
  makeReadyBody,
  makeReadyDownload,
  publishReadyBody,
  READY_PLAN,
} from "../../src/sync/collection/readyDownload.ts";
import { cannotMount, SmallFs } from "../helpers/smallFs.ts";
import { normalSyncJobs, testUserHost } from "../helpers/userHost.ts";

const user = { uuid: "user-1" };
let dataDir: string;
let host: ReturnType<typeof testUserHost>;
const stored = () => userPaths(dataDir, user.uuid).collection;
/** The ready download's files and any temporary. */
const leftovers = () =>
  readdirSync(userPaths(dataDir, user.uuid).dir).filter((n) => /ready|tmp-/.test(n));

beforeEach(() => {
  dataDir = mkdtempSync(join(tmpdir(), "ankisyncd-ready-"));
  host = testUserHost(dataDir);
});
afterEach(() => {
  host.shutdown();
  rmSync(dataDir, { recursive: true, force: true });
});

function col(path: string): { usn: number; mod: number; ver: number } {
  const db = openDatabase(path, { create: false, readonly: true });
  try {
    return db.query("select usn, mod, ver from col").get() as {
      usn: number;
      mod: number;
      ver: number;
    };
  } finally {
    db.close();
  }
}

/** Steps 1 and 2 as the server runs them after an upload, here without threads: the time of
 * the bump it carries. */
async function makeReady(): Promise<number> {
  const source = tempPathBeside(stored(), ".ready-source");
  expect(await host.handle({ kind: "copyForReady", user, target: source })).toBe(true);
  expect(await makeReadyDownload({ collection: stored(), source })).toBe(true);
  const record = JSON.parse(readFileSync(`${stored()}.ready-download.json`, "utf8"));
  return record.now as number;
}

async function download(plan = READY_PLAN) {
  const snapshot = await host.handle({ kind: "download", user, plan });
  expect(await host.handle({ kind: "commitDownload", user, token: snapshot.commit })).toBe(true);
  const bytes = readFileSync(snapshot.path);
  rmSync(snapshot.path);
  return { snapshot, file: snapshot.compressed ? Bun.zstdDecompressSync(bytes) : bytes };
}

/** A write another program makes, behind the server's back. */
function writeBehind(): void {
  const db = openDatabase(stored(), { create: false });
  db.exec("update col set crt = crt + 1");
  db.close();
}

describe("a ready download", () => {
  beforeEach(() => createEmptyCollection(stored()));

  test("is the exact file the usual path makes, and the stored file ends alike", async () => {
    const before = `${dataDir}/before.anki2`;
    copyFileSync(stored(), before);
    const now = await makeReady();
    const { snapshot, file } = await download();
    expect(snapshot.compressed).toBe(true);
    expect(snapshot.schema).toBe(18);
    expect(snapshot.originalSize).toBe(file.byteLength);
    // The usual path's copy, made from the same file with the same bump time.
    makeClientCopy(before, READY_PLAN, await loadUpgrade(), now);
    expect(Buffer.compare(file, readFileSync(before))).toBe(0);
    const sent = `${dataDir}/sent.anki2`;
    writeFileSync(sent, file);
    expect(col(sent).ver).toBe(18);
    const after = col(stored());
    expect(after.usn).toBe(col(sent).usn);
    expect(after.mod).toBe(now);
    // Served once: its bump changed the stored file, so nothing of it is left.
    expect(leftovers()).toEqual([]);
    expect((await download()).snapshot.compressed).toBeUndefined();
  });

  test("survives a meta (opened in WAL mode and put back at rest)", async () => {
    await makeReady();
    await host.handle({ kind: "meta", user, req: { v: 11, cv: "anki,26.09.3 (x),lin:x" } });
    expect(await host.handle({ kind: "release", user })).toBe(true);
    expect((await download()).snapshot.compressed).toBe(true);
  });

  test("is not served once another program changed the file, and is removed", async () => {
    await makeReady();
    writeBehind();
    const { snapshot, file } = await download();
    expect(snapshot.compressed).toBeUndefined();
    expect(col(stored()).usn).toBe(col(storedCopy(file)).usn);
    expect(leftovers()).toEqual([]);
  });

  test("is removed when a normal sync starts, and by a full upload's install", async () => {
    await makeReady();
    const call = normalSyncJobs(host, user.uuid, "s1");
    await call("start", { minUsn: 0, lnewer: false, graves: null });
    expect(leftovers()).toEqual([]);
    await host.handle({ kind: "release", user });
    await makeReady();
    const prepared = tempPathBeside(stored(), ".upload");
    createEmptyCollection(prepared);
    expect((await host.handle({ kind: "upload", user, preparedPath: prepared })).reply).toBe("OK");
    expect(leftovers()).toEqual([]);
  });

  test("is for current clients only; a download for another plan leaves it stale", async () => {
    await makeReady();
    expect((await download({ schema: 11 })).snapshot.compressed).toBeUndefined();
    expect(
      (await download({ schema: 18, unknownKeys: "refuse" })).snapshot.compressed,
    ).toBeUndefined();
    // Those downloads bumped the stored file: the body no longer matches it.
    expect((await download()).snapshot.compressed).toBeUndefined();
    expect(leftovers()).toEqual([]);
  });

  test("the copy puts an open file back at rest first, so it is served", async () => {
    await host.handle({ kind: "meta", user, req: { v: 11, cv: "anki,26.09.3 (x),lin:x" } });
    await makeReady();
    expect((await download()).snapshot.compressed).toBe(true);
    expect(leftovers()).toEqual([]);
  });

  test("no copy is taken while a normal sync is under way", async () => {
    const call = normalSyncJobs(host, user.uuid, "s1");
    await call("start", { minUsn: 0, lnewer: false, graves: null });
    const target = tempPathBeside(stored(), ".ready-source");
    expect(await host.handle({ kind: "copyForReady", user, target })).toBe(false);
    expect(leftovers()).toEqual([]);
  });
});

/**
 * A current client's upload (schema 18), as the server takes it: copied as received, then
 * prepared, with the fingerprint of what it became.
 */
function preparedUpload(): {
  prepared: string;
  sent: Buffer;
  source: string;
  fingerprint?: string;
} {
  const prepared = tempPathBeside(stored(), ".upload");
  createEmptyCollection(prepared);
  const db = openDatabase(prepared, { create: false, unicase: true });
  upgradeToSchema18(db);
  db.exec("update col set usn = 7, mod = 1700000000000");
  db.close();
  const sent = readFileSync(prepared);
  const source = tempPathBeside(stored(), ".ready-source");
  expect(copyReadySource(prepared, source)).toBe(true);
  const out = prepareUpload({ preparedPath: prepared, fingerprint: true });
  if (!out.ready) throw new Error(out.detail);
  return out.fingerprint
    ? { prepared, sent, source, fingerprint: out.fingerprint }
    : { prepared, sent, source };
}

async function installAndMake(): Promise<{ sent: Buffer; now: number }> {
  const { prepared, sent, source, fingerprint } = preparedUpload();
  const body = tempPathBeside(stored(), ".ready-body");
  const made = await makeReadyBody({ source, body, effort: "fast" });
  expect((await host.handle({ kind: "upload", user, preparedPath: prepared })).reply).toBe("OK");
  publishReadyBody(stored(), made, fingerprint ?? "");
  return { sent, now: made.now };
}

describe("a ready download from an upload as received", () => {
  beforeEach(() => createEmptyCollection(stored()));

  test("the preparation gives the fingerprint of the file installed, for schema 18 only", () => {
    const { prepared, sent, source, fingerprint } = preparedUpload();
    expect(fingerprint).toBe(collectionFingerprint(prepared));
    expect(Buffer.compare(readFileSync(source), sent)).toBe(0);
    expect(col(prepared).ver).toBe(11);
    rmSync(source);
    rmSync(prepared);
    // Schema 11 (an older client's): no fingerprint, so nothing made from it is published.
    createEmptyCollection(prepared);
    const out = prepareUpload({ preparedPath: prepared, fingerprint: true });
    expect(out.ready && out.fingerprint).toBeUndefined();
    rmSync(prepared);
    expect(leftovers()).toEqual([]);
  });

  test("a corrupt upload is refused and leaves nothing", () => {
    const prepared = tempPathBeside(stored(), ".upload");
    writeFileSync(prepared, "not a database at all, not even close".repeat(200));
    expect(prepareUpload({ preparedPath: prepared, fingerprint: true }).ready).toBe(false);
    rmSync(prepared, { force: true });
    expect(leftovers()).toEqual([]);
  });

  test("is the uploaded file with the download's bump, and the stored file ends alike", async () => {
    const { sent, now } = await installAndMake();
    const { snapshot, file } = await download();
    expect(snapshot.compressed).toBe(true);
    expect(snapshot.schema).toBe(18);
    const expected = `${dataDir}/expected.anki2`;
    writeFileSync(expected, sent);
    makeClientCopy(expected, READY_PLAN, null, now);
    expect(Buffer.compare(file, readFileSync(expected))).toBe(0);
    const got = storedCopy(file);
    expect(col(got)).toEqual({ usn: 8, mod: now, ver: 18 });
    expect(col(stored())).toEqual({ usn: 8, mod: now, ver: 11 });
    expect(leftovers()).toEqual([]);
  });

  test("is not served once the stored file changed after the upload", async () => {
    await installAndMake();
    writeBehind();
    const { snapshot, file } = await download();
    expect(snapshot.compressed).toBeUndefined();
    expect(col(storedCopy(file)).usn).toBe(8);
    expect(leftovers()).toEqual([]);
  });

  test("a making that fails leaves neither its source nor a body", async () => {
    const source = tempPathBeside(stored(), ".ready-source");
    writeFileSync(source, "not a database");
    const body = tempPathBeside(stored(), ".ready-body");
    await expect(makeReadyBody({ source, body, effort: "fast" })).rejects.toThrow();
    expect(leftovers()).toEqual([]);
  });
});

describe.skipIf(cannotMount() !== null)("copying an upload on a disk short of space", () => {
  test("no copy is taken, and none is left", () => {
    const fs = new SmallFs(16);
    try {
      const received = join(fs.dir, "collection.anki2.upload");
      createEmptyCollection(received);
      const db = openDatabase(received, { create: false, unicase: true });
      db.exec("create table filler (b blob); insert into filler values (zeroblob(2000000))");
      db.close();
      const size = statSync(received).size;
      fs.fill();
      // Room for the conversion's journal, not for a copy and a body beside it.
      fs.leave(2 * size);
      const keepAt = join(fs.dir, "collection.anki2.ready-source");
      expect(copyReadySource(received, keepAt)).toBe(false);
      expect(existsSync(keepAt)).toBe(false);
    } finally {
      fs.dispose();
    }
  });
});

let copies = 0;
function storedCopy(file: Uint8Array): string {
  const path = `${dataDir}/copy-${copies++}.anki2`;
  writeFileSync(path, file);
  return path;
}

describe("ReadyDownloads (the making's schedule)", () => {
  const log = createLogger("error", "text");
  const tasks: Task[] = [];
  const jobs: Job[] = [];
  const executor = {
    run: async (job: Job) => {
      jobs.push(job);
      return true as never;
    },
    runTask: async (task: Task) => {
      tasks.push(task);
      return true as never;
    },
  };

  test("made once the user has been quiet; a download or sync before that calls it off", async () => {
    tasks.length = 0;
    jobs.length = 0;
    const ready = new ReadyDownloads(executor, "/data", log, 20);
    ready.afterUpload(user);
    await Bun.sleep(60);
    const collection = userPaths("/data", user.uuid).collection;
    // The copy under the user's lock (a job), then the making from it (a task).
    expect(jobs).toEqual([
      { kind: "copyForReady", user, target: expect.stringContaining(".ready-source") },
    ]);
    const target = (jobs[0] as Extract<Job, { kind: "copyForReady" }>).target;
    expect(tasks).toEqual([{ kind: "makeReadyDownload", input: { collection, source: target } }]);
    ready.afterUpload(user);
    ready.userActive(user);
    ready.afterUpload({ uuid: "user-2" });
    ready.close();
    await Bun.sleep(60);
    expect(tasks).toHaveLength(1);
  });

  test("from an upload: published once made, and a current client's download waits for it", async () => {
    tasks.length = 0;
    jobs.length = 0;
    let finish: (() => void) | undefined;
    const slow = {
      run: executor.run,
      runTask: (task: Task) => {
        tasks.push(task);
        return Promise.resolve(undefined as never);
      },
    };
    const ready = new ReadyDownloads(slow, "/data", log, 20, 5_000);
    const body = { path: "/data/body", now: 1, schema: 18 as const, originalSize: 9, bodySize: 3 };
    const making = new Promise<typeof body>((resolve) => {
      finish = () => resolve(body);
    });
    const made = { body: making, fingerprint: "xxh3:1" };
    ready.afterUpload(user, made);
    const collection = userPaths("/data", user.uuid).collection;
    // Another plan does not wait; this one does, until the making ends.
    await ready.beforeDownload(user, { schema: 11 });
    let waited = false;
    const waiting = ready.beforeDownload(user, READY_PLAN).then(() => {
      waited = true;
    });
    await Bun.sleep(30);
    expect(waited).toBe(false);
    expect(tasks).toEqual([]);
    finish?.();
    await waiting;
    expect(tasks).toEqual([
      { kind: "publishReadyBody", input: { collection, body, fingerprint: "xxh3:1" } },
    ]);
    expect(jobs).toEqual([]);
    // Bounded: a making that never ends is waited for only so long.
    const stuck = new ReadyDownloads(slow, "/data", log, 20, 30);
    stuck.afterUpload(user, { body: new Promise(() => {}), fingerprint: "xxh3:1" });
    const started = Date.now();
    await stuck.beforeDownload(user, READY_PLAN);
    expect(Date.now() - started).toBeLessThan(2_000);
  });
});
