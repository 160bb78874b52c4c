/**
 * `applyChanges`: note types, decks, deck options, tags and (from the newer side only) config
 * and `crt` travel in one request. The server's own changes are serialised before the
 * client's are applied, so nothing received is echoed back.
 */

import {
  isLegacyObject,
  type LegacyJson,
  type LegacyObject,
  stringifyLegacyJson,
} from "../../legacyJson.ts";
import type { Db } from "../../platform/sqlite.ts";
import { readCol } from "../../storage/collection/collectionFile.ts";
import {
  type LegacyColumn,
  legacyInt,
  mapValues,
  objectUsn,
  readLegacyColumn,
  viewLegacyColumn,
  viewLegacyColumns,
  writeLegacyColumn,
} from "../../storage/collection/legacyObjects.ts";
import { badRequest } from "../errors.ts";
import {
  isPending,
  mergeDeckConfigs,
  mergeDecks,
  mergeNotetypes,
  mergeTags,
} from "./legacyMerge.ts";
import { checkDeck, checkDeckConfig, checkNotetype } from "./legacyShapes.ts";
import type { SyncSession } from "./session.ts";
import { expectArray, expectInt, expectObject, expectString, type Int } from "./wire.ts";

export interface UnchunkedChanges {
  models: LegacyObject[];
  decks: LegacyObject[];
  dconf: LegacyObject[];
  tags: string[];
  /** Only from the side whose collection is newer. */
  conf: LegacyObject | null;
  crt: Int | null;
}

export function parseApplyChangesRequest(body: LegacyJson): UnchunkedChanges {
  const changes = expectObject(expectObject(body, "request").changes, "changes");
  const [decks, dconf] = decksAndConfig(changes.decks);
  return {
    models: objectList(changes.models, "models").map(checkNotetype),
    decks: decks.map(checkDeck),
    dconf: dconf.map(checkDeckConfig),
    tags: expectArray(changes.tags, "tags").map((tag) => expectString(tag, "tag")),
    conf: absentOrNull(changes.conf) ? null : expectObject(changes.conf, "conf"),
    crt: absentOrNull(changes.crt) ? null : expectInt(changes.crt, "i64", "crt"),
  };
}

/** Optional keys Anki reads as `Option`: missing and `null` both mean "not sent". */
function absentOrNull(value: LegacyJson | undefined): value is undefined | null {
  return value === undefined || value === null;
}

/** `[decks, deckConfigs]`, or the object form `{decks, config}`. */
function decksAndConfig(value: LegacyJson | undefined): [LegacyObject[], LegacyObject[]] {
  if (isLegacyObject(value)) {
    return [objectList(value.decks, "decks.decks"), objectList(value.config, "decks.config")];
  }
  const pair = expectArray(value, "decks");
  if (pair.length !== 2) throw badRequest("decks must be a pair [decks, deck configs]");
  return [objectList(pair[0], "decks[0]"), objectList(pair[1], "decks[1]")];
}

function objectList(value: LegacyJson | undefined, what: string): LegacyObject[] {
  return expectArray(value, what).map((item) => expectObject(item, `${what}[]`));
}

export function applyChanges(
  db: Db,
  session: SyncSession,
  incoming: UnchunkedChanges,
  now = Date.now(),
): string {
  const maps = readMaps(db);
  const reply = outgoingChanges(db, session, maps);
  mergeObjects(db, session, incoming, Math.floor(now / 1000));
  if (incoming.crt !== null) {
    db.query("update col set crt = $crt where id = 1").run({ crt: incoming.crt });
  }
  // Config is not merged: the newer side's whole set replaces the other's.
  if (incoming.conf !== null) writeLegacyColumn(db, "conf", incoming.conf);
  return reply;
}

/**
 * Merges each kind in Anki's order and writes back only the maps that were touched; each is
 * read afresh for that (the views the reply was made from are shared, and stay unchanged).
 */
function mergeObjects(
  db: Db,
  session: SyncSession,
  incoming: UnchunkedChanges,
  nowSecs: number,
): void {
  const usn = session.serverUsn;
  if (incoming.models.length > 0) {
    const models = readLegacyColumn(db, "models");
    mergeNotetypes(models, incoming.models, usn, nowSecs);
    writeLegacyColumn(db, "models", models);
    session.notetypes = undefined;
  }
  if (incoming.decks.length > 0) {
    const decks = readLegacyColumn(db, "decks");
    mergeDecks(decks, incoming.decks, usn, nowSecs);
    writeLegacyColumn(db, "decks", decks);
  }
  if (incoming.dconf.length > 0) {
    const dconf = readLegacyColumn(db, "dconf");
    mergeDeckConfigs(dconf, incoming.dconf);
    writeLegacyColumn(db, "dconf", dconf);
  }
  if (incoming.tags.length > 0) {
    const tags = readLegacyColumn(db, "tags");
    if (mergeTags(tags, incoming.tags, usn)) writeLegacyColumn(db, "tags", tags);
  }
}

type Maps = Record<Exclude<LegacyColumn, "conf">, LegacyObject>;

/** Read-only views: a kind that has incoming changes is read again, for writing, when merged. */
function readMaps(db: Db): Maps {
  return viewLegacyColumns(db, ["models", "decks", "dconf", "tags"]);
}

/** What changed on the server since the client's last sync, as response text. */
function outgoingChanges(db: Db, session: SyncSession, maps: Maps): string {
  const pending = (objects: LegacyObject[]) =>
    objects.filter((object) => isPending(objectUsn(object), session.clientUsn));
  const reply: LegacyObject = {
    models: pending(mapValues(maps.models)),
    decks: [pending(mapValues(maps.decks)), pending(mapValues(maps.dconf))],
    tags: Object.entries(maps.tags)
      .filter(([, usn]) => isPending(Number(legacyInt(usn) ?? 0n), session.clientUsn))
      .map(([name]) => name),
  };
  if (!session.clientIsNewer) {
    reply.conf = viewLegacyColumn(db, "conf");
    reply.crt = readCol(db).crt;
  }
  return stringifyLegacyJson(reply);
}
