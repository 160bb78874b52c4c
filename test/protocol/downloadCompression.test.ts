/**
 * A full download is compressed for the fewest bytes (zstd level 3, as Anki's server does) unless
 * the client is on the local network, where the link outpaces that and speed wins (level 1).
 * The client's address comes from SYNC_IP_HEADER here, as behind the Caddy of compose.yaml.
 */
import { Database } from "bun:sqlite";
import { afterAll, beforeAll, expect, test } from "bun:test";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createEmptyCollection } from "../../src/storage/collection/collectionFile.ts";
import { login, v11 } from "../helpers/syncClient.ts";
import { startTestServer, type TestServer } from "../helpers/testServer.ts";

let server: TestServer;
const scratch = mkdtempSync(join(tmpdir(), "ankisyncd-dlzstd-"));

beforeAll(async () => {
  server = await startTestServer({ SYNC_IP_HEADER: "X-Forwarded-For" });
});
afterAll(async () => {
  await server.dispose();
  rmSync(scratch, { recursive: true, force: true });
});

/** A collection of ~1 MB of word-like notes (compresses as a real one does). */
function wordyCollection(): Uint8Array {
  const path = join(scratch, "wordy.anki2");
  createEmptyCollection(path);
  const db = new Database(path);
  let seed = 7;
  const next = () => {
    seed = (seed * 1103515245 + 12345) % 2 ** 31;
    return seed;
  };
  const word = () => Array.from({ length: 2 + (next() % 8) }, () => "etaoinshrdlu"[next() % 12]);
  const insert = db.prepare(
    "insert into notes values (?, ?, (select cast(json_each.key as integer) from col, json_each(col.models) limit 1), 1700000000, 0, '', ?, ?, 0, 0, '')",
  );
  for (let i = 0; i < 2000; i++) {
    const text = Array.from({ length: 60 }, () => word().join("")).join(" ");
    insert.run(1700000000000 + i, `g${i}`, `${text}\x1fback`, text);
  }
  db.close();
  return readFileSync(path);
}

/** The body's compressed bytes and the size of the collection it holds. */
async function downloadFrom(ip: string, hkey: string): Promise<{ bytes: number; size: number }> {
  const res = await fetch(`${server.url}sync/download`, {
    method: "POST",
    headers: {
      "anki-sync": JSON.stringify({ v: 11, k: hkey, c: "26.09.3,abcdef12,linux", s: "s1" }),
      "x-forwarded-for": ip,
    },
    body: Bun.zstdCompressSync(new TextEncoder().encode("{}")) as Uint8Array<ArrayBuffer>,
  });
  expect(res.status).toBe(200);
  const body = new Uint8Array(await res.arrayBuffer());
  return { bytes: body.byteLength, size: Bun.zstdDecompressSync(body).byteLength };
}

test("a remote client gets fewer bytes than one on the local network, both whole", async () => {
  const hkey = await login(server.url, "alice", "secret");
  expect((await v11(server.url, "upload", wordyCollection(), { hkey })).text).toBe("OK");
  const remote = await downloadFrom("203.0.113.7", hkey);
  const local = await downloadFrom("192.168.1.5", hkey);
  // Each download bumps the stored file, which may then differ by a page: ratios, not sizes.
  expect(Math.abs(remote.size - local.size)).toBeLessThanOrEqual(64 * 1024);
  expect(remote.bytes / remote.size).toBeLessThan(local.bytes / local.size);
  // ~3.6 s on an idle CI host (two large collections compressed), too near bun's 5 s default.
}, 30_000);
