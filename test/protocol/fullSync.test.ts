import { Database } from "bun:sqlite";
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { mkdtempSync, readdirSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createEmptyCollection } from "../../src/storage/collection/collectionFile.ts";
import { UPLOAD_CORRUPT, UPLOAD_TOO_LARGE } from "../../src/sync/collection/upload.ts";
import { gzipJson, legacy, login, v11 } from "../helpers/syncClient.ts";
import { startTestServer, type TestServer } from "../helpers/testServer.ts";

let server: TestServer;
/** The client version header of a current Anki (downloads schema 18). */
const CURRENT_CLIENT = "26.09.3,abcdef12,linux";
const scratch = mkdtempSync(join(tmpdir(), "ankisyncd-proto-"));

/** A schema-11 collection with one note and card, as a legacy client would upload it. */
function collectionWithNote(name: string, front: string): Uint8Array {
  const path = join(scratch, name);
  createEmptyCollection(path);
  const db = new Database(path);
  db.run("update col set mod = 1700000000000, scm = 1700000000000, usn = 1");
  db.run(
    "insert into notes values (1700000000001, 'guid1', (select cast(json_each.key as integer) from col, json_each(col.models) limit 1), 1700000000, 0, '', ?, ?, 0, 0, '')",
    [`${front}\x1fback`, front],
  );
  db.run(
    "insert into cards values (1700000000002, 1700000000001, 1, 0, 1700000000, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0, '{}')",
  );
  db.close();
  return readFileSync(path);
}

beforeAll(async () => {
  server = await startTestServer({ MAX_SYNC_PAYLOAD_MEGS: "1", ANKISYNCD_READY_DOWNLOADS: "1" });
});
afterAll(async () => {
  await server.dispose();
});

describe("login", () => {
  test("answers a 256-bit host key for good credentials", async () => {
    expect(await login(server.url, "alice", "secret")).toMatch(/^[0-9a-f]{64}$/);
  });

  test("refuses wrong password and unknown user with 403", async () => {
    expect((await v11(server.url, "hostKey", { u: "alice", p: "nope" })).status).toBe(403);
    expect((await v11(server.url, "hostKey", { u: "mallory", p: "secret" })).status).toBe(403);
  });

  test("refuses a malformed body with 400", async () => {
    expect((await v11(server.url, "hostKey", "{not json")).status).toBe(400);
    expect((await v11(server.url, "hostKey", { u: 1 })).status).toBe(400);
  });
});

describe("meta", () => {
  test("reports a fresh, empty collection", async () => {
    const hkey = await login(server.url, "bob", "hunter2");
    const reply = await v11(server.url, "meta", { v: 11, cv: "anki,26.09.3 (x),linux" }, { hkey });
    expect(reply.status).toBe(200);
    expect(Number(reply.headers.get("anki-original-size"))).toBe(reply.body.byteLength);
    const meta = reply.json() as Record<string, unknown>;
    expect(meta).toMatchObject({
      mod: 0,
      usn: 0,
      msg: "",
      cont: true,
      hostNum: 0,
      empty: true,
      media_usn: 0,
    });
    expect(Math.abs((meta.ts as number) - Date.now() / 1000)).toBeLessThan(5);
  });

  test("answers 501 to a meta version outside 8..11 and 400 to a header version", async () => {
    const hkey = await login(server.url, "bob", "hunter2");
    expect((await v11(server.url, "meta", { v: 7, cv: "x" }, { hkey })).status).toBe(501);
    expect((await v11(server.url, "meta", { v: 11, cv: "x" }, { hkey, v: 12 })).status).toBe(400);
  });
});

describe("bad input gets a 4xx and the server keeps serving", () => {
  test("unknown host key, bad header, broken zstd, unknown method, GET", async () => {
    expect(
      (await v11(server.url, "meta", { v: 11, cv: "x" }, { hkey: "f".repeat(64) })).status,
    ).toBe(403);
    const badHeader = await fetch(`${server.url}sync/meta`, {
      method: "POST",
      headers: { "anki-sync": "{nope" },
      body: "x",
    });
    expect(badHeader.status).toBe(400);
    const hkey = await login(server.url, "bob", "hunter2");
    const broken = await v11(
      server.url,
      "meta",
      {},
      { hkey, rawBody: new Uint8Array([40, 181, 47, 253, 1, 2, 3]) },
    );
    expect(broken.status).toBe(400);
    expect((await v11(server.url, "noSuchMethod", {}, { hkey })).status).toBe(404);
    expect((await fetch(`${server.url}sync/meta`)).status).toBe(404);
    expect((await fetch(`${server.url}health`)).status).toBe(200);
  });
});

describe("full upload and download", () => {
  test("an uploaded collection comes back on download with a bumped usn", async () => {
    const hkey = await login(server.url, "alice", "secret");
    const up = await v11(server.url, "upload", collectionWithNote("a.anki2", "hello"), { hkey });
    expect(up.text).toBe("OK");
    const meta = (await v11(server.url, "meta", { v: 11, cv: "x" }, { hkey })).json() as Record<
      string,
      unknown
    >;
    expect(meta).toMatchObject({ mod: 1700000000000, scm: 1700000000000, usn: 1, empty: false });

    const down = await v11(server.url, "download", { _pad: null }, { hkey, c: CURRENT_CLIENT });
    expect(down.status).toBe(200);
    const file = join(scratch, "down.anki2");
    writeFileSync(file, down.body);
    const db = new Database(file, { readonly: true });
    expect(db.query("select usn from col").get()).toEqual({ usn: 2 });
    expect(db.query("select sfld from notes").get()).toEqual({ sfld: "hello" });
    // A current client gets schema 18, as from Anki's server, and does not upgrade it itself.
    expect(db.query("select ver, models from col").get()).toEqual({ ver: 18, models: "" });
    expect(db.query("select count(*) as n from notetypes").get()).toEqual({ n: 5 });
    db.close();
  });

  test("the download made ahead after an upload is sent as made, once; then the usual path", async () => {
    const hkey = await login(server.url, "alice", "secret");
    const up = await v11(server.url, "upload", collectionWithNote("r.anki2", "ready"), { hkey });
    expect(up.text).toBe("OK");
    const dir = join(server.dataDir, "collections");
    const userDirs = readdirSync(dir).map((uuid) => join(dir, uuid));
    const record = () =>
      userDirs.some((d) => readdirSync(d).some((n) => n.endsWith(".ready-download.json")));
    // Made 3 s after the upload on a low-priority task thread: under CI load that can take long.
    for (let i = 0; i < 1_000 && !record(); i++) await Bun.sleep(25);
    expect(record()).toBe(true);
    for (const usn of [2, 3]) {
      const down = await v11(server.url, "download", { _pad: null }, { hkey, c: CURRENT_CLIENT });
      expect(down.status).toBe(200);
      const file = join(scratch, `ready-${usn}.anki2`);
      writeFileSync(file, down.body);
      const db = new Database(file, { readonly: true });
      expect(db.query("select usn, ver from col").get()).toEqual({ usn, ver: 18 });
      expect(db.query("select sfld from notes").get()).toEqual({ sfld: "ready" });
      db.close();
      expect(record()).toBe(false);
    }
    const meta = (await v11(server.url, "meta", { v: 11, cv: "x" }, { hkey })).json();
    expect(meta).toMatchObject({ usn: 3 });
  }, 40_000);

  test("v11 clients older than the blob layout, or unnamed, get schema 11", async () => {
    const hkey = await login(server.url, "alice", "secret");
    for (const c of ["25.07.5,abc,linux", "2.1.66,abc,win:10", "test,1.0,linux"]) {
      const down = await v11(server.url, "download", { _pad: null }, { hkey, c });
      const file = join(scratch, "old-down.anki2");
      writeFileSync(file, down.body);
      const db = new Database(file, { readonly: true });
      expect(db.query("select ver from col").get()).toEqual({ ver: 11 });
      db.close();
    }
  });

  test("a collection our upgrade leaves to the client is sent in schema 11, nothing lost", async () => {
    const hkey = await login(server.url, "alice", "secret");
    const path = join(scratch, "odd.anki2");
    writeFileSync(path, collectionWithNote("odd-src.anki2", "odd"));
    const edit = new Database(path);
    // Anki's own upgrade would trim and rename this deck (and mark it modified).
    edit.run('update col set decks = replace(decks, \'"name":"Default"\', \'"name":" Default"\')');
    edit.close();
    expect((await v11(server.url, "upload", readFileSync(path), { hkey })).text).toBe("OK");
    const down = await v11(server.url, "download", { _pad: null }, { hkey, c: CURRENT_CLIENT });
    const file = join(scratch, "odd-down.anki2");
    writeFileSync(file, down.body);
    const db = new Database(file, { readonly: true });
    const col = db.query("select ver, decks from col").get() as { ver: number; decks: string };
    expect(col.ver).toBe(11);
    expect(col.decks).toContain('"name":" Default"');
    db.close();
  });

  test("a corrupt upload is refused with Anki's message and the stored collection is untouched", async () => {
    const hkey = await login(server.url, "alice", "secret");
    expect(
      (await v11(server.url, "upload", collectionWithNote("b.anki2", "keep me"), { hkey })).text,
    ).toBe("OK");
    const garbage = new TextEncoder().encode("SQLite format 3\0 but not really".repeat(100));
    expect((await v11(server.url, "upload", garbage, { hkey })).text).toBe(UPLOAD_CORRUPT);
    const truncated = collectionWithNote("c.anki2", "truncated").slice(0, 6000);
    expect((await v11(server.url, "upload", truncated, { hkey })).text).toBe(UPLOAD_CORRUPT);

    const down = await v11(server.url, "download", { _pad: null }, { hkey });
    const file = join(scratch, "down2.anki2");
    writeFileSync(file, down.body);
    const db = new Database(file, { readonly: true });
    expect(db.query("select sfld from notes").get()).toEqual({ sfld: "keep me" });
    db.close();
  });

  test("an upload whose compression is broken is a 400 and the stored collection is untouched", async () => {
    const hkey = await login(server.url, "alice", "secret");
    const kept = collectionWithNote("f.anki2", "still here");
    expect((await v11(server.url, "upload", kept, { hkey })).text).toBe("OK");
    const frame = Bun.zstdCompressSync(collectionWithNote("g.anki2", "replaced"));
    const cut = new Uint8Array(frame.subarray(0, frame.byteLength - 6));
    for (const rawBody of [cut, new TextEncoder().encode("not zstd at all".repeat(5000))]) {
      expect((await v11(server.url, "upload", new Uint8Array(), { hkey, rawBody })).status).toBe(
        400,
      );
    }

    const down = await v11(server.url, "download", { _pad: null }, { hkey });
    const file = join(scratch, "down3.anki2");
    writeFileSync(file, down.body);
    const db = new Database(file, { readonly: true });
    expect(db.query("select sfld from notes").get()).toEqual({ sfld: "still here" });
    db.close();
  });

  test("an oversized upload is refused with Anki's message", async () => {
    const hkey = await login(server.url, "alice", "secret");
    const big = new Uint8Array(3 * 1024 * 1024 + 10).fill(7);
    expect((await v11(server.url, "upload", big, { hkey })).text).toBe(UPLOAD_TOO_LARGE);
  });

  test("replaced collections are kept as backups", async () => {
    const hkey = await login(server.url, "alice", "secret");
    await v11(server.url, "upload", collectionWithNote("d.anki2", "one"), { hkey });
    await v11(server.url, "upload", collectionWithNote("e.anki2", "two"), { hkey });
    const collections = join(server.dataDir, "collections");
    const backups = readdirSync(collections).flatMap((uuid) => {
      try {
        return readdirSync(join(collections, uuid, "backups"));
      } catch {
        return [];
      }
    });
    expect(backups.length).toBeGreaterThanOrEqual(2);
  });
});

describe("legacy (multipart) clients", () => {
  test("login, meta and download with raw responses", async () => {
    const login = await legacy(server.url, "hostKey", {
      data: gzipJson({ u: "bob", p: "hunter2" }),
      c: "1",
    });
    expect(login.status).toBe(200);
    const { key } = JSON.parse(login.text) as { key: string };
    const meta = await legacy(server.url, "meta", {
      k: key,
      s: "s1",
      data: gzipJson({ v: 10, cv: "ankidroid,2.15" }),
      c: "1",
    });
    expect(JSON.parse(meta.text)).toMatchObject({ usn: 0, cont: true });
    const down = await legacy(server.url, "download", { k: key, s: "s1" });
    expect(down.status).toBe(200);
    expect(new TextDecoder().decode(down.body.slice(0, 15))).toBe("SQLite format 3");
    // Older clients get schema 11, as from Anki's server.
    const file = join(scratch, "legacy-down.anki2");
    writeFileSync(file, down.body);
    const db = new Database(file, { readonly: true });
    expect(db.query("select ver from col").get()).toEqual({ ver: 11 });
    db.close();
  });
});

describe("sessions", () => {
  test("a host key keeps working after a restart", async () => {
    const hkey = await login(server.url, "bob", "hunter2");
    server = await server.restart();
    expect((await v11(server.url, "meta", { v: 11, cv: "x" }, { hkey })).status).toBe(200);
  });
});
