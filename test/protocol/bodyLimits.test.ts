/**
 * Request bodies are unpacked only for a known host key, and only as far as the method needs:
 * decompression bombs without a key are refused with 403 unread, a logged-in user's are cut at
 * the method's limit (400), and real bodies larger than the small limit still pass where the
 * protocol carries them (applyChanges, applyChunk).
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { gzipJson, legacy, login, v11 } from "../helpers/syncClient.ts";
import { startTestServer, type TestServer } from "../helpers/testServer.ts";

let server: TestServer;
let hkey: string;
// 64 MiB of zeros: zstd makes a few KB of it; over every per-method limit (3 MiB here).
const bomb = Bun.zstdCompressSync(new Uint8Array(64 * 1024 * 1024));

beforeAll(async () => {
  server = await startTestServer({ MAX_SYNC_PAYLOAD_MEGS: "1" });
  hkey = await login(server.url, "alice", "secret");
});
afterAll(async () => {
  await server.dispose();
});

describe("without a valid host key the body is not unpacked", () => {
  for (const method of ["meta", "start", "applyChanges", "applyChunk", "download", "upload"]) {
    test(`sync/${method}: 403`, async () => {
      for (const key of ["", "f".repeat(64)]) {
        const reply = await v11(server.url, method, {}, { hkey: key, rawBody: bomb });
        expect(reply.status).toBe(403);
      }
    });
  }
  for (const method of ["begin", "mediaChanges", "uploadChanges", "downloadFiles"]) {
    test(`msync/${method}: 403`, async () => {
      const reply = await v11(server.url, method, {}, { rawBody: bomb, path: "msync" });
      expect(reply.status).toBe(403);
    });
  }

  test("legacy multipart: a gzip bomb with an unknown k is 403", async () => {
    const gz = new Blob([Bun.gzipSync(new Uint8Array(16 * 1024 * 1024))]);
    const reply = await legacy(server.url, "meta", { k: "f".repeat(64), c: "1", data: gz });
    expect(reply.status).toBe(403);
  });

  test("legacy multipart: a body over the payload limit is 400 before anything", async () => {
    const big = new Blob([new Uint8Array(1024 * 1024 + 1)]);
    const reply = await legacy(server.url, "meta", { k: hkey, c: "0", data: big });
    expect(reply.status).toBe(400);
  });
});

describe("a logged-in user's bodies are bounded per method", () => {
  test("a bomb to meta, start or applyChunk is 400 and the server keeps serving", async () => {
    for (const method of ["meta", "start", "applyChunk"]) {
      const reply = await v11(server.url, method, {}, { hkey, rawBody: bomb });
      expect(reply.status).toBe(400);
    }
    const meta = await v11(server.url, "meta", { v: 11, cv: "x" }, { hkey });
    expect(meta.status).toBe(200);
  });

  test("meta over 1 MiB is refused; applyChanges of 2 MiB is accepted", async () => {
    const pad = "x".repeat(2 * 1024 * 1024);
    const meta = await v11(server.url, "meta", { v: 11, cv: "x", pad }, { hkey });
    expect(meta.status).toBe(400);
    const skey = "limits";
    const start = await v11(
      server.url,
      "start",
      { minUsn: 0, lnewer: true, graves: null },
      { hkey, skey },
    );
    expect(start.status).toBe(200);
    const changes = await v11(
      server.url,
      "applyChanges",
      { changes: { models: [], decks: [[], []], tags: [], conf: { big: pad }, crt: 1600000000 } },
      { hkey, skey },
    );
    expect(changes.status).toBe(200);
    expect((await v11(server.url, "abort", {}, { hkey, skey })).status).toBe(200);
  });

  test("legacy multipart bodies still work once authenticated", async () => {
    const reply = await legacy(server.url, "meta", {
      k: hkey,
      c: "1",
      data: gzipJson({ v: 10, cv: "ankidesktop,2.1.50,lin" }),
    });
    expect(reply.status).toBe(200);
  });
});
