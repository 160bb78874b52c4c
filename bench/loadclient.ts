/**
 * The `many users` load generator (bench/workloads.py ManyUsers): a lean v11 protocol client,
 * every user an async task in one Bun process. The Python client (loadclient.py, one thread per
 * user under the GIL) spent ~4.4 ms of CPU per sync and could not drive more than ~200 syncs/s
 * on two CPUs; this one does the same requests and checks with far less CPU, so the servers,
 * not the client, set the pace.
 *
 * Each loop is a complete, valid normal sync (meta, start, applyChanges, chunk until done,
 * applyChunk with the changed notes, sanityCheck2, finish) and a complete media sync of one new
 * file (begin, mediaChanges, uploadChanges, mediaSanity), the requests a real client makes for
 * them (docs/protocol.md); every answer is decoded and checked. Constant request bodies are
 * compressed once. Connections are kept open between requests (Bun's fetch pool), as a real
 * client's are, for both servers.
 *
 *   bun bench/loadclient.ts CONFIG.json
 * CONFIG: {url, users: [{user, password}], upload: path of the collection to full-upload,
 * notes: wire rows of the notes each sync changes, counts: sanityCheck2's `client`, seconds}.
 * It logs every user in, full-uploads, runs one untimed normal and media sync each, prints
 * `{"ready": true}`, waits for a line on stdin, runs the timed loops for `seconds`, and prints
 * one JSON line: times (s per loop), errors by kind, elapsed, the CPU it used while timed, and
 * each user's end state (the text last synced per note, media files uploaded), which the
 * bench checks with the real client.
 */
import { readFileSync } from "node:fs";
import { zipSync } from "fflate";
import { editedNoteRow } from "./noteEdit.ts";

const CLIENT_VERSION = "25.02.5,loadclient,linux";
const LONG_VERSION = "anki,25.02.5 (loadclient),linux";
const TIMEOUT_MS = 120_000;
const ERROR_PAUSE_MS = 500; // a real client would not retry at once
const PREPARE_CONCURRENCY = 4;

interface Config {
  url: string;
  users: { user: string; password: string }[];
  upload: string;
  notes: unknown[][];
  counts: unknown[];
  seconds: number;
}

class SyncFailure extends Error {
  constructor(
    readonly kind: string,
    detail: string,
  ) {
    super(`${kind}: ${detail}`);
  }
}

const encoder = new TextEncoder();
const decoder = new TextDecoder();
const zstd = (text: string): Uint8Array => Bun.zstdCompressSync(encoder.encode(text));

/** Bodies that never change, compressed once. */
const BODY = {
  meta: zstd(JSON.stringify({ v: 11, cv: LONG_VERSION })),
  applyChanges: zstd(JSON.stringify({ changes: { models: [], decks: [[], []], tags: [] } })),
  empty: zstd("{}"),
  begin: zstd(JSON.stringify({ v: LONG_VERSION })),
};

function header(hkey: string, skey: string): string {
  return JSON.stringify({ v: 11, k: hkey, c: CLIENT_VERSION, s: skey });
}

const ALNUM = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789";
function skey(): string {
  let s = "";
  for (let i = 0; i < 8; i++) s += ALNUM[Math.floor(Math.random() * ALNUM.length)];
  return s;
}

class LeanClient {
  hkey = "";
  usn = 0;
  mediaUsn = 0;
  mediaFiles = 0;
  round = 0;
  lastFields: Record<string, string> = {};

  constructor(
    readonly url: string,
    readonly user: string,
    readonly password: string,
    readonly template: { upload: Uint8Array; notes: unknown[][]; sanity: Uint8Array },
  ) {}

  /** One request, its answer decompressed; anything but 200 is a failure. */
  async post(path: string, body: Uint8Array, sk = ""): Promise<Uint8Array> {
    let res: Response;
    let data: Uint8Array;
    try {
      res = await fetch(this.url + path, {
        method: "POST",
        body: body as BodyInit,
        headers: { "anki-sync": header(this.hkey, sk) },
        signal: AbortSignal.timeout(TIMEOUT_MS),
      });
      data = new Uint8Array(await res.arrayBuffer());
    } catch (err) {
      throw new SyncFailure(`connection ${(err as Error).name}`, String(err));
    }
    if (res.status !== 200) {
      throw new SyncFailure(
        `http ${res.status}`,
        `${path}: ${decoder.decode(data.subarray(0, 200))}`,
      );
    }
    try {
      return Bun.zstdDecompressSync(data);
    } catch (err) {
      throw new SyncFailure("bad zstd answer", `${path}: ${String(err)}`);
    }
  }

  async json(path: string, body: Uint8Array, sk = ""): Promise<unknown> {
    const text = decoder.decode(await this.post(path, body, sk));
    try {
      return JSON.parse(text);
    } catch {
      throw new SyncFailure("bad json answer", `${path}: ${text.slice(0, 200)}`);
    }
  }

  async media(method: string, body: Uint8Array): Promise<unknown> {
    const reply = (await this.json(`/msync/${method}`, body)) as { data?: unknown; err?: string };
    if (reply === null || typeof reply !== "object") {
      throw new SyncFailure("media answer", `${method}: ${JSON.stringify(reply)}`);
    }
    if (reply.err) throw new SyncFailure("media err", `${method}: ${reply.err}`);
    return reply.data;
  }

  async login(): Promise<void> {
    const body = zstd(JSON.stringify({ u: this.user, p: this.password }));
    const reply = (await this.json("/sync/hostKey", body)) as { key?: unknown };
    if (typeof reply?.key !== "string") throw new SyncFailure("login", JSON.stringify(reply));
    this.hkey = reply.key;
  }

  async meta(): Promise<{ usn: number; media_usn: number; cont: boolean }> {
    const meta = (await this.json("/sync/meta", BODY.meta)) as Record<string, unknown>;
    if (typeof meta?.usn !== "number" || typeof meta.media_usn !== "number") {
      throw new SyncFailure("meta answer", JSON.stringify(meta).slice(0, 200));
    }
    return meta as { usn: number; media_usn: number; cont: boolean };
  }

  async fullUpload(): Promise<void> {
    const reply = decoder.decode(await this.post("/sync/upload", this.template.upload, skey()));
    if (reply !== "OK") throw new SyncFailure("upload refused", reply.slice(0, 200));
    const meta = await this.meta();
    this.usn = meta.usn;
    this.mediaUsn = meta.media_usn;
  }

  /** Edits the first field of the template's notes and syncs them up. */
  async normalSync(): Promise<void> {
    this.round += 1;
    const meta = await this.meta();
    if (!meta.cont) throw new SyncFailure("meta refused", JSON.stringify(meta));
    const serverUsn = meta.usn;
    const sk = skey();
    const start = zstd(JSON.stringify({ minUsn: this.usn, lnewer: false, graves: null }));
    expectObject(await this.json("/sync/start", start, sk), "start");
    expectObject(await this.json("/sync/applyChanges", BODY.applyChanges, sk), "applyChanges");
    for (let i = 0; ; i++) {
      const chunk = (await this.json("/sync/chunk", BODY.empty, sk)) as { done?: unknown };
      if (typeof chunk?.done !== "boolean")
        throw new SyncFailure("chunk answer", JSON.stringify(chunk));
      if (chunk.done) break;
      if (i >= 1000) throw new SyncFailure("chunk", "not done after 1000 chunks");
    }
    const now = Math.floor(Date.now() / 1000);
    const text = `${this.user} round ${this.round}`;
    const notes = this.template.notes.map((row) => {
      this.lastFields[String(row[0])] = text;
      return editedNoteRow(row, text, now, serverUsn);
    });
    const applyChunk = zstd(
      JSON.stringify({ chunk: { done: true, notes, cards: [], revlog: [] } }),
    );
    await this.json("/sync/applyChunk", applyChunk, sk);
    const check = (await this.json("/sync/sanityCheck2", this.template.sanity, sk)) as {
      status?: unknown;
    };
    if (check?.status !== "ok") {
      await this.json("/sync/abort", BODY.empty, sk);
      throw new SyncFailure("sanity check", JSON.stringify(check).slice(0, 300));
    }
    const finished = await this.json("/sync/finish", BODY.empty, sk);
    if (typeof finished !== "number")
      throw new SyncFailure("finish answer", JSON.stringify(finished));
    this.usn = serverUsn + 1;
  }

  /** Uploads one new file, as the client does when one file was added. */
  async mediaSync(): Promise<void> {
    await this.media("begin", BODY.begin);
    const changes = (await this.media(
      "mediaChanges",
      zstd(JSON.stringify({ lastUsn: this.mediaUsn })),
    )) as [string, number, string][];
    if (!Array.isArray(changes)) throw new SyncFailure("media changes", JSON.stringify(changes));
    // Only our own earlier uploads: nothing to fetch.
    const last = changes.at(-1);
    if (last) this.mediaUsn = Math.max(this.mediaUsn, last[1]);
    const name = `${this.user}-${this.round}-${skey()}.bin`;
    const payload = crypto.getRandomValues(new Uint8Array(2000 + Math.floor(Math.random() * 6000)));
    const zip = zipSync(
      { "0": payload, _meta: encoder.encode(JSON.stringify([[name, "0"]])) },
      { level: 0 },
    );
    const reply = await this.media("uploadChanges", Bun.zstdCompressSync(zip));
    const [processed, usn] = Array.isArray(reply) ? reply : [];
    if (processed !== 1 || usn !== this.mediaUsn + 1) {
      throw new SyncFailure(
        "media upload",
        `answered ${JSON.stringify(reply)} after usn ${this.mediaUsn}`,
      );
    }
    this.mediaUsn = usn;
    this.mediaFiles += 1;
    const sanity = await this.media(
      "mediaSanity",
      zstd(JSON.stringify({ local: this.mediaFiles })),
    );
    if (sanity !== "OK") throw new SyncFailure("media sanity", JSON.stringify(sanity));
  }
}

function expectObject(value: unknown, what: string): void {
  if (value === null || typeof value !== "object") {
    throw new SyncFailure(`${what} answer`, JSON.stringify(value).slice(0, 200));
  }
}

/** `work` for every item, at most `limit` at once; the first failure is thrown. */
async function eachLimited<T>(items: T[], limit: number, work: (item: T) => Promise<void>) {
  let next = 0;
  const lane = async () => {
    while (next < items.length) await work(items[next++] as T);
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, lane));
}

async function firstLine(): Promise<void> {
  for await (const chunk of Bun.stdin.stream()) {
    if (decoder.decode(chunk).includes("\n")) return;
  }
}

async function main(): Promise<void> {
  const configPath = process.argv[2];
  if (!configPath) throw new Error("usage: bun bench/loadclient.ts CONFIG.json");
  const config = JSON.parse(readFileSync(configPath, "utf8")) as Config;
  const template = {
    upload: Bun.zstdCompressSync(readFileSync(config.upload)),
    notes: config.notes,
    sanity: zstd(JSON.stringify({ client: config.counts })),
  };
  const clients = config.users.map((u) => new LeanClient(config.url, u.user, u.password, template));
  await eachLimited(clients, PREPARE_CONCURRENCY, async (c) => {
    await c.login();
    await c.fullUpload();
    await c.normalSync(); // the first one brings the whole collection down: untimed
    await c.mediaSync();
  });
  console.log(JSON.stringify({ ready: true }));
  await firstLine();

  const times: number[] = [];
  const errors: Record<string, number> = {};
  const cpuBefore = process.cpuUsage();
  const started = performance.now();
  const deadline = started + config.seconds * 1000;
  await Promise.all(
    clients.map(async (c) => {
      while (performance.now() < deadline) {
        const t0 = performance.now();
        try {
          await c.normalSync();
          await c.mediaSync();
          times.push((performance.now() - t0) / 1000);
        } catch (err) {
          const kind = err instanceof SyncFailure ? err.kind : `client ${(err as Error).name}`;
          errors[kind] = (errors[kind] ?? 0) + 1;
          await Bun.sleep(ERROR_PAUSE_MS);
        }
      }
    }),
  );
  const elapsed = (performance.now() - started) / 1000;
  const cpu = process.cpuUsage(cpuBefore);
  console.log(
    JSON.stringify({
      times,
      errors,
      elapsed,
      cpu_s: (cpu.user + cpu.system) / 1e6,
      users: clients.map((c) => ({
        user: c.user,
        last_fields: c.lastFields,
        media_files: c.mediaFiles,
      })),
    }),
  );
}

await main();
