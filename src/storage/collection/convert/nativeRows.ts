/**
 * Readers for the schema 18 object tables. Integers come back as bigint (statement-level
 * safeIntegers) so 64-bit ids and times cannot be rounded through a double.
 */
import type { Db } from "../../../platform/sqlite.ts";
import type {
  ConfigRow,
  DeckConfigRow,
  DeckRow,
  FieldRow,
  NotetypeRow,
  TagRow,
  TemplateRow,
} from "./rows.ts";

type Raw = Record<string, unknown>;

function selectAll(db: Db, sql: string): Raw[] {
  return db.prepare(sql).safeIntegers(true).all() as Raw[];
}

function int(value: unknown): bigint {
  if (typeof value === "bigint") return value;
  if (typeof value === "number" && Number.isInteger(value)) return BigInt(value);
  throw new TypeError(`expected an integer column value, got ${typeof value}`);
}

function small(value: unknown): number {
  return Number(int(value));
}

function text(value: unknown): string {
  if (typeof value === "string") return value;
  throw new TypeError(`expected a text column value, got ${typeof value}`);
}

/** Anki reads these columns as BLOB only; text would fail there, so it fails here too. */
function blob(value: unknown): Uint8Array {
  if (value instanceof Uint8Array) return value;
  throw new TypeError(`expected a blob column value, got ${typeof value}`);
}

export function readNotetypes(db: Db): NotetypeRow[] {
  return selectAll(db, "select id, name, mtime_secs, usn, config from notetypes order by id").map(
    (r) => ({
      id: int(r.id),
      name: text(r.name),
      mtimeSecs: int(r.mtime_secs),
      usn: int(r.usn),
      config: blob(r.config),
    }),
  );
}

/** Fields per notetype id, each list in `ord` order. */
export function readFields(db: Db): Map<bigint, FieldRow[]> {
  const rows = selectAll(db, "select ntid, ord, name, config from fields order by ntid, ord");
  return groupBy(rows, (r) => ({ ord: small(r.ord), name: text(r.name), config: blob(r.config) }));
}

/** Templates per notetype id, each list in `ord` order. */
export function readTemplates(db: Db): Map<bigint, TemplateRow[]> {
  const rows = selectAll(db, "select ntid, ord, name, config from templates order by ntid, ord");
  return groupBy(rows, (r) => ({ ord: small(r.ord), name: text(r.name), config: blob(r.config) }));
}

function groupBy<T>(rows: Raw[], convert: (row: Raw) => T): Map<bigint, T[]> {
  const groups = new Map<bigint, T[]>();
  for (const row of rows) {
    const key = int(row.ntid);
    const group = groups.get(key) ?? [];
    group.push(convert(row));
    groups.set(key, group);
  }
  return groups;
}

export function readDecks(db: Db): DeckRow[] {
  return selectAll(db, "select id, name, mtime_secs, usn, common, kind from decks order by id").map(
    (r) => ({
      id: int(r.id),
      name: text(r.name),
      mtimeSecs: int(r.mtime_secs),
      usn: int(r.usn),
      common: blob(r.common),
      kind: blob(r.kind),
    }),
  );
}

export function readDeckConfigs(db: Db): DeckConfigRow[] {
  const sql = "select id, name, mtime_secs, usn, config from deck_config order by id";
  return selectAll(db, sql).map((r) => ({
    id: int(r.id),
    name: text(r.name),
    mtimeSecs: int(r.mtime_secs),
    usn: int(r.usn),
    config: blob(r.config),
  }));
}

export function readConfig(db: Db): ConfigRow[] {
  return selectAll(db, "select KEY as key, val from config").map((r) => ({
    key: text(r.key),
    val: blob(r.val),
  }));
}

export function readTags(db: Db): TagRow[] {
  return selectAll(db, "select tag, usn from tags").map((r) => ({
    tag: text(r.tag),
    usn: int(r.usn),
  }));
}
