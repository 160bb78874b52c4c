/**
 * Anki's "strip HTML, keep media file names" (collection-format §6.1), which `sfld` and
 * `csum` are computed from:
 * 1. each media tag (`<img|audio|video|object|source …` with a `src=`/`data=` attribute)
 *    becomes ` name `;
 * 2. comments, `<style>`/`<script>` blocks and any other tag are removed, each matched as
 *    short as possible, leftmost first;
 * 3. entities are decoded if the whole text decodes (strict HTML 4 decoder), nbsp → space.
 *
 * Anki does 1 and 2 with a linear-time regex engine. The same patterns in a backtracking
 * engine take quadratic or exponential time on hostile text, so both passes are scanners
 * here that try the same alternatives in the same order, over precomputed "next occurrence"
 * tables, and stay linear.
 */
import { HTML4_ENTITIES } from "./htmlEntities.ts";

export function stripHtmlPreservingMediaFilenames(html: string): string {
  let text = html;
  if (text.includes("<")) {
    const media = new MediaScanner(text);
    text = replaceTags(text, (lt) => media.matchAt(lt));
    const markup = new MarkupScanner(text);
    text = replaceTags(text, (lt) => markup.matchAt(lt));
  }
  return text.includes("&") ? decodeEntities(text) : text;
}

interface Replacement {
  end: number;
  text: string;
}

/** Replaces leftmost-first, non-overlapping matches that each start at a `<`. */
function replaceTags(text: string, matchAt: (lt: number) => Replacement | null): string {
  let out = "";
  let copied = 0;
  for (let lt = text.indexOf("<"); lt !== -1; ) {
    const match = matchAt(lt);
    if (match) {
      out += text.slice(copied, lt) + match.text;
      copied = match.end;
    }
    lt = text.indexOf("<", match ? match.end : lt + 1);
  }
  return copied === 0 ? text : out + text.slice(copied);
}

/** Entity decoding is all-or-nothing: one bad entity (or a bare `&`) keeps the text as is. */
export function decodeEntities(text: string): string {
  const decoded = decodeHtmlStrict(text);
  return decoded === null ? text : decoded.replaceAll("\u00a0", " ");
}

/** For each index, the next index at or after it whose code unit matches; -1 if none. */
class NextTable {
  private readonly next: Int32Array;

  constructor(text: string, matches: (code: number) => boolean) {
    this.next = new Int32Array(text.length + 1);
    this.next[text.length] = -1;
    for (let i = text.length - 1; i >= 0; i--) {
      this.next[i] = matches(text.charCodeAt(i)) ? i : (this.next[i + 1] as number);
    }
  }

  from(index: number): number {
    return index < this.next.length ? (this.next[index] as number) : -1;
  }
}

const GT = 0x3e;
const SPACE = 0x20;
const QUOTE = 0x22;
const APOS = 0x27;

// ---- pass 1: media tags -------------------------------------------------------------

// Anki's regex engine treats these as word characters (Unicode `\w`), so `\b` is built from them.
const WORD = String.raw`[\p{Alphabetic}\p{M}\p{Nd}\p{Pc}\p{Join_Control}]`;
const WORD_CHAR = new RegExp(WORD, "u");
// With `i` and `u`, JS folds case like Anki's engine (`ſ` matches `s`).
const MEDIA_TAG_NAME = new RegExp(`(?:img|audio|video|object|source)(?!${WORD})`, "iuy");
const MEDIA_ATTRIBUTE = /(?:src|data)=/iuy;

/** A media tag becomes its file name between spaces. */
type MediaMatch = Replacement;

class MediaScanner {
  private readonly gt: NextTable;
  private readonly quote: NextTable;
  private readonly apos: NextTable;
  private readonly spaceOrGt: NextTable;
  /** Positions from which the rest of a tag is known not to match (whatever tag began it). */
  private readonly failed: Uint8Array;

  constructor(private readonly text: string) {
    this.gt = new NextTable(text, (c) => c === GT);
    this.quote = new NextTable(text, (c) => c === QUOTE);
    this.apos = new NextTable(text, (c) => c === APOS);
    this.spaceOrGt = new NextTable(text, (c) => c === SPACE || c === GT);
    this.failed = new Uint8Array(text.length + 1);
  }

  /**
   * A media tag starting at `lt`. After the name, the pattern repeats (lazily, at least
   * once) "one character other than `>`" or "a non-empty quoted run", then wants the
   * attribute. This explores those choices depth first in the pattern's order.
   */
  matchAt(lt: number): MediaMatch | null {
    MEDIA_TAG_NAME.lastIndex = lt + 1;
    if (!MEDIA_TAG_NAME.test(this.text)) return null;
    const stack = [{ pos: MEDIA_TAG_NAME.lastIndex, stage: 1 }];
    while (stack.length > 0) {
      const frame = stack[stack.length - 1] as { pos: number; stage: number };
      const stage = frame.stage++;
      if (stage === 0) {
        const match = this.attributeAt(frame.pos);
        if (match) return match;
      } else if (stage <= 3) {
        const next = this.step(frame.pos, stage);
        if (next !== null && !this.failed[next]) stack.push({ pos: next, stage: 0 });
      } else {
        if (stack.length > 1) this.failed[frame.pos] = 1;
        stack.pop();
      }
    }
    return null;
  }

  /** Where one more repetition starting at `pos` ends, for alternative `stage`. */
  private step(pos: number, stage: number): number | null {
    const code = this.text.charCodeAt(pos);
    if (stage === 1) return pos < this.text.length && code !== GT ? pos + 1 : null;
    const quote = stage === 2 ? QUOTE : APOS;
    if (code !== quote) return null;
    const close = (stage === 2 ? this.quote : this.apos).from(pos + 1);
    return close > pos + 1 ? close + 1 : null;
  }

  /** `src=`/`data=` at a word start, then a double-, single- or un-quoted value, then `>`. */
  private attributeAt(pos: number): MediaMatch | null {
    if (WORD_CHAR.test(codePointBefore(this.text, pos))) return null;
    MEDIA_ATTRIBUTE.lastIndex = pos;
    if (!MEDIA_ATTRIBUTE.test(this.text)) return null;
    const value = MEDIA_ATTRIBUTE.lastIndex;
    return this.quoted(value, QUOTE) ?? this.quoted(value, APOS) ?? this.bare(value);
  }

  private quoted(value: number, quote: number): MediaMatch | null {
    if (this.text.charCodeAt(value) !== quote) return null;
    const close = (quote === QUOTE ? this.quote : this.apos).from(value + 1);
    if (close <= value + 1) return null;
    const gt = this.gt.from(close + 1);
    return gt === -1 ? null : { end: gt + 1, text: ` ${this.text.slice(value + 1, close)} ` };
  }

  private bare(value: number): MediaMatch | null {
    const first = this.text.charCodeAt(value);
    if (value >= this.text.length || first === SPACE || first === GT) return null;
    const stop = this.spaceOrGt.from(value + 1);
    if (stop === -1) return null;
    const gt = this.text.charCodeAt(stop) === GT ? stop : this.gt.from(stop + 1);
    return gt === -1 ? null : { end: gt + 1, text: ` ${this.text.slice(value, stop)} ` };
  }
}

/** The whole character ending just before `pos` (both halves of a surrogate pair). */
function codePointBefore(text: string, pos: number): string {
  const low = text.charCodeAt(pos - 1);
  const isLow = low >= 0xdc00 && low <= 0xdfff;
  return text.slice(isLow && pos >= 2 ? pos - 2 : pos - 1, pos);
}

// ---- pass 2: other markup -----------------------------------------------------------

const STYLE_OPEN = /<style/iuy;
const SCRIPT_OPEN = /<script/iuy;

/**
 * Finds a pattern at or after an index. Callers move forward, so a remembered answer
 * usually still holds and the whole pass stays linear.
 */
function forwardFinder(text: string, pattern: RegExp): (from: number) => number {
  let knownFrom = Number.POSITIVE_INFINITY;
  let knownAt = -1;
  return (from) => {
    if (from >= knownFrom && (knownAt === -1 || from <= knownAt)) return knownAt;
    pattern.lastIndex = from;
    knownFrom = from;
    knownAt = pattern.exec(text)?.index ?? -1;
    return knownAt;
  };
}

/** Comments, then `<style>` and `<script>` blocks, then any tag; each as short as possible. */
class MarkupScanner {
  private readonly gt: NextTable;
  private readonly commentEnd: (from: number) => number;
  private readonly styleEnd: (from: number) => number;
  private readonly scriptEnd: (from: number) => number;

  constructor(private readonly text: string) {
    this.gt = new NextTable(text, (c) => c === GT);
    this.commentEnd = forwardFinder(text, /-->/g);
    this.styleEnd = forwardFinder(text, /<\/style>/giu);
    this.scriptEnd = forwardFinder(text, /<\/script>/giu);
  }

  matchAt(lt: number): Replacement | null {
    const comment = this.text.startsWith("<!--", lt) ? this.commentEnd(lt + 4) : -1;
    const end =
      comment !== -1
        ? comment + 3
        : (this.block(lt, STYLE_OPEN, this.styleEnd, 8) ??
          this.block(lt, SCRIPT_OPEN, this.scriptEnd, 9) ??
          this.tag(lt));
    return end === null ? null : { end, text: "" };
  }

  /** `<style…>…</style>`: the first `>` after the name, then the first closing tag. */
  private block(
    lt: number,
    open: RegExp,
    close: (from: number) => number,
    closeLength: number,
  ): number | null {
    open.lastIndex = lt;
    if (!open.test(this.text)) return null;
    const tagEnd = this.gt.from(open.lastIndex);
    const end = tagEnd === -1 ? -1 : close(tagEnd + 1);
    return end === -1 ? null : end + closeLength;
  }

  private tag(lt: number): number | null {
    const tagEnd = this.gt.from(lt + 1);
    return tagEnd === -1 ? null : tagEnd + 1;
  }
}

// ---- pass 3: entities ---------------------------------------------------------------

/**
 * Strict HTML entity decoding: named HTML 4 entities (case-sensitive), `&#NNN;` and `&#xHHH;`
 * (lowercase x). A name is everything up to the next `;`, whatever it contains. Null on any
 * error, including text ending inside an entity.
 */
export function decodeHtmlStrict(text: string): string | null {
  let out = "";
  let copied = 0;
  for (let amp = text.indexOf("&"); amp !== -1; amp = text.indexOf("&", copied)) {
    const entity =
      text[amp + 1] === "#" ? numericEntity(text, amp + 2) : namedEntity(text, amp + 1);
    if (!entity) return null;
    out += text.slice(copied, amp) + entity.text;
    copied = entity.end;
  }
  return out + text.slice(copied);
}

function namedEntity(text: string, start: number): Replacement | null {
  // The first character belongs to the name even if it is a `;`.
  const semi = start < text.length ? text.indexOf(";", start + 1) : -1;
  const decoded = semi === -1 ? undefined : HTML4_ENTITIES.get(text.slice(start, semi));
  return decoded === undefined ? null : { end: semi + 1, text: decoded };
}

function numericEntity(text: string, start: number): Replacement | null {
  const hex = text[start] === "x";
  const digitsStart = hex ? start + 1 : start;
  const semi = text.indexOf(";", digitsStart);
  if (semi === -1) return null;
  const digits = text.slice(digitsStart, semi);
  if (!(hex ? /^[0-9a-fA-F]+$/ : /^[0-9]+$/).test(digits)) return null;
  const value = BigInt(hex ? `0x${digits}` : digits);
  if (value > 0x10ffffn || (value >= 0xd800n && value <= 0xdfffn)) return null;
  return { end: semi + 1, text: String.fromCodePoint(Number(value)) };
}
