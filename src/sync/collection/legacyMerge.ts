/**
 * Merge rules for the legacy objects of `applyChanges` (docs/protocol.md#apply-changes), applied to
 * the in-memory `col` maps:
 * - note types, decks, deck options: the incoming object wins when absent here or when ours is not
 *   newer (`ours.mod <= theirs.mod`, so ties go to the client); no usn check;
 * - a note type whose field or template count changed cannot be merged (full sync needed);
 * - tags are only ever added, stamped with the session usn.
 */
import { isLegacyObject, type LegacyObject, putKey } from "../../legacyJson.ts";
import { intKey, keyOfId, mapValues, objectMtime } from "../../storage/collection/legacyObjects.ts";
import {
  normalizeDeckName,
  normalizeTagName,
  parentTagName,
} from "../../storage/collection/names.ts";
import { findUnicase } from "../../storage/collection/unicase.ts";

/** Anki's pending rule, for objects as for rows. */
export function isPending(usn: number, threshold: number): boolean {
  return threshold === -1 ? usn === -1 : usn >= threshold;
}

/** A merge that cannot proceed; the whole session is rolled back. */
export class MergeError extends Error {}

export function mergeNotetypes(
  models: LegacyObject,
  incoming: LegacyObject[],
  usn: number,
  now: number,
): void {
  for (const nt of incoming) {
    const existing = existingById(models, nt);
    if (existing && objectMtime(existing.object) > objectMtime(nt)) continue;
    if (existing && !sameShape(existing.object, nt)) {
      throw new MergeError(`notetype ${String(nt.id)} schema changed`);
    }
    ensureUniqueName(models, nt, nt.name as string, usn, now);
    store(models, nt, existing?.key);
  }
}

export function mergeDecks(
  decks: LegacyObject,
  incoming: LegacyObject[],
  usn: number,
  now: number,
): void {
  for (const deck of incoming) {
    if (idOf(deck) === 0n) throw new MergeError("deck with id 0");
    const existing = existingById(decks, deck);
    if (existing && objectMtime(existing.object) > objectMtime(deck)) continue;
    // Anki stores names normalised and sends them back that way.
    ensureUniqueName(decks, deck, normalizeDeckName(deck.name as string), usn, now);
    store(decks, deck, existing?.key);
  }
}

export function mergeDeckConfigs(dconf: LegacyObject, incoming: LegacyObject[]): void {
  for (const conf of incoming) {
    if (idOf(conf) === 0n) throw new MergeError("deck config with id 0");
    const existing = existingById(dconf, conf);
    if (existing && objectMtime(existing.object) > objectMtime(conf)) continue;
    store(dconf, conf, existing?.key);
  }
}

/** Registers new tag names; true if any was added. Existing names keep their usn. */
export function mergeTags(tags: LegacyObject, incoming: string[], usn: number): boolean {
  let added = false;
  for (const raw of incoming) {
    const name = normalizeTagName(raw);
    const names = Object.keys(tags);
    if (findUnicase(names, name) !== -1) continue;
    putKey(tags, withParentCase(names, name), usn);
    added = true;
  }
  return added;
}

/** A new child of an existing parent takes the parent's spelling (`Lang::x` under `Lang`). */
function withParentCase(names: string[], name: string): string {
  for (let parent = parentTagName(name); parent !== undefined; parent = parentTagName(parent)) {
    const found = findUnicase(names, parent);
    if (found === -1) continue;
    const spelled = names[found] as string;
    const rest = name.split("::").slice(spelled.split("::").length);
    return `${spelled}::${rest.join("::")}`;
  }
  return name;
}

function idOf(object: LegacyObject): bigint {
  return intKey(object, "id") ?? 0n;
}

function existingById(map: LegacyObject, object: LegacyObject) {
  const key = keyOfId(map, idOf(object));
  const found = key === undefined ? undefined : map[key];
  return key !== undefined && isLegacyObject(found) ? { key, object: found } : undefined;
}

function sameShape(a: LegacyObject, b: LegacyObject): boolean {
  const count = (o: LegacyObject, key: string) =>
    Array.isArray(o[key]) ? (o[key] as unknown[]).length : 0;
  return count(a, "flds") === count(b, "flds") && count(a, "tmpls") === count(b, "tmpls");
}

/**
 * While another object (other id) has the same name under unicase, append `+`; a renamed
 * object counts as modified now in this session.
 */
function ensureUniqueName(
  map: LegacyObject,
  object: LegacyObject,
  name: string,
  usn: number,
  now: number,
): void {
  const id = idOf(object);
  const others = mapValues(map)
    .filter((other) => idOf(other) !== id)
    .map((other) => String(other.name));
  let unique = name;
  while (findUnicase(others, unique) !== -1) {
    unique += "+";
    object.mod = now;
    object.usn = usn;
  }
  object.name = unique;
}

/** Stored under its own id; a stale key that disagreed with the inner id is dropped. */
function store(map: LegacyObject, object: LegacyObject, oldKey: string | undefined): void {
  const key = String(idOf(object));
  if (oldKey !== undefined && oldKey !== key) delete map[oldKey];
  putKey(map, key, object);
}
