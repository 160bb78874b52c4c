/**
 * Micro-benchmark: a collection worker's share of the `many users` workload, without HTTP or
 * threads. USERS users (each a copy of COLLECTION, e.g. the `many-upload.anki2` that
 * `bench/run.sh --only many --workdir DIR` leaves) take turns running the jobs one loop of
 * bench/loadclient.ts makes the worker run: meta, a normal sync of NOTES changed notes (start,
 * applyChanges, chunk, applyChunk, sanityCheck2, finish; bodies zstd-compressed as a v11 client
 * sends them) and a media sync of one new file (begin, mediaChanges, uploadSmallChanges,
 * mediaSanity). Prints CPU and wall milliseconds per loop, by job. Not a test.
 *   bun bench/micro/manyUsers.ts COLLECTION LOADCONFIG.json [users=10] [loops=200]
 *   bun --cpu-prof-md --cpu-prof-dir=DIR bench/micro/manyUsers.ts COLLECTION LOADCONFIG.json
 * LOADCONFIG is the `many-load-0.json` the same run leaves (its `notes` and `counts`).
 * COLLECTION_WAL=0: the rollback journal while open (ANKISYNCD_COLLECTION_WAL=0; default WAL).
 */
import { copyFileSync, mkdirSync, mkdtempSync, readFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { zipSync } from "fflate";
import { UserHost } from "../../src/executor/host.ts";
import type { Job } from "../../src/executor/jobs.ts";
import { userPaths } from "../../src/storage/paths.ts";
import { editedNoteRow } from "../noteEdit.ts";

const [source, configPath, usersArg, loopsArg] = process.argv.slice(2);
if (!source || !configPath)
  throw new Error("usage: manyUsers.ts COLLECTION LOADCONFIG [users] [loops]");
const config = JSON.parse(readFileSync(configPath, "utf8")) as {
  notes: unknown[][];
  counts: unknown[];
};
const userCount = Number(usersArg ?? 10);
const loops = Number(loopsArg ?? 200);
const dir = mkdtempSync(join(process.env.BENCH_TMP ?? tmpdir(), "many-micro-"));
const host = new UserHost({
  dataDir: dir,
  maxUncompressedBytes: 300 * 1024 * 1024,
  backupsKept: 3,
  idleCloseSecs: 3600,
  syncSessionTimeoutSecs: 3600,
  networkFs: false,
  collectionWal: process.env.COLLECTION_WAL !== "0",
  taskNice: 0,
  logLevel: "warn",
  logFormat: "text",
  instance: "micro",
  unicaseExtension: join(import.meta.dirname, "../../build/unicase.so"),
});
const encoder = new TextEncoder();
const zstd = (value: unknown) => Bun.zstdCompressSync(encoder.encode(JSON.stringify(value)));
const cpu = new Map<string, number>();
const wall = new Map<string, number>();

interface UserRun {
  uuid: string;
  usn: number;
  mediaUsn: number;
  files: number;
  round: number;
}

async function run(name: string, work: Job): Promise<unknown> {
  const c0 = process.cpuUsage();
  const w0 = performance.now();
  const result = await host.handle(work);
  const c = process.cpuUsage(c0);
  cpu.set(name, (cpu.get(name) ?? 0) + (c.user + c.system) / 1000);
  wall.set(name, (wall.get(name) ?? 0) + performance.now() - w0);
  return result;
}

function decoded(reply: unknown): unknown {
  const { body } = reply as { body: Uint8Array };
  return JSON.parse(new TextDecoder().decode(Bun.zstdDecompressSync(body)));
}

async function normal(u: UserRun, method: string, skey: string, body: unknown): Promise<unknown> {
  const job: Job = {
    kind: "normalSync",
    user: { uuid: u.uuid },
    method: method as never,
    skey,
    body: { bytes: zstd(body), compression: "zstd", maxBytes: 1024 * 1024 },
    reply: "zstd",
  };
  return decoded(await run(method, job));
}

async function loop(u: UserRun): Promise<void> {
  u.round++;
  const user = { uuid: u.uuid };
  const meta = (await run("meta", { kind: "meta", user, req: { v: 11, cv: "anki,25.02.5" } })) as {
    usn: number;
  };
  const skey = `k${u.round}`;
  await normal(u, "start", skey, { minUsn: u.usn, lnewer: false, graves: null });
  await normal(u, "applyChanges", skey, { changes: { models: [], decks: [[], []], tags: [] } });
  while (!((await normal(u, "chunk", skey, {})) as { done: boolean }).done) {}
  const now = Math.floor(Date.now() / 1000);
  const notes = config.notes.map((row) =>
    editedNoteRow(row, `${u.uuid} round ${u.round}`, now, meta.usn),
  );
  await normal(u, "applyChunk", skey, { chunk: { done: true, notes, cards: [], revlog: [] } });
  const sanity = (await normal(u, "sanityCheck2", skey, { client: config.counts })) as {
    status: string;
  };
  if (sanity.status !== "ok") throw new Error(`sanity: ${JSON.stringify(sanity)}`);
  await normal(u, "finish", skey, {});
  u.usn = meta.usn + 1;
  await run("begin", { kind: "media", user, op: { method: "begin" } });
  await run("mediaChanges", {
    kind: "media",
    user,
    op: { method: "mediaChanges", lastUsn: u.mediaUsn },
  });
  const payload = crypto.getRandomValues(new Uint8Array(2000 + Math.floor(Math.random() * 6000)));
  const zip = zipSync(
    { "0": payload, _meta: encoder.encode(JSON.stringify([[`${u.uuid}-${u.round}.bin`, "0"]])) },
    { level: 0 },
  );
  const uploaded = (await run("uploadSmallChanges", {
    kind: "media",
    user,
    op: {
      method: "uploadSmallChanges",
      body: Bun.zstdCompressSync(zip),
      compression: "zstd",
      limits: { maxUncompressedBytes: 300 * 1024 * 1024 },
    },
  })) as [number, number];
  u.mediaUsn = uploaded[1];
  u.files++;
  const ok = await run("mediaSanity", {
    kind: "media",
    user,
    op: { method: "mediaSanity", local: u.files },
  });
  if (ok !== "OK") throw new Error(`media sanity: ${JSON.stringify(ok)}`);
}

const users: UserRun[] = [];
for (let i = 0; i < userCount; i++) {
  const uuid = `u${i}`;
  const paths = userPaths(dir, uuid);
  mkdirSync(paths.dir, { recursive: true });
  copyFileSync(source, paths.collection);
  users.push({ uuid, usn: 0, mediaUsn: 0, files: 0, round: 0 });
}
// Untimed: the first sync brings everything down.
for (const u of users) await loop(u);
cpu.clear();
wall.clear();
for (let i = 0; i < loops; i++) await loop(users[i % users.length] as UserRun);
let cpuTotal = 0;
let wallTotal = 0;
for (const [name, ms] of cpu) {
  const w = wall.get(name) ?? 0;
  cpuTotal += ms;
  wallTotal += w;
  console.log(
    `${name.padEnd(20)} cpu ${(ms / loops).toFixed(3)} ms  wall ${(w / loops).toFixed(3)} ms`,
  );
}
console.log(
  `${"per loop".padEnd(20)} cpu ${(cpuTotal / loops).toFixed(3)} ms  wall ${(wallTotal / loops).toFixed(3)} ms`,
);
host.shutdown();
