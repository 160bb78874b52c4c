/**
 * Schema 18 rows as the converters consume them. Integer columns that can exceed 2^53
 * (ids, times) are `bigint`; the readers in nativeRows.ts fetch them that way.
 */

export interface NotetypeRow {
  id: bigint;
  name: string;
  mtimeSecs: bigint;
  usn: bigint;
  config: Uint8Array;
}

export interface FieldRow {
  ord: number;
  name: string;
  config: Uint8Array;
}

export interface TemplateRow {
  ord: number;
  name: string;
  config: Uint8Array;
}

export interface DeckRow {
  id: bigint;
  /** Native name: components joined with U+001F. */
  name: string;
  mtimeSecs: bigint;
  usn: bigint;
  common: Uint8Array;
  kind: Uint8Array;
}

export interface DeckConfigRow {
  id: bigint;
  name: string;
  mtimeSecs: bigint;
  usn: bigint;
  config: Uint8Array;
}

export interface ConfigRow {
  key: string;
  /** UTF-8 JSON text. */
  val: Uint8Array;
}

export interface TagRow {
  tag: string;
  usn: bigint;
}
