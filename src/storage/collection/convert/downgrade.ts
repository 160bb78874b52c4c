/**
 * In-place conversion of a schema 18 collection to schema 11 (as Anki's `downgrade_to_schema_11`,
 * rslib/src/storage/upgrades/mod.rs): the object tables fold back into JSON columns of `col`, so
 * the file at rest has no custom collation and no protobuf. The caller switches journal_mode to
 * delete and closes.
 */

import { type LegacyObject, putKey, stringifyLegacyJson } from "../../../legacyJson.ts";
import type { Db } from "../../../platform/sqlite.ts";
import { configToLegacy } from "./configEntries.ts";
import { deckToLegacy } from "./deck.ts";
import { deckConfigToLegacy } from "./deckConfig.ts";
import { UnsupportedSchemaVersionError } from "./errors.ts";
import {
  readConfig,
  readDeckConfigs,
  readDecks,
  readFields,
  readNotetypes,
  readTags,
  readTemplates,
} from "./nativeRows.ts";
import { notetypeToLegacy } from "./notetype.ts";
import { tagsToLegacy } from "./tags.ts";

const LEGACY_VERSION = 11;
const NATIVE_VERSION = 18;

/** The `col` JSON columns of a schema 11 file, as text. */
export interface LegacyColumns {
  conf: string;
  models: string;
  decks: string;
  dconf: string;
  tags: string;
}

/**
 * Downgrades an open schema 18 collection in one exclusive transaction; nothing changes
 * if any object fails to convert. Version 11 is left alone; anything else is refused.
 */
export function downgradeToSchema11(db: Db): void {
  // Checked before locking, so a schema 11 file opened read-only passes untouched.
  const version = schemaVersion(db);
  if (version === LEGACY_VERSION) return;
  if (version !== NATIVE_VERSION) throw new UnsupportedSchemaVersionError(version);
  db.transaction(() => {
    relayoutGraves(db);
    writeLegacyColumns(db, legacyColumns(db));
    dropNativeSchema(db);
  }).exclusive();
}

export function schemaVersion(db: Db): number {
  const row = db.prepare("select ver from col").get() as { ver: number } | null;
  if (row === null) throw new Error("collection has no col row");
  return row.ver;
}

/** Reads every native object table and renders the five legacy JSON columns. */
export function legacyColumns(db: Db): LegacyColumns {
  return {
    dconf: stringifyLegacyJson(keyedById(readDeckConfigs(db).map(deckConfigToLegacy))),
    decks: stringifyLegacyJson(keyedById(readDecks(db).map(deckToLegacy))),
    models: stringifyLegacyJson(keyedById(legacyNotetypes(db))),
    conf: stringifyLegacyJson(configToLegacy(readConfig(db))),
    tags: stringifyLegacyJson(tagsToLegacy(readTags(db))),
  };
}

function legacyNotetypes(db: Db): LegacyObject[] {
  const fields = readFields(db);
  const templates = readTemplates(db);
  return readNotetypes(db).map((row) =>
    notetypeToLegacy(row, fields.get(row.id) ?? [], templates.get(row.id) ?? []),
  );
}

/** Legacy maps are keyed by the decimal id of each object. */
function keyedById(objects: readonly LegacyObject[]): LegacyObject {
  const map: LegacyObject = {};
  for (const object of objects) putKey(map, String(object.id), object);
  return map;
}

/** Schema 11 graves: (usn, oid, type) with no primary key; the index goes with the table. */
function relayoutGraves(db: Db): void {
  db.exec("alter table graves rename to graves_old");
  db.exec(
    "create table graves (usn integer not null, oid integer not null, type integer not null)",
  );
  db.exec("insert into graves (usn, oid, type) select usn, oid, type from graves_old");
  db.exec("drop table graves_old");
}

function writeLegacyColumns(db: Db, columns: LegacyColumns): void {
  db.prepare(
    "update col set conf = $conf, models = $models, decks = $decks, dconf = $dconf, tags = $tags",
  ).run({ ...columns });
}

/** Drops the schema 14+ tables (their indexes go with them) and the two extra indexes. */
function dropNativeSchema(db: Db): void {
  for (const table of [
    "config",
    "deck_config",
    "tags",
    "fields",
    "templates",
    "notetypes",
    "decks",
  ]) {
    db.exec(`drop table ${table}`);
  }
  db.exec("drop index idx_cards_odid");
  db.exec("drop index idx_notes_mid");
  db.exec(`update col set ver = ${LEGACY_VERSION}`);
}
