/** The `config` table -> the legacy `col.conf` object (Anki: rslib/src/storage/config/mod.rs). */

import { type LegacyObject, parseLegacyJson, putKey } from "../../../legacyJson.ts";
import { InvalidConfigValueError } from "./errors.ts";
import type { ConfigRow } from "./rows.ts";
import { serdeCanonical } from "./serdeNumbers.ts";

const utf8 = new TextDecoder("utf-8", { fatal: true });

/**
 * Every value must parse: Anki aborts the whole downgrade on a single bad one. Values are
 * re-spelled as Anki re-prints them (it reads them into generic JSON values first).
 */
export function configToLegacy(rows: readonly ConfigRow[]): LegacyObject {
  const conf: LegacyObject = {};
  for (const row of rows) putKey(conf, row.key, parseValue(row));
  return conf;
}

function parseValue(row: ConfigRow) {
  try {
    return serdeCanonical(parseLegacyJson(utf8.decode(row.val)));
  } catch (error) {
    throw new InvalidConfigValueError(row.key, error);
  }
}
