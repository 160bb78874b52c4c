/**
 * The upload pipeline (executor/receiveUpload.ts) on its failure paths, with an executor that
 * fails where a real one can: a task thread that dies after writing part of its output, an
 * install job that fails, a body past the limit, temporaries already at their limit. Whatever
 * fails, no temporary of the upload is left in the user's folder.
 */
import { afterEach, beforeEach, describe, expect, test } from "bun:test";
import {
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  writeFileSync,
} from "node:fs";
import { tmpdir } from "node:os";
import { basename, join } from "node:path";
import type { CollectionExecutor } from "../../src/executor/executor.ts";
import type { Job } from "../../src/executor/jobs.ts";
import {
  receiveCollectionUpload,
  receiveMediaUpload,
  type UploadSite,
} from "../../src/executor/receiveUpload.ts";
import type { Task } from "../../src/executor/tasks.ts";
import { unpackFromPort } from "../../src/executor/unpackOnTask.ts";
import { openDatabase } from "../../src/platform/sqlite.ts";
import { createEmptyCollection } from "../../src/storage/collection/collectionFile.ts";
import { tempPathBeside, userPaths } from "../../src/storage/paths.ts";
import { prepareUpload } from "../../src/sync/collection/prepareUpload.ts";
import { UPLOAD_CORRUPT, UPLOAD_TOO_LARGE } from "../../src/sync/collection/uploadReplies.ts";
import { SyncError } from "../../src/sync/errors.ts";

const user = { uuid: "u1" };
/** Whether the executor takes an upload's body on a task (run in this thread here). */
let unpackOnTask = false;
let dataDir: string;

beforeEach(() => {
  dataDir = mkdtempSync(join(tmpdir(), "ankisyncd-receive-"));
});
afterEach(() => {
  unpackOnTask = false;
  rmSync(dataDir, { recursive: true, force: true });
});

const userDir = () => userPaths(dataDir, user.uuid).dir;
/** The upload's temporaries in the user's folder (which a small media batch never makes). */
const leftovers = () =>
  existsSync(userDir()) ? readdirSync(userDir()).filter((name) => name.includes(".tmp-")) : [];
const body = (bytes: number) => new Blob([new Uint8Array(bytes).fill(1)]).stream();
/** A body as a v11 client sends it: `bytes` bytes, zstd-compressed. */
const zstdBody = (bytes: number) =>
  new Blob([new Uint8Array(Bun.zstdCompressSync(new Uint8Array(bytes).fill(1)))]).stream();
/**
 * A small collection file as a client uploads it, whole or with one byte of an index changed:
 * SQLite opens it, and only its integrity check finds the row missing from the index.
 */
function collectionBytes(corrupt: boolean): Uint8Array {
  const path = join(dataDir, "made.anki2");
  createEmptyCollection(path);
  const db = openDatabase(path);
  const insert = db.prepare("insert into notes values (?, ?, 1, 1, 0, '', 'x', 'x', ?, 0, '')");
  for (let i = 1; i <= 50; i++) insert.run(i, `g${i}`, i);
  const { rootpage } = db
    .query("select rootpage from sqlite_master where name = 'ix_notes_csum'")
    .get() as { rootpage: number };
  db.close();
  const bytes = new Uint8Array(readFileSync(path));
  rmSync(path);
  // The last byte of the index's only page: the row id of its last entry.
  if (corrupt) bytes.set([(bytes.at(rootpage * 4096 - 1) ?? 0) ^ 1], rootpage * 4096 - 1);
  return bytes;
}
const compressed = (bytes: Uint8Array) =>
  new Blob([new Uint8Array(Bun.zstdCompressSync(bytes))]).stream();

/** A body that fails with the client's error after its first chunk. */
const brokenBody = () =>
  new ReadableStream<Uint8Array>({
    start(controller) {
      controller.enqueue(Bun.zstdCompressSync(new Uint8Array(1000)).subarray(0, 8));
    },
    pull(controller) {
      controller.error(new Error("client went away"));
    },
  });

/** An executor whose task and jobs do what the test says, recording what it was given. */
function executor(
  onTask: (task: Task) => unknown,
  onJob: (job: Job) => unknown = () => ({ reply: "OK", detail: "" }),
): CollectionExecutor & { tasks: Task[]; jobs: Job[]; warmed: number; received: number } {
  const tasks: Task[] = [];
  const jobs: Job[] = [];
  return {
    tasks,
    jobs,
    warmed: 0,
    received: 0,
    warmTasks() {
      this.warmed++;
    },
    warmUser() {},
    answerAhead: () => undefined,
    // A task thread's side of the body run in this thread, or none: the main thread unpacks it.
    tryReceiveOnTask(task) {
      if (!unpackOnTask || task.kind !== "unpackUpload") return null;
      this.received++;
      return unpackFromPort(task.input) as never;
    },
    run: async (job) => {
      jobs.push(job);
      return onJob(job) as never;
    },
    runTask: async (task) => {
      tasks.push(task);
      return onTask(task) as never;
    },
    close: async () => {},
  };
}

/** For the cases that must end before any task runs. */
const noTask = (): never => {
  throw new Error("no task expected");
};

const site = (exec: CollectionExecutor, maxTempBytes = 1 << 30): UploadSite => ({
  executor: exec,
  dataDir,
  limits: { maxUncompressedBytes: 1 << 20, maxTempBytes },
});

/** What a task thread that dies half-way leaves: part of its output, then the crash. */
function dyingTask(task: Task): never {
  if (
    task.kind === "unpackUpload" ||
    task.kind === "makeReadyDownload" ||
    task.kind === "publishReadyBody"
  )
    throw new Error("unexpected");
  if (task.kind === "prepareUpload") {
    writeFileSync(task.input.preparedPath, "half a collection");
    writeFileSync(`${task.input.preparedPath}-journal`, "journal");
  } else {
    mkdirSync(task.paths.staging);
    writeFileSync(join(task.paths.staging, "0"), "staged");
    writeFileSync(task.paths.zipPath, "zip");
  }
  throw new SyncError("serverError", "task worker: crashed");
}

for (const onTask of [false, true]) {
  describe(`full upload, the body unpacked on ${onTask ? "a task thread" : "the main thread"}`, () => {
    beforeEach(() => {
      unpackOnTask = onTask;
    });

    test("the task is given the body decompressed, and its thread was started meanwhile", async () => {
      let seen = "";
      const exec = executor((task) => {
        if (task.kind !== "prepareUpload") throw new Error("unexpected");
        seen = readFileSync(task.input.preparedPath, "latin1");
        return { ready: true, preparedPath: task.input.preparedPath, convertedFrom: 18 };
      });
      const outcome = await receiveCollectionUpload(site(exec), {
        user,
        body: zstdBody(300_000),
        compression: "zstd",
      });
      expect(outcome.reply).toBe("OK");
      expect(seen).toBe("\x01".repeat(300_000));
      expect(exec.warmed).toBe(1);
      expect(exec.received).toBe(onTask ? 1 : 0);
      expect(leftovers()).toEqual([]);
    });

    test("a collection is checked by the thread that received it, if any; the task is told", async () => {
      const told: unknown[] = [];
      const exec = executor((task) => {
        if (task.kind !== "prepareUpload") throw new Error("unexpected");
        told.push(task.input.integrity);
        return { ready: true, preparedPath: task.input.preparedPath, convertedFrom: 11 };
      });
      const body = compressed(collectionBytes(false));
      const outcome = await receiveCollectionUpload(site(exec), {
        user,
        body,
        compression: "zstd",
      });
      expect(outcome.reply).toBe("OK");
      // Unpacked on the main thread, the task checks the file itself.
      expect(told).toEqual([onTask ? { ok: true } : undefined]);
    });

    test("a current client's upload: its download made meanwhile by the receiving thread", async () => {
      const told: unknown[] = [];
      const exec = executor((task) => {
        if (task.kind !== "prepareUpload") throw new Error("unexpected");
        told.push({ ...task.input, preparedPath: "" });
        return { ...prepareUpload(task.input), fingerprint: "xxh3:1" };
      });
      const upload = {
        user,
        body: compressed(collectionBytes(false)),
        compression: "zstd" as const,
      };
      const outcome = await receiveCollectionUpload(site(exec), upload, "fast");
      expect(outcome.reply).toBe("OK");
      if (!onTask) {
        // Unpacked on the main thread: nothing made, the task checks the file itself.
        expect(told).toEqual([{ preparedPath: "", fingerprint: false }]);
        expect(outcome.ready).toBeUndefined();
        expect(leftovers()).toEqual([]);
        return;
      }
      // The receiving thread made the body instead of checking: the preparation checks.
      expect(told).toEqual([{ preparedPath: "", fingerprint: true }]);
      expect(outcome.ready?.fingerprint).toBe("xxh3:1");
      const body = await outcome.ready?.body;
      expect(body?.schema).toBe(18);
      expect(Bun.zstdDecompressSync(readFileSync(body?.path ?? "")).byteLength).toBe(
        body?.originalSize ?? -1,
      );
      // The body is the caller's to publish; nothing else is left.
      expect(leftovers()).toEqual([basename(body?.path ?? "")]);
    });

    test("a refused upload's download in the making is removed once made", async () => {
      const exec = executor((task) => {
        if (task.kind !== "prepareUpload") throw new Error("unexpected");
        return { ready: false, reply: UPLOAD_CORRUPT, detail: "refused" };
      });
      const upload = {
        user,
        body: compressed(collectionBytes(false)),
        compression: "zstd" as const,
      };
      const outcome = await receiveCollectionUpload(site(exec), upload, "fast");
      expect(outcome.reply).toBe(UPLOAD_CORRUPT);
      expect(outcome.ready).toBeUndefined();
      for (let i = 0; i < 100 && leftovers().length > 0; i++) await Bun.sleep(10);
      expect(leftovers()).toEqual([]);
    });

    test("a collection whose index disagrees with its table is refused as corrupt", async () => {
      const exec = executor((task) => {
        if (task.kind !== "prepareUpload") throw new Error("unexpected");
        return prepareUpload(task.input);
      });
      const body = compressed(collectionBytes(true));
      const outcome = await receiveCollectionUpload(site(exec), {
        user,
        body,
        compression: "zstd",
      });
      expect(outcome.reply).toBe(UPLOAD_CORRUPT);
      expect(outcome.detail).toContain("row 1 missing from index ix_notes_csum");
      expect(exec.jobs.filter((job) => job.kind === "upload")).toEqual([]);
      expect(leftovers()).toEqual([]);
    });

    test("a body that does not decompress is a 400, read to its end, nothing run", async () => {
      const exec = executor(noTask);
      const stream = body(200_000);
      const err = await receiveCollectionUpload(site(exec), {
        user,
        body: stream,
        compression: "zstd",
      }).catch((e) => e);
      expect((err as SyncError).kind).toBe("badRequest");
      expect((err as SyncError).message).toContain("cannot decompress upload");
      expect(stream.locked).toBe(false);
      expect(exec.tasks).toEqual([]);
      expect(leftovers()).toEqual([]);
    });

    test("a truncated body is a 400, nothing run", async () => {
      const exec = executor(noTask);
      const whole = Bun.zstdCompressSync(new Uint8Array(100_000).fill(7));
      const err = await receiveCollectionUpload(site(exec), {
        user,
        body: new Blob([new Uint8Array(whole.subarray(0, whole.byteLength - 4))]).stream(),
        compression: "zstd",
      }).catch((e) => e);
      expect((err as SyncError).kind).toBe("badRequest");
      expect(leftovers()).toEqual([]);
    });

    test("a body sent past the limit uncompressed is answered 'too large'", async () => {
      const exec = executor(noTask);
      const outcome = await receiveCollectionUpload(site(exec), {
        user,
        body: body(2 << 20),
        compression: "none",
      });
      expect(outcome.reply).toBe(UPLOAD_TOO_LARGE);
      expect(leftovers()).toEqual([]);
    });

    test("a client that goes away mid-body: its error, nothing run, nothing left", async () => {
      const exec = executor(noTask);
      const upload = receiveCollectionUpload(site(exec), {
        user,
        body: brokenBody(),
        compression: "zstd",
      });
      await expect(upload).rejects.toThrow("client went away");
      expect(exec.tasks).toEqual([]);
      expect(exec.jobs).toEqual([]);
      expect(leftovers()).toEqual([]);
    });

    test("a task thread that dies leaves no temporary", async () => {
      const exec = executor(dyingTask);
      const upload = receiveCollectionUpload(site(exec), {
        user,
        body: zstdBody(1000),
        compression: "zstd",
      });
      await expect(upload).rejects.toThrow("crashed");
      expect(exec.tasks.length).toBe(1);
      expect(leftovers()).toEqual([]);
    });

    test("an install job that fails leaves no prepared file", async () => {
      const exec = executor(
        (task) => {
          if (task.kind !== "prepareUpload") throw new Error("unexpected");
          writeFileSync(task.input.preparedPath, "prepared");
          return { ready: true, preparedPath: task.input.preparedPath, convertedFrom: 11 };
        },
        () => {
          throw new SyncError("serverError", "worker crashed");
        },
      );
      const upload = receiveCollectionUpload(site(exec), {
        user,
        body: zstdBody(1000),
        compression: "zstd",
      });
      await expect(upload).rejects.toThrow("worker crashed");
      // The collection is put at rest while the task runs; that job failing too is the install's
      // to meet.
      expect(exec.jobs.map((j) => j.kind)).toEqual(["rest", "upload"]);
      expect(leftovers()).toEqual([]);
    });

    test("a body past the limit is answered 'too large', nothing run", async () => {
      const exec = executor(noTask);
      const outcome = await receiveCollectionUpload(site(exec), {
        user,
        body: zstdBody(2 << 20),
        compression: "zstd",
      });
      expect(outcome.reply).toBe(UPLOAD_TOO_LARGE);
      expect(exec.tasks).toEqual([]);
      // Nor is the collection touched: a body that fails leaves it as it was.
      expect(exec.jobs).toEqual([]);
      expect(leftovers()).toEqual([]);
    });

    test("a refused upload (not ready) is answered without an install job", async () => {
      const exec = executor(() => ({ ready: false, reply: "corrupt", detail: "not a database" }));
      const outcome = await receiveCollectionUpload(site(exec), {
        user,
        body: zstdBody(10),
        compression: "zstd",
      });
      expect(outcome).toEqual({ reply: "corrupt", detail: "not a database" });
      expect(exec.jobs.map((j) => j.kind)).toEqual(["rest"]);
      expect(leftovers()).toEqual([]);
    });

    test("temporaries at their limit: 409 before the body is read", async () => {
      mkdirSync(userDir(), { recursive: true });
      writeFileSync(
        tempPathBeside(join(userDir(), "collection.anki2"), ".incoming"),
        "x".repeat(100),
      );
      const exec = executor(noTask);
      const stream = body(10);
      const upload = receiveCollectionUpload(site(exec, 100), {
        user,
        body: stream,
        compression: "zstd",
      });
      const err = await upload.catch((e) => e);
      expect(err).toBeInstanceOf(SyncError);
      expect((err as SyncError).kind).toBe("conflict");
      expect(stream.locked).toBe(false);
    });
  });
}

describe("full upload, the body on a task thread", () => {
  beforeEach(() => {
    unpackOnTask = true;
  });

  test("a body many times the window the main thread may run ahead comes through whole", async () => {
    // Incompressible, so the compressed body is as large: 8 MiB is the window.
    const bytes = new Uint8Array(20 << 20);
    let x = 2463534242;
    for (let i = 0; i < bytes.length; i++) {
      x ^= x << 13;
      x ^= x >>> 17;
      x ^= x << 5;
      bytes[i] = x & 0xff;
    }
    let seen = new Uint8Array();
    const exec = executor((task) => {
      if (task.kind !== "prepareUpload") throw new Error("unexpected");
      seen = new Uint8Array(readFileSync(task.input.preparedPath));
      return { ready: true, preparedPath: task.input.preparedPath, convertedFrom: 18 };
    });
    const compressed = new Uint8Array(Bun.zstdCompressSync(bytes));
    const outcome = await receiveCollectionUpload(
      {
        executor: exec,
        dataDir,
        limits: { maxUncompressedBytes: 64 << 20, maxTempBytes: 1 << 30 },
      },
      { user, body: new Blob([compressed]).stream(), compression: "zstd" },
    );
    expect(outcome.reply).toBe("OK");
    expect(exec.received).toBe(1);
    expect(seen.byteLength).toBe(bytes.byteLength);
    expect(Buffer.compare(seen, bytes)).toBe(0);
    expect(leftovers()).toEqual([]);
  });

  test("a making that fails while the upload is prepared waits for the answer, unhandled by none", async () => {
    const exec = executor(async (task) => {
      if (task.kind !== "prepareUpload") throw new Error("unexpected");
      await Bun.sleep(100);
      return prepareUpload(task.input);
    });
    // The receiving thread's side: the file written and said so, the making failing soon after.
    exec.tryReceiveOnTask = (task) => {
      if (task.kind !== "unpackUpload") return null;
      const { port, path } = task.input;
      port.onmessage = (event) => {
        if (event.data !== "end") return;
        writeFileSync(path, "not a database");
        port.postMessage("written");
      };
      return Bun.sleep(30).then(() => ({ ok: true, notMade: "file is not a database" })) as never;
    };
    const upload = { user, body: zstdBody(1000), compression: "zstd" as const };
    const outcome = await receiveCollectionUpload(site(exec), upload, "fast");
    expect(outcome.reply).toBe(UPLOAD_CORRUPT);
    expect(outcome.ready).toBeUndefined();
    expect(leftovers()).toEqual([]);
  });

  test("a making whose answer comes before the word that the file is written is still had", async () => {
    const exec = executor((task) => {
      if (task.kind !== "prepareUpload") throw new Error("unexpected");
      return {
        ready: true,
        preparedPath: task.input.preparedPath,
        convertedFrom: 18,
        fingerprint: "f",
      };
    });
    exec.tryReceiveOnTask = (task) => {
      if (task.kind !== "unpackUpload" || !task.input.keep) return null;
      const { port, path, keep } = task.input;
      return new Promise((resolve) => {
        port.onmessage = (event) => {
          if (event.data !== "end") return;
          writeFileSync(path, "a collection");
          writeFileSync(keep.body, "a body");
          const made = { path: keep.body, now: 1, schema: 18, originalSize: 12, bodySize: 6 };
          resolve({ ok: true, made });
        };
      }) as never;
    };
    const upload = { user, body: zstdBody(1000), compression: "zstd" as const };
    const outcome = await receiveCollectionUpload(site(exec), upload, "fast");
    expect(outcome.reply).toBe("OK");
    expect(outcome.ready?.fingerprint).toBe("f");
    const body = await outcome.ready?.body;
    expect(readFileSync(body?.path ?? "", "utf8")).toBe("a body");
  });

  test("a receiving task whose thread dies mid-body leaves no temporary", async () => {
    const exec = executor(noTask);
    exec.tryReceiveOnTask = (task) => {
      if (task.kind !== "unpackUpload") return null;
      writeFileSync(task.input.path, "part of a body");
      return Promise.reject(new SyncError("serverError", "task worker: crashed")) as never;
    };
    const upload = receiveCollectionUpload(site(exec), {
      user,
      body: zstdBody(300_000),
      compression: "zstd",
    });
    await expect(upload).rejects.toThrow("crashed");
    expect(exec.jobs).toEqual([]);
    expect(leftovers()).toEqual([]);
  });
});

describe("media upload", () => {
  test("a small batch is done in place: no task, no temporary", async () => {
    const exec = executor(noTask, () => [2, 7]);
    const result = await receiveMediaUpload(site(exec), {
      user,
      body: body(100),
      compression: "zstd",
    });
    expect(result).toEqual([2, 7]);
    expect(exec.jobs.map((j) => (j.kind === "media" ? j.op.method : j.kind))).toEqual([
      "uploadSmallChanges",
    ]);
    expect(leftovers()).toEqual([]);
  });

  test("a small body that is not small after all goes to the task; a dying task leaves nothing", async () => {
    const exec = executor(dyingTask, () => null);
    const upload = receiveMediaUpload(site(exec), { user, body: body(100), compression: "zstd" });
    await expect(upload).rejects.toThrow("crashed");
    expect(exec.tasks.map((t) => t.kind)).toEqual(["stageMediaUpload"]);
    expect(leftovers()).toEqual([]);
    expect(existsSync(join(userDir(), "media"))).toBe(false);
  });

  describe("temporaries at their limit", () => {
    /** A temporary of 100 bytes already in the user's folder, and a limit of 100. */
    const full = (exec: CollectionExecutor): UploadSite => {
      mkdirSync(userDir(), { recursive: true });
      writeFileSync(
        tempPathBeside(join(userDir(), "collection.anki2"), ".incoming"),
        "x".repeat(100),
      );
      return { ...site(exec, 100), limits: { maxUncompressedBytes: 4 << 20, maxTempBytes: 100 } };
    };

    test("a small batch, kept in memory, is still done in place", async () => {
      const exec = executor(noTask, () => [2, 7]);
      const upload = { user, body: body(100), compression: "zstd" as const };
      expect(await receiveMediaUpload(full(exec), upload)).toEqual([2, 7]);
    });

    // Too large to keep in memory as sent; or small as sent, but not once decompressed (the
    // in-place job's null).
    for (const [what, bytes] of [
      ["a body too large to keep in memory", 2 << 20],
      ["a small body that is not small after all", 100],
    ] as const) {
      test(`${what}: 409 before it is written, no task`, async () => {
        const exec = executor(noTask, () => null);
        const fullSite = full(exec);
        const before = leftovers();
        const upload = { user, body: body(bytes), compression: "zstd" as const };
        const err = await receiveMediaUpload(fullSite, upload).catch((e) => e);
        expect((err as SyncError).kind).toBe("conflict");
        expect(exec.tasks).toEqual([]);
        expect(leftovers()).toEqual(before);
      });
    }
  });

  test("a body past the limit is a 400, nothing run", async () => {
    const exec = executor(noTask);
    const err = await receiveMediaUpload(site(exec), {
      user,
      body: body(2 << 20),
      compression: "zstd",
    }).catch((e) => e);
    expect((err as SyncError).kind).toBe("badRequest");
    expect(exec.tasks).toEqual([]);
    expect(leftovers()).toEqual([]);
  });
});
