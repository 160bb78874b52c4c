/**
 * Normal-sync steps and state machine on a fresh collection, without HTTP or workers:
 * `runNormalSyncStep` is what the worker calls for every normal-sync request.
 */
import { afterEach, beforeEach, describe, expect, test } from "bun:test";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { UserState } from "../../src/executor/userState.ts";
import type { Db } from "../../src/platform/sqlite.ts";
import { openDatabase } from "../../src/platform/sqlite.ts";
import { readLegacyColumn } from "../../src/storage/collection/legacyObjects.ts";
import { fieldChecksum } from "../../src/storage/collection/noteFields.ts";
import { userPaths } from "../../src/storage/paths.ts";
import { meta } from "../../src/sync/collection/meta.ts";
import { type NormalSyncMethod, runNormalSyncStep } from "../../src/sync/collection/normalSync.ts";
import { closeSyncUser, openSyncUser, PAD, syncFailure } from "../helpers/normalSyncUser.ts";
import { normalSyncJobs, testUserHost } from "../helpers/userHost.ts";

let dir: string;
let user: UserState;
let db: Db;

beforeEach(() => {
  ({ dir, user, db } = openSyncUser("ankisyncd-normal-"));
});

afterEach(() => closeSyncUser({ dir, user, db }));

function call(method: NormalSyncMethod, body: unknown = PAD, skey = "k1"): unknown {
  const text = typeof body === "string" ? body : JSON.stringify(body);
  return JSON.parse(runNormalSyncStep(user, method, skey, text).json);
}

function start(minUsn = 10, lnewer = false, skey = "k1"): unknown {
  return call("start", { minUsn, lnewer, graves: null }, skey);
}

function notetypeId(name: string): number {
  const models = readLegacyColumn(db, "models") as Record<string, { name: string; id: number }>;
  const found = Object.values(models).find((nt) => nt.name === name);
  if (!found) throw new Error(`no notetype ${name}`);
  return found.id;
}

function noteRow(id: number, mid: number, flds: string, mod = 1_700_000_000, usn = 10): unknown[] {
  return [id, `guid${id}`, mid, mod, usn, "tag1  tag2", flds, "", "", 0, ""];
}

function cardRow(id: number, nid: number, mod = 1_700_000_000, usn = 10, data = "{}"): unknown[] {
  return [id, nid, 1, 0, mod, usn, 0, 0, id % 1000, 0, 0, 0, 0, 0, 0, 0, 0, data];
}

function revlogRow(id: number, cid: number, usn = 10): unknown[] {
  return [id, cid, usn, 3, 1, 0, 2500, 6000, 1];
}

function insertNote(id: number, mod: number, usn: number, flds = "front\x1fback"): void {
  db.query(
    `insert into notes values ($id, 'g' || $id, $mid, $mod, $usn, '', $flds, 'front', 0, 0, '')`,
  ).run({ id, mid: notetypeId("Basic"), mod, usn, flds });
}

function insertCard(id: number, mod: number, usn: number): void {
  db.query(
    "insert into cards values ($id, 1, 1, 0, $mod, $usn, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, '{}')",
  ).run({ id, mod, usn });
}

/** Every table and the col row, for "exactly as before" comparisons. */
function dump(): string {
  const parts = ["col", "notes", "cards", "revlog", "graves"].map((table) =>
    JSON.stringify(db.query(`select * from ${table} order by rowid`).all()),
  );
  return parts.join("\n");
}

describe("state machine", () => {
  test("empty session key: 400 for start and stateful calls; abort ignores the key", () => {
    expect(syncFailure(() => call("start", { minUsn: 0, lnewer: false }, "")).kind).toBe(
      "badRequest",
    );
    start();
    expect(syncFailure(() => call("chunk", PAD, "")).kind).toBe("badRequest");
    expect(user.session).toBeDefined();
    expect(call("abort", PAD, "")).toBeNull();
    expect(user.session).toBeUndefined();
  });

  test("stateful call without a session or with another key: 409", () => {
    expect(syncFailure(() => call("chunk")).kind).toBe("conflict");
    start();
    expect(syncFailure(() => call("chunk", PAD, "other")).kind).toBe("conflict");
    expect(call("chunk")).toEqual({ done: true });
  });

  test("a malformed body is 400 and leaves the session alone", () => {
    start();
    call("applyChunk", { chunk: { revlog: [revlogRow(5, 1)] } });
    expect(syncFailure(() => call("applyChunk", { chunk: { cards: [[1, 2, 3]] } })).kind).toBe(
      "badRequest",
    );
    expect(syncFailure(() => call("applyChunk", "{not json")).kind).toBe("badRequest");
    expect(syncFailure(() => call("chunk", { extra: 1 })).kind).toBe("badRequest");
    expect(user.session?.skey).toBe("k1");
    expect(db.query("select count() as n from revlog").get()).toEqual({ n: 1 });
  });

  test("an operation failure rolls back the whole session and is 400", () => {
    const before = dump();
    start();
    call("applyChunk", { chunk: { revlog: [revlogRow(5, 1)], cards: [cardRow(7, 8)] } });
    const err = syncFailure(() =>
      call("applyChunk", { chunk: { notes: [noteRow(8, 999, "a\x1fb")] } }),
    );
    expect(err.kind).toBe("badRequest");
    expect(user.session).toBeUndefined();
    expect(dump()).toBe(before);
    expect(syncFailure(() => call("chunk")).kind).toBe("conflict");
  });

  test("abort restores the collection exactly, whatever was applied", () => {
    insertNote(100, 1_600_000_000, 3);
    const before = dump();
    const models = readLegacyColumn(db, "models");
    start(10, true);
    call("applyGraves", { chunk: { cards: [], notes: [100], decks: [1] } });
    call("applyChanges", {
      changes: { models: [], decks: [[], []], tags: ["new"], conf: { a: 1 }, crt: 5 },
    });
    call("applyChunk", {
      chunk: {
        revlog: [revlogRow(5, 1)],
        cards: [cardRow(7, 8)],
        notes: [noteRow(8, notetypeId("Basic"), "a\x1fb")],
      },
    });
    call("abort", PAD, "a-new-key");
    expect(dump()).toBe(before);
    expect(readLegacyColumn(db, "models")).toEqual(models);
  });

  test("a new start, meta, or the session timeout roll back the previous session", () => {
    const before = dump();
    start();
    call("applyChunk", { chunk: { revlog: [revlogRow(5, 1)] } });
    start(10, false, "k2");
    expect(dump()).toBe(before);
    call("applyChunk", { chunk: { revlog: [revlogRow(6, 1)] } }, "k2");
    meta(user, { v: 11, cv: "test" }, { maxUncompressedBytes: 1e9 });
    expect(user.session).toBeUndefined();
    expect(dump()).toBe(before);
  });

  test("a failed sanity check ends the session at once", () => {
    start();
    const reply = call("sanityCheck2", { client: [[0, 0, 0], 99, 0, 0, 0, 0, 0, 0] }) as {
      status: string;
    };
    expect(reply.status).toBe("bad");
    expect(user.session).toBeUndefined();
    expect(syncFailure(() => call("finish")).kind).toBe("conflict");
  });

  test("finish commits, bumps usn, stamps ls and mod, and ends the session", () => {
    start();
    call("applyChunk", { chunk: { revlog: [revlogRow(5, 1)] } });
    const before = Date.now();
    const now = call("finish") as number;
    expect(now).toBeGreaterThanOrEqual(before);
    expect(db.query("select usn, ls, mod from col").get()).toEqual({ usn: 11, ls: now, mod: now });
    expect(db.inTransaction).toBe(false);
    expect(user.session).toBeUndefined();
    user.abortSession();
    expect(db.query("select count() as n from revlog").get()).toEqual({ n: 1 });
  });

  test("legacy start applies inline graves (also as strings) after collecting the server's", () => {
    insertNote(100, 1_600_000_000, 3);
    db.query("insert into graves values (12, 555, 0)").run();
    const reply = call("start", {
      minUsn: 11,
      lnewer: false,
      graves: { cards: [], notes: ["100"], decks: [] },
    });
    expect(reply).toEqual({ cards: [555], decks: [], notes: [] });
    expect(db.query("select count() as n from notes").get()).toEqual({ n: 0 });
    expect(db.query("select usn, oid, type from graves where oid = 100").all()).toEqual([
      { usn: 10, oid: 100, type: 1 },
    ]);
  });
});

describe("applyChunk conflict rule (docs/protocol.md#apply-chunk)", () => {
  test("a row changed in this window wins unless the incoming one is strictly newer", () => {
    const mid = notetypeId("Basic");
    insertNote(1, 2_000_000_000, 10); // pending, newer: kept
    insertNote(2, 1_600_000_000, 10); // pending, older: replaced
    insertNote(3, 2_000_000_000, 3); // before the window: replaced even by an older one
    insertNote(4, 1_700_000_000, 10); // pending, same mod: kept
    insertNote(5, 2_000_000_000, 10); // pending, newer: a broken incoming note is skipped
    insertCard(11, 2_000_000_000, 10);
    insertCard(12, 1_600_000_000, 10);
    insertCard(13, 2_000_000_000, 3);
    start(10);
    call("applyChunk", {
      chunk: {
        cards: [cardRow(11, 1), cardRow(12, 1), cardRow(13, 1), cardRow(14, 1)],
        notes: [1, 2, 3, 4]
          .map((id) => noteRow(id, mid, `new${id}\x1fb`))
          .concat([noteRow(5, mid, "one field only")]),
      },
    });
    const flds = db.query("select id, flds from notes order by id").all();
    expect(flds).toEqual([
      { id: 1, flds: "front\x1fback" },
      { id: 2, flds: "new2\x1fb" },
      { id: 3, flds: "new3\x1fb" },
      { id: 4, flds: "front\x1fback" },
      { id: 5, flds: "front\x1fback" },
    ]);
    expect(db.query("select id, mod from cards order by id").all()).toEqual([
      { id: 11, mod: 2_000_000_000 },
      { id: 12, mod: 1_700_000_000 },
      { id: 13, mod: 1_700_000_000 },
      { id: 14, mod: 1_700_000_000 },
    ]);
    // A broken note that would be written is still an error.
    expect(
      syncFailure(() => call("applyChunk", { chunk: { notes: [noteRow(6, mid, "one field")] } }))
        .kind,
    ).toBe("badRequest");
  });
});

describe("graves", () => {
  test("start sends the server's graves since minUsn", () => {
    db.query("insert into graves values (9, 1, 0), (10, 2, 0), (11, 3, 1), (12, 4, 2)").run();
    expect(start(10)).toEqual({ cards: [2], decks: [4], notes: [3] });
  });

  test("applyGraves deletes unconditionally, keeps cards of deleted notes, and keeps old graves", () => {
    insertNote(100, 2_000_000_000, 10);
    insertCard(200, 2_000_000_000, 10);
    db.query("insert into graves values (3, 300, 0)").run();
    start();
    expect(call("applyGraves", { chunk: { cards: [300], notes: [100], decks: [1] } })).toBeNull();
    expect(db.query("select count() as n from notes").get()).toEqual({ n: 0 });
    expect(db.query("select count() as n from cards").get()).toEqual({ n: 1 });
    expect(Object.keys(readLegacyColumn(db, "decks"))).toEqual([]);
    expect(db.query("select usn, oid, type from graves order by oid").all()).toEqual([
      { usn: 10, oid: 1, type: 2 },
      { usn: 10, oid: 100, type: 1 },
      { usn: 3, oid: 300, type: 0 },
    ]);
  });

  test("all three lists are required", () => {
    start();
    expect(syncFailure(() => call("applyGraves", { chunk: { cards: [], notes: [] } })).kind).toBe(
      "badRequest",
    );
    expect(user.session).toBeDefined();
  });
});

describe("applyChanges", () => {
  function notetype(
    id: number,
    name: string,
    mod: number,
    fields = ["Front", "Back"],
  ): Record<string, unknown> {
    return {
      id,
      name,
      type: 0,
      mod,
      usn: 10,
      sortf: 0,
      did: null,
      css: "",
      flds: fields.map((f, ord) => ({ name: f, ord })),
      tmpls: [{ name: "Card 1", ord: 0, qfmt: "{{Front}}", afmt: "" }],
      addonKey: { kept: [1, 2] },
    };
  }

  function deck(id: number, name: string, mod: number): Record<string, unknown> {
    return {
      id,
      name,
      mod,
      usn: 10,
      lrnToday: [0, 0],
      revToday: [0, 0],
      newToday: [0, 0],
      timeToday: [0, 0],
      collapsed: false,
      dyn: 0,
      conf: 1,
    };
  }

  const changes = (c: Record<string, unknown>) => ({
    changes: { models: [], decks: [[], []], tags: [], ...c },
  });

  test("the server's changes are taken before the client's are applied", () => {
    start(0, true);
    const reply = call(
      "applyChanges",
      changes({ decks: [[deck(50, "Client", 100)], []], tags: ["t"] }),
    ) as {
      decks: unknown[][];
      tags: string[];
      conf?: unknown;
    };
    expect((reply.decks[0] as { name: string }[]).map((d) => d.name)).toEqual(["Default"]);
    expect(reply.tags).toEqual([]);
    expect(reply.conf).toBeUndefined();
    const decks = readLegacyColumn(db, "decks") as Record<string, { name: string }>;
    expect(decks["50"]?.name).toBe("Client");
  });

  test("conf and crt come from the server when the client is not newer, and replace ours when it is", () => {
    start(0, false);
    const reply = call("applyChanges", changes({})) as {
      conf: Record<string, unknown>;
      crt: number;
    };
    expect(reply.conf.curDeck).toBeDefined();
    expect(reply.crt).toBe((db.query("select crt from col").get() as { crt: number }).crt);
    call("abort");
    start(0, true);
    call("applyChanges", changes({ conf: { only: [1, 2.5], big: "x" }, crt: 1234 }));
    expect(db.query("select conf from col").get()).toEqual({ conf: '{"only":[1,2.5],"big":"x"}' });
    expect(db.query("select crt from col").get()).toEqual({ crt: 1234 });
  });

  test("note types: ours kept when newer, theirs on a tie, unknown keys and 64-bit ids kept", () => {
    const basic = notetypeId("Basic");
    const models = readLegacyColumn(db, "models") as Record<string, { mod: number }>;
    const ourMod = Number(models[String(basic)]?.mod);
    start();
    call(
      "applyChanges",
      changes({ models: [{ ...notetype(basic, "Basic", ourMod - 1), css: "older" }] }),
    );
    expect(
      (readLegacyColumn(db, "models") as Record<string, { css: string }>)[String(basic)]?.css,
    ).not.toBe("older");
    const text = JSON.stringify(
      changes({ models: [{ ...notetype(basic, "Basic", ourMod), css: "tie" }] }),
    ).replace('"kept":[1,2]', '"kept":[1,2],"big":12345678901234567890');
    call("applyChanges", text);
    const stored = db.query("select models from col").get() as { models: string };
    expect(stored.models).toContain('"big":12345678901234567890');
    expect(stored.models).toContain('"css":"tie"');
  });

  test("a note type whose field count changed cannot be merged: 400 and rollback", () => {
    const basic = notetypeId("Basic");
    start();
    const err = syncFailure(() =>
      call(
        "applyChanges",
        changes({ models: [notetype(basic, "Basic", 2_000_000_000, ["Front", "Back", "Extra"])] }),
      ),
    );
    expect(err.kind).toBe("badRequest");
    expect(user.session).toBeUndefined();
  });

  test("name clashes get a + suffix, mod now and the session usn", () => {
    start(0, true);
    const before = Math.floor(Date.now() / 1000);
    call(
      "applyChanges",
      changes({ models: [notetype(77, "basic", 5)], decks: [[deck(60, "DEFAULT", 5)], []] }),
    );
    const nt = (readLegacyColumn(db, "models") as Record<string, Record<string, number | string>>)[
      "77"
    ];
    const dk = (readLegacyColumn(db, "decks") as Record<string, Record<string, number | string>>)[
      "60"
    ];
    for (const object of [nt, dk]) {
      expect(Number(object?.mod)).toBeGreaterThanOrEqual(before);
      expect(object?.usn).toBe(10);
    }
    expect(nt?.name).toBe("basic+");
    expect(dk?.name).toBe("DEFAULT+");
  });

  test("deck names are normalised; deck id 0 fails the session", () => {
    start(0, true);
    call("applyChanges", changes({ decks: [[deck(61, "A:::b::::c ", 5)], []] }));
    const decks = readLegacyColumn(db, "decks") as Record<string, { name: string }>;
    expect(decks["61"]?.name).toBe("A::b::blank::c");
    expect(
      syncFailure(() => call("applyChanges", changes({ decks: [[deck(0, "zero", 5)], []] }))).kind,
    ).toBe("badRequest");
    expect(user.session).toBeUndefined();
  });

  test("tags: normalised, added once with the session usn, parents' spelling adopted", () => {
    db.query(`update col set tags = '{"Lang":3,"Straße":4}'`).run();
    start(0, true);
    call("applyChanges", changes({ tags: ["lang::german", "LANG", "strasse", "new tag", "x::"] }));
    expect(readLegacyColumn(db, "tags")).toEqual({
      Lang: 3,
      Straße: 4,
      "Lang::german": 10,
      newtag: 10,
      "x::blank": 10,
    });
  });

  test("objects sent are those with usn >= minUsn", () => {
    db.query(`update col set tags = '{"old":3,"fresh":7}'`).run();
    start(5, false);
    const reply = call("applyChanges", changes({})) as { tags: string[]; models: unknown[] };
    expect(reply.tags).toEqual(["fresh"]);
    expect(reply.models).toEqual([]);
  });
});

describe("chunks", () => {
  function addRevlog(n: number, usn = 10): void {
    const insert = db.query("insert into revlog values ($id, 1, $usn, 3, 1, 0, 2500, 100, 1)");
    db.transaction(() => {
      for (let i = 1; i <= n; i++) insert.run({ id: i, usn });
    })();
  }

  type ChunkReply = { done: boolean; revlog?: unknown[]; cards?: unknown[]; notes?: unknown[] };

  test("exactly 250 objects: a full chunk with done false, then an empty one with done true", () => {
    addRevlog(250);
    start();
    const first = call("chunk") as ChunkReply;
    expect(first.done).toBe(false);
    expect(first.revlog).toHaveLength(250);
    expect(call("chunk")).toEqual({ done: true });
  });

  test("249 objects fit one chunk with done true", () => {
    addRevlog(249);
    start();
    const first = call("chunk") as ChunkReply;
    expect(first.done).toBe(true);
    expect(first.revlog).toHaveLength(249);
  });

  test("round robin over revlog, notes and cards; a last round may overshoot to 252", () => {
    addRevlog(100);
    db.transaction(() => {
      for (let i = 1; i <= 100; i++) {
        insertNote(i, 1_700_000_000, 10);
        insertCard(1000 + i, 1_700_000_000, 10);
      }
    })();
    start();
    const first = call("chunk") as ChunkReply;
    expect([first.revlog?.length, first.notes?.length, first.cards?.length]).toEqual([84, 84, 84]);
    expect(first.done).toBe(false);
    const second = call("chunk") as ChunkReply;
    expect(second.done).toBe(true);
    expect([second.revlog?.length, second.notes?.length, second.cards?.length]).toEqual([
      16, 16, 16,
    ]);
  });

  test("only rows with usn >= minUsn are sent, in wire form, and the id lists are frozen", () => {
    addRevlog(3, 9);
    insertNote(1, 1_700_000_000, 10, "a\x1fb");
    db.query("update notes set tags = ' x  y ', flags = 5, data = 'd' where id = 1").run();
    insertCard(2, 1_700_000_000, 12);
    db.query(`update cards set data = '{"s":1.23456,"d":2,"junk":1}' where id = 2`).run();
    start(10);
    const reply = call("chunk") as ChunkReply;
    expect(reply.revlog).toBeUndefined();
    expect(reply.notes).toEqual([
      [1, "g1", notetypeId("Basic"), 1_700_000_000, 10, " x y ", "a\x1fb", "", "", 0, ""],
    ]);
    expect(reply.cards?.[0]).toEqual([
      2,
      1,
      1,
      0,
      1_700_000_000,
      12,
      0,
      0,
      0,
      0,
      0,
      0,
      0,
      0,
      0,
      0,
      0,
      '{"s":1.2346,"d":2.0}',
    ]);
    insertNote(3, 1_700_000_000, 10);
    expect(call("chunk")).toEqual({ done: true });
  });
});

describe("64-bit ids", () => {
  test("ids beyond 2^53 travel exactly both ways", () => {
    const big = 2n ** 62n + 5n;
    db.query("insert into revlog values ($id, $id, 10, 3, 1, 0, 2500, 100, 1)").run({ id: big });
    start();
    expect(runNormalSyncStep(user, "chunk", "k1", PAD).json).toContain(`[${big},${big},10,`);
    const body = `{"chunk":{"cards":[[${big + 1n},${big},1,0,1,10,0,0,0,0,0,0,0,0,0,0,0,""]]}}`;
    runNormalSyncStep(user, "applyChunk", "k1", body);
    const row = db
      .query("select cast(id as text) as id, cast(nid as text) as nid from cards")
      .get();
    expect(row).toEqual({ id: String(big + 1n), nid: String(big) });
  });

  test("a chunk read exactly does not change how the next one is read", () => {
    const big = 2n ** 62n + 7n;
    for (let i = 0; i < 300; i++) {
      const id = i === 299 ? big : BigInt(1000 + i);
      db.query("insert into revlog values ($id, 1, 10, 3, 1, 0, 2500, 100, 1)").run({ id });
    }
    start(0);
    // Chunks take ids from the end of the list, so the big id comes first, then small ones.
    const first = runNormalSyncStep(user, "chunk", "k1", PAD).json;
    expect(first).toContain(`[${big},1,10,`);
    const second = JSON.parse(runNormalSyncStep(user, "chunk", "k1", PAD).json);
    expect(second.revlog).toHaveLength(50);
    expect(second.revlog[0]).toEqual([1049, 1, 10, 3, 1, 0, 2500, 100, 1]);
  });
});

describe("applyChunk", () => {
  test("notes: recomputed sort field and checksum, cleaned fields and tags, no flags or data", () => {
    const basic = notetypeId("Basic");
    start();
    call("applyChunk", {
      chunk: { done: true, notes: [noteRow(5, basic, "<b>Hi</b>\r&amp;\x1f42")] },
    });
    const row = db
      .query("select flds, cast(sfld as text) as sfld, csum, tags, flags, data, usn from notes")
      .get();
    expect(row).toEqual({
      flds: "<b>Hi</b>&amp;\x1f42",
      sfld: "Hi&",
      csum: fieldChecksum("Hi&"),
      tags: " tag1 tag2 ",
      flags: 0,
      data: "",
      usn: 10,
    });
  });

  test("a note with a missing note type or the wrong field count fails the session", () => {
    start();
    expect(
      syncFailure(() =>
        call("applyChunk", { chunk: { notes: [noteRow(5, notetypeId("Basic"), "one")] } }),
      ).kind,
    ).toBe("badRequest");
    expect(user.session).toBeUndefined();
  });

  test("conflicts: rows changed on the server in this window only yield to strictly newer ones", () => {
    insertNote(1, 1000, 10); // changed since the client's last sync
    insertNote(2, 1000, 10);
    insertNote(3, 1000, 5); // unchanged since then: the client's copy wins even if older
    insertCard(11, 1000, 10);
    insertCard(12, 1000, 5);
    start(10);
    const basic = notetypeId("Basic");
    call("applyChunk", {
      chunk: {
        notes: [
          noteRow(1, basic, "same\x1fmod", 1000),
          noteRow(2, basic, "newer\x1fx", 1001),
          noteRow(3, basic, "older\x1fx", 999),
        ],
        cards: [cardRow(11, 1, 1000), cardRow(12, 1, 999), cardRow(13, 1, 1)],
      },
    });
    const notes = db.query("select id, flds from notes order by id").all();
    expect(notes).toEqual([
      { id: 1, flds: "front\x1fback" },
      { id: 2, flds: "newer\x1fx" },
      { id: 3, flds: "older\x1fx" },
    ]);
    expect(db.query("select id, mod from cards order by id").all()).toEqual([
      { id: 11, mod: 1000 },
      { id: 12, mod: 999 },
      { id: 13, mod: 1 },
    ]);
  });

  test("revlog entries are insert-or-ignore; card numbers are read leniently; data is normalised", () => {
    db.query("insert into revlog values (5, 1, 3, 1, 1, 0, 0, 0, 0)").run();
    start();
    const card = cardRow(20, 1, 1000, 10, '{"s":1,"d":2.71828,"x":0}');
    card[4] = 1000.9;
    card[8] = -3.7;
    card[9] = -5;
    call("applyChunk", {
      chunk: { revlog: [revlogRow(5, 9), [6, 1, 10, 3, 1.9, -60.5, -1, 2.5]], cards: [card] },
    });
    expect(db.query("select * from revlog order by id").all()).toEqual([
      { id: 5, cid: 1, usn: 3, ease: 1, ivl: 1, lastIvl: 0, factor: 0, time: 0, type: 0 },
      { id: 6, cid: 1, usn: 10, ease: 3, ivl: 1, lastIvl: -60, factor: 0, time: 2, type: 0 },
    ]);
    expect(db.query("select mod, due, ivl, data from cards").get()).toEqual({
      mod: 1000,
      due: -3,
      ivl: 0,
      data: '{"s":1.0,"d":2.718}',
    });
  });

  test("unknown card type or queue is a shape error", () => {
    start();
    const card = cardRow(20, 1);
    card[6] = 4;
    expect(syncFailure(() => call("applyChunk", { chunk: { cards: [card] } })).kind).toBe(
      "badRequest",
    );
    expect(user.session).toBeDefined();
  });
});

describe("sanityCheck2", () => {
  const models = () => Object.keys(readLegacyColumn(db, "models")).length;

  test("compares counts without due counts and graves", () => {
    insertNote(1, 1000, 3);
    db.query("insert into graves values (1, 9, 0)").run();
    start();
    const reply = call("sanityCheck2", { client: [[5, 6, 7], 0, 1, 0, 42, models(), 1, 1] });
    expect(reply).toEqual({
      status: "ok",
      c: [[0, 0, 0], 0, 1, 0, 0, models(), 1, 1],
      s: [[0, 0, 0], 0, 1, 0, 0, models(), 1, 1],
    });
    call("abort");
    start();
    const bad = call("sanityCheck2", { client: [[0, 0, 0], 0, 1, 0, 0, models(), 2, 1] });
    expect(bad).toEqual({
      status: "bad",
      c: [[0, 0, 0], 0, 1, 0, 0, models(), 2, 1],
      s: [[0, 0, 0], 0, 1, 0, 0, models(), 1, 1],
    });
  });

  test("accepts the object form", () => {
    start();
    const client = {
      counts: { new: 0, learn: 0, review: 0 },
      cards: 0,
      notes: 0,
      revlog: 0,
      graves: 0,
      models: models(),
      decks: 1,
      deck_config: 1,
    };
    expect((call("sanityCheck2", { client }) as { status: string }).status).toBe("ok");
  });

  test("a server row with usn -1 fails it, with the client's counts as sent", () => {
    insertNote(1, 1000, -1);
    start();
    const client = [[1, 2, 3], 0, 1, 0, 0, models(), 1, 1];
    expect(call("sanityCheck2", { client })).toEqual({ status: "bad", c: client, s: null });
  });
});

describe("abandoned sessions", () => {
  test("the worker's sweep rolls back a session idle past the timeout", async () => {
    const dataDir = mkdtempSync(join(tmpdir(), "ankisyncd-sweep-"));
    const host = testUserHost(dataDir, { syncSessionTimeoutSecs: 60 });
    try {
      const job = normalSyncJobs(host, "u2", "s");
      await job("start", { minUsn: 0, lnewer: false, graves: null });
      await job("applyChunk", { chunk: { revlog: [revlogRow(5, 1)] } });
      host.sweep(Date.now() + 61_000);
      await expect(job("chunk", { _pad: null })).rejects.toMatchObject({ kind: "conflict" });
      // Read through SQLite beside the worker, which may still have the file open in WAL mode.
      const check = openDatabase(userPaths(dataDir, "u2").collection, { readonly: true });
      expect(check.query("select count() as n from revlog").get()).toEqual({ n: 0 });
      check.close();
    } finally {
      host.shutdown();
      rmSync(dataDir, { recursive: true, force: true });
    }
  });
});
