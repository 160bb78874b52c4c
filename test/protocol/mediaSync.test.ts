/** /msync/* over real HTTP: envelopes, framings (v11, legacy multipart, GET begin), statuses. */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { readdirSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { unzipSync } from "fflate";
import { uploadZip } from "../helpers/mediaZip.ts";
import { login, v11 } from "../helpers/syncClient.ts";
import { startTestServer, type TestServer } from "../helpers/testServer.ts";

let server: TestServer;
const CV = "anki,26.09.3 (29bb700b),linux";

beforeAll(async () => {
  server = await startTestServer({ MAX_SYNC_PAYLOAD_MEGS: "1" });
});
afterAll(async () => {
  await server.dispose();
});

const msync = (method: string, body: Uint8Array | string | object, hkey: string) =>
  msync2(server, method, body, hkey);
const msync2 = (on: TestServer, method: string, body: Uint8Array | string | object, hkey: string) =>
  v11(on.url, method, body, { hkey, path: "msync" });

async function legacyMedia(method: string, fields: Record<string, string | Blob>) {
  const form = new FormData();
  for (const [k, v] of Object.entries(fields)) form.append(k, v);
  const res = await fetch(`${server.url}msync/${method}`, { method: "POST", body: form });
  return {
    status: res.status,
    headers: res.headers,
    body: new Uint8Array(await res.arrayBuffer()),
  };
}

const text = (body: Uint8Array) => new TextDecoder().decode(body);

describe("v11 clients", () => {
  test("begin, upload, changes, download, sanity; meta reports the media usn", async () => {
    const hkey = await login(server.url, "alice", "secret");
    const begin = await msync("begin", { v: CV }, hkey);
    expect(begin.status).toBe(200);
    expect(begin.json()).toEqual({ data: { usn: 0, sk: hkey }, err: "" });

    const up = await msync(
      "uploadChanges",
      uploadZip([
        ["naïve café.jpg", "café"],
        ["b.png", "bee"],
        ["x", null],
      ]),
      hkey,
    );
    expect(up.status).toBe(200);
    expect(up.json()).toEqual({ data: [3, 2], err: "" });

    const changes = (await msync("mediaChanges", { lastUsn: 0 }, hkey)).json() as {
      data: unknown[][];
    };
    expect(changes.data.map((r) => r.slice(0, 2))).toEqual([
      ["naïve café.jpg", 1],
      ["b.png", 2],
    ]);

    const down = await msync("downloadFiles", { files: ["b.png", "naïve café.jpg"] }, hkey);
    expect(down.status).toBe(200);
    expect(Number(down.headers.get("anki-original-size"))).toBe(down.body.byteLength);
    const entries = unzipSync(down.body);
    expect(text(entries._meta as Uint8Array)).toBe('{"0":"b.png","1":"naïve café.jpg"}');
    expect(text(entries["1"] as Uint8Array)).toBe("café");

    expect((await msync("mediaSanity", { local: 2 }, hkey)).json()).toEqual({
      data: "OK",
      err: "",
    });
    expect((await msync("mediaSanity", { local: 1 }, hkey)).json()).toEqual({
      data: "mediaSanity",
      err: "",
    });
    const meta = (await v11(server.url, "meta", { v: 11, cv: CV }, { hkey })).json() as {
      media_usn: number;
    };
    expect(meta.media_usn).toBe(2);

    // bob has a media store of his own
    const bob = await login(server.url, "bob", "hunter2");
    expect((await msync("mediaChanges", { lastUsn: 0 }, bob)).json()).toEqual({
      data: [],
      err: "",
    });
    expect((await msync("downloadFiles", { files: ["b.png"] }, bob)).status).toBe(409);
  });

  test("statuses: 400 for bad input, 403 for an unknown key, 404 for an unknown method, 409 for unknown files", async () => {
    const hkey = await login(server.url, "alice", "secret");
    const refusals: [string, Uint8Array | string | object, number][] = [
      ["begin", { v: "" }, 400],
      ["begin", {}, 400],
      ["begin", "[]", 400],
      ["mediaChanges", { lastUsn: "0" }, 400],
      ["mediaChanges", "{oops", 400],
      ["mediaSanity", { local: -1 }, 400],
      ["downloadFiles", { files: "a" }, 400],
      ["downloadFiles", { files: Array.from({ length: 26 }, (_, i) => `f${i}`) }, 400],
      ["downloadFiles", { files: ["nope.jpg"] }, 409],
      ["uploadChanges", "not a zip", 400],
      ["uploadChanges", uploadZip([["../escape.jpg", "x"]]), 400],
      ["uploadChanges", uploadZip([["e\u0301.jpg", "x"]]), 400],
      // more than the 3 MiB decompressed limit of this server
      ["uploadChanges", uploadZip([["big.bin", new Uint8Array(4 * 1024 * 1024)]]), 400],
      ["noSuchMethod", {}, 404],
    ];
    for (const [method, body, status] of refusals) {
      const reply = await msync(method, body, hkey);
      expect([method, reply.status]).toEqual([method, status]);
      expect(reply.text).toBe(String(status));
      expect(reply.headers.has("anki-original-size")).toBe(false);
    }
    expect((await msync("mediaChanges", { lastUsn: 0 }, "f".repeat(64))).status).toBe(403);
    expect((await fetch(`${server.url}msync/mediaChanges`)).status).toBe(404);
    // nothing escaped the user's folder, no temporaries left
    const collections = join(server.dataDir, "collections");
    for (const uuid of readdirSync(collections)) {
      expect(
        readdirSync(join(collections, uuid)).filter(
          (n) => n.includes(".tmp-") || n.includes("escape"),
        ),
      ).toEqual([]);
    }
  });
});

describe("legacy clients", () => {
  test("multipart begin with the version as a form field, then sk, gzip and c=0 bodies, raw answers", async () => {
    const hkey = await login(server.url, "bob", "hunter2");
    const begin = await legacyMedia("begin", { k: hkey, v: "ankidroid,2.15.6,android" });
    expect(begin.status).toBe(200);
    expect(begin.headers.has("anki-original-size")).toBe(false);
    const { data } = JSON.parse(text(begin.body)) as { data: { usn: number; sk: string } };
    expect(data.sk).toBe(hkey);
    expect((await legacyMedia("begin", { k: hkey })).status).toBe(400);

    const zip = uploadZip([["legacy.mp3", "old client"]], { level: 6 });
    const plain = await legacyMedia("uploadChanges", {
      sk: data.sk,
      c: "0",
      data: new Blob([zip]),
    });
    expect(JSON.parse(text(plain.body))).toEqual({ data: [1, data.usn + 1], err: "" });
    const gz = Bun.gzipSync(uploadZip([["legacy2.mp3", "gzipped"]]));
    const gzipped = await legacyMedia("uploadChanges", {
      sk: data.sk,
      c: "1",
      data: new Blob([gz]),
    });
    expect(JSON.parse(text(gzipped.body))).toEqual({ data: [1, data.usn + 2], err: "" });

    const changes = await legacyMedia("mediaChanges", {
      sk: data.sk,
      c: "1",
      data: new Blob([
        Bun.gzipSync(new TextEncoder().encode(JSON.stringify({ lastUsn: data.usn }))),
      ]),
    });
    expect((JSON.parse(text(changes.body)) as { data: unknown[][] }).data.map((r) => r[0])).toEqual(
      ["legacy.mp3", "legacy2.mp3"],
    );

    const down = await legacyMedia("downloadFiles", {
      sk: data.sk,
      c: "0",
      data: JSON.stringify({ files: ["legacy.mp3"] }),
    });
    expect(down.status).toBe(200);
    expect(Number(down.headers.get("content-length"))).toBe(down.body.byteLength);
    expect(text(unzipSync(down.body)["0"] as Uint8Array)).toBe("old client");
  });

  test("GET begin with k and v in the query", async () => {
    const hkey = await login(server.url, "bob", "hunter2");
    const ok = await fetch(
      `${server.url}msync/begin?k=${hkey}&v=${encodeURIComponent("anki,2.1.40,linux")}`,
    );
    expect(ok.status).toBe(200);
    expect(ok.headers.has("anki-original-size")).toBe(false);
    expect(((await ok.json()) as { data: { sk: string } }).data.sk).toBe(hkey);
    expect((await fetch(`${server.url}msync/begin?k=${hkey}`)).status).toBe(400);
    expect((await fetch(`${server.url}msync/begin?k=${hkey}&v=`)).status).toBe(400);
    expect((await fetch(`${server.url}msync/begin?k=${"0".repeat(64)}&v=x`)).status).toBe(403);
  });
});

describe("after a restart", () => {
  test("the media store and usn are where they were", async () => {
    const hkey = await login(server.url, "alice", "secret");
    const before = (await msync("begin", { v: CV }, hkey)).json() as { data: { usn: number } };
    server = await server.restart();
    const after = (await msync("begin", { v: CV }, hkey)).json() as { data: { usn: number } };
    expect(after.data.usn).toBe(before.data.usn);
    expect((await msync("downloadFiles", { files: ["b.png"] }, hkey)).status).toBe(200);
  });
});

describe("a crash after small batches were answered", () => {
  test("their files come back from the media journal when the server starts again", async () => {
    // No idle checkpoint: the journal holds the batches until the stop.
    let crashed = await startTestServer({ ANKISYNCD_IDLE_CLOSE_SECS: "3600" });
    try {
      const hkey = await login(crashed.url, "alice", "secret");
      const put = (items: [string, string | null][]) =>
        v11(crashed.url, "uploadChanges", uploadZip(items), { hkey, path: "msync" });
      expect((await msync2(crashed, "begin", { v: CV }, hkey)).status).toBe(200);
      expect(
        (
          await put([
            ["one.txt", "first"],
            ["two.txt", "second"],
          ])
        ).status,
      ).toBe(200);
      expect(
        (
          await put([
            ["one.txt", "changed"],
            ["two.txt", null],
            ["three.txt", "3"],
          ])
        ).status,
      ).toBe(200);
      const userDir = join(
        crashed.dataDir,
        "collections",
        readdirSync(join(crashed.dataDir, "collections"))[0] ?? "",
      );
      const journal = join(userDir, "media.journal");
      const held = readFileSync(journal);
      expect(held.byteLength).toBeGreaterThan(0);
      await crashed.stop();
      // A clean stop syncs the files and empties the journal; a crash before it would not have.
      writeFileSync(journal, held);
      // What a power loss may leave of files never synced: empty, missing, or back from the dead.
      writeFileSync(join(userDir, "media", "one.txt"), "");
      rmSync(join(userDir, "media", "three.txt"));
      writeFileSync(join(userDir, "media", "two.txt"), "second");
      crashed = await startTestServer(crashed.env, crashed.dataDir);
      expect(statSync(journal).size).toBe(0);
      expect(readdirSync(join(userDir, "media")).sort()).toEqual(["one.txt", "three.txt"]);
      const zip = await msync2(crashed, "downloadFiles", { files: ["one.txt", "three.txt"] }, hkey);
      expect(zip.status).toBe(200);
      const files = unzipSync(zip.body);
      expect(text(files["0"] as Uint8Array)).toBe("changed");
      expect(text(files["1"] as Uint8Array)).toBe("3");
    } finally {
      await crashed.dispose();
    }
  });
});

describe("large uploads", () => {
  test("do not hold up other users, even on the same worker", async () => {
    const big = await startTestServer({ ANKISYNCD_WORKERS: "1" });
    try {
      const alice = await login(big.url, "alice", "secret");
      const bob = await login(big.url, "bob", "hunter2");
      const files: [string, Uint8Array][] = Array.from({ length: 4 }, (_, i) => [
        `part${i}.bin`,
        new Uint8Array(24 * 1024 * 1024).fill(i + 1),
      ]);
      let aliceDone = 0;
      const upload = v11(big.url, "uploadChanges", uploadZip(files), {
        hkey: alice,
        path: "msync",
      }).then((r) => {
        aliceDone = performance.now();
        return r;
      });
      await Bun.sleep(50);
      const bobReplies: number[] = [];
      while (!aliceDone) {
        const reply = await v11(
          big.url,
          "mediaChanges",
          { lastUsn: 0 },
          { hkey: bob, path: "msync" },
        );
        expect(reply.status).toBe(200);
        bobReplies.push(performance.now());
      }
      expect((await upload).json()).toEqual({ data: [4, 4], err: "" });
      // bob was answered while alice's 96 MiB batch was being checked and stored
      expect(bobReplies.filter((t) => t < aliceDone).length).toBeGreaterThan(1);
    } finally {
      await big.dispose();
    }
  }, 60_000);
});
