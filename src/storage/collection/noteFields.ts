/**
 * The note columns a receiver recomputes (collection-format §6.1): field clean-up, the sort
 * field and the first-field checksum, both taken from text with HTML stripped but media file
 * names kept. Matching Anki exactly matters: clients use `csum` to find duplicates.
 */
import { createHash } from "node:crypto";
import { stripHtmlPreservingMediaFilenames } from "./htmlStrip.ts";

export { decodeHtmlStrict, stripHtmlPreservingMediaFilenames } from "./htmlStrip.ts";

export const FIELD_SEPARATOR = "\x1f";

/** ASCII control characters other than tab and newline never survive in a field. */
// biome-ignore lint/suspicious/noControlCharactersInRegex: removing control characters is the point
const INVALID_FIELD_CHARS = /[\x00-\x08\x0b-\x1f\x7f]/g;

export function normalizeField(field: string): string {
  return field.replace(INVALID_FIELD_CHARS, "");
}

/** The same characters but the field separator, to test a note's whole field text at once. */
// biome-ignore lint/suspicious/noControlCharactersInRegex: removing control characters is the point
const INVALID_BETWEEN_FIELDS = /[\x00-\x08\x0b-\x1e\x7f]/;

/** A note's fields, each cleaned (`normalizeField`); most need no cleaning, seen in one test. */
export function noteFields(flds: string): string[] {
  const fields = flds.split(FIELD_SEPARATOR);
  return INVALID_BETWEEN_FIELDS.test(flds) ? fields.map(normalizeField) : fields;
}

export interface NoteCaches {
  /** Stored into an INTEGER-affinity column, so numeric text becomes a number there. */
  sfld: string;
  csum: number;
}

/** `sortIdx` out of range gives an empty sort field, as in Anki. */
export function noteCaches(fields: readonly string[], sortIdx: number): NoteCaches {
  const first = stripHtmlPreservingMediaFilenames(fields[0] ?? "");
  const sfld = sortIdx === 0 ? first : stripHtmlPreservingMediaFilenames(fields[sortIdx] ?? "");
  return { sfld, csum: fieldChecksum(first) };
}

/** First four bytes of the SHA-1 of the UTF-8 text, big-endian. */
export function fieldChecksum(stripped: string): number {
  return createHash("sha1").update(stripped, "utf8").digest().readUInt32BE(0);
}
