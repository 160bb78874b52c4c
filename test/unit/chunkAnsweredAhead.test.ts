/**
 * A `chunk` answered on the main thread from the reply the user's worker made ahead
 * (`CollectionExecutor.answerAhead`): the client gets the same chunks as through the worker,
 * and any request that does not match the offer takes the worker's path.
 */
import { afterEach, beforeEach, expect, test } from "bun:test";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { loadConfig } from "../../src/config.ts";
import { WorkerPoolExecutor } from "../../src/executor/executor.ts";
import type { EncodedReply, NormalSyncJob, ReplyEncoding } from "../../src/executor/jobs.ts";
import { UserState } from "../../src/executor/userState.ts";
import { workerSettings } from "../../src/server.ts";
import { userPaths } from "../../src/storage/paths.ts";
import type { NormalSyncMethod } from "../../src/sync/collection/normalSync.ts";
import { isEmptyArgsBody } from "../../src/sync/requestBody.ts";

const uuid = "00000000-0000-4000-8000-0000000000c1";
let dir: string;
let exec: WorkerPoolExecutor;

beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), "ankisyncd-ahead-"));
  addRows(dir);
  exec = new WorkerPoolExecutor(workerSettings(loadConfig({ SYNC_BASE: dir })), 1);
});

afterEach(async () => {
  await exec.close();
  rmSync(dir, { recursive: true, force: true });
});

/** 300 each of revlog entries, notes and cards past the client's usn: four chunks. */
function addRows(dataDir: string): void {
  const user = new UserState(userPaths(dataDir, uuid));
  const db = user.collection.open();
  db.query("update col set usn = 10").run();
  const models = JSON.parse(
    (db.query("select models from col").get() as { models: string }).models,
  );
  const mid = Number(Object.keys(models)[0]);
  db.transaction(() => {
    for (let i = 1; i <= 300; i++) {
      db.query("insert into revlog values ($id, 1, 10, 3, 1, 0, 2500, 100, 1)").run({ id: i });
      db.query(
        "insert into notes values ($id, 'g' || $id, $mid, 1, 10, '', 'a' || $id || char(31) || 'b', 'a', 0, 0, '')",
      ).run({ id: 1000 + i, mid });
      db.query(
        "insert into cards values ($id, 1, 1, 0, 1, 10, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, '{}')",
      ).run({ id: 5000 + i });
    }
  })();
  user.close();
}

function job(
  method: NormalSyncMethod,
  payload: string,
  opts: { skey?: string; reply?: ReplyEncoding } = {},
): NormalSyncJob {
  return {
    kind: "normalSync",
    user: { uuid },
    method,
    skey: opts.skey ?? "k1",
    body: { bytes: new TextEncoder().encode(payload), compression: "none", maxBytes: 1e6 },
    reply: opts.reply ?? "none",
  };
}

const text = (reply: EncodedReply) => new TextDecoder().decode(reply.body);

/** The offer arrives from the worker in its own time: asked again until it has (or a while passed). */
async function answeredAhead(request: () => NormalSyncJob): Promise<EncodedReply | undefined> {
  for (let i = 0; i < 400; i++) {
    const reply = exec.answerAhead(request());
    if (reply) return reply;
    await Bun.sleep(5);
  }
  return undefined;
}

async function start(): Promise<void> {
  await exec.run(job("start", JSON.stringify({ minUsn: 10, lnewer: false, graves: null })));
}

/** Every chunk of a sync; `ahead`: from the offer whenever one comes. */
async function pull(ahead: boolean): Promise<{ chunks: string[]; answeredAhead: number }> {
  await start();
  const chunks: string[] = [];
  let answered = 0;
  for (;;) {
    // The first chunk of a sync is never made ahead; each later one is.
    const later = ahead && chunks.length > 0;
    const offered = later ? await answeredAhead(() => job("chunk", "{}")) : undefined;
    if (offered) answered++;
    const json = text(offered ?? (await exec.run(job("chunk", "{}"))));
    chunks.push(json);
    if ((JSON.parse(json) as { done: boolean }).done) break;
  }
  await exec.run(job("abort", "{}"));
  return { chunks, answeredAhead: answered };
}

test("chunks answered ahead are the chunks the worker answers, in the same order", async () => {
  const plain = await pull(false);
  const ahead = await pull(true);
  expect(plain.chunks.length).toBe(4);
  expect(ahead.chunks).toEqual(plain.chunks);
  expect(ahead.answeredAhead).toBe(3);
});

test("a request that does not match the offer takes the worker's path, and the offer stands", async () => {
  await start();
  const first = text(await exec.run(job("chunk", "{}")));
  expect(JSON.parse(first).done).toBe(false);
  // Ready once the worker has offered the next chunk; none of these may take it.
  const second = await answeredAhead(() => job("chunk", '{"_pad":"x"}', { skey: "other" }));
  expect(second).toBeUndefined();
  expect(exec.answerAhead(job("chunk", "{}", { reply: "zstd" }))).toBeUndefined();
  expect(exec.answerAhead(job("chunk", '{"extra":1}'))).toBeUndefined();
  expect(exec.answerAhead(job("chunk", "[]"))).toBeUndefined();
  expect(exec.answerAhead(job("finish", "{}"))).toBeUndefined();
  const taken = await answeredAhead(() => job("chunk", '{"_pad":null}'));
  expect(taken).toBeDefined();
  expect(JSON.parse(text(taken as EncodedReply)).done).toBe(false);
});

test("an offer no longer stands once another job of the user was sent", async () => {
  await start();
  await exec.run(job("chunk", "{}"));
  expect(await answeredAhead(() => job("finish", "{}"))).toBeUndefined();
  // The worker refuses the body; the offer it made before is gone all the same.
  await expect(exec.run(job("chunk", '{"extra":1}'))).rejects.toThrow();
  expect(exec.answerAhead(job("chunk", "{}"))).toBeUndefined();
  // The worker answers the next chunk itself, and offers the one after.
  const next = text(await exec.run(job("chunk", "{}")));
  expect(JSON.parse(next).done).toBe(false);
  expect(await answeredAhead(() => job("chunk", "{}"))).toBeDefined();
});

test("only empty arguments pass the main thread's check of a chunk's body", () => {
  const raw = (payload: string) => ({
    bytes: new TextEncoder().encode(payload),
    compression: "none" as const,
    maxBytes: 1e6,
  });
  expect(isEmptyArgsBody(raw(""))).toBe(true);
  expect(isEmptyArgsBody(raw("{}"))).toBe(true);
  expect(isEmptyArgsBody(raw('{"_pad":"xxxx"}'))).toBe(true);
  expect(isEmptyArgsBody(raw('{"a":1}'))).toBe(false);
  expect(isEmptyArgsBody(raw("null"))).toBe(false);
  expect(isEmptyArgsBody(raw("[]"))).toBe(false);
  expect(isEmptyArgsBody(raw("{"))).toBe(false);
  expect(isEmptyArgsBody({ ...raw("{}"), compression: "zstd" })).toBe(false);
  expect(isEmptyArgsBody(raw("{}{}"))).toBe(false);
  expect(isEmptyArgsBody({ ...raw("{}"), maxBytes: 1 })).toBe(false);
});
