/**
 * upgradeToSchema18 against Anki's own upgrade: the fixture script's schema 11 files (written
 * by Anki's downgrade) are upgraded by our code and, separately, by the real Anki library
 * opening them; every object must come out the same, decoded. Then our downgrade of our
 * upgrade must give back the schema 11 objects (a device that downloads and uploads again).
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { copyFileSync, existsSync, mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import {
  isLegacyObject,
  type LegacyJson,
  type LegacyObject,
  LosslessNumber,
  parseLegacyJson,
  stringifyLegacyJson,
} from "../../src/legacyJson.ts";
import { type Db, openDatabase } from "../../src/platform/sqlite.ts";
import { downgradeToSchema11 } from "../../src/storage/collection/convert/downgrade.ts";
import { NotUpgradableError } from "../../src/storage/collection/convert/errors.ts";
import { messageTypes } from "../../src/storage/collection/convert/proto.ts";
import { upgradeToSchema18 } from "../../src/storage/collection/convert/upgrade.ts";

const root = resolve(import.meta.dir, "../..");
const python = join(root, ".venv/bin/python");
const withAnki = existsSync(python);
const fixtureScript = join(root, "test/fixtures/rich_collection.py");
const tmp = mkdtempSync(join(tmpdir(), "ankisyncd-upgrade-"));
const fixture = (name: string) => join(tmp, name);

/** `addon`: the rich file with unknown keys (an add-on's, a newer client's) everywhere. */
const UPGRADED = ["stock", "rich", "edge", "addon"] as const;
const JSON_COLUMNS = ["conf", "models", "decks", "dconf", "tags"] as const;
const DATA_TABLES = ["notes", "cards", "revlog"] as const;

function run(cmd: string[]): string {
  const proc = Bun.spawnSync(cmd, { stdout: "pipe", stderr: "pipe" });
  if (proc.exitCode !== 0) {
    throw new Error(`${cmd.join(" ")} failed (${proc.exitCode}): ${proc.stderr.toString()}`);
  }
  return proc.stdout.toString();
}

function withDb<T>(path: string, use: (db: Db) => T, unicase = true): T {
  const db = openDatabase(path, { unicase, create: false });
  try {
    return use(db);
  } finally {
    db.close();
  }
}

type Row = Record<string, unknown>;

function rows(path: string, sql: string): Row[] {
  return withDb(path, (db) => db.prepare(sql).safeIntegers(true).all() as Row[]);
}

function upgradeCopy(variant: string): string {
  const path = fixture(`${variant}.up-ours.anki2`);
  copyFileSync(fixture(`${variant}.schema11.anki2`), path);
  withDb(path, (db) => upgradeToSchema18(db));
  return path;
}

/** Anki upgrades a schema 11 file when it opens it; closing keeps schema 18. */
function ankiUpgrades(paths: string[]): void {
  const script = `
import sqlite3, sys
from anki.collection import Collection
for path in sys.argv[1:]:
    Collection(path).close(downgrade=False)
    # Out of WAL mode, so that the file alone holds everything (the tests copy it).
    sqlite3.connect(path).execute("pragma journal_mode = delete").fetchall()
`;
  run([python, "-c", script, ...paths]);
}

const sortKeys = (value: LegacyJson): LegacyJson => {
  if (Array.isArray(value)) return value.map(sortKeys);
  if (!isLegacyObject(value)) return value;
  const sorted: LegacyObject = {};
  for (const key of Object.keys(value).sort()) sorted[key] = sortKeys(value[key] ?? null);
  return sorted;
};
const canonicalJson = (text: string) => stringifyLegacyJson(sortKeys(parseLegacyJson(text)));

/** A blob decoded, its `other` JSON parsed and key-sorted (Anki writes it from a HashMap). */
function decoded(type: keyof typeof messageTypes, blob: unknown): unknown {
  const t = messageTypes[type];
  const value = t.toObject(t.decode(blob as Uint8Array), {
    longs: String,
    enums: Number,
    defaults: true,
    arrays: true,
  }) as Record<string, unknown>;
  const other = value.other as Uint8Array | undefined;
  if (other !== undefined) {
    value.other = other.length === 0 ? "" : canonicalJson(new TextDecoder().decode(other));
  }
  return value;
}

const OBJECT_QUERIES: Record<
  string,
  { sql: string; blobs: Record<string, keyof typeof messageTypes> }
> = {
  notetypes: {
    sql: "select id, name, mtime_secs, usn, config from notetypes order by id",
    blobs: { config: "notetypeConfig" },
  },
  fields: {
    sql: "select ntid, ord, name, config from fields order by ntid, ord",
    blobs: { config: "fieldConfig" },
  },
  templates: {
    sql: "select ntid, ord, name, mtime_secs, usn, config from templates order by ntid, ord",
    blobs: { config: "templateConfig" },
  },
  decks: {
    sql: "select id, name, mtime_secs, usn, common, kind from decks order by id",
    blobs: { common: "deckCommon", kind: "deckKind" },
  },
  deck_config: {
    sql: "select id, name, mtime_secs, usn, config from deck_config order by id",
    blobs: { config: "deckConfig" },
  },
};

function objects(path: string, table: string): Row[] {
  const query = OBJECT_QUERIES[table];
  if (!query) throw new Error(table);
  return rows(path, query.sql).map((row) => {
    const out: Row = { ...row };
    for (const [column, type] of Object.entries(query.blobs))
      out[column] = decoded(type, row[column]);
    return out;
  });
}

function schemaShape(path: string): Row[] {
  const objects = rows(
    path,
    "select type, name, tbl_name from sqlite_master where name not like 'sqlite_%' order by name",
  );
  const columns = objects
    .filter((o) => o.type === "table")
    .flatMap((o) =>
      rows(path, `pragma table_info(${String(o.name)})`).map((c) => ({ ...c, t: o.name })),
    );
  return [...objects, ...columns];
}

/** Adds unknown keys to every legacy object and sub-object, as add-ons and newer clients do. */
function makeAddonVariant(): void {
  const path = fixture("addon.schema11.anki2");
  copyFileSync(fixture("rich.schema11.anki2"), path);
  const extra = (n: number): LegacyJson => ({ n, f: new LosslessNumber("1.50"), big: 2n ** 60n });
  withDb(path, (db) => {
    const col = db.prepare("select models, decks, dconf, conf from col").get() as Record<
      string,
      string
    >;
    const edit = (column: string, change: (o: LegacyObject) => void) => {
      const map = parseLegacyJson(col[column] as string) as LegacyObject;
      for (const value of Object.values(map)) change(value as LegacyObject);
      db.prepare(`update col set ${column} = ?`).run(stringifyLegacyJson(map));
    };
    edit("models", (m) => {
      m.addonKey = extra(1);
      for (const f of m.flds as LegacyObject[]) f.addonField = extra(2);
      for (const t of m.tmpls as LegacyObject[]) t.addonTemplate = [extra(3), null];
    });
    edit("decks", (d) => {
      d.addonDeck = extra(4);
      d.return = 1;
    });
    edit("dconf", (c) => {
      c.addonTop = extra(5);
      (c.new as LegacyObject).addonNew = "n";
      (c.rev as LegacyObject).addonRev = extra(6);
      (c.lapse as LegacyObject).addonLapse = [1, 2];
    });
    const conf = parseLegacyJson(col.conf as string) as LegacyObject;
    conf.addonSetting = { nested: { f: new LosslessNumber("2.50e1") }, list: [true, null] };
    db.prepare("update col set conf = ?").run(stringifyLegacyJson(conf));
  });
}

beforeAll(() => {
  if (!withAnki) return;
  run(["bash", join(root, "scripts/build-native.sh")]);
  run([python, fixtureScript, tmp]);
  makeAddonVariant();
  const theirs = UPGRADED.map((v) => {
    const path = fixture(`${v}.up-anki.anki2`);
    copyFileSync(fixture(`${v}.schema11.anki2`), path);
    return path;
  });
  ankiUpgrades(theirs);
  for (const variant of UPGRADED) upgradeCopy(variant);
});
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

describe.skipIf(!withAnki).each(UPGRADED)("upgrade of the %s fixture", (variant) => {
  const ours = () => fixture(`${variant}.up-ours.anki2`);
  const anki = () => fixture(`${variant}.up-anki.anki2`);
  const source = () => fixture(`${variant}.schema11.anki2`);

  test.each(Object.keys(OBJECT_QUERIES))("%s equal Anki's, decoded", (table) => {
    const mine = objects(ours(), table);
    expect(mine.length).toBeGreaterThan(0);
    expect(mine).toEqual(objects(anki(), table));
  });

  test("config entries and tags equal Anki's", () => {
    const config = (path: string) =>
      rows(path, "select KEY as key, usn, mtime_secs, val from config order by KEY").map((r) => ({
        ...r,
        val: canonicalJson(new TextDecoder().decode(r.val as Uint8Array)),
      }));
    expect(config(ours())).toEqual(config(anki()));
    const tags = "select tag, usn, collapsed, config from tags order by tag";
    expect(rows(ours(), tags)).toEqual(rows(anki(), tags));
  });

  test("col row, graves and data tables equal Anki's", () => {
    expect(rows(ours(), "select * from col")).toEqual(rows(anki(), "select * from col"));
    const graves = "select oid, type, usn from graves order by oid, type";
    expect(rows(ours(), graves)).toEqual(rows(anki(), graves));
    for (const table of DATA_TABLES) {
      const sql = `select * from ${table} order by id`;
      expect(rows(ours(), sql)).toEqual(rows(source(), sql));
    }
  });

  test("tables, indexes and columns match Anki's schema 18 file", () => {
    expect(schemaShape(ours())).toEqual(schemaShape(anki()));
    const check = rows(ours(), "pragma integrity_check");
    expect(check).toEqual([{ integrity_check: "ok" }]);
  });

  test("our downgrade of our upgrade gives back every schema 11 object", () => {
    const mine = roundTrip(ours(), `${variant}.roundtrip-ours`);
    // The edge fixture has values Anki's own upgrade clamps (a negative extendNew); the
    // add-on one an obsolete deck key (`return`) it drops and numbers serde re-spells.
    const exact = variant === "stock" || variant === "rich";
    const reference = exact ? source() : roundTrip(anki(), `${variant}.roundtrip-anki`);
    for (const name of JSON_COLUMNS) {
      const got = legacyColumn(mine, name);
      const want = legacyColumn(reference, name);
      expect(Object.keys(got).sort()).toEqual(Object.keys(want).sort());
      for (const key of Object.keys(want)) {
        expect(stringifyLegacyJson(sortKeys(got[key] ?? null))).toBe(
          stringifyLegacyJson(sortKeys(want[key] ?? null)),
        );
      }
    }
  });
});

test.skipIf(!withAnki)("unknown keys survive download then upload, in every object", () => {
  const back = roundTrip(fixture("addon.up-ours.anki2"), "addon.roundtrip-check");
  const text = ["models", "decks", "dconf", "conf"].map((c) =>
    stringifyLegacyJson(legacyColumn(back, c)),
  );
  for (const key of [
    "addonKey",
    "addonField",
    "addonTemplate",
    "addonDeck",
    "addonTop",
    "addonNew",
    "addonRev",
    "addonLapse",
    "addonSetting",
  ]) {
    expect(text.some((t) => t.includes(`"${key}"`))).toBe(true);
  }
  const models = Object.values(legacyColumn(back, "models")) as LegacyObject[];
  const field = ((models[0] as LegacyObject).flds as LegacyObject[])[0] as LegacyObject;
  expect(stringifyLegacyJson(field.addonField ?? null)).toBe(
    '{"n":2,"f":1.5,"big":1152921504606846976}',
  );
});

function roundTrip(path: string, name: string): string {
  const back = fixture(`${name}.anki2`);
  copyFileSync(path, back);
  withDb(back, (db) => downgradeToSchema11(db));
  return back;
}

function legacyColumn(path: string, name: string): LegacyObject {
  const [row] = rows(path, `select ${name} as v from col`);
  return parseLegacyJson(String(row?.v)) as LegacyObject;
}

describe.skipIf(!withAnki)("cases left to the client", () => {
  test("a refusal leaves the file as it was (journal in memory, as for a download)", () => {
    const path = fixture("refused.anki2");
    copyFileSync(fixture("rich.schema11.anki2"), path);
    withDb(path, (db) => {
      // Parsed after the notetypes and decks, so those are converted when it fails.
      const tags = JSON.stringify({ ok: 0, bad: "not a usn" });
      db.prepare("update col set tags = ?").run(tags);
    });
    const before = readFileSync(path);
    withDb(path, (db) => {
      db.exec("pragma journal_mode = memory");
      expect(() => upgradeToSchema18(db)).toThrow(NotUpgradableError);
    });
    expect(readFileSync(path).equals(before)).toBe(true);
  });

  test("unknown keys refused when asked (a client newer than the layout): stock passes", () => {
    for (const [variant, ok] of [
      ["stock", true],
      ["addon", false],
    ] as const) {
      const path = fixture(`${variant}.strict.anki2`);
      copyFileSync(fixture(`${variant}.schema11.anki2`), path);
      withDb(path, (db) => {
        db.exec("pragma journal_mode = memory");
        const attempt = () => upgradeToSchema18(db, { unknownKeys: "refuse" });
        if (ok) attempt();
        else expect(attempt).toThrow(NotUpgradableError);
        expect(db.prepare("select ver from col").get()).toEqual({ ver: ok ? 18 : 11 });
      });
    }
  });

  test("two tags equal but for case are refused (Anki keeps whichever it meets first)", () => {
    const path = fixture("tagcase.anki2");
    copyFileSync(fixture("rich.schema11.anki2"), path);
    withDb(path, (db) => {
      db.prepare("update col set tags = ?").run(JSON.stringify({ Verb: 0, verb: 0 }));
      db.exec("pragma journal_mode = memory");
      expect(() => upgradeToSchema18(db)).toThrow();
      expect(db.prepare("select ver from col").get()).toEqual({ ver: 11 });
    });
  });

  test.each([
    [
      "a deck name Anki would rename",
      "decks",
      (d: LegacyObject): void => {
        d.name = " x";
      },
    ],
    [
      "a deck whose id differs from its key",
      "decks",
      (d: LegacyObject): void => {
        d.id = 5;
      },
    ],
    [
      "a notetype field that is not a boolean",
      "models",
      (m: LegacyObject): void => {
        m.latexsvg = 1;
      },
    ],
    [
      "deck options whose ease Anki resets (rewriting card eases)",
      "dconf",
      (c: LegacyObject): void => {
        (c.new as LegacyObject).initialFactor = 1300;
      },
    ],
  ] as const)("%s is refused, and the schema stays 11", (_what, column, change) => {
    const path = fixture(`odd-${column}.anki2`);
    copyFileSync(fixture("rich.schema11.anki2"), path);
    withDb(path, (db) => {
      const row = db.prepare(`select ${column} as v from col`).get() as { v: string };
      const map = parseLegacyJson(row.v) as LegacyObject;
      const last = Object.keys(map).pop() as string;
      change(map[last] as LegacyObject);
      db.prepare(`update col set ${column} = ?`).run(stringifyLegacyJson(map));
      db.exec("pragma journal_mode = memory");
      expect(() => upgradeToSchema18(db)).toThrow(NotUpgradableError);
      expect(db.prepare("select ver from col").get()).toEqual({ ver: 11 });
    });
  });
});

test.skipIf(!withAnki)("Anki opens our upgraded files and sees what its own upgrade gives", () => {
  const script = `
import json, sys
from anki.collection import Collection
out = {}
for path in sys.argv[1:]:
    col = Collection(path)
    out[path] = [
        col.db.scalar("select ver from col"),
        sorted((m["id"], m["name"], len(m["flds"])) for m in col.models.all()),
        sorted((d["id"], d["name"]) for d in col.decks.all()),
        sorted((c["id"], c["name"]) for c in col.decks.all_config()),
        sorted(col.tags.all()),
        col.card_count(),
    ]
    col.close(downgrade=False)
print(json.dumps(out))
`;
  const pairs = UPGRADED.map((v) => {
    const mine = fixture(`${v}.opened-ours.anki2`);
    const reference = fixture(`${v}.opened-anki.anki2`);
    copyFileSync(fixture(`${v}.up-ours.anki2`), mine);
    copyFileSync(fixture(`${v}.up-anki.anki2`), reference);
    return [mine, reference] as const;
  });
  const seen = JSON.parse(run([python, "-c", script, ...pairs.flat()])) as Record<string, unknown>;
  for (const [mine, reference] of pairs) {
    expect(seen[mine]).toEqual(seen[reference]);
    expect((seen[mine] as unknown[])[0]).toBe(18);
  }
});
