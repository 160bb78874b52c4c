import { afterEach, beforeEach, describe, expect, test } from "bun:test";
import { mkdtempSync, readdirSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { DownloadCommits } from "../../src/executor/downloadCommits.ts";
import { endingAfter } from "../../src/http/syncResponse.ts";
import { openDatabase } from "../../src/platform/sqlite.ts";
import { createEmptyCollection } from "../../src/storage/collection/collectionFile.ts";
import { upgradeToSchema18 } from "../../src/storage/collection/convert/upgrade.ts";
import { userPaths } from "../../src/storage/paths.ts";
import { testUserHost } from "../helpers/userHost.ts";

const bytes = (...values: number[]) => new Uint8Array(values);

function streamOf(chunks: Uint8Array[]): ReadableStream<Uint8Array> {
  return new ReadableStream({
    start(controller) {
      for (const chunk of chunks) controller.enqueue(chunk);
      controller.close();
    },
  });
}

async function readAll(stream: ReadableStream<Uint8Array>): Promise<number[]> {
  const out: number[] = [];
  for await (const chunk of stream) out.push(...chunk);
  return out;
}

describe("DownloadCommits", () => {
  test("a bump applied before the commit job settles it", () => {
    const commits = new DownloadCommits();
    const token = commits.add("u1", 1000);
    const applied: number[] = [];
    commits.applyFor("u2", (now) => applied.push(now));
    expect(applied).toEqual([]);
    commits.applyFor("u1", (now) => applied.push(now));
    commits.applyFor("u1", (now) => applied.push(now)); // once only
    expect(applied).toEqual([1000]);
    expect(() => commits.settle("u1", token)).not.toThrow();
    // Settled tokens are forgotten: a second commit is refused.
    expect(() => commits.settle("u1", token)).toThrow(/never applied/);
  });

  test("a bump that failed, was never applied, or is another user's does not commit", () => {
    const commits = new DownloadCommits();
    const failed = commits.add("u1", 1);
    commits.applyFor("u1", () => {
      throw new Error("disk full");
    });
    expect(() => commits.settle("u1", failed)).toThrow("disk full");
    const unapplied = commits.add("u1", 2);
    expect(() => commits.settle("u1", unapplied)).toThrow(/never applied/);
    const other = commits.add("u1", 3);
    commits.applyFor("u1", () => undefined);
    expect(() => commits.settle("u2", other)).toThrow(/never applied/);
    expect(() => commits.settle("u1", 999)).toThrow(/never applied/);
  });
});

describe("endingAfter", () => {
  test("passes the body through once the commit is done", async () => {
    let commit!: () => void;
    const done = new Promise<void>((resolve) => {
      commit = resolve;
    });
    const reader = endingAfter(streamOf([bytes(1), bytes(2), bytes(3)]), done).getReader();
    expect((await reader.read()).value).toEqual(bytes(1));
    expect((await reader.read()).value).toEqual(bytes(2));
    // The last byte waits for the commit.
    const last = reader.read();
    let arrived = false;
    void last.then(() => {
      arrived = true;
    });
    await Bun.sleep(20);
    expect(arrived).toBe(false);
    commit();
    expect((await last).value).toEqual(bytes(3));
    expect((await reader.read()).done).toBe(true);
  });

  test("a chunk goes out at once but for its last byte, which waits for the next", async () => {
    let source!: ReadableStreamDefaultController<Uint8Array>;
    const body = new ReadableStream<Uint8Array>({
      start(controller) {
        source = controller;
      },
    });
    const reader = endingAfter(body, Promise.resolve()).getReader();
    source.enqueue(bytes(1, 2, 3));
    // The source has not said whether more follows; all but the last byte is out already.
    expect((await reader.read()).value).toEqual(bytes(1, 2));
    source.enqueue(bytes(4, 5));
    expect((await reader.read()).value).toEqual(bytes(3));
    expect((await reader.read()).value).toEqual(bytes(4));
    source.close();
    expect((await reader.read()).value).toEqual(bytes(5));
    expect((await reader.read()).done).toBe(true);
  });

  test("a failed commit fails the body before its end", async () => {
    const failed = Promise.reject(new Error("not committed"));
    failed.catch(() => undefined);
    const received: number[] = [];
    const reader = endingAfter(streamOf([bytes(1, 2), bytes(3, 4)]), failed).getReader();
    await expect(
      (async () => {
        for (;;) {
          const { done, value } = await reader.read();
          if (done) return;
          received.push(...value);
        }
      })(),
    ).rejects.toThrow("not committed");
    expect(received).toEqual([1, 2, 3]);
  });

  test("an empty body ends after the commit", async () => {
    expect(await readAll(endingAfter(streamOf([]), Promise.resolve()))).toEqual([]);
  });
});

describe("the worker's download and its commit", () => {
  const user = { uuid: "user-1" };
  let dataDir: string;
  let host: ReturnType<typeof testUserHost>;

  beforeEach(() => {
    dataDir = mkdtempSync(join(tmpdir(), "ankisyncd-download-"));
    host = testUserHost(dataDir);
  });
  afterEach(() => {
    host.shutdown();
    rmSync(dataDir, { recursive: true, force: true });
  });

  const usnOf = (path: string) => {
    const db = openDatabase(path, { create: false, readonly: true });
    try {
      return (db.query("select usn from col").get() as { usn: number }).usn;
    } finally {
      db.close();
    }
  };
  const stored = () => userPaths(dataDir, user.uuid).collection;
  const versionOf = (path: string) => {
    const db = openDatabase(path, { create: false, readonly: true });
    try {
      return (db.query("select ver from col").get() as { ver: number }).ver;
    } finally {
      db.close();
    }
  };

  test("a file at rest in schema 18 (Anki's server's) is converted first, then copied", async () => {
    createEmptyCollection(stored());
    const db = openDatabase(stored(), { create: false, unicase: true });
    upgradeToSchema18(db);
    db.close();
    // The job meets the file before the worker has the conversion, loads it and runs again.
    const snapshot = await host.handle({ kind: "download", user, plan: { schema: 11 } });
    expect(snapshot.schema).toBe(11);
    expect(versionOf(stored())).toBe(11);
    expect(versionOf(snapshot.path)).toBe(11);
    expect(readdirSync(userPaths(dataDir, user.uuid).backups)).toHaveLength(1);
    expect(await host.handle({ kind: "commitDownload", user, token: snapshot.commit })).toBe(true);
    rmSync(snapshot.path);
  });

  test("the stored file gets the copy's usn by the time the commit answers", async () => {
    const snapshot = await host.handle({ kind: "download", user, plan: { schema: 11 } });
    const copied = usnOf(snapshot.path);
    expect(await host.handle({ kind: "commitDownload", user, token: snapshot.commit })).toBe(true);
    expect(usnOf(stored())).toBe(copied);
    rmSync(snapshot.path);
  });

  test("another job of the user that comes first applies the bump before its own work", async () => {
    const snapshot = await host.handle({ kind: "download", user, plan: { schema: 11 } });
    expect(await host.handle({ kind: "release", user })).toBe(true);
    expect(usnOf(stored())).toBe(usnOf(snapshot.path));
    expect(await host.handle({ kind: "commitDownload", user, token: snapshot.commit })).toBe(true);
    rmSync(snapshot.path);
  });

  test("a bump that cannot be written fails the commit and leaves the stored usn as it was", async () => {
    const snapshot = await host.handle({ kind: "download", user, plan: { schema: 11 } });
    const before = usnOf(stored());
    const other = openDatabase(stored(), { create: false });
    other.exec("BEGIN EXCLUSIVE");
    try {
      await expect(
        host.handle({ kind: "commitDownload", user, token: snapshot.commit }),
      ).rejects.toThrow();
    } finally {
      other.exec("ROLLBACK");
      other.close();
    }
    expect(usnOf(stored())).toBe(before);
    // Dropped, not retried by the next job.
    expect(await host.handle({ kind: "release", user })).toBe(true);
    expect(usnOf(stored())).toBe(before);
    rmSync(snapshot.path);
  }, 30_000);
});
