/**
 * Name equality under Anki's `unicase` comparison (full Unicode case folding, so `ß` equals
 * `ss`). Schema 11 keeps names in JSON, not in columns with the collation, so lookups ask a
 * private in-memory database that has the same `unicase` extension loaded: one implementation
 * of the folding rules for both schemas.
 */
import { type Db, openDatabase } from "../../platform/sqlite.ts";

let probe: Db | undefined;
let findStatement: ReturnType<Db["query"]> | undefined;

// Pure ASCII never folds to anything but its lowercase, and only non-ASCII text folds to ASCII.
const NON_ASCII = /[^\p{ASCII}]/u;

/** Index in `names` of the first name equal to `name` under unicase, or -1. */
export function findUnicase(names: readonly string[], name: string): number {
  // Non-ASCII text may fold to ASCII (`ſ` is `s`, `ß` is `ss`): only the collation can tell.
  if (NON_ASCII.test(name)) return queryFirst([...names], name);
  const lower = name.toLowerCase();
  const slow: number[] = [];
  for (let i = 0; i < names.length; i++) {
    const candidate = names[i] as string;
    if (NON_ASCII.test(candidate)) slow.push(i);
    else if (candidate.toLowerCase() === lower) return firstOf(slow, names, name, i);
  }
  return firstOf(slow, names, name, -1);
}

/** The earliest of the non-ASCII candidates that match and the ASCII match `found`. */
function firstOf(slow: number[], names: readonly string[], name: string, found: number): number {
  const before = found === -1 ? slow : slow.filter((i) => i < found);
  if (before.length === 0) return found;
  const hit = queryFirst(
    before.map((i) => names[i] as string),
    name,
  );
  return hit === -1 ? found : (before[hit] as number);
}

function queryFirst(candidates: string[], name: string): number {
  if (!probe) {
    probe = openDatabase(":memory:", { unicase: true });
    findStatement = probe.query(
      "select cast(key as integer) as i from json_each(?1) where value = ?2 collate unicase order by i limit 1",
    );
  }
  const row = findStatement?.get(JSON.stringify(candidates), name) as { i: number } | null;
  return row ? row.i : -1;
}
