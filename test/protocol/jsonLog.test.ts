/**
 * ANKISYNCD_LOG_FORMAT=json: the real entry point (`bun src/main.ts`) writes one JSON object per
 * line, and each sync request gives one line with method, status, user, client version, client
 * IP (from SYNC_IP_HEADER when set), bytes and time — the shape log collectors are set up for.
 */
import { afterAll, beforeAll, expect, test } from "bun:test";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";

const ROOT = resolve(import.meta.dir, "../..");
const CLIENT = "anki,26.09.3 (29bb700b),linux";

type Line = Record<string, unknown>;

let proc: ReturnType<typeof Bun.spawn> | undefined;
let url = "";
let dataDir = "";
const stdoutLines: string[] = [];
const stderrLines: string[] = [];
let stdoutDone: Promise<void> = Promise.resolve();
let stderrDone: Promise<void> = Promise.resolve();

async function collect(
  stream: ReadableStream<Uint8Array>,
  into: string[],
  onLine?: (line: string) => void,
): Promise<void> {
  const decoder = new TextDecoder();
  let buffered = "";
  for await (const chunk of stream) {
    buffered += decoder.decode(chunk, { stream: true });
    let nl = buffered.indexOf("\n");
    while (nl >= 0) {
      const line = buffered.slice(0, nl);
      buffered = buffered.slice(nl + 1);
      into.push(line);
      onLine?.(line);
      nl = buffered.indexOf("\n");
    }
  }
  if (buffered) into.push(buffered);
}

beforeAll(async () => {
  dataDir = mkdtempSync(join(tmpdir(), "ankisyncd-jsonlog-"));
  const child = Bun.spawn(["bun", "src/main.ts"], {
    cwd: ROOT,
    env: {
      PATH: process.env.PATH ?? "",
      HOME: process.env.HOME ?? dataDir,
      SYNC_HOST: "127.0.0.1",
      SYNC_PORT: "0",
      SYNC_BASE: dataDir,
      SYNC_USER1: "alice:secret",
      SYNC_IP_HEADER: "X-Forwarded-For",
      ANKISYNCD_WORKERS: "1",
      ANKISYNCD_LOG_FORMAT: "json",
    },
    stdout: "pipe",
    stderr: "pipe",
  });
  proc = child;
  const listening = new Promise<string>((resolveUrl, reject) => {
    const timer = setTimeout(
      () => reject(new Error(`no 'listening' line:\n${stderrLines.join("\n")}`)),
      20_000,
    );
    stdoutDone = collect(child.stdout as ReadableStream<Uint8Array>, stdoutLines, (line) => {
      try {
        const parsed = JSON.parse(line) as Line;
        if (parsed.msg === "ankisyncd listening") {
          clearTimeout(timer);
          resolveUrl(String(parsed.url));
        }
      } catch {
        // checked in the test
      }
    });
  });
  stderrDone = collect(child.stderr as ReadableStream<Uint8Array>, stderrLines);
  url = await listening;
});

afterAll(async () => {
  proc?.kill("SIGKILL");
  await proc?.exited;
  rmSync(dataDir, { recursive: true, force: true });
});

async function post(method: string, body: object, hkey = "", xff?: string): Promise<Response> {
  const headers: Record<string, string> = {
    "anki-sync": JSON.stringify({ v: 11, k: hkey, c: CLIENT, s: "skey1" }),
    "content-type": "application/octet-stream",
  };
  if (xff) headers["x-forwarded-for"] = xff;
  return fetch(`${url}sync/${method}`, {
    method: "POST",
    headers,
    body: Bun.zstdCompressSync(
      new TextEncoder().encode(JSON.stringify(body)),
    ) as Uint8Array<ArrayBuffer>,
  });
}

test("every log line is one JSON object; sync lines carry the request's facts", async () => {
  const ok = await post("hostKey", { u: "alice", p: "secret" }, "", "203.0.113.9, 198.51.100.7");
  expect(ok.status).toBe(200);
  const { key } = JSON.parse(
    new TextDecoder().decode(Bun.zstdDecompressSync(new Uint8Array(await ok.arrayBuffer()))),
  ) as { key: string };
  expect((await post("hostKey", { u: "alice", p: "wrong" })).status).toBe(403);
  const meta = await post("meta", { v: 11, cv: CLIENT }, key, "198.51.100.8");
  expect(meta.status).toBe(200);
  await meta.arrayBuffer();

  proc?.kill("SIGTERM");
  await proc?.exited;
  await Promise.all([stdoutDone, stderrDone]);

  const parse = (line: string): Line => {
    try {
      return JSON.parse(line) as Line;
    } catch {
      throw new Error(`not a JSON log line: ${line}`);
    }
  };
  const lines = [...stdoutLines, ...stderrLines].filter((l) => l.trim() !== "").map(parse);
  for (const line of lines) {
    expect(typeof line.time).toBe("string");
    expect(new Date(line.time as string).toISOString()).toBe(line.time as string);
    expect(["debug", "info", "warn", "error"]).toContain(line.level as string);
    expect(typeof line.msg).toBe("string");
  }
  // warnings and errors go to stderr, the rest to stdout
  expect(
    stderrLines
      .filter(Boolean)
      .map(parse)
      .every((l) => l.level === "warn" || l.level === "error"),
  ).toBe(true);

  const calls = lines.filter((l) => typeof l.method === "string" && typeof l.status === "number");
  const login = calls.find((l) => l.method === "hostKey" && l.status === 200);
  expect(login).toMatchObject({
    level: "info",
    client: CLIENT,
    v: 11,
    ip: "198.51.100.7", // rightmost X-Forwarded-For entry: the one our proxy appended
  });
  expect(typeof login?.ms).toBe("number");
  expect(typeof login?.bytesOut).toBe("number");

  expect(calls.find((l) => l.method === "hostKey" && l.status === 403)).toMatchObject({
    level: "warn",
    client: CLIENT,
  });

  const metaLine = calls.find((l) => l.method === "meta");
  expect(metaLine).toMatchObject({
    level: "info",
    status: 200,
    user: "alice",
    client: CLIENT,
    ip: "198.51.100.8",
  });
  expect(typeof metaLine?.uuid).toBe("string");
  expect(metaLine?.bytesOut as number).toBeGreaterThan(0);
  expect(metaLine?.ms as number).toBeGreaterThanOrEqual(0);
  expect(lines.some((l) => l.msg === "shutting down" && l.signal === "SIGTERM")).toBe(true);
}, 30_000);
