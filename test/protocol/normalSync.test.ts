/** A whole normal sync over real HTTP: statuses, framing, and the effect on `meta`. */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { gzipJson, legacy, login, v11 } from "../helpers/syncClient.ts";
import { startTestServer, type TestServer } from "../helpers/testServer.ts";

let server: TestServer;
let hkey: string;
const META = { v: 11, cv: "anki,26.09.3 (x),linux" };
const PAD = { _pad: null };

beforeAll(async () => {
  server = await startTestServer();
  hkey = await login(server.url, "alice", "secret");
});
afterAll(async () => {
  await server.dispose();
});

const post = (method: string, body: unknown, skey = "sk1") =>
  v11(server.url, method, body as object, { hkey, skey });

describe("normal sync over HTTP", () => {
  test("statuses of the state machine", async () => {
    expect((await post("chunk", PAD)).status).toBe(409);
    expect((await post("start", { minUsn: 0, lnewer: false }, "")).status).toBe(400);
    expect((await post("start", { minUsn: "x" })).status).toBe(400);
    expect((await post("start", { minUsn: 0, lnewer: false, graves: null })).status).toBe(200);
    expect((await post("chunk", PAD, "other")).status).toBe(409);
    expect((await post("applyGraves", { chunk: { cards: [] } })).status).toBe(400);
    const abort = await post("abort", PAD, "fresh-key");
    expect([abort.status, abort.text]).toEqual([200, "null"]);
    expect((await post("chunk", PAD)).status).toBe(409);
  });

  test("a full session, then meta reports the new state", async () => {
    const before = (await post("meta", META)).json() as { usn: number; mod: number };
    const graves = await post("start", { minUsn: before.usn, lnewer: true, graves: null });
    expect(graves.json()).toEqual({ cards: [], decks: [], notes: [] });
    expect((await post("applyGraves", { chunk: { cards: [], notes: [], decks: [] } })).text).toBe(
      "null",
    );
    const changes = await post("applyChanges", {
      changes: {
        models: [],
        decks: [[], []],
        tags: ["from-client"],
        conf: { k: 1 },
        crt: 1600000000,
      },
    });
    // minUsn 0: the stock objects of the fresh collection are all "changed since"; no config
    // comes back because the client is newer.
    const theirs = changes.json() as Record<string, unknown[]>;
    expect(Object.keys(theirs)).toEqual(["models", "decks", "tags"]);
    expect(theirs.models?.length).toBeGreaterThan(0);
    expect(theirs.tags).toEqual([]);
    expect((await post("chunk", PAD)).json()).toEqual({ done: true });
    const revlog = [[1700000000123, 1, before.usn, 3, 1, 0, 2500, 6000, 1]];
    expect((await post("applyChunk", { chunk: { done: true, revlog } })).text).toBe("null");
    const counts = [[0, 0, 0], 0, 0, 1, 0, theirs.models?.length, 1, 1];
    const sanity = (await post("sanityCheck2", { client: counts })).json() as { status: string };
    expect(sanity.status).toBe("ok");
    const finish = await post("finish", PAD);
    expect(finish.status).toBe(200);
    const now = Number(finish.text);
    expect(now).toBeGreaterThan(before.mod);
    expect(Number(finish.headers.get("anki-original-size"))).toBe(finish.body.byteLength);
    const after = (await post("meta", META)).json() as { usn: number; mod: number };
    expect(after).toMatchObject({ usn: before.usn + 1, mod: now });
  });

  test("legacy clients use the same steps with multipart framing", async () => {
    const form = (skey: string, data: unknown) => ({
      k: hkey,
      s: skey,
      c: "1",
      data: gzipJson(data),
    });
    const call = async (method: string, skey: string, data: unknown = {}) => {
      const reply = await legacy(server.url, method, form(skey, data));
      expect(reply.status).toBe(200);
      return JSON.parse(reply.text) as unknown;
    };
    const meta = (await call("meta", "m", { v: 10, cv: "ankidroid,2.15" })) as { usn: number };
    const graves = { cards: [], notes: [], decks: [] };
    expect(await call("start", "l1", { minUsn: meta.usn, lnewer: true, graves })).toEqual(graves);
    const revlog = [[1700000000999, 2, meta.usn, 3, 1, 0, 2500, 6000, 1]];
    expect(await call("applyChunk", "l1", { chunk: { done: true, revlog } })).toBeNull();
    expect(typeof (await call("finish", "l1"))).toBe("number");
    await call("start", "l2", { minUsn: meta.usn, lnewer: false, graves: null });
    expect(await call("chunk", "l2")).toEqual({ done: true, revlog });
    expect(await call("abort", "anything")).toBeNull();
  });
});
