import { Database } from "bun:sqlite";
import { afterAll, beforeAll, expect, test } from "bun:test";
import { randomBytes } from "node:crypto";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createEmptyCollection } from "../../src/storage/collection/collectionFile.ts";
import { login, v11 } from "../helpers/syncClient.ts";
import { startTestServer, type TestServer } from "../helpers/testServer.ts";

// One collection worker for both users: only the task workers can keep B answered.
let server: TestServer;
beforeAll(async () => {
  server = await startTestServer({ ANKISYNCD_WORKERS: "1" });
});
afterAll(async () => {
  await server.dispose();
});

function bigCollection(megabytes: number): Uint8Array {
  const dir = mkdtempSync(join(tmpdir(), "ankisyncd-big-"));
  const path = join(dir, "big.anki2");
  createEmptyCollection(path);
  const db = new Database(path);
  db.run("update col set mod = 1700000000000, scm = 1700000000000, usn = 1");
  const insert = db.prepare(
    "insert into notes values (?, ?, 1, 1700000000, 0, '', ?, '', 0, 0, '')",
  );
  db.transaction(() => {
    for (let i = 0; i < megabytes * 100; i++) {
      insert.run(1700000000000 + i, `g${i}`, randomBytes(5000).toString("hex"));
    }
  })();
  db.close();
  try {
    return readFileSync(path);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

/** A v11 upload whose body is a stream we feed, so we know when it has all been sent. */
async function postUpload(file: Uint8Array, hkey: string, onSent: () => void): Promise<string> {
  const compressed = Bun.zstdCompressSync(file);
  const chunk = 1 << 20;
  let offset = 0;
  const body = new ReadableStream<Uint8Array>({
    pull(controller) {
      if (offset >= compressed.length) {
        controller.close();
        onSent();
        return;
      }
      controller.enqueue(compressed.subarray(offset, offset + chunk));
      offset += chunk;
    },
  });
  const header = JSON.stringify({ v: 11, k: hkey, c: "test,1.0,linux", s: "up" });
  const res = await fetch(`${server.url}sync/upload`, {
    method: "POST",
    headers: { "anki-sync": header },
    body,
  });
  return new TextDecoder().decode(Bun.zstdDecompressSync(new Uint8Array(await res.arrayBuffer())));
}

test("another user on the same worker is answered while a large upload is checked", async () => {
  const file = bigCollection(64);
  const [alice, bob] = await Promise.all([
    login(server.url, "alice", "secret"),
    login(server.url, "bob", "hunter2"),
  ]);
  // Count only what happens after the whole body is sent: the server is checking the upload.
  let bodySent = false;
  let uploadDone = false;
  const upload = postUpload(file, alice, () => {
    bodySent = true;
  }).then((reply) => {
    uploadDone = true;
    return reply;
  });
  let answeredWhileChecking = 0;
  while (!uploadDone) {
    const meta = await v11(server.url, "meta", { v: 11, cv: "x" }, { hkey: bob });
    expect(meta.status).toBe(200);
    if (bodySent && !uploadDone) answeredWhileChecking++;
  }
  expect(await upload).toBe("OK");
  expect(answeredWhileChecking).toBeGreaterThan(3);
}, 120_000);
