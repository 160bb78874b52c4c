/**
 * Micro-benchmark: the worker's share of the `normal` workload, without HTTP or threads. A
 * schema-11 collection (a copy of COLLECTION, e.g. one `bench/run.sh --workdir` left in
 * server-ours/data/collections/<uuid>/collection.anki2) receives N changed notes with their
 * cards and one new review per card (sync up), then a second session downloads them (sync
 * down). Prints CPU milliseconds per step, summed over the session. Not a test.
 *   bun bench/micro/normalSync.ts COLLECTION [notes=3000] [rounds=5]
 *   bun --cpu-prof --cpu-prof-dir=DIR bench/micro/normalSync.ts COLLECTION
 * WALL=1 reports wall time instead (fsyncs included); COLLECTION_WAL=0 keeps the rollback
 * journal while open (ANKISYNCD_COLLECTION_WAL=0; the server's default is WAL while open);
 * JOURNAL=<mode> tries another SQLite journal mode on the copy; CACHE=<n> sets its
 * `cache_size` (SQLite's default, -2000, is 2 MB). Work a step leaves until after its reply (the
 * next chunk, an applyChunk's writes) is counted as `<method>+after`; LATER=0 does it all
 * before the reply.
 */
import { copyFileSync, mkdirSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { UserState } from "../../src/executor/userState.ts";
import { userPaths } from "../../src/storage/paths.ts";
import { type NormalSyncMethod, runNormalSyncStep } from "../../src/sync/collection/normalSync.ts";

const [source, notesArg, roundsArg] = process.argv.slice(2);
if (!source) throw new Error("usage: normalSync.ts COLLECTION [notes] [rounds]");
const noteCount = Number(notesArg ?? 3000);
const rounds = Number(roundsArg ?? 5);
const dir = mkdtempSync(join(process.env.BENCH_TMP ?? tmpdir(), "normal-micro-"));
const paths = userPaths(dir, "u1");
mkdirSync(paths.dir, { recursive: true });
copyFileSync(source, paths.collection);
const user = new UserState(paths, { networkFs: false }, process.env.COLLECTION_WAL !== "0");
if (process.env.JOURNAL)
  user.collection.open().exec(`PRAGMA journal_mode = ${process.env.JOURNAL}`);
if (process.env.CACHE) user.collection.open().exec(`PRAGMA cache_size = ${process.env.CACHE}`);
const totals = new Map<string, number>();
const later = process.env.LATER !== "0";
let skeyN = 0;

/**
 * CPU time of the process (wall time moves with whatever else runs on the machine); with
 * WALL=1 wall time, which includes waiting for fsync.
 */
function cpuMs(): number {
  if (process.env.WALL) return performance.now();
  const { user, system } = process.cpuUsage();
  return (user + system) / 1000;
}

/**
 * As the worker runs a step: the reply, then the work left until after it (`later`), which
 * overlaps with the client's handling of the reply; counted apart as `<method>+after`.
 * LATER=0 does everything before the reply, as before that split.
 */
function step(method: NormalSyncMethod, skey: string, body: unknown): unknown {
  const text = typeof body === "string" ? body : JSON.stringify(body);
  const started = cpuMs();
  const { json, after } = runNormalSyncStep(user, method, skey, text, { later });
  const replied = cpuMs();
  totals.set(method, (totals.get(method) ?? 0) + replied - started);
  if (after) {
    after();
    const key = `${method}+after`;
    totals.set(key, (totals.get(key) ?? 0) + cpuMs() - replied);
  }
  return JSON.parse(json);
}

const NO_CHANGES = {
  changes: { models: [], decks: [[], []], tags: [], conf: null, crt: null },
};

function counts(): unknown {
  const db = user.collection.open();
  const n = (t: string) => (db.query(`select count() as n from ${t}`).get() as { n: number }).n;
  const col = db.query("select models, decks, dconf from col").get() as Record<string, string>;
  const keys = (s: string | undefined) => Object.keys(JSON.parse(s ?? "{}")).length;
  return [
    [0, 0, 0],
    n("cards"),
    n("notes"),
    n("revlog"),
    0,
    keys(col.models),
    keys(col.decks),
    keys(col.dconf),
  ];
}

/** The client's side of an upload: rows changed since the last sync, stamped with the server usn. */
function clientRows(usn: number, round: number) {
  const db = user.collection.open();
  const notes = db
    .query(
      `select id, guid, mid, mod + 1, ${usn}, tags, flds || ' r${round}', '', '', 0, '' from notes
       order by id limit ${noteCount}`,
    )
    .values() as unknown[][];
  const cards = db
    .query(
      `select id, nid, did, ord, mod + 1, ${usn}, type, queue, due + 1, ivl, factor, reps + 1,
       lapses, left, odue, odid, flags, data from cards
       where nid in (select id from notes order by id limit ${noteCount})`,
    )
    .values() as unknown[][];
  const base = Date.now() + round * 1e7;
  const revlog = cards.map((card, i) => [base + i, card[0], usn, 3, 10, 5, 2500, 6000, 1]);
  return { notes, cards, revlog };
}

function syncUp(round: number): number {
  const skey = `up${skeyN++}`;
  const db = user.collection.open();
  const usn = (db.query("select usn from col").get() as { usn: number }).usn;
  step("start", skey, { minUsn: usn, lnewer: true, graves: null });
  step("applyChanges", skey, NO_CHANGES);
  while (!(step("chunk", skey, { _pad: null }) as { done: boolean }).done) {}
  const rows = clientRows(usn, round);
  const all = [
    ...rows.revlog.map((r) => ["revlog", r] as const),
    ...rows.cards.map((r) => ["cards", r] as const),
    ...rows.notes.map((r) => ["notes", r] as const),
  ];
  for (let i = 0; i < all.length; i += 250) {
    const chunk: Record<string, unknown> = { done: i + 250 >= all.length };
    for (const [kind, row] of all.slice(i, i + 250)) {
      const list = (chunk[kind] as unknown[] | undefined) ?? [];
      list.push(row);
      chunk[kind] = list;
    }
    step("applyChunk", skey, { chunk });
  }
  step("sanityCheck2", skey, { client: counts() });
  step("finish", skey, { _pad: null });
  return usn;
}

function syncDown(minUsn: number): void {
  const skey = `down${skeyN++}`;
  step("start", skey, { minUsn, lnewer: false, graves: null });
  step("applyChanges", skey, NO_CHANGES);
  let received = 0;
  for (;;) {
    const reply = step("chunk", skey, { _pad: null }) as { done: boolean; notes?: unknown[] };
    received += reply.notes?.length ?? 0;
    if (reply.done) break;
  }
  step("applyChunk", skey, { chunk: { done: true } });
  const check = step("sanityCheck2", skey, { client: counts() }) as { status: string };
  if (check.status !== "ok") throw new Error(`sanity check failed: ${JSON.stringify(check)}`);
  step("finish", skey, { _pad: null });
  if (received !== noteCount) throw new Error(`${received} notes came down, not ${noteCount}`);
}

for (let round = 0; round < rounds; round++) {
  totals.clear();
  const upStarted = cpuMs();
  const usn = syncUp(round);
  const up = cpuMs() - upStarted;
  const upSteps = new Map(totals);
  totals.clear();
  const downStarted = cpuMs();
  syncDown(usn);
  const down = cpuMs() - downStarted;
  const fmt = (m: Map<string, number>) => [...m].map(([k, v]) => `${k}=${v.toFixed(1)}`).join(" ");
  console.log(`round ${round}: up ${up.toFixed(0)} ms (${fmt(upSteps)})`);
  console.log(`round ${round}: down ${down.toFixed(0)} ms (${fmt(totals)})`);
}
user.close();
rmSync(dir, { recursive: true, force: true });
