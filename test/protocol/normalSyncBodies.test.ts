/**
 * A normal-sync step's body reaches the user's worker still compressed and is unpacked there:
 * broken zstd or gzip, JSON that does not parse, and bodies over the method's limit (compressed
 * or once unpacked) are still a 400, logged with the reason, and leave the open session and the
 * collection as they were; the replies are encoded in the worker for both framings.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { loadConfig } from "../../src/config.ts";
import type { LogFields, Logger } from "../../src/log.ts";
import { type RunningServer, startServer } from "../../src/server.ts";
import { gzipJson, legacy, login, v11 } from "../helpers/syncClient.ts";

const logged: { level: string; msg: string; fields?: LogFields }[] = [];
const note =
  (level: string) =>
  (msg: string, fields?: LogFields): void => {
    logged.push({ level, msg, fields });
  };
const log: Logger = {
  debug: note("debug"),
  info: note("info"),
  warn: note("warn"),
  error: note("error"),
};

let server: RunningServer;
let url = "";
let dataDir = "";
let hkey = "";
const revlog = [[1700000000999, 2, 0, 3, 1, 0, 2500, 6000, 1]];

beforeAll(async () => {
  dataDir = mkdtempSync(join(tmpdir(), "ankisyncd-bodies-"));
  const env = {
    SYNC_HOST: "127.0.0.1",
    SYNC_PORT: "0",
    SYNC_BASE: dataDir,
    SYNC_USER1: "alice:secret",
    ANKISYNCD_WORKERS: "1",
    MAX_SYNC_PAYLOAD_MEGS: "1",
  };
  server = await startServer(loadConfig(env), { log });
  url = server.url;
  hkey = await login(url, "alice", "secret");
});
afterAll(async () => {
  await server.stop();
  rmSync(dataDir, { recursive: true, force: true });
});

/**
 * The warning logged for the next refused request after the first `seen` lines: the line is
 * written once the response is sent, so it may follow the client's read of the answer.
 */
async function refusalAfter(seen: number): Promise<LogFields | undefined> {
  for (let i = 0; i < 500; i++) {
    const line = logged.slice(seen).find((l) => l.msg === "sync request refused");
    if (line) return line.fields;
    await Bun.sleep(10);
  }
  return undefined;
}

describe("bad bodies to a normal-sync step", () => {
  test("v11: each is 400 and logged; the session goes on untouched", async () => {
    const skey = "bodies";
    const post = (method: string, body: object, rawBody?: Uint8Array) =>
      v11(url, method, body, { hkey, skey, rawBody });
    expect((await post("start", { minUsn: 0, lnewer: true, graves: null })).status).toBe(200);
    const random = crypto.getRandomValues(new Uint8Array(65536));
    // Over `chunk`'s 1 MiB even compressed (and under the server's 3 MiB cap on any body, a 413).
    const incompressible = new Uint8Array(2 * 1024 * 1024);
    for (let at = 0; at < incompressible.length; at += random.length)
      incompressible.set(random, at);
    const cases: [string, string, Uint8Array, string][] = [
      [
        "applyChunk",
        "broken zstd",
        new Uint8Array([40, 181, 47, 253, 1, 2, 3]),
        "cannot decompress",
      ],
      [
        "applyChunk",
        "not zstd at all",
        new TextEncoder().encode('{"chunk":{}}'),
        "cannot decompress",
      ],
      [
        "applyChunk",
        "bad JSON",
        Bun.zstdCompressSync(new TextEncoder().encode('{"chunk":')),
        "JSON",
      ],
      ["applyChunk", "a bomb", Bun.zstdCompressSync(new Uint8Array(64 * 1024 * 1024)), "exceeds"],
      ["chunk", "over the limit compressed", incompressible, "exceeds"],
    ];
    for (const [method, what, rawBody, reason] of cases) {
      const seen = logged.length;
      const reply = await post(method, {}, rawBody);
      expect({ what, status: reply.status }).toEqual({ what, status: 400 });
      const refusal = await refusalAfter(seen);
      expect(refusal?.method).toBe(method);
      expect(String(refusal?.error)).toContain(reason);
    }
    // Sent chunked (no length, as the real client sends), past the server's cap on any body:
    // refused while the body arrives: Bun answers 413 itself, and the log says 413 too.
    const seen = logged.length;
    const endless = new ReadableStream<Uint8Array>({
      start(controller) {
        for (let i = 0; i < 64; i++) controller.enqueue(random);
        controller.close();
      },
    });
    const capped = await fetch(`${url}sync/applyChunk`, {
      method: "POST",
      headers: { "anki-sync": JSON.stringify({ v: 11, k: hkey, c: "test,1.0,linux", s: skey }) },
      body: endless,
    }).catch(() => null);
    if (capped) expect(capped.status).toBe(413);
    const overCap = await refusalAfter(seen);
    expect(overCap?.method).toBe("applyChunk");
    expect(overCap?.status).toBe(413);
    // The session is still open, and nothing of the refused bodies was applied.
    const applied = await post("applyChunk", { chunk: { done: true, revlog } });
    expect(applied.status).toBe(200);
    expect(applied.json()).toBeNull();
    const finish = await post("finish", {});
    expect(finish.status).toBe(200);
    expect(Number(finish.headers.get("anki-original-size"))).toBe(finish.body.byteLength);
    await post("start", { minUsn: 0, lnewer: false, graves: null });
    const chunk = await post("chunk", {});
    const down = chunk.json() as { done: boolean; revlog: unknown[][] };
    expect(down.done).toBe(true);
    expect(down.revlog.map((row) => row[0])).toEqual([1700000000999]);
    await post("abort", {});
  });

  test("legacy: broken gzip and bad JSON are 400; a good body is answered uncompressed", async () => {
    const call = (method: string, skey: string, data: Blob) =>
      legacy(url, method, { k: hkey, s: skey, c: "1", data });
    const meta = await call("meta", "m", gzipJson({ v: 10, cv: "ankidroid,2.15" }));
    const { usn } = JSON.parse(meta.text) as { usn: number };
    const start = await call("start", "l1", gzipJson({ minUsn: usn, lnewer: false, graves: null }));
    expect(start.status).toBe(200);
    const broken = new Blob([new Uint8Array([0x1f, 0x8b, 8, 0, 1, 2, 3])]);
    let seen = logged.length;
    expect((await call("applyChunk", "l1", broken)).status).toBe(400);
    expect(String((await refusalAfter(seen))?.error)).toContain("cannot decompress");
    seen = logged.length;
    const badJson = new Blob([Bun.gzipSync(new TextEncoder().encode("{nope"))]);
    expect((await call("applyChunk", "l1", badJson)).status).toBe(400);
    expect(String((await refusalAfter(seen))?.error)).toContain("JSON");
    const chunk = await call("chunk", "l1", gzipJson({}));
    expect(chunk.status).toBe(200);
    expect(JSON.parse(chunk.text)).toMatchObject({ done: true });
    expect((await call("abort", "l1", gzipJson({}))).status).toBe(200);
  });
});
