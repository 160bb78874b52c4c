/**
 * A user's media journal, `<user>/media.journal`: the durable copy of small uploaded files whose
 * place in `media/` has not been synced yet (docs/media.md#durability). One append and one
 * `fdatasync` make a whole batch durable, where syncing its files would cost one each; the files
 * themselves are synced later, off the request path, and the journal then emptied.
 *
 * A record is `magic | name length | size | SHA-1 | name | content | CRC-32 of all before it`.
 * Reading stops at the first record that is incomplete or fails its CRC or SHA-1: only the tail
 * of a write that never finished can be broken, since every batch is synced before it is
 * committed. Whether a record is still wanted is decided by the caller against media.db (a
 * record counts only while its SHA-1 is the file's recorded checksum), so a record of a batch
 * that failed, or was superseded, is harmless.
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

export interface JournalRecord {
  name: string;
  /** Raw SHA-1 of `bytes` (20 bytes). */
  sha1: Uint8Array;
  bytes: Uint8Array;
}

const MAGIC = 0x4a4d4b41; // "AKMJ", little-endian
const HEADER_BYTES = 4 + 2 + 4 + 20;
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
   * Appends the records and syncs them, once for all. On failure nothing counts as written:
   * the next append overwrites whatever part of this one reached the file.
   */
  async append(records: JournalRecord[]): Promise<void> {
    if (records.length === 0) return;
    const buffer = encodeRecords(records);
    const created = !existsSync(this.path);
    // Not O_APPEND: writing at our end overwrites whatever part of a failed append got there.
    const fd = openSync(this.path, constants.O_WRONLY | constants.O_CREAT);
    try {
      let done = 0;
      while (done < buffer.byteLength)
        done += writeSync(fd, buffer, done, buffer.byteLength - done, this.end + done);
      await datasync(fd);
    } finally {
      closeSync(fd);
    }
    // A new journal's name must be durable too; it is kept (emptied, not removed) afterwards.
    if (created) fsyncPath(this.dir);
    this.end += buffer.byteLength;
  }

  /** The complete, intact records, oldest first. */
  read(): JournalRecord[] {
    let data: Uint8Array;
    try {
      data = readFileSync(this.path);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === "ENOENT") return [];
      throw err;
    }
    return decodeRecords(data);
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
  }
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

export function decodeRecords(data: Uint8Array): JournalRecord[] {
  const view = new DataView(data.buffer, data.byteOffset, data.byteLength);
  const records: JournalRecord[] = [];
  let at = 0;
  while (at + HEADER_BYTES <= data.byteLength) {
    if (view.getUint32(at, true) !== MAGIC) break;
    const nameBytes = view.getUint16(at + 4, true);
    const size = view.getUint32(at + 6, true);
    const end = at + HEADER_BYTES + nameBytes + size;
    if (end + CRC_BYTES > data.byteLength) break;
    if (view.getUint32(end, true) !== crc32(data.subarray(at, end)) >>> 0) break;
    const sha1 = data.slice(at + 10, at + HEADER_BYTES);
    const bytes = data.subarray(at + HEADER_BYTES + nameBytes, end);
    if (!sameBytes(sha1, createHash("sha1").update(bytes).digest())) break;
    let name: string;
    try {
      name = decoder.decode(data.subarray(at + HEADER_BYTES, at + HEADER_BYTES + nameBytes));
    } catch {
      break;
    }
    records.push({ name, sha1, bytes });
    at = end + CRC_BYTES;
  }
  return records;
}

function sameBytes(a: Uint8Array, b: Uint8Array): boolean {
  return a.byteLength === b.byteLength && a.every((byte, i) => byte === b[i]);
}
