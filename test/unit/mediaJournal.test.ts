/**
 * Small media batches are made durable by the user's media journal (docs/media.md#durability).
 * Each crash point is simulated by stopping between steps (or failing one) and opening the store
 * again, as a restarted server would: a batch answered OK must be whole, one that failed must
 * have left the store as it was.
 */
import { afterEach, beforeEach, describe, expect, spyOn, test } from "bun:test";
import { createHash } from "node:crypto";
import {
  appendFileSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  statSync,
  truncateSync,
  writeFileSync,
} from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { silentLogger } from "../../src/log.ts";
import { openDatabase } from "../../src/platform/sqlite.ts";
import {
  decodeJournal,
  decodeRecords,
  encodeRecords,
  type JournalRows,
  MediaJournal,
} from "../../src/storage/media/journal.ts";
import { MediaDb } from "../../src/storage/media/mediaDb.ts";
import {
  committedRows,
  journalPath,
  MediaStore,
  replayJournal,
} from "../../src/storage/media/mediaStore.ts";
import { userPaths } from "../../src/storage/paths.ts";
import { sweepDeadTemporaries } from "../../src/storage/startupSweep.ts";
import { uploadSmallChanges } from "../../src/sync/media/upload.ts";
import { uploadChanges } from "../helpers/mediaUpload.ts";
import { type UploadItem, uploadZip } from "../helpers/mediaZip.ts";
import { testUserHost } from "../helpers/userHost.ts";

let dataDir: string;
let store: MediaStore;
const LIMITS = { maxUncompressedBytes: 300 * 1024 * 1024 };
const paths = () => userPaths(dataDir, "user-1");

beforeEach(() => {
  dataDir = mkdtempSync(join(tmpdir(), "ankisyncd-journal-"));
  store = new MediaStore(paths(), { networkFs: false });
  mkdirSync(store.paths.dir, { recursive: true });
});
afterEach(() => {
  store.close();
  rmSync(dataDir, { recursive: true, force: true });
});

const sha1 = (data: Uint8Array | string) => createHash("sha1").update(data).digest();
const bytes = (text: string) => new TextEncoder().encode(text);

/** A small batch, the way the server takes it in place on the user's worker. */
async function put(items: UploadItem[]) {
  const result = await uploadSmallChanges(store, uploadZip(items), "none", LIMITS);
  if (!result) throw new Error("not taken in place");
  // Its files are placed after the answer; the next use of the store waits for that.
  await store.settled();
  return result;
}

/** A large batch's way (staged and synced files): the journal is not involved. */
async function putStaged(items: UploadItem[]) {
  const incomingPath = store.tempPath(".upload");
  writeFileSync(incomingPath, uploadZip(items));
  return uploadChanges(store, { incomingPath, compression: "none" }, LIMITS);
}

/** The process stops here: the store is dropped unclosed-by-checkpoint and opened anew. */
function restart(): MediaStore {
  store.close();
  store = new MediaStore(paths(), { networkFs: false });
  return store;
}

const journal = () => journalPath(paths());
const journalSize = () => (existsSync(journal()) ? statSync(journal()).size : 0);
const file = (name: string) => join(paths().media, name);
const content = (name: string) => readFileSync(file(name), "utf8");
const mediaFiles = () => readdirSync(paths().media).sort();

let snapshots = 0;
/** media.db as its commits so far left it: what a power loss may roll it back to later. */
function snapshotDb(): Uint8Array {
  const copy = join(dataDir, `snapshot-${snapshots++}.db`);
  const db = openDatabase(paths().mediaDb);
  try {
    db.exec(`VACUUM INTO '${copy}'`);
  } finally {
    db.close();
  }
  return readFileSync(copy);
}

/** A power loss rolled media.db back to `snapshot` (its later commits were never synced). */
function losePowerTo(snapshot: Uint8Array): MediaStore {
  store.close();
  writeFileSync(paths().mediaDb, snapshot);
  for (const suffix of ["-wal", "-shm"]) rmSync(`${paths().mediaDb}${suffix}`, { force: true });
  return restart();
}

function state() {
  const db = store.db();
  const files = Object.fromEntries(mediaFiles().map((n) => [n, content(n)]));
  return { meta: db.meta(), rows: db.changesAfter(-1, 1_000_000), files };
}

describe("a small batch", () => {
  test("is journaled with its files, placed, and the journal emptied by a checkpoint", async () => {
    expect(
      await put([
        ["a.jpg", "aaa"],
        ["b.jpg", "bbb"],
      ]),
    ).toEqual([2, 2]);
    expect(content("a.jpg")).toBe("aaa");
    const records = decodeRecords(readFileSync(journal()));
    expect(records.map((r) => [r.name, new TextDecoder().decode(r.bytes)])).toEqual([
      ["a.jpg", "aaa"],
      ["b.jpg", "bbb"],
    ]);
    expect(store.wantsCheckpoint).toBe(true);
    expect(await store.checkpoint()).toBe(true);
    expect(journalSize()).toBe(0);
    expect(store.wantsCheckpoint).toBe(false);
    expect(content("b.jpg")).toBe("bbb");
    // No temporaries are left beside the folder.
    expect(readdirSync(paths().dir).filter((n) => n.includes(".tmp-"))).toEqual([]);
  });

  test("deletions alone journal their rows, no file", async () => {
    await put([["a.jpg", "aaa"]]);
    await store.checkpoint();
    await put([["a.jpg", null]]);
    const journaled = decodeJournal(readFileSync(journal()));
    expect(journaled.files).toEqual([]);
    expect(journaled.rows.map((r) => [r.prevUsn, r.meta.lastUsn, r.entries.length])).toEqual([
      [1, 2, 1],
    ]);
    expect(existsSync(file("a.jpg"))).toBe(false);
  });

  test("a batch that changes nothing writes no journal", async () => {
    await put([["a.jpg", "aaa"]]);
    await store.checkpoint();
    expect(await put([["a.jpg", "aaa"]])).toEqual([1, 1]);
    expect(journalSize()).toBe(0);
  });

  test("a checkpoint that an upload overtakes keeps the journal", async () => {
    await put([["a.jpg", "aaa"]]);
    // The checkpoint waits for its syncs; an append starts meanwhile (as the next job would).
    const checkpoint = store.checkpoint();
    const appended = store.journalBatch(
      [{ name: "b.jpg", sha1: sha1("b"), bytes: bytes("b") }],
      null,
    );
    expect(await checkpoint).toBe(false);
    await appended;
    store.batchCommitted();
    expect(decodeRecords(readFileSync(journal())).map((r) => r.name)).toEqual(["a.jpg", "b.jpg"]);
    expect(await store.checkpoint()).toBe(true);
    expect(journalSize()).toBe(0);
  });

  test("a journal past its bound is emptied by the upload that passed it", async () => {
    const big = (tag: string) => new Uint8Array(900 * 1024).fill(tag.charCodeAt(0));
    for (let i = 0; i < 20; i++) await put([[`f${i}.bin`, big(String(i % 10))]]);
    // The 19th batch of 900 KiB passes 16 MiB: emptied there, the 20th journaled again.
    expect(journalSize()).toBeLessThan(4 * 1024 * 1024);
    expect(journalSize()).toBeGreaterThan(0);
  });
});

describe("crash points of a small batch", () => {
  test("journal partly written: the batch never committed, the store is as it was", async () => {
    await put([["a.jpg", "aaa"]]);
    const before = state();
    // The next batch's record, cut off halfway (the disk took only part of the write).
    const torn = encodeRecords([{ name: "a.jpg", sha1: sha1("changed"), bytes: bytes("changed") }]);
    appendFileSync(journal(), torn.subarray(0, torn.byteLength - 5));
    restart();
    expect(state()).toEqual(before);
    expect(journalSize()).toBe(0);
  });

  test("journal synced, the commit failed: the batch's records are taken back", async () => {
    await put([["a.jpg", "aaa"]]);
    const before = state();
    const commit = spyOn(MediaDb.prototype, "transaction").mockImplementationOnce(() => {
      throw new Error("disk I/O error");
    });
    try {
      await expect(
        put([
          ["a.jpg", "new content"],
          ["b.jpg", "bbb"],
        ]),
      ).rejects.toThrow("disk I/O error");
    } finally {
      commit.mockRestore();
    }
    // Refused as a whole: nothing placed, no temporaries.
    expect(state()).toEqual(before);
    expect(readdirSync(paths().dir).filter((n) => n.includes(".tmp-"))).toEqual([]);
    // The records were synced before the commit, then taken back.
    expect(decodeRecords(readFileSync(journal())).map((r) => r.name)).toEqual(["a.jpg"]);
    restart();
    expect(state()).toEqual(before);
    expect(journalSize()).toBe(0);
    // And the next batch goes on normally.
    expect(await put([["b.jpg", "bbb"]])).toEqual([1, 2]);
  });

  test("committed, files not placed or not synced (power loss): replay puts them back", async () => {
    await put([
      ["a.jpg", "aaa"],
      ["b.jpg", "bbb"],
    ]);
    await put([["a.jpg", "second"]]);
    const after = state();
    // What a power loss can leave of files never synced: gone, empty, or an older content.
    rmSync(file("b.jpg"));
    writeFileSync(file("a.jpg"), "");
    restart();
    expect(state()).toEqual(after);
    expect(content("a.jpg")).toBe("second");
    expect(journalSize()).toBe(0);
  });

  test("a file that fails to reach its place after the answer is put there before the next use", async () => {
    await put([["a.jpg", "aaa"]]);
    // A directory in the way makes the placing fail; the batch was durable when answered.
    mkdirSync(file("blocked.jpg"));
    expect(await put([["blocked.jpg", "content"]])).toEqual([1, 2]);
    rmSync(file("blocked.jpg"), { recursive: true });
    expect(existsSync(file("blocked.jpg"))).toBe(false);
    // The next use of the store replays the journal first.
    expect(store.db().liveEntry("blocked.jpg")).not.toBeNull();
    expect(content("blocked.jpg")).toBe("content");
    expect(journalSize()).toBe(0);
    expect(readdirSync(paths().dir).filter((n) => n.includes(".tmp-"))).toEqual([]);
  });

  test("answered, then the process stopped before the files were placed: replay places them", async () => {
    await put([["a.jpg", "aaa"]]);
    const result = await uploadSmallChanges(
      store,
      uploadZip([
        ["a.jpg", "changed"],
        ["b.jpg", "bbb"],
      ]),
      "none",
      LIMITS,
    );
    expect(result).toEqual([2, 3]);
    // The answer goes out before the files are placed.
    expect(store.settling).toBe(true);
    restart();
    // The journal is replayed before anything reads the store.
    expect(store.db().meta().lastUsn).toBe(3);
    expect(content("a.jpg")).toBe("changed");
    expect(content("b.jpg")).toBe("bbb");
    expect(journalSize()).toBe(0);
    expect(readdirSync(paths().dir).filter((n) => n.includes(".tmp-"))).toEqual([]);
  });

  test("replay interrupted: done again from the start, same result", async () => {
    await put([
      ["a.jpg", "aaa"],
      ["b.jpg", "bbb"],
    ]);
    const after = state();
    const records = decodeRecords(readFileSync(journal()));
    rmSync(file("a.jpg"));
    rmSync(file("b.jpg"));
    // A replay that stopped after the first file (the journal not emptied).
    const db = MediaDb.open(paths().mediaDb, { networkFs: false });
    try {
      replayJournal(db, paths(), { files: records.slice(0, 1), rows: [] });
    } finally {
      db.close();
    }
    expect(existsSync(file("b.jpg"))).toBe(false);
    restart();
    expect(state()).toEqual(after);
    expect(journalSize()).toBe(0);
  });

  test("deletions in the same batch and later: replay never brings a deleted file back", async () => {
    await put([
      ["x.jpg", "one"],
      ["y.jpg", "y"],
    ]);
    await put([
      ["x.jpg", "two"],
      ["x.jpg", null],
      ["z.jpg", "z"],
    ]);
    await put([["y.jpg", null]]);
    const after = state();
    expect(after.files).toEqual({ "z.jpg": "z" });
    // A power loss undid the removals and the placement of z.
    writeFileSync(file("x.jpg"), "one");
    writeFileSync(file("y.jpg"), "y");
    rmSync(file("z.jpg"));
    restart();
    expect(state()).toEqual(after);
  });

  test("a journal superseded by later batches (either path) writes nothing old", async () => {
    await put([["a.jpg", "first"]]);
    await putStaged([["a.jpg", "staged later"]]);
    await put([["b.jpg", "b1"]]);
    await put([["b.jpg", "b2"]]);
    const after = state();
    restart();
    expect(state()).toEqual(after);
    expect(content("a.jpg")).toBe("staged later");
    expect(content("b.jpg")).toBe("b2");
  });

  test("an emptying the disk did not keep: the stale records are harmless", async () => {
    await put([["a.jpg", "first"]]);
    const stale = readFileSync(journal());
    await store.checkpoint();
    await put([["a.jpg", "second"]]);
    await store.checkpoint();
    // The truncation is lost; the old records come back.
    writeFileSync(journal(), stale);
    const after = state();
    restart();
    expect(state()).toEqual(after);
    expect(content("a.jpg")).toBe("second");
  });

  test("garbage after a failed append is overwritten by the next one", async () => {
    await put([["a.jpg", "aaa"]]);
    await store.checkpoint();
    // An append that failed halfway left bytes; the next batch writes over them.
    writeFileSync(journal(), new Uint8Array(300).fill(0xee));
    await put([["b.jpg", "bbb"]]);
    expect(decodeRecords(readFileSync(journal())).map((r) => r.name)).toEqual(["b.jpg"]);
    truncateSync(file("b.jpg"), 0);
    restart().db();
    expect(content("b.jpg")).toBe("bbb");
  });

  test("a server starting after a crash replays the journal before serving", async () => {
    await put([["a.jpg", "aaa"]]);
    rmSync(file("a.jpg"));
    store.close();
    await sweepDeadTemporaries(dataDir, silentLogger, { networkFs: false });
    expect(journalSize()).toBe(0);
    expect(content("a.jpg")).toBe("aaa");
  });
});

describe("media.db's unsynced commits (power loss)", () => {
  test("journal synced and answered, the commit lost: replay commits it again", async () => {
    await put([
      ["a.jpg", "aaa"],
      ["b.jpg", "bbb"],
    ]);
    const before = snapshotDb();
    expect(
      await put([
        ["a.jpg", "second"],
        ["c.jpg", "ccc"],
      ]),
    ).toEqual([2, 4]);
    const after = state();
    // The files of the lost commit may be lost too.
    rmSync(file("c.jpg"));
    losePowerTo(before);
    expect(state()).toEqual(after);
    expect(journalSize()).toBe(0);
    // The usn goes on from the restored one.
    expect(await put([["d.jpg", "ddd"]])).toEqual([1, 5]);
  });

  test("crash after the journal sync, before the commit: the unanswered batch is completed", async () => {
    await put([["a.jpg", "aaa"]]);
    const meta = store.db().meta();
    // The batch's append reached the disk; the process died before its commit.
    await store.journalBatch([{ name: "b.jpg", sha1: sha1("bbb"), bytes: bytes("bbb") }], {
      prevUsn: meta.lastUsn,
      meta: { lastUsn: 2, totalBytes: 6, totalNonemptyFiles: 2 },
      entries: [{ fname: "b.jpg", csum: sha1("bbb"), size: 3, usn: 2, mtime: 1 }],
    });
    restart();
    expect(state().files).toEqual({ "a.jpg": "aaa", "b.jpg": "bbb" });
    expect(store.db().meta()).toEqual({ lastUsn: 2, totalBytes: 6, totalNonemptyFiles: 2 });
    expect(journalSize()).toBe(0);
  });

  test("replayed twice (the emptying lost, or media.db rolled back again): same result", async () => {
    await put([["a.jpg", "aaa"]]);
    const before = snapshotDb();
    await put([["b.jpg", "bbb"]]);
    await put([
      ["a.jpg", "second"],
      ["b.jpg", null],
    ]);
    const after = state();
    const journaled = readFileSync(journal());
    losePowerTo(before);
    expect(state()).toEqual(after);
    // The replay's own emptying did not reach the disk: replayed again over its result.
    store.close();
    writeFileSync(journal(), journaled);
    restart();
    expect(state()).toEqual(after);
    // And again from the rolled-back media.db.
    writeFileSync(journal(), journaled);
    losePowerTo(before);
    expect(state()).toEqual(after);
  });

  test("later batches already committed: only the lost ones are committed again", async () => {
    await put([["a.jpg", "aaa"]]);
    await put([["b.jpg", "bbb"]]);
    // media.db kept the first two commits (say, SQLite checkpointed them), not the last two.
    const kept = snapshotDb();
    await put([["a.jpg", "second"]]);
    await put([["c.jpg", "ccc"]]);
    const after = state();
    losePowerTo(kept);
    expect(state()).toEqual(after);
    expect(store.db().changesAfter(-1, 100)).toEqual([
      ["b.jpg", 2, sha1("bbb").toString("hex")],
      ["a.jpg", 3, sha1("second").toString("hex")],
      ["c.jpg", 4, sha1("ccc").toString("hex")],
    ]);
  });

  test("a lost deletion is committed again and its file removed again", async () => {
    await put([
      ["a.jpg", "aaa"],
      ["b.jpg", "bbb"],
    ]);
    await store.checkpoint();
    const before = snapshotDb();
    expect(await put([["a.jpg", null]])).toEqual([1, 3]);
    const after = state();
    // The power loss undid the removal too.
    writeFileSync(file("a.jpg"), "aaa");
    losePowerTo(before);
    expect(state()).toEqual(after);
    expect(existsSync(file("a.jpg"))).toBe(false);
    expect(store.db().entry("a.jpg")?.size).toBe(0);
  });

  test("a large (staged) batch's lost commit is restored from its journaled rows", async () => {
    await put([["a.jpg", "aaa"]]);
    const before = snapshotDb();
    await putStaged([
      ["a.jpg", "staged"],
      ["s.jpg", "sss"],
    ]);
    const after = state();
    losePowerTo(before);
    expect(state()).toEqual(after);
    expect(content("a.jpg")).toBe("staged");
  });

  test("a failed batch's records that could not be taken back are skipped once a batch follows", async () => {
    await put([["a.jpg", "aaa"]]);
    const before = snapshotDb();
    const commit = spyOn(MediaDb.prototype, "transaction").mockImplementationOnce(() => {
      throw new Error("disk I/O error");
    });
    const undo = spyOn(MediaJournal.prototype, "undo").mockImplementationOnce(() => {
      throw new Error("no space left on device");
    });
    try {
      await expect(
        put([
          ["a.jpg", "refused"],
          ["x.jpg", "refused"],
        ]),
      ).rejects.toThrow("disk I/O error");
    } finally {
      commit.mockRestore();
      undo.mockRestore();
    }
    // The next batch starts from the same usn, and cuts the failed one's records off.
    expect(await put([["b.jpg", "bbb"]])).toEqual([1, 2]);
    const after = state();
    losePowerTo(before);
    expect(state()).toEqual(after);
    expect(store.db().entry("x.jpg")).toBeNull();
  });

  test("the committed chain leaves out a failed batch followed by others", () => {
    const batch = (prevUsn: number, lastUsn: number): JournalRows => ({
      prevUsn,
      meta: { lastUsn, totalBytes: 0, totalNonemptyFiles: 0 },
      entries: [],
    });
    const chain = (rows: JournalRows[]) =>
      committedRows(rows).map((r) => [r.prevUsn, r.meta.lastUsn]);
    // 5→8 failed; 5→6 and 6→9 committed after it.
    expect(chain([batch(2, 5), batch(5, 8), batch(5, 6), batch(6, 9)])).toEqual([
      [2, 5],
      [5, 6],
      [6, 9],
    ]);
    // The last batch is kept whatever: it committed, or the crash came before its answer.
    expect(chain([batch(2, 5), batch(5, 8)])).toEqual([
      [2, 5],
      [5, 8],
    ]);
    expect(chain([])).toEqual([]);
  });

  test("a checkpoint syncs media.db before emptying the journal", async () => {
    await put([["a.jpg", "aaa"]]);
    const sync = spyOn(MediaDb.prototype, "sync");
    try {
      expect(await store.checkpoint()).toBe(true);
      expect(sync).toHaveBeenCalledTimes(1);
    } finally {
      sync.mockRestore();
    }
    expect(journalSize()).toBe(0);
  });
});

describe("a checkpoint of many files", () => {
  /** The store with a stand-in for the filesystem sync, answering `answers` in turn. */
  function storeSyncingWith(answers: boolean[], networkFs = false) {
    const calls: string[] = [];
    store.close();
    store = new MediaStore(paths(), {
      networkFs,
      syncFilesystem: async (dir) => {
        calls.push(dir);
        return answers.shift() ?? true;
      },
    });
    return calls;
  }
  /** Batches of 25 files (the client's), `count` files in all, named from `from`. */
  async function putMany(count: number, from: number) {
    for (let i = 0; i < count; i += 25) {
      const batch = Array.from(
        { length: Math.min(25, count - i) },
        (_, k): UploadItem => [`m${from + i + k}.txt`, `file ${from + i + k}`],
      );
      await put(batch);
    }
  }

  test("syncs their filesystem at once, file by file when that cannot be done, a few always file by file", async () => {
    const calls = storeSyncingWith([true, false]);
    await putMany(150, 0);
    expect(await store.checkpoint()).toBe(true);
    expect(calls).toEqual([paths().media]);
    expect(journalSize()).toBe(0);
    await putMany(150, 1000);
    // Refused (no `sync` command, not Linux): the same checkpoint, file by file.
    expect(await store.checkpoint()).toBe(true);
    expect(calls.length).toBe(2);
    expect(journalSize()).toBe(0);
    await putMany(20, 2000);
    expect(await store.checkpoint()).toBe(true);
    expect(calls.length).toBe(2);
    expect(journalSize()).toBe(0);
    expect(mediaFiles().length).toBe(320);
  });

  test("never on a network filesystem", async () => {
    const calls = storeSyncingWith([], true);
    await putMany(150, 0);
    expect(await store.checkpoint()).toBe(true);
    expect(calls).toEqual([]);
    expect(journalSize()).toBe(0);
  });
});

describe("the worker", () => {
  /** One small batch (`a.jpg`) for user-1, through the worker's in-place path. */
  const uploadOneFile = (host: ReturnType<typeof testUserHost>) =>
    host.handle({
      kind: "media",
      user: { uuid: "user-1" },
      op: {
        method: "uploadSmallChanges",
        body: uploadZip([["a.jpg", "aaa"]]),
        compression: "none",
        limits: LIMITS,
      },
    });

  test("syncs an idle user's journaled files and empties the journal before closing the user", async () => {
    store.close();
    const host = testUserHost(dataDir);
    try {
      await uploadOneFile(host);
      expect(journalSize()).toBeGreaterThan(0);
      const later = Date.now() + 7200_000;
      host.sweep(later); // starts the checkpoint; the user stays open meanwhile
      expect(host.openUsers).toBe(1);
      for (let i = 0; i < 2000 && journalSize() > 0; i++) await Bun.sleep(5);
      expect(journalSize()).toBe(0);
      for (let i = 0; i < 2000 && host.openUsers > 0; i++) {
        await Bun.sleep(5);
        host.sweep(later);
      }
      expect(host.openUsers).toBe(0);
      expect(content("a.jpg")).toBe("aaa");
    } finally {
      host.shutdown();
    }
  });

  test("the user's next job waits for the files of the batch answered before it", async () => {
    store.close();
    const host = testUserHost(dataDir);
    try {
      await uploadOneFile(host);
      const outcome = await host.handle({
        kind: "media",
        user: { uuid: "user-1" },
        op: { method: "downloadFiles", files: ["a.jpg"], compress: false },
      });
      expect("bytes" in outcome).toBe(true);
      expect(content("a.jpg")).toBe("aaa");
    } finally {
      host.shutdown();
    }
  });

  test("syncs every open user's journaled files when the server stops", async () => {
    store.close();
    const host = testUserHost(dataDir);
    try {
      await uploadOneFile(host);
      expect(journalSize()).toBeGreaterThan(0);
      await host.checkpointAll();
      expect(journalSize()).toBe(0);
    } finally {
      host.shutdown();
    }
  });
});
