/**
 * Stopping the real process the way supervisors do: `bun run start` in its own process group,
 * SIGTERM sent to the group (it reaches the server twice: directly and forwarded by `bun run`),
 * or SIGINT. The server exits 0 without an error in its log, answers a request that was in
 * flight, and rolls back a normal sync left unfinished.
 */
import { Database } from "bun:sqlite";
import { afterAll, describe, expect, test } from "bun:test";
import { type ChildProcess, spawn } from "node:child_process";
import { existsSync, mkdtempSync, readdirSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { login, v11 } from "../helpers/syncClient.ts";

const ROOT = resolve(import.meta.dir, "../..");
const dirs: string[] = [];
afterAll(() => {
  for (const dir of dirs) rmSync(dir, { recursive: true, force: true });
});

interface Proc {
  child: ChildProcess;
  url: string;
  log: () => string;
  exited: Promise<number | null>;
}

async function startProcess(dataDir: string): Promise<Proc> {
  const child = spawn("bun", ["run", "start"], {
    cwd: ROOT,
    detached: true, // own process group, as under a supervisor
    env: {
      ...process.env,
      SYNC_HOST: "127.0.0.1",
      SYNC_PORT: "0",
      SYNC_BASE: dataDir,
      SYNC_USER1: "alice:secret",
      ANKISYNCD_LOG_FORMAT: "json",
      ANKISYNCD_WORKERS: "1",
    },
    stdio: ["ignore", "pipe", "pipe"],
  });
  let output = "";
  child.stdout?.on("data", (d) => {
    output += d;
  });
  child.stderr?.on("data", (d) => {
    output += d;
  });
  const exited = new Promise<number | null>((res) => child.on("exit", (code) => res(code)));
  for (let i = 0; i < 600 && !/"ankisyncd listening"/.test(output); i++) await Bun.sleep(50);
  const line = output.split("\n").find((l) => l.includes('"ankisyncd listening"'));
  if (!line) throw new Error(`server did not start:\n${output}`);
  return { child, url: JSON.parse(line).url, log: () => output, exited };
}

const group = (p: Proc, signal: NodeJS.Signals) => process.kill(-(p.child.pid as number), signal);

function expectCleanExit(p: Proc, code: number | null) {
  expect(code).toBe(0);
  expect(p.log()).not.toContain("isn't running");
  expect(p.log()).not.toMatch(/"level":"error"|\n\s+at /);
  expect(p.log().match(/"shutting down"/g)?.length).toBe(1);
  expect(p.log()).toContain('"ankisyncd stopped"');
}

describe("stopping", () => {
  test("SIGTERM to the group twice: the request in flight is answered, an unfinished sync rolled back, exit 0", async () => {
    const dataDir = mkdtempSync(join(tmpdir(), "ankisyncd-stop-"));
    dirs.push(dataDir);
    const p = await startProcess(dataDir);
    const hkey = await login(p.url, "alice", "secret");
    const post = (method: string, body: object) => v11(p.url, method, body, { hkey, skey: "s1" });
    expect((await post("start", { minUsn: 0, lnewer: true, graves: null })).status).toBe(200);
    const changes = {
      changes: { models: [], decks: [[], []], tags: ["left-unfinished"], conf: {}, crt: 1 },
    };
    expect((await post("applyChanges", changes)).status).toBe(200);

    // A meta request whose body is still arriving when the signals come.
    const body = Bun.zstdCompressSync(new TextEncoder().encode(JSON.stringify({ v: 11, cv: "x" })));
    let send!: () => void;
    const rest = new Promise<void>((r) => {
      send = r;
    });
    const stream = new ReadableStream<Uint8Array>({
      async start(controller) {
        controller.enqueue(body.subarray(0, 4));
        await rest;
        controller.enqueue(body.subarray(4));
        controller.close();
      },
    });
    const header = JSON.stringify({ v: 11, k: hkey, c: "test,1.0,linux", s: "s2" });
    const inFlight = fetch(`${p.url}sync/meta`, {
      method: "POST",
      headers: { "anki-sync": header },
      body: stream,
    });
    await Bun.sleep(300);
    group(p, "SIGTERM");
    group(p, "SIGTERM");
    await Bun.sleep(200);
    send();
    const reply = await inFlight;
    expect(reply.status).toBe(200);
    expectCleanExit(p, await p.exited);

    const userDir = join(
      dataDir,
      "collections",
      readdirSync(join(dataDir, "collections"))[0] ?? "",
    );
    expect(existsSync(join(userDir, "collection.anki2-journal"))).toBe(false);
    const db = new Database(join(userDir, "collection.anki2"), { readonly: true });
    try {
      expect(db.query("pragma integrity_check").get()).toEqual({ integrity_check: "ok" });
      expect(db.query("select usn from col").get()).toEqual({ usn: 0 });
      const { tags } = db.query("select tags from col").get() as { tags: string };
      expect(tags).not.toContain("left-unfinished");
    } finally {
      db.close();
    }
  });

  test("SIGINT to the group (Ctrl-C): exit 0", async () => {
    const dataDir = mkdtempSync(join(tmpdir(), "ankisyncd-stop-"));
    dirs.push(dataDir);
    const p = await startProcess(dataDir);
    expect((await fetch(`${p.url}health`)).status).toBe(200);
    group(p, "SIGINT");
    expectCleanExit(p, await p.exited);
  });
});
