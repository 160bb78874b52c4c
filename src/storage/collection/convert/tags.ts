/**
 * The `tags` table -> the legacy `col.tags` object `{tag: usn}` (Anki:
 * rslib/src/storage/tag/mod.rs).
 */
import { jsonInt, type LegacyObject, putKey } from "../../../legacyJson.ts";
import type { TagRow } from "./rows.ts";

/** The sidebar `collapsed` flag has no legacy place and is dropped. */
export function tagsToLegacy(rows: readonly TagRow[]): LegacyObject {
  const tags: LegacyObject = {};
  for (const row of rows) putKey(tags, row.tag, jsonInt(row.usn));
  return tags;
}
