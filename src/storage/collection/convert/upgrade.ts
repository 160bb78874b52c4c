/**
 * In-place conversion of a schema 11 collection to schema 18, as a client's own upgrade on
 * opening leaves it (Anki: `upgrade_to_latest_schema`, rslib/src/storage/upgrades/mod.rs),
 * for the copy a current client downloads. That client would otherwise upgrade the file
 * itself, and its upgrade ends with a full `ANALYZE` (~0.2 s for 100 MB on top of the
 * conversion); Anki's own server sends these clients schema 18.
 *
 * Only cases the client's upgrade handles deterministically are converted; anything else
 * (renames, random ids, card ease fixes, serde leniencies) throws `NotUpgradableError` and
 * leaves the file untouched, for the client to upgrade as before. The file needs the unicase
 * collation (name conflicts surface as constraint errors, as they would for Anki).
 */
import {
  isLegacyObject,
  type LegacyObject,
  parseLegacyJson,
  stringifyLegacyJson,
} from "../../../legacyJson.ts";
import type { Db } from "../../../platform/sqlite.ts";
import { deckConfigFromLegacy } from "./deckConfigUpgrade.ts";
import { deckFromLegacy } from "./deckUpgrade.ts";
import { schemaVersion } from "./downgrade.ts";
import { NotUpgradableError, UnsupportedSchemaVersionError } from "./errors.ts";
import { I32, toInt } from "./legacyRead.ts";
import { type NativeNotetype, notetypeFromLegacy } from "./notetypeUpgrade.ts";
import {
  decodeDeckCommon,
  decodeDeckConfigFields,
  decodeFieldConfigFields,
  decodeNotetypeConfigFields,
  decodeTemplateConfigFields,
} from "./proto.ts";
import type { ConfigRow, DeckConfigRow, DeckRow, TagRow } from "./rows.ts";
import { serdeCanonical } from "./serdeNumbers.ts";

const LEGACY_VERSION = 11;
const NATIVE_VERSION = 18;
const utf8 = new TextEncoder();

interface NativeObjects {
  notetypes: NativeNotetype[];
  decks: DeckRow[];
  deckConfigs: DeckConfigRow[];
  config: ConfigRow[];
  tags: TagRow[];
}

export interface UpgradeOptions {
  /**
   * "refuse": fail (NotUpgradableError) if any legacy object has a key without a native field
   * here, for a client whose layout may have one (it would upgrade that key into its field).
   */
  unknownKeys: "keep" | "refuse";
}

/**
 * Upgrades an open schema 11 collection in one exclusive transaction; on any error nothing
 * has changed (given a journal). Schema 18 is left alone; anything else is refused.
 */
export function upgradeToSchema18(db: Db, options: UpgradeOptions = { unknownKeys: "keep" }): void {
  const version = schemaVersion(db);
  if (version === NATIVE_VERSION) return;
  if (version !== LEGACY_VERSION) throw new UnsupportedSchemaVersionError(version);
  db.transaction(() => {
    const objects = nativeObjects(db);
    if (options.unknownKeys === "refuse" && hasOtherKeys(objects)) {
      throw new NotUpgradableError("a legacy object has keys this layout keeps in `other`");
    }
    createNativeSchema(db);
    insertObjects(db, objects);
    relayoutGraves(db);
    db.exec(
      `update col set ver = ${NATIVE_VERSION}, conf = '', models = '', decks = '', dconf = '', tags = ''`,
    );
    analyzeNewObjects(db);
  }).exclusive();
}

function nativeObjects(db: Db): NativeObjects {
  const col = db.prepare("select conf, models, decks, dconf, tags from col").get() as Record<
    string,
    unknown
  > | null;
  if (col === null) throw new Error("collection has no col row");
  return {
    notetypes: byId(col, "models").map(([id, value]) => notetypeFromLegacy(id, value)),
    decks: byId(col, "decks").map(([id, value]) => deckFromLegacy(id, value)),
    deckConfigs: byId(col, "dconf").map(([id, value]) => deckConfigFromLegacy(id, value)),
    config: Object.entries(column(col, "conf")).map(([key, value]) => ({
      key,
      val: utf8.encode(stringifyLegacyJson(serdeCanonical(value))),
    })),
    tags: Object.entries(column(col, "tags")).map(([tag, usn]) => ({
      tag,
      usn: toInt(usn, I32, () => new NotUpgradableError(`tag ${tag}: usn is odd`)),
    })),
  };
}

function hasOtherKeys(objects: NativeObjects): boolean {
  const blobs = [
    ...objects.notetypes.flatMap((nt) => [
      decodeNotetypeConfigFields(nt.row.config).value.other,
      ...nt.fields.map((f) => decodeFieldConfigFields(f.config).value.other),
      ...nt.templates.map((t) => decodeTemplateConfigFields(t.config).value.other),
    ]),
    ...objects.decks.map((d) => decodeDeckCommon(d.common).other),
    ...objects.deckConfigs.map((c) => decodeDeckConfigFields(c.config).value.other),
  ];
  return blobs.some((other) => other.length > 0);
}

function column(col: Record<string, unknown>, name: string): LegacyObject {
  const text = col[name];
  if (typeof text !== "string") throw new NotUpgradableError(`col.${name} is not text`);
  const value = parseLegacyJson(text);
  if (!isLegacyObject(value)) throw new NotUpgradableError(`col.${name} is not an object`);
  return value;
}

/** Legacy maps are keyed by decimal ids. */
function byId(col: Record<string, unknown>, name: string) {
  return Object.entries(column(col, name)).map(([key, value]) => {
    if (!/^-?[0-9]+$/.test(key) || BigInt(key).toString() !== key) {
      throw new NotUpgradableError(`col.${name} has a key that is not an id: ${key}`);
    }
    return [BigInt(key), value] as const;
  });
}

/** Schema 18's object tables and indexes, as Anki's upgrade steps 14-18 create them. */
const NATIVE_SCHEMA = `
create table deck_config (
  id integer primary key not null,
  name text not null collate unicase,
  mtime_secs integer not null,
  usn integer not null,
  config blob not null
);
create table config (
  KEY text not null primary key,
  usn integer not null,
  mtime_secs integer not null,
  val blob not null
) without rowid;
create table fields (
  ntid integer not null,
  ord integer not null,
  name text not null collate unicase,
  config blob not null,
  primary key (ntid, ord)
) without rowid;
create unique index idx_fields_name_ntid on fields (name, ntid);
create table templates (
  ntid integer not null,
  ord integer not null,
  name text not null collate unicase,
  mtime_secs integer not null,
  usn integer not null,
  config blob not null,
  primary key (ntid, ord)
) without rowid;
create unique index idx_templates_name_ntid on templates (name, ntid);
create index idx_templates_usn on templates (usn);
create table notetypes (
  id integer not null primary key,
  name text not null collate unicase,
  mtime_secs integer not null,
  usn integer not null,
  config blob not null
);
create unique index idx_notetypes_name on notetypes (name);
create index idx_notetypes_usn on notetypes (usn);
create table decks (
  id integer primary key not null,
  name text not null collate unicase,
  mtime_secs integer not null,
  usn integer not null,
  common blob not null,
  kind blob not null
);
create unique index idx_decks_name on decks (name);
create index idx_notes_mid on notes (mid);
create index idx_cards_odid on cards (odid) where odid != 0;
create table tags (
  tag text not null primary key collate unicase,
  usn integer not null,
  collapsed boolean not null,
  config blob null
) without rowid;
`;

function createNativeSchema(db: Db): void {
  db.exec(NATIVE_SCHEMA);
}

/** Plain inserts: a name that clashes (unicase) fails the upgrade, where Anki would rename. */
function insertObjects(db: Db, objects: NativeObjects): void {
  const notetype = db.prepare(
    "insert into notetypes (id, name, mtime_secs, usn, config) values (?, ?, ?, ?, ?)",
  );
  const field = db.prepare("insert into fields (ntid, ord, name, config) values (?, ?, ?, ?)");
  const template = db.prepare(
    "insert into templates (ntid, ord, name, mtime_secs, usn, config) values (?, ?, ?, 0, 0, ?)",
  );
  for (const nt of objects.notetypes) {
    const { id, name, mtimeSecs, usn, config } = nt.row;
    notetype.run(id, name, mtimeSecs, usn, config);
    for (const f of nt.fields) field.run(id, f.ord, f.name, f.config);
    for (const t of nt.templates) template.run(id, t.ord, t.name, t.config);
  }
  const deck = db.prepare(
    "insert into decks (id, name, mtime_secs, usn, common, kind) values (?, ?, ?, ?, ?, ?)",
  );
  for (const d of objects.decks) deck.run(d.id, d.name, d.mtimeSecs, d.usn, d.common, d.kind);
  const deckConfig = db.prepare(
    "insert into deck_config (id, name, mtime_secs, usn, config) values (?, ?, ?, ?, ?)",
  );
  for (const c of objects.deckConfigs) deckConfig.run(c.id, c.name, c.mtimeSecs, c.usn, c.config);
  // Anki's upgrade stores every config entry with usn 0 and mtime 0.
  const config = db.prepare("insert into config (KEY, usn, mtime_secs, val) values (?, 0, 0, ?)");
  for (const c of objects.config) config.run(c.key, c.val);
  // Upgraded tags start collapsed, with no config.
  const tag = db.prepare("insert into tags (tag, usn, collapsed, config) values (?, ?, 1, null)");
  for (const t of objects.tags) tag.run(t.tag, t.usn);
}

/** Schema 18 graves: keyed by (oid, type), duplicates dropped, with an index on usn. */
function relayoutGraves(db: Db): void {
  db.exec("alter table graves rename to graves_old");
  db.exec(
    "create table graves (oid integer not null, type integer not null, usn integer not null, primary key (oid, type)) without rowid",
  );
  db.exec("insert or ignore into graves (oid, type, usn) select oid, type, usn from graves_old");
  db.exec("drop table graves_old");
  db.exec("create index idx_graves_pending on graves (usn)");
}

/**
 * Anki's upgrade analyzes the whole file; the tables it had are analyzed already (the file
 * was last written by a client), so only what is new here gets statistics: small tables and
 * two indexes, not the notes and cards themselves.
 */
function analyzeNewObjects(db: Db): void {
  for (const name of [
    "deck_config",
    "config",
    "fields",
    "templates",
    "notetypes",
    "decks",
    "tags",
    "graves",
    "idx_notes_mid",
    "idx_cards_odid",
  ]) {
    db.exec(`analyze ${name}`);
  }
}
