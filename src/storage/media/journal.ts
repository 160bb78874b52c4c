/**
 * A user's media journal, `<user>/media.journal`: the durable copy of small uploaded files whose
 * place in `media/` has not been synced yet (docs/media.md#durability). One append and one
 * `fdatasync` make a whole batch durable, where syncing its files would cost one each; the files
 * themselves are synced later, off the request path, and the journal then emptied.
 *
 * It also makes media.db's commits durable: every commit that moves media.db's usn is preceded
 * by a rows record of the batch (its rows, the usn before it and the meta after it), synced with
 * its files, so media.db itself commits without a sync and a power loss that rolls commits back
 * is repaired from here.
 *
 * A file record is `magic | name length | size | SHA-1 | name | content | CRC-32 of all before
 * it`; a rows record is `magic | payload length | JSON payload | CRC-32`. A batch writes its file
 * records, then its rows record, in one append. Reading stops at the first record that is
 * incomplete or fails its CRC or SHA-1: only the tail of a write that never finished can be
 * broken, since every batch is synced before it is committed, and a failed append or undo has
 * the next append cut off whatever it left past its own end. Whether a record is still wanted
 * is decided by the caller against media.db, so a record of a batch that failed, or was
 * superseded, is harmless.
 */
import { createHash } from "node:crypto";
import {
  closeSync,
  constants,
  existsSync,
  fdatasync,
  fdatasyncSync,
  ftruncateSync,
  openSync,
  readFileSync,
  statSync,
  writeSync,
} from "node:fs";
import { promisify } from "node:util";
import { crc32 } from "node:zlib";
import { fsyncPath } from "../collection/replace.ts";
import type { MediaEntry, MediaMeta } from "./mediaDb.ts";

export interface JournalRecord {
  name: string;
  /** Raw SHA-1 of `bytes` (20 bytes). */
  sha1: Uint8Array;
  bytes: Uint8Array;
}

/** What one batch committed to media.db: enough to commit it again. */
export interface JournalRows {
  /** media.db's last usn before the batch. */
  prevUsn: number;
  /** media.db's meta after it (`lastUsn` is the usn the client was told). */
  meta: MediaMeta;
  /** In the order the batch wrote them (a name may come twice). */
  entries: MediaEntry[];
}

export interface JournalContents {
  files: JournalRecord[];
  /** Oldest first. */
  rows: JournalRows[];
}

const MAGIC = 0x4a4d4b41; // "AKMJ", little-endian
const ROWS_MAGIC = 0x524d4b41; // "AKMR"
const HEADER_BYTES = 4 + 2 + 4 + 20;
const ROWS_HEADER_BYTES = 4 + 4;
const CRC_BYTES = 4;
const encoder = new TextEncoder();
const decoder = new TextDecoder("utf-8", { fatal: true });
const datasync = promisify(fdatasync);

export class MediaJournal {
  /**
   * Where the next record goes: the end of the valid records (bytes past it are garbage). The
   * store empties a journal it finds (replaying it) before appending, so this starts at 0.
   */
  private end = 0;
  /** A failed append or undo may have left bytes past `end`: the next append cuts them off. */
  private dirtyTail = false;

  constructor(
    readonly path: string,
    private readonly dir: string,
  ) {}

  /** Whether the file holds anything (records left by an earlier run, or garbage). */
  get leftOver(): boolean {
    try {
      return statSync(this.path).size > 0;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === "ENOENT") return false;
      throw err;
    }
  }

  /** Bytes of records since the journal was last emptied (as far as this process knows). */
  get bytes(): number {
    return this.end;
  }

  /**
   * Appends a batch (its files, then its rows) and syncs it, once for all; returns where it
   * starts, for `undo`. On failure nothing counts as written: the next append overwrites
   * whatever part of this one reached the file.
   */
  async append(files: JournalRecord[], rows: JournalRows | null): Promise<number> {
    const start = this.end;
    const buffer = encodeJournal(files, rows);
    if (buffer.byteLength === 0) return start;
    const created = !existsSync(this.path);
    // Not O_APPEND: writing at our end overwrites whatever part of a failed append got there.
    const fd = openSync(this.path, constants.O_WRONLY | constants.O_CREAT);
    try {
      const cut = this.dirtyTail;
      this.dirtyTail = true;
      let done = 0;
      while (done < buffer.byteLength)
        done += writeSync(fd, buffer, done, buffer.byteLength - done, start + done);
      // Records a failure left past our end could read as valid after ours: cut them off.
      if (cut) ftruncateSync(fd, start + buffer.byteLength);
      await datasync(fd);
      this.dirtyTail = false;
    } finally {
      closeSync(fd);
    }
    // A new journal's name must be durable too; it is kept (emptied, not removed) afterwards.
    if (created) fsyncPath(this.dir);
    this.end = start + buffer.byteLength;
    return start;
  }

  /**
   * Takes back the last append (`start` as it returned), for a batch that did not commit, so a
   * replay never commits what the client was told failed. On failure the records stay (see
   * `committedRows`), and the next append cuts them off.
   */
  undo(start: number): void {
    if (start >= this.end) return;
    this.end = start;
    this.dirtyTail = true;
    const fd = openSync(this.path, "r+");
    try {
      ftruncateSync(fd, start);
      fdatasyncSync(fd);
    } finally {
      closeSync(fd);
    }
    this.dirtyTail = false;
  }

  /** The complete, intact records, oldest first. */
  read(): JournalContents {
    let data: Uint8Array;
    try {
      data = readFileSync(this.path);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === "ENOENT") return { files: [], rows: [] };
      throw err;
    }
    return decodeJournal(data);
  }

  /** Empties the journal durably (it is kept, so its name needs no new sync). */
  clear(): void {
    if (!existsSync(this.path)) {
      this.end = 0;
      return;
    }
    const fd = openSync(this.path, "r+");
    try {
      ftruncateSync(fd, 0);
      fdatasyncSync(fd);
    } finally {
      closeSync(fd);
    }
    this.end = 0;
    this.dirtyTail = false;
  }
}

/** A batch as one append: its file records, then its rows record. */
export function encodeJournal(files: JournalRecord[], rows: JournalRows | null): Uint8Array {
  const fileBytes = encodeRecords(files);
  if (!rows) return fileBytes;
  const rowBytes = encodeRows(rows);
  const out = new Uint8Array(fileBytes.byteLength + rowBytes.byteLength);
  out.set(fileBytes);
  out.set(rowBytes, fileBytes.byteLength);
  return out;
}

export function encodeRecords(records: JournalRecord[]): Uint8Array {
  const names = records.map((r) => encoder.encode(r.name));
  const total = records.reduce(
    (sum, r, i) =>
      sum + HEADER_BYTES + (names[i] as Uint8Array).byteLength + r.bytes.byteLength + CRC_BYTES,
    0,
  );
  const out = new Uint8Array(total);
  const view = new DataView(out.buffer);
  let at = 0;
  records.forEach((record, i) => {
    const name = names[i] as Uint8Array;
    const start = at;
    view.setUint32(at, MAGIC, true);
    view.setUint16(at + 4, name.byteLength, true);
    view.setUint32(at + 6, record.bytes.byteLength, true);
    out.set(record.sha1, at + 10);
    at += HEADER_BYTES;
    out.set(name, at);
    at += name.byteLength;
    out.set(record.bytes, at);
    at += record.bytes.byteLength;
    view.setUint32(at, crc32(out.subarray(start, at)) >>> 0, true);
    at += CRC_BYTES;
  });
  return out;
}

type RowsPayload = {
  p: number;
  m: [number, number, number];
  e: [string, string, number, number, number][];
};

export function encodeRows(rows: JournalRows): Uint8Array {
  const payload: RowsPayload = {
    p: rows.prevUsn,
    m: [rows.meta.lastUsn, rows.meta.totalBytes, rows.meta.totalNonemptyFiles],
    e: rows.entries.map((e) => [e.fname, toHex(e.csum), e.size, e.usn, e.mtime]),
  };
  const json = encoder.encode(JSON.stringify(payload));
  const out = new Uint8Array(ROWS_HEADER_BYTES + json.byteLength + CRC_BYTES);
  const view = new DataView(out.buffer);
  view.setUint32(0, ROWS_MAGIC, true);
  view.setUint32(4, json.byteLength, true);
  out.set(json, ROWS_HEADER_BYTES);
  const end = ROWS_HEADER_BYTES + json.byteLength;
  view.setUint32(end, crc32(out.subarray(0, end)) >>> 0, true);
  return out;
}

/** The file records only (see `decodeJournal`). */
export function decodeRecords(data: Uint8Array): JournalRecord[] {
  return decodeJournal(data).files;
}

export function decodeJournal(data: Uint8Array): JournalContents {
  const view = new DataView(data.buffer, data.byteOffset, data.byteLength);
  const contents: JournalContents = { files: [], rows: [] };
  let at: number | null = 0;
  while (at !== null && at + 4 <= data.byteLength) {
    const magic = view.getUint32(at, true);
    if (magic === MAGIC) at = decodeFile(data, view, at, contents.files);
    else if (magic === ROWS_MAGIC) at = decodeRowsRecord(data, view, at, contents.rows);
    else break;
  }
  return contents;
}

/** Reads the file record at `at` into `out`; the next record's offset, or null if it is broken. */
function decodeFile(
  data: Uint8Array,
  view: DataView,
  at: number,
  out: JournalRecord[],
): number | null {
  if (at + HEADER_BYTES > data.byteLength) return null;
  const nameBytes = view.getUint16(at + 4, true);
  const size = view.getUint32(at + 6, true);
  const end = at + HEADER_BYTES + nameBytes + size;
  if (end + CRC_BYTES > data.byteLength) return null;
  if (view.getUint32(end, true) !== crc32(data.subarray(at, end)) >>> 0) return null;
  const sha1 = data.slice(at + 10, at + HEADER_BYTES);
  const bytes = data.subarray(at + HEADER_BYTES + nameBytes, end);
  if (!sameBytes(sha1, createHash("sha1").update(bytes).digest())) return null;
  try {
    const name = decoder.decode(data.subarray(at + HEADER_BYTES, at + HEADER_BYTES + nameBytes));
    out.push({ name, sha1, bytes });
  } catch {
    return null;
  }
  return end + CRC_BYTES;
}

/** Reads the rows record at `at` into `out`; the next record's offset, or null if it is broken. */
function decodeRowsRecord(
  data: Uint8Array,
  view: DataView,
  at: number,
  out: JournalRows[],
): number | null {
  if (at + ROWS_HEADER_BYTES > data.byteLength) return null;
  const end = at + ROWS_HEADER_BYTES + view.getUint32(at + 4, true);
  if (end + CRC_BYTES > data.byteLength) return null;
  if (view.getUint32(end, true) !== crc32(data.subarray(at, end)) >>> 0) return null;
  let payload: unknown;
  try {
    payload = JSON.parse(decoder.decode(data.subarray(at + ROWS_HEADER_BYTES, end)));
  } catch {
    return null;
  }
  const rows = rowsFromPayload(payload);
  if (!rows) return null;
  out.push(rows);
  return end + CRC_BYTES;
}

function rowsFromPayload(value: unknown): JournalRows | null {
  const payload = value as Partial<RowsPayload> | null;
  const isCount = (n: unknown): n is number => Number.isSafeInteger(n) && (n as number) >= 0;
  if (!payload || !isCount(payload.p) || !Array.isArray(payload.m) || !Array.isArray(payload.e))
    return null;
  const [lastUsn, totalBytes, totalNonemptyFiles] = payload.m;
  if (![lastUsn, totalBytes, totalNonemptyFiles].every(isCount)) return null;
  const entries: MediaEntry[] = [];
  for (const e of payload.e) {
    if (!Array.isArray(e) || typeof e[0] !== "string" || typeof e[1] !== "string") return null;
    if (!/^[0-9a-f]{40}$/.test(e[1]) || ![e[2], e[3], e[4]].every(isCount)) return null;
    entries.push({ fname: e[0], csum: fromHex(e[1]), size: e[2], usn: e[3], mtime: e[4] });
  }
  return { prevUsn: payload.p, meta: { lastUsn, totalBytes, totalNonemptyFiles }, entries };
}

function toHex(bytes: Uint8Array): string {
  return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString("hex");
}

function fromHex(hex: string): Uint8Array {
  return new Uint8Array(Buffer.from(hex, "hex"));
}

function sameBytes(a: Uint8Array, b: Uint8Array): boolean {
  return a.byteLength === b.byteLength && a.every((byte, i) => byte === b[i]);
}
