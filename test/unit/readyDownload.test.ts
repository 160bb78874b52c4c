import { afterEach, beforeEach, describe, expect, test } from "bun:test";
import {
  copyFileSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
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
import { tempPathBeside, userPaths } from "../../src/storage/paths.ts";
import { loadUpgrade, makeClientCopy } from "../../src/sync/collection/download.ts";
import { makeReadyDownload, READY_PLAN } from "../../src/sync/collection/readyDownload.ts";
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
});
