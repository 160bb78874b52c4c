/**
 * Work a normal-sync step leaves until after its reply (`StepOptions.later`, what the worker
 * asks for): the next chunk made ahead, an `applyChunk`'s writes. The client must see exactly
 * what it sees without it.
 */
import { afterEach, beforeEach, describe, expect, test } from "bun:test";
import { copyFileSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { UserHost } from "../../src/executor/host.ts";
import { UserState } from "../../src/executor/userState.ts";
import type { Db } from "../../src/platform/sqlite.ts";
import { openDatabase } from "../../src/platform/sqlite.ts";
import { userPaths } from "../../src/storage/paths.ts";
import { type NormalSyncMethod, runNormalSyncStep } from "../../src/sync/collection/normalSync.ts";
import type { SyncError } from "../../src/sync/errors.ts";
import { closeSyncUser, openSyncUser, PAD, syncFailure } from "../helpers/normalSyncUser.ts";
import { normalSyncJobs, testUserHost } from "../helpers/userHost.ts";

let dir: string;
let user: UserState;
let db: Db;

beforeEach(() => {
  ({ dir, user, db } = openSyncUser("ankisyncd-later-"));
});

afterEach(() => closeSyncUser({ dir, user, db }));

/** A step as the worker runs it with `later`: the reply, then (unless told not to) its later work. */
function call(
  method: NormalSyncMethod,
  body: unknown = PAD,
  opts: { later?: boolean; runAfter?: boolean; skey?: string } = {},
): string {
  const text = typeof body === "string" ? body : JSON.stringify(body);
  const reply = runNormalSyncStep(user, method, opts.skey ?? "k1", text, {
    later: opts.later ?? true,
  });
  if (opts.runAfter ?? true) reply.after?.();
  return reply.json;
}

function start(later = true): void {
  call("start", { minUsn: 10, lnewer: false, graves: null }, { later });
}

/** 300 each of revlog entries, notes and cards: four chunks. */
function addRows(): void {
  const models = JSON.parse(
    (db.query("select models from col").get() as { models: string }).models,
  );
  const notetype = Number(Object.keys(models)[0]);
  db.transaction(() => {
    for (let i = 1; i <= 300; i++) {
      db.query("insert into revlog values ($id, 1, 10, 3, 1, 0, 2500, 100, 1)").run({ id: i });
      db.query(
        "insert into notes values ($id, 'g' || $id, $mid, 1, 10, '', 'a' || $id || char(31) || 'b', 'a', 0, 0, '')",
      ).run({ id: 1000 + i, mid: notetype });
      db.query(
        "insert into cards values ($id, 1, 1, 0, 1, 10, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, '{}')",
      ).run({ id: 5000 + i });
    }
  })();
}

function chunks(later: boolean): string[] {
  start(later);
  const out: string[] = [];
  for (;;) {
    const json = call("chunk", PAD, { later });
    out.push(json);
    if ((JSON.parse(json) as { done: boolean }).done) break;
  }
  call("abort");
  return out;
}

describe("chunks made ahead", () => {
  test("the client gets the same chunks, in the same order", () => {
    addRows();
    const plain = chunks(false);
    expect(plain.length).toBe(4);
    expect(chunks(true)).toEqual(plain);
  });

  test("a chunk made ahead goes back when another step comes instead", () => {
    addRows();
    const plain = chunks(false);
    start();
    expect(call("chunk")).toBe(plain[0] as string);
    expect(user.session?.chunkAhead).toBeDefined();
    // The client skips to its own rows: the chunk made ahead is dropped, its ids kept.
    expect(call("applyChunk", { chunk: { done: false } })).toBe("null");
    expect(user.session?.chunkAhead).toBeUndefined();
    expect(call("chunk")).toBe(plain[1] as string);
    expect(call("chunk")).toBe(plain[2] as string);
    expect(call("chunk")).toBe(plain[3] as string);
  });
});

const revlog = (id: number) => [id, 1, 10, 3, 1, 0, 2500, 6000, 1];
const count = () => (db.query("select count() as n from revlog").get() as { n: number }).n;
/** A one-row applyChunk as the worker runs it, its writes left in `after`. */
const applyRevlogLater = (id: number) =>
  runNormalSyncStep(user, "applyChunk", "k1", JSON.stringify({ chunk: { revlog: [revlog(id)] } }), {
    later: true,
  });

describe("applyChunk's writes after the reply", () => {
  test("answered before the writes, which the later work makes inside the session", () => {
    start();
    const reply = applyRevlogLater(7);
    expect(reply.json).toBe("null");
    expect(count()).toBe(0);
    reply.after?.();
    expect(count()).toBe(1);
    expect(db.inTransaction).toBe(true);
    call("finish");
    expect(db.inTransaction).toBe(false);
    expect(count()).toBe(1);
  });

  test("a note that does not fit its note type still fails its own request", () => {
    start();
    const note = [5, "g5", 999, 1, 10, "", "one", "", "", 0, ""];
    expect(syncFailure(() => call("applyChunk", { chunk: { notes: [note] } })).kind).toBe(
      "badRequest",
    );
    expect(user.session).toBeUndefined();
  });

  test("writes that fail roll the session back and fail the client's next request", () => {
    start();
    // Inside the session's transaction, so the rollback brings the table back.
    db.exec("drop table revlog");
    expect(call("applyChunk", { chunk: { revlog: [revlog(7)] } })).toBe("null");
    expect(user.session).toBeUndefined();
    const err = syncFailure(() => call("sanityCheck2", { client: [] }));
    expect(err.kind).toBe("badRequest");
    expect(err.message).toContain("applyChunk failed, sync rolled back");
    expect(count()).toBe(0);
    // Reported once: afterwards the session is simply gone.
    expect(syncFailure(() => call("finish")).kind).toBe("conflict");
  });

  test("later work of a session that ended meanwhile does nothing", () => {
    start();
    const reply = applyRevlogLater(7);
    call("abort");
    reply.after?.();
    expect(db.inTransaction).toBe(false);
    expect(count()).toBe(0);
  });
});

/** A user with its collection open in WAL mode, in a folder of its own, and its normal sync steps. */
function walSyncUser(prefix: string) {
  const walDir = mkdtempSync(join(tmpdir(), prefix));
  const walUser = new UserState(userPaths(walDir, "u1"), { networkFs: false }, true);
  const col = walUser.collection.open();
  const step = (method: NormalSyncMethod, body: unknown) =>
    runNormalSyncStep(walUser, method, "k1", JSON.stringify(body), { later: true });
  /** What the collection file alone holds, without its WAL. */
  const revlogInFile = () => {
    const copy = join(walDir, "file-alone.anki2");
    copyFileSync(walUser.paths.collection, copy);
    const alone = openDatabase(copy, { readonly: true });
    const { n } = alone.query("select count() as n from revlog").get() as { n: number };
    alone.close();
    return n;
  };
  const done = () => {
    walUser.close();
    rmSync(walDir, { recursive: true, force: true });
  };
  return { col, step, revlogInFile, done };
}

describe("finish of a large sync: its checkpoint after the reply", () => {
  /** `rows` revlog entries sent in one chunk to a collection in WAL mode, then `finish`. */
  function syncRows(rows: number) {
    const { col, step, revlogInFile, done } = walSyncUser("ankisyncd-later-wal-");
    step("start", { minUsn: 0, lnewer: false, graves: null });
    const ids = Array.from({ length: rows }, (_, i) => i + 1);
    step("applyChunk", { chunk: { done: true, revlog: ids.map(revlog) } }).after?.();
    const finished = step("finish", { _pad: null });
    return { col, finished, revlogInFile, done };
  }

  test("answered once committed in the WAL; the copy into the file follows", () => {
    const { col, finished, revlogInFile, done } = syncRows(1000);
    try {
      expect(col.inTransaction).toBe(false);
      expect(col.query("select count() as n from revlog").get()).toEqual({ n: 1000 });
      expect(revlogInFile()).toBe(0);
      expect(finished.after).toBeDefined();
      finished.after?.();
      expect(revlogInFile()).toBe(1000);
      // The bound is back for the commits after it.
      expect(col.query("PRAGMA wal_autocheckpoint").get()).toEqual({ wal_autocheckpoint: 1000 });
    } finally {
      done();
    }
  });

  test("a small sync leaves its WAL to SQLite's own bound", () => {
    const { finished, done } = syncRows(10);
    try {
      expect(finished.after).toBeUndefined();
    } finally {
      done();
    }
  });
});

describe("the worker's host", () => {
  test("runs a step's later work before the user's next job, and after replies", async () => {
    const dataDir = mkdtempSync(join(tmpdir(), "ankisyncd-later-host-"));
    const host = testUserHost(dataDir);
    try {
      const job = normalSyncJobs(host, "u2", "s");
      await job("start", { minUsn: 0, lnewer: false, graves: null });
      await job("applyChunk", { chunk: { revlog: [revlog(5)] } });
      host.afterReplies();
      // Not run by afterReplies this time: the next job runs it first.
      await job("applyChunk", { chunk: { done: true, revlog: [revlog(6)] } });
      await job("finish", { _pad: null });
      const check = openDatabase(userPaths(dataDir, "u2").collection, { readonly: true });
      expect(check.query("select count() as n from revlog").get()).toEqual({ n: 2 });
      check.close();
    } finally {
      host.shutdown();
      rmSync(dataDir, { recursive: true, force: true });
    }
  });
});

describe("applyChunk's writes in parts", () => {
  test("each part writes some rows in order; the last says the chunk is written", () => {
    start();
    const ids = Array.from({ length: 300 }, (_, i) => i + 1);
    const reply = runNormalSyncStep(
      user,
      "applyChunk",
      "k1",
      JSON.stringify({ chunk: { revlog: ids.map(revlog) } }),
      { later: true },
    );
    expect(reply.json).toBe("null");
    const part = reply.afterPart as () => boolean;
    expect(part()).toBe(false);
    const afterOne = count();
    expect(afterOne).toBeGreaterThan(0);
    expect(afterOne).toBeLessThan(300);
    let parts = 1;
    while (!part()) parts++;
    expect(parts).toBeGreaterThan(1);
    expect(count()).toBe(300);
    call("finish");
    expect(count()).toBe(300);
  });
});

describe("chunks planned and answered while earlier chunks' writes are pending", () => {
  const revlogChunk = (from: number, to: number, done = false) => ({
    chunk: { done, revlog: Array.from({ length: to - from + 1 }, (_, i) => revlog(from + i)) },
  });

  async function withHost(
    body: (job: ReturnType<typeof normalSyncJobs>, host: UserHost, col: string) => Promise<void>,
  ): Promise<void> {
    const dataDir = mkdtempSync(join(tmpdir(), "ankisyncd-later-ahead-"));
    const host = testUserHost(dataDir);
    try {
      await body(normalSyncJobs(host, "u3", "s"), host, userPaths(dataDir, "u3").collection);
    } finally {
      host.shutdown();
      rmSync(dataDir, { recursive: true, force: true });
    }
  }

  /** What another connection sees in the file: only what was committed. */
  function committedRevlog(col: string): number {
    const check = openDatabase(col, { readonly: true });
    const { n } = check.query("select count() as n from revlog").get() as { n: number };
    check.close();
    return n;
  }

  test("every row answered ahead of its writes is in the commit of finish", async () => {
    await withHost(async (job, host, col) => {
      await job("start", { minUsn: 0, lnewer: false, graves: null });
      await job("applyChunk", revlogChunk(1, 300));
      await job("applyChunk", revlogChunk(301, 600));
      host.afterReplies();
      // Past the chunks that may be pending: the oldest chunks' writes go first.
      for (let from = 601; from < 1500; from += 100)
        await job("applyChunk", revlogChunk(from, from + 99));
      await job("applyChunk", revlogChunk(1501, 1600, true));
      expect(committedRevlog(col)).toBe(0);
      await job("finish", { _pad: null });
      expect(committedRevlog(col)).toBe(1600);
    });
  });

  test("a write failing after later chunks were answered fails the next step; nothing stays", async () => {
    await withHost(async (job, _host, col) => {
      await job("start", { minUsn: 0, lnewer: false, graves: null });
      await job("abort", { _pad: null });
      const setup = openDatabase(col);
      setup.exec(
        "create trigger refuse_150 before insert on revlog when new.id = 150 begin select raise(abort, 'refused'); end",
      );
      setup.close();
      await job("start", { minUsn: 0, lnewer: false, graves: null });
      expect(await job("applyChunk", revlogChunk(1, 300))).toBeDefined();
      // Answered before the first chunk's writes ran (they are still pending).
      expect(await job("applyChunk", revlogChunk(301, 600, true))).toBeDefined();
      const failed = await job("sanityCheck2", { client: [] }).then(
        () => undefined,
        (err: unknown) => err as SyncError,
      );
      expect(failed?.kind).toBe("badRequest");
      expect(failed?.message).toContain("applyChunk failed, sync rolled back");
      const finished = await job("finish", { _pad: null }).then(
        () => undefined,
        (err: unknown) => err as SyncError,
      );
      expect(finished?.kind).toBe("conflict");
      expect(committedRevlog(col)).toBe(0);
    });
  });

  test("abort after chunks answered ahead of their writes rolls them all back", async () => {
    await withHost(async (job, _host, col) => {
      await job("start", { minUsn: 0, lnewer: false, graves: null });
      await job("applyChunk", revlogChunk(1, 300));
      await job("applyChunk", revlogChunk(301, 600));
      await job("abort", { _pad: null });
      expect(committedRevlog(col)).toBe(0);
      await job("start", { minUsn: 0, lnewer: false, graves: null });
      await job("applyChunk", revlogChunk(1, 10, true));
      await job("finish", { _pad: null });
      expect(committedRevlog(col)).toBe(10);
    });
  });

  test("a chunk merged against stored rows waits for the pending writes, and fails alone", async () => {
    await withHost(async (job, _host, col) => {
      await job("start", { minUsn: 0, lnewer: false, graves: null });
      await job("applyChunk", revlogChunk(1, 300));
      const note = [5, "g5", 999, 1, 10, "", "one", "", "", 0, ""];
      const failed = await job("applyChunk", { chunk: { notes: [note] } }).then(
        () => undefined,
        (err: unknown) => err as SyncError,
      );
      expect(failed?.kind).toBe("badRequest");
      expect(failed?.message).toContain("note type 999 missing");
      expect(committedRevlog(col)).toBe(0);
    });
  });
});
