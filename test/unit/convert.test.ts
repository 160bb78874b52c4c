/**
 * downgradeToSchema11 against Anki's own downgrade: the fixture script builds schema 18
 * collections with the real Anki library and also closes copies of them with
 * `downgrade=True`; our conversion of the schema 18 file must give the same file.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { copyFileSync, existsSync, mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import {
  isLegacyObject,
  type LegacyJson,
  type LegacyObject,
  parseLegacyJson,
  stringifyLegacyJson,
} from "../../src/legacyJson.ts";
import { type Db, openDatabase } from "../../src/platform/sqlite.ts";
import { downgradeToSchema11 } from "../../src/storage/collection/convert/downgrade.ts";
import {
  InvalidConfigValueError,
  UnsupportedSchemaVersionError,
} from "../../src/storage/collection/convert/errors.ts";

const root = resolve(import.meta.dir, "../..");
const python = join(root, ".venv/bin/python");
/** Every fixture comes from the real Anki library: without the venv, everything here skips. */
const withAnki = existsSync(python);
const fixtureScript = join(root, "test/fixtures/rich_collection.py");
const tmp = mkdtempSync(join(tmpdir(), "ankisyncd-convert-"));

const VARIANTS = ["stock", "rich", "edge"] as const;
const JSON_COLUMNS = ["conf", "models", "decks", "dconf", "tags"] as const;
const DATA_TABLES = ["notes", "cards", "revlog"] as const;

function run(cmd: string[]): string {
  const proc = Bun.spawnSync(cmd, { stdout: "pipe", stderr: "pipe" });
  if (proc.exitCode !== 0) {
    throw new Error(`${cmd.join(" ")} failed (${proc.exitCode}): ${proc.stderr.toString()}`);
  }
  return proc.stdout.toString();
}

const fixture = (name: string) => join(tmp, name);

/** Copies `<variant>.anki2`, downgrades the copy with our code, returns its path. */
function downgradeCopy(variant: string, suffix = "ours"): string {
  const path = fixture(`${variant}.${suffix}.anki2`);
  copyFileSync(fixture(`${variant}.anki2`), path);
  const db = openDatabase(path, { unicase: true });
  try {
    downgradeToSchema11(db);
    db.exec("pragma journal_mode = delete");
  } finally {
    db.close();
  }
  return path;
}

function withDb<T>(path: string, use: (db: Db) => T): T {
  const db = openDatabase(path, { readonly: true });
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

function colRow(path: string): Row {
  const [row] = rows(path, "select * from col");
  if (!row) throw new Error(`no col row in ${path}`);
  return row;
}

/** Canonical text of a legacy value: keys sorted, numbers spelled as stored. */
function canonical(value: LegacyJson): string {
  return stringifyLegacyJson(sortKeys(value));
}

function sortKeys(value: LegacyJson): LegacyJson {
  if (Array.isArray(value)) return value.map(sortKeys);
  if (!isLegacyObject(value)) return value;
  const sorted: LegacyObject = {};
  for (const key of Object.keys(value).sort()) sorted[key] = sortKeys(value[key] ?? null);
  return sorted;
}

function legacyColumn(path: string, column: string): LegacyObject {
  const value = parseLegacyJson(String(colRow(path)[column]));
  if (!isLegacyObject(value)) throw new Error(`${column} is not a JSON object`);
  return value;
}

function schemaShape(path: string): Row[] {
  const objects = rows(path, "select type, name, tbl_name from sqlite_master order by name");
  const columns = objects
    .filter((o) => o.type === "table")
    .flatMap((o) =>
      rows(path, `pragma table_info(${String(o.name)})`).map((c) => ({ ...c, t: o.name })),
    );
  return [...objects, ...columns];
}

beforeAll(() => {
  if (!withAnki) return;
  run(["bash", join(root, "scripts/build-native.sh")]);
  run([python, fixtureScript, tmp]);
  for (const variant of VARIANTS) downgradeCopy(variant);
});
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

describe.skipIf(!withAnki).each(VARIANTS)("downgrade of the %s fixture", (variant) => {
  const ours = () => fixture(`${variant}.ours.anki2`);
  const anki = () => fixture(`${variant}.schema11.anki2`);
  const source = () => fixture(`${variant}.anki2`);

  test.each(JSON_COLUMNS)("col.%s equals Anki's, numbers spelled identically", (column) => {
    const mine = legacyColumn(ours(), column);
    const reference = legacyColumn(anki(), column);
    expect(Object.keys(mine).sort()).toEqual(Object.keys(reference).sort());
    for (const key of Object.keys(reference)) {
      expect(canonical(mine[key] ?? null)).toBe(canonical(reference[key] ?? null));
    }
  });

  test("scalar col columns are untouched and ver is 11", () => {
    const pick = (row: Row) => ({ ...row, conf: 0, models: 0, decks: 0, dconf: 0, tags: 0 });
    expect(pick(colRow(ours()))).toEqual(pick(colRow(anki())));
    expect(colRow(ours()).ver).toBe(11n);
  });

  test("64-bit field and template ids survive exactly", () => {
    const ids = (path: string) => {
      const models = legacyColumn(path, "models");
      return Object.keys(models)
        .sort()
        .flatMap((key) => {
          const nt = models[key];
          if (!isLegacyObject(nt)) return [];
          const parts = [...(nt.flds as LegacyObject[]), ...(nt.tmpls as LegacyObject[])];
          return parts.map((p) => (p.id === null ? null : BigInt(p.id as number | bigint)));
        });
    };
    const mine = ids(ours());
    expect(mine).toEqual(ids(anki()));
    // Random i64 ids: the comparison above is meaningless unless some exceed 2^53.
    expect(mine.some((id) => id !== null && (id > 2n ** 53n || id < -(2n ** 53n)))).toBe(true);
  });

  test.each(DATA_TABLES)("%s rows are unchanged", (table) => {
    const sql = `select * from ${table} order by id`;
    expect(rows(ours(), sql)).toEqual(rows(source(), sql));
    expect(rows(ours(), sql)).toEqual(rows(anki(), sql));
  });

  test("graves are re-laid out with every row kept, in Anki's order", () => {
    const sql = "select usn, oid, type from graves";
    expect(rows(ours(), sql)).toEqual(rows(anki(), sql));
    const sorted = "select usn, oid, type from graves order by oid, type";
    expect(rows(ours(), sorted)).toEqual(rows(source(), sorted));
  });

  test("tables, indexes and columns match Anki's schema 11 file", () => {
    expect(schemaShape(ours())).toEqual(schemaShape(anki()));
  });

  test("file is consistent, rollback-journal, and readable without the collation", () => {
    const check = withDb(ours(), (db) => db.prepare("pragma integrity_check").all());
    expect(check).toEqual([{ integrity_check: "ok" }]);
    const header = readFileSync(ours()).subarray(18, 20);
    expect([...header]).toEqual([1, 1]);
    const names = rows(ours(), "select sql from sqlite_master where sql like '%unicase%'");
    expect(names).toEqual([]);
  });
});

test.skipIf(!withAnki)("Anki opens our downgraded files and sees the same objects", () => {
  const script = `
import json, sys
from anki.collection import Collection
out = {}
for path in sys.argv[1:]:
    col = Collection(path)
    out[path] = [
        sorted((m["id"], m["name"], len(m["flds"])) for m in col.models.all()),
        sorted((d["id"], d["name"]) for d in col.decks.all()),
        sorted((c["id"], c["name"]) for c in col.decks.all_config()),
        sorted(col.tags.all()),
        col.card_count(),
    ]
    col.close()
print(json.dumps(out))
`;
  const pairs = VARIANTS.map((v) => {
    const mine = fixture(`${v}.anki-opened.anki2`);
    const reference = fixture(`${v}.anki-opened-ref.anki2`);
    copyFileSync(fixture(`${v}.ours.anki2`), mine);
    copyFileSync(fixture(`${v}.schema11.anki2`), reference);
    return [mine, reference] as const;
  });
  const seen = JSON.parse(run([python, "-c", script, ...pairs.flat()])) as Record<string, unknown>;
  for (const [mine, reference] of pairs) expect(seen[mine]).toEqual(seen[reference]);
});

describe.skipIf(!withAnki)("refusals and atomicity", () => {
  test("a schema 11 file is left as it is", () => {
    const path = fixture("noop.anki2");
    copyFileSync(fixture("rich.schema11.anki2"), path);
    const before = readFileSync(path);
    const db = openDatabase(path, { unicase: true });
    downgradeToSchema11(db);
    db.close();
    expect(readFileSync(path).equals(before)).toBe(true);
  });

  test("other versions are refused with a typed error", () => {
    const path = fixture("v17.anki2");
    copyFileSync(fixture("stock.anki2"), path);
    const db = openDatabase(path, { unicase: true });
    db.exec("update col set ver = 17");
    const attempt = () => downgradeToSchema11(db);
    expect(attempt).toThrow(UnsupportedSchemaVersionError);
    try {
      attempt();
    } catch (error) {
      expect((error as UnsupportedSchemaVersionError).version).toBe(17);
    }
    db.close();
  });

  test("an unparsable config value aborts everything", () => {
    const path = fixture("badconfig.anki2");
    copyFileSync(fixture("rich.anki2"), path);
    const db = openDatabase(path, { unicase: true });
    db.exec("update config set val = cast('{oops' as blob) where KEY = 'curModel'");
    expect(() => downgradeToSchema11(db)).toThrow(InvalidConfigValueError);
    const tables = db
      .prepare(
        "select name from sqlite_master where name in ('graves', 'notetypes', 'idx_graves_pending')",
      )
      .all();
    expect(tables).toHaveLength(3);
    expect(db.prepare("select ver, models from col").get()).toEqual({ ver: 18, models: "" });
    db.close();
  });
});
