/**
 * The rows of an `applyChunk` request (docs/protocol.md#rows), checked with Anki's types: strict
 * integers where Anki is strict, truncation where it accepts floats, card `type`/`queue` only
 * from their known values. Any failure is a shape error (400, session kept).
 */
import type { LegacyJson } from "../../legacyJson.ts";
import type { CardValues, NoteRow, RevlogValues } from "../../storage/collection/syncRows.ts";
import { badRequest } from "../errors.ts";
import {
  expectArray,
  expectBool,
  expectInt,
  expectObject,
  expectString,
  type Int,
  intFromNumber,
  rowValues,
} from "./wire.ts";

/** A note as received: the sort field and checksum are recomputed, never taken from the wire. */
export type IncomingNote = Omit<NoteRow, "sfld" | "csum">;

export interface IncomingChunk {
  done: boolean;
  revlog: RevlogValues[];
  cards: CardValues[];
  notes: IncomingNote[];
}

const NOTE_KEYS = [
  "id",
  "guid",
  "mid",
  "mod",
  "usn",
  "tags",
  "fields",
  "sfld",
  "csum",
  "flags",
  "data",
];
const CARD_KEYS = [
  "id",
  "nid",
  "did",
  "ord",
  "mod",
  "usn",
  "ctype",
  "queue",
  "due",
  "ivl",
  "factor",
  "reps",
  "lapses",
  "left",
  "odue",
  "odid",
  "flags",
  "data",
];
const REVLOG_KEYS = ["id", "cid", "usn", "ease", "ivl", "lastIvl", "factor", "time", "type"];

export function parseApplyChunkRequest(body: LegacyJson): IncomingChunk {
  const chunk = expectObject(expectObject(body, "request").chunk, "chunk");
  const list = (key: string) => (chunk[key] === undefined ? [] : expectArray(chunk[key], key));
  return {
    done: chunk.done === undefined ? false : expectBool(chunk.done, "done"),
    revlog: list("revlog").map(parseRevlog),
    cards: list("cards").map(parseCard),
    notes: list("notes").map(parseNote),
  };
}

export function parseNote(value: LegacyJson): IncomingNote {
  const v = rowValues(value, NOTE_KEYS, "note");
  const note: IncomingNote = {
    id: expectInt(v[0], "i64", "note id"),
    guid: expectString(v[1], "note guid"),
    mid: expectInt(v[2], "i64", "note mid"),
    mod: expectInt(v[3], "i64", "note mod"),
    usn: expectInt(v[4], "i32", "note usn"),
    tags: expectString(v[5], "note tags"),
    flds: expectString(v[6], "note fields"),
  };
  // Received but never used: the receiver recomputes sfld/csum and stores no flags/data.
  expectString(v[7], "note sfld");
  expectString(v[8], "note csum");
  expectInt(v[9], "u32", "note flags");
  expectString(v[10], "note data");
  return note;
}

export function parseCard(value: LegacyJson): CardValues {
  const v = rowValues(value, CARD_KEYS, "card");
  const type = expectInt(v[6], "u8", "card type");
  const queue = expectInt(v[7], "i8", "card queue");
  if (Number(type) > 3) throw badRequest(`card type ${type} unknown`);
  if (Number(queue) < -3 || Number(queue) > 4) throw badRequest(`card queue ${queue} unknown`);
  return [
    expectInt(v[0], "i64", "card id"),
    expectInt(v[1], "i64", "card nid"),
    expectInt(v[2], "i64", "card did"),
    expectInt(v[3], "u16", "card ord"),
    intFromNumber(v[4], "i64", "card mod"),
    expectInt(v[5], "i32", "card usn"),
    type,
    queue,
    intFromNumber(v[8], "i32", "card due"),
    intFromNumber(v[9], "u32", "card ivl"),
    expectInt(v[10], "u16", "card factor"),
    expectInt(v[11], "u32", "card reps"),
    expectInt(v[12], "u32", "card lapses"),
    expectInt(v[13], "u32", "card left"),
    intFromNumber(v[14], "i32", "card odue"),
    expectInt(v[15], "i64", "card odid"),
    expectInt(v[16], "u8", "card flags"),
    expectString(v[17], "card data"),
  ];
}

/** The trailing `type` may be missing; an unknown or invalid one reads as 0. */
export function parseRevlog(value: LegacyJson): RevlogValues {
  const v = rowValues(value, REVLOG_KEYS, "revlog entry", REVLOG_KEYS.length - 1);
  return [
    expectInt(v[0], "i64", "revlog id"),
    expectInt(v[1], "i64", "revlog cid"),
    expectInt(v[2], "i32", "revlog usn"),
    expectInt(v[3], "u8", "revlog ease"),
    intFromNumber(v[4], "i32", "revlog ivl"),
    intFromNumber(v[5], "i32", "revlog lastIvl"),
    intFromNumber(v[6], "u32", "revlog factor"),
    intFromNumber(v[7], "u32", "revlog time"),
    revlogType(v[8]),
  ];
}

function revlogType(value: LegacyJson | undefined): Int {
  const type = typeof value === "number" && Number.isInteger(value) ? value : -1;
  return type >= 0 && type <= 5 ? type : 0;
}
