/**
 * A real full filesystem under a running server (a small tmpfs): every write that fails for
 * lack of space is answered 500 as Anki's server does, logged as "disk full" with the path and
 * no stack, leaves no temporary behind and changes nothing stored; once space is freed the same
 * requests succeed with no manual step. `/ready` fails while the disk is full.
 * Skipped, saying why, where a tmpfs cannot be mounted (not root).
 */
import { Database } from "bun:sqlite";
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { mkdirSync, readdirSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { loadConfig } from "../../src/config.ts";
import type { Logger } from "../../src/log.ts";
import { type RunningServer, startServer } from "../../src/server.ts";
import { createEmptyCollection } from "../../src/storage/collection/collectionFile.ts";
import { readiness } from "../../src/storage/writable.ts";
import { uploadZip } from "../helpers/mediaZip.ts";
import { cannotMount, SmallFs } from "../helpers/smallFs.ts";
import { login, v11 } from "../helpers/syncClient.ts";

const skip = cannotMount();
if (skip) console.warn(`diskFull.test.ts skipped: ${skip}`);

const lines: string[] = [];
const captureLog: Logger = {
  debug() {},
  info() {},
  warn: (msg, fields) => lines.push(`WARN ${msg} ${JSON.stringify(fields ?? {})}`),
  error: (msg, fields) => lines.push(`ERROR ${msg} ${JSON.stringify(fields ?? {})}`),
};

/**
 * The lines matching `match` once there are `count` of them: a request's own line is written
 * just after its response is sent (an after-response hook), so it may trail the reply a little.
 */
async function loggedLines(
  match: (line: string) => boolean,
  count = 1,
  from = 0,
): Promise<string[]> {
  const found = () => lines.slice(from).filter(match);
  for (let waited = 0; found().length < count && waited < 10_000; waited += 10) await Bun.sleep(10);
  return found();
}

let fs: SmallFs;
let server: RunningServer;
let data: string;
let hkey: string;

const userDir = () => {
  const root = join(data, "collections");
  return join(root, readdirSync(root)[0] as string);
};
const temporaries = () => readdirSync(userDir()).filter((n) => n.includes(".tmp-"));

const msync = (method: string, body: Uint8Array | object) =>
  v11(server.url, method, body, { hkey, path: "msync" });

/** A schema-11 collection of about `megs` MiB (a note with a big field), as bytes. */
async function bigCollection(megs: number): Promise<Uint8Array> {
  const path = join(fs.dir, "..", `upload-${process.pid}-${megs}.anki2`);
  createEmptyCollection(path);
  const db = new Database(path);
  db.run("update col set mod = 1700000000000, scm = 1700000000000, usn = 1");
  db.run(
    "insert into notes values (1, 'g', (select cast(json_each.key as integer) from col, json_each(col.models) limit 1), 1, 0, '', ?, 'x', 0, 0, '')",
    [`${"y".repeat(megs * 1024 * 1024)}\x1fback`],
  );
  db.run("insert into cards values (2, 1, 1, 0, 1, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0, '{}')");
  db.close();
  const bytes = new Uint8Array(await Bun.file(path).arrayBuffer());
  rmSync(path);
  return bytes;
}

describe.skipIf(skip !== null)("a full data filesystem", () => {
  beforeAll(async () => {
    fs = new SmallFs(24);
    data = join(fs.dir, "data");
    server = await startServer(
      loadConfig({
        SYNC_HOST: "127.0.0.1",
        SYNC_PORT: "0",
        SYNC_BASE: data,
        SYNC_USER1: "alice:secret",
        ANKISYNCD_WORKERS: "1",
        ANKISYNCD_MIN_FREE_MEGS: "1",
        // A download made ahead 3 s after an upload would write during the later tests' full disk.
        ANKISYNCD_READY_DOWNLOADS: "0",
      }),
      { log: captureLog },
    );
    hkey = await login(server.url, "alice", "secret");
    // Media and collection exist before the disk fills.
    expect((await msync("begin", { v: "anki,26.09.3 (x),linux" })).status).toBe(200);
    expect(
      (await v11(server.url, "meta", { v: 11, cv: "anki,26.09.3 (x),linux" }, { hkey })).status,
    ).toBe(200);
  });

  afterAll(async () => {
    if (process.env.DEBUG_DISKFULL) console.log(lines.join("\n"));
    await server?.stop();
    fs?.dispose();
  });

  test("/ready fails while full, /health stays 200", async () => {
    expect((await fetch(`${server.url}ready`)).status).toBe(200);
    fs.fill();
    try {
      const ready = await fetch(`${server.url}ready`);
      expect(ready.status).toBe(503);
      expect(await ready.text()).toContain("ANKISYNCD_MIN_FREE_MEGS");
      expect((await fetch(`${server.url}health`)).status).toBe(200);
    } finally {
      fs.free();
    }
    expect((await fetch(`${server.url}ready`)).status).toBe(200);
  });

  test("a full upload: 500, no temporaries, the collection unchanged; works once space is freed", async () => {
    const upload = await bigCollection(4);
    const before = await Bun.file(join(userDir(), "collection.anki2")).arrayBuffer();
    fs.fill();
    lines.push("----");
    try {
      const r = await v11(server.url, "upload", upload, { hkey });
      expect(r.status).toBe(500);
      expect(temporaries()).toEqual([]);
      const after = await Bun.file(join(userDir(), "collection.anki2")).arrayBuffer();
      expect(Buffer.from(after).equals(Buffer.from(before))).toBe(true);
    } finally {
      fs.free();
    }
    const logged = await loggedLines((l) => l.includes("disk full"), 1, lines.lastIndexOf("----"));
    expect(logged.length).toBe(1);
    expect(logged[0]).toContain(data);
    expect(lines.join("\n")).not.toMatch(/\n\s+at |\bat .*\.ts:\d+/);
    const again = await v11(server.url, "upload", upload, { hkey });
    expect([again.status, again.text]).toEqual([200, "OK"]);
    expect(temporaries()).toEqual([]);
  });

  test("a media upload: 500, no temporaries, nothing recorded; works once space is freed", async () => {
    const zip = uploadZip([["big.bin", new Uint8Array(3 * 1024 * 1024).fill(7)]]);
    const usnBefore = (await msync("begin", { v: "anki,26.09.3 (x),linux" })).json();
    fs.fill();
    lines.push("----");
    try {
      const r = await msync("uploadChanges", zip);
      expect(r.status).toBe(500);
      expect(temporaries()).toEqual([]);
      const logged = await loggedLines((l) => l.startsWith("ERROR disk full") && l.includes(data));
      expect(logged.length).toBeGreaterThan(0);
      expect((await msync("begin", { v: "anki,26.09.3 (x),linux" })).json()).toEqual(usnBefore);
    } finally {
      fs.free();
    }
    const again = await msync("uploadChanges", zip);
    expect(again.status).toBe(200);
    expect(temporaries()).toEqual([]);
  });

  test("a small media batch (journaled): 500, nothing recorded; works once space is freed", async () => {
    const items: [string, Uint8Array][] = Array.from({ length: 20 }, (_, i) => [
      `small-${i}.bin`,
      crypto.getRandomValues(new Uint8Array(30_000)),
    ]);
    const zip = uploadZip(items);
    const usnBefore = (await msync("begin", { v: "anki,26.09.3 (x),linux" })).json();
    fs.fill();
    try {
      const r = await msync("uploadChanges", zip);
      expect(r.status).toBe(500);
      expect(temporaries()).toEqual([]);
      expect((await msync("begin", { v: "anki,26.09.3 (x),linux" })).json()).toEqual(usnBefore);
    } finally {
      fs.free();
    }
    const again = await msync("uploadChanges", zip);
    expect(again.status).toBe(200);
    expect(temporaries()).toEqual([]);
  });

  test("room for the compressed body but not for decompressing it: 500 from the task, nothing left", async () => {
    // Both bodies compress to a few KiB but decompress to MiBs.
    const upload = await bigCollection(4);
    const zip = uploadZip([["zeros.bin", new Uint8Array(4 * 1024 * 1024)]]);
    fs.fill();
    fs.leave(256 * 1024);
    lines.push("----");
    try {
      expect((await v11(server.url, "upload", upload, { hkey })).status).toBe(500);
      expect(temporaries()).toEqual([]);
      expect((await msync("uploadChanges", zip)).status).toBe(500);
      expect(temporaries()).toEqual([]);
    } finally {
      fs.free();
    }
    const logged = await loggedLines((l) => l.includes("disk full"), 2, lines.lastIndexOf("----"));
    expect(logged.length).toBe(2);
    expect(logged[0]).toContain(".upload");
    expect(logged[1]).toContain("media.tmp-");
    expect((await msync("uploadChanges", zip)).status).toBe(200);
  });

  test("a full download: 500, no copy left, the usn unchanged; works once space is freed", async () => {
    const cv = { v: 11, cv: "anki,26.09.3 (x),linux" };
    const usn = (await v11(server.url, "meta", cv, { hkey })).json() as { usn: number };
    fs.fill();
    try {
      const r = await v11(server.url, "download", {}, { hkey });
      expect(r.status).toBe(500);
      expect(temporaries()).toEqual([]);
    } finally {
      fs.free();
    }
    expect((await v11(server.url, "meta", cv, { hkey })).json()).toMatchObject({ usn: usn.usn });
    const again = await v11(server.url, "download", {}, { hkey });
    expect(again.status).toBe(200);
    expect(temporaries()).toEqual([]);
  });

  test("logins (session.db) while full: 500 logged as disk full, or fit in free pages; fine after", async () => {
    fs.fill();
    const statuses: number[] = [];
    try {
      // Each login adds a session row; free pages run out after a few.
      for (let i = 0; i < 40; i++) {
        const r = await v11(server.url, "hostKey", { u: "alice", p: "secret" });
        statuses.push(r.status);
        if (r.status !== 200) break;
      }
    } finally {
      fs.free();
    }
    expect(statuses.at(-1)).toBe(500);
    const logged = await loggedLines(
      (l) => l.startsWith("ERROR disk full") && l.includes("hostKey"),
    );
    expect(logged.at(-1)).toContain(join(data, "session.db"));
    expect((await v11(server.url, "hostKey", { u: "alice", p: "secret" })).status).toBe(200);
  }, 60_000);

  test("a normal sync that needs space: 500 and rolled back; the next one works", async () => {
    const meta = await v11(server.url, "meta", { v: 11, cv: "anki,26.09.3 (x),linux" }, { hkey });
    const usn = (meta.json() as { usn: number }).usn;
    const start = await v11(
      server.url,
      "start",
      { minUsn: 0, lnewer: false, graves: null },
      { hkey, skey: "s1" },
    );
    expect(start.status).toBe(200);
    fs.fill();
    try {
      // Tags are stored in their own table: a couple of MiB of them need pages the disk lacks.
      const tags = Array.from({ length: 500 }, (_, n) => `tag${n}-${"t".repeat(4000)}`);
      const changes = {
        changes: { models: [], decks: [[], []], tags, conf: { k: 1 }, crt: 1600000000 },
      };
      const r = await v11(server.url, "applyChanges", changes, { hkey, skey: "s1" });
      expect(r.status).toBe(500);
    } finally {
      fs.free();
    }
    const after = await v11(server.url, "meta", { v: 11, cv: "anki,26.09.3 (x),linux" }, { hkey });
    expect((after.json() as { usn: number }).usn).toBe(usn);
    const again = await v11(
      server.url,
      "start",
      { minUsn: 0, lnewer: false, graves: null },
      { hkey, skey: "s2" },
    );
    expect(again.status).toBe(200);
    expect((await v11(server.url, "abort", {}, { hkey, skey: "s2" })).status).toBe(200);
  }, 60_000);
});

/** `bun run src/main.ts` on `data`: its exit code and what it printed. */
function startProcess(dataDir: string): { code: number | null; output: string } {
  const r = Bun.spawnSync(["bun", "run", "src/main.ts"], {
    cwd: join(import.meta.dir, "../.."),
    env: {
      PATH: process.env.PATH ?? "",
      HOME: process.env.HOME ?? "",
      SYNC_HOST: "127.0.0.1",
      SYNC_PORT: "0",
      SYNC_BASE: dataDir,
      SYNC_USER1: "alice:secret",
    },
    stdout: "pipe",
    stderr: "pipe",
    timeout: 60_000,
  });
  return { code: r.exitCode, output: `${r.stdout.toString()}${r.stderr.toString()}` };
}

describe.skipIf(skip !== null)("start-up on a folder it cannot write", () => {
  let ro: SmallFs;
  beforeAll(() => {
    ro = new SmallFs(8);
  });
  afterAll(() => ro?.dispose());

  test("a read-only data folder: exit 2, one sentence naming it", () => {
    const dataDir = join(ro.dir, "data");
    mkdirSync(dataDir);
    ro.readOnly(true);
    try {
      const { code, output } = startProcess(dataDir);
      expect(code).toBe(2);
      const lines = output.trim().split("\n");
      expect(lines.length).toBe(1);
      expect(lines[0]).toContain(`data folder ${dataDir} is not writable`);
      expect(lines[0]).toContain("EROFS");
    } finally {
      ro.readOnly(false);
    }
  });

  test("/ready's check on a folder that turned read-only: not ready, saying why", () => {
    const dataDir = join(ro.dir, "data-ready");
    mkdirSync(dataDir);
    writeFileSync(join(dataDir, "session.db"), "");
    expect(readiness(dataDir, join(dataDir, "session.db"), 0).ready).toBe(true);
    ro.readOnly(true);
    try {
      const state = readiness(dataDir, join(dataDir, "session.db"), 0);
      expect(state.ready).toBe(false);
      expect(state.reason).toContain("EROFS");
    } finally {
      ro.readOnly(false);
    }
  });

  test("a read-only session.db: exit 2, one sentence naming it", () => {
    const dataDir = join(ro.dir, "data2");
    mkdirSync(dataDir);
    const sessionDb = join(dataDir, "session.db");
    writeFileSync(sessionDb, "");
    ro.bindReadOnly(sessionDb);
    const { code, output } = startProcess(dataDir);
    expect(code).toBe(2);
    const lines = output.trim().split("\n");
    expect(lines.length).toBe(1);
    expect(lines[0]).toContain(`session database ${sessionDb} is not writable`);
  });
});
