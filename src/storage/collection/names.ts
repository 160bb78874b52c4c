/**
 * Normalisation of tag and deck names as Anki applies it to names it receives
 * (collection-format §4.2.6 and §4.4), and the space-separated tag list of a note (§6.1).
 */

// biome-ignore lint/suspicious/noControlCharactersInRegex: removing control characters is the point
const ASCII_CONTROL = /[\x00-\x1f\x7f]/g;
// biome-ignore lint/suspicious/noControlCharactersInRegex: removing control characters is the point
const TAG_INVALID = /[\x00-\x1f\x7f \u3000]/g;
/** Unicode White_Space, which is what Anki trims (JS `trim` would also drop U+FEFF). */
const EDGE_SPACE = /^\p{White_Space}+|\p{White_Space}+$/gu;
const EDGE_SPACE_OR_COLON = /^[\p{White_Space}:]+|[\p{White_Space}:]+$/gu;
const NOTE_TAG_SEPARATOR = /[ \u3000]/;

/** Each `::` component: NFC, no control characters or separators, trimmed, `blank` if empty. */
export function normalizeTagName(name: string): string {
  return name
    .split("::")
    .map((part) => nonEmpty(part.normalize("NFC").replace(TAG_INVALID, "").replace(EDGE_SPACE, "")))
    .join("::");
}

/** Like tags, but a deck component keeps inner spaces and is also trimmed of `:`. */
export function normalizeDeckName(name: string): string {
  return name
    .split("::")
    .map((part) =>
      nonEmpty(part.normalize("NFC").replace(ASCII_CONTROL, "").replace(EDGE_SPACE_OR_COLON, "")),
    )
    .join("::");
}

function nonEmpty(component: string): string {
  return component === "" ? "blank" : component;
}

/** The parent of `a::b::c` is `a::b`; a top-level name has none. */
export function parentTagName(name: string): string | undefined {
  const cut = name.lastIndexOf("::");
  return cut === -1 ? undefined : name.slice(0, cut);
}

/** A note's tag column: `""`, or the tags between single spaces with one on each side. */
export function normalizeNoteTags(tags: string): string {
  const list = tags.split(NOTE_TAG_SEPARATOR).filter((tag) => tag !== "");
  return list.length === 0 ? "" : ` ${list.join(" ")} `;
}
