/**
 * A ready download: the compressed body a current client's full download would get, made ahead
 * (after a full upload, when the other devices download next) and kept beside the collection.
 * Two files: the body, named by a random token, and a record of what it was made from, written
 * last and naming that body, so a record never pairs with another making's body.
 *
 * Serving it is allowed only while the stored file holds exactly the bytes the body was made
 * from: the record keeps a fingerprint of the source file (platform/fingerprint.ts) and it is
 * compared with the stored file's before serving. That proof does not depend on who wrote the
 * file since (a normal sync, an
 * admin command or restore in another process, another program sharing the folder): removing
 * the ready download on our own write paths only keeps the disk tidy and the check short.
 * Only SQLite's own counters in the header are left out of the hash (the file change counter
 * and the version-valid-for number): opening a file in WAL mode and putting it back at rest,
 * as `meta` does, changes them and nothing else.
 */
import {
  closeSync,
  copyFileSync,
  existsSync,
  openSync,
  readFileSync,
  readSync,
  renameSync,
  rmSync,
  statSync,
  writeFileSync,
} from "node:fs";
import { basename, dirname, join } from "node:path";
import { newFingerprinter } from "../../platform/fingerprint.ts";
import { namesIn } from "../dirNames.ts";
import { tempPathBeside } from "../paths.ts";
import { roomForCache } from "../writable.ts";
import { fsyncPath } from "./replace.ts";

/** What the body is, and what it was made from. */
export interface ReadyRecord {
  /** The fingerprint of the stored file the body was made from, header counters left out. */
  source: string;
  /** Which clients it is for (downloadSchema.ts's plan, as a string). */
  plan: string;
  /** The bump's time: the copy's `mod`, and the stored file's when the body is served. */
  now: number;
  /** The schema of the file in the body, and why not 18 when it was planned. */
  schema: 11 | 18;
  notUpgraded?: string;
  /** The file's size before compression (`anki-original-size`). */
  originalSize: number;
  /** The body's name beside the collection and its size. */
  body: string;
  bodySize: number;
}

const RECORD_SUFFIX = ".ready-download.json";
const BODY_INFIX = ".ready-download-";

function recordPath(collection: string): string {
  return `${collection}${RECORD_SUFFIX}`;
}

/** A new body's final name beside the collection (its token keeps makings apart). */
export function readyBodyPath(collection: string): string {
  const token = crypto.getRandomValues(new Uint32Array(2)).join("");
  return `${collection}${BODY_INFIX}${token}.zst`;
}

/** Every file of the collection's ready download: the record first, then any body. */
export function removeReadyDownload(collection: string): void {
  rmSync(recordPath(collection), { force: true });
  const dir = dirname(collection);
  const prefix = `${basename(collection)}${BODY_INFIX}`;
  for (const name of namesIn(dir)) {
    if (name.startsWith(prefix)) rmSync(join(dir, name), { force: true });
  }
}

/**
 * A copy of a received file, the source of a ready download. It is a cache: not taken when the
 * disk is short, and one that fails changes nothing (false). Copied by path: nothing holds a
 * lock on a received temporary, so closing the copy's descriptor drops none.
 */
export function copyReadySource(path: string, to: string): boolean {
  try {
    if (!roomForCache(path)) return false;
    copyFileSync(path, to);
    return true;
  } catch {
    rmSync(to, { force: true });
    return false;
  }
}

/** `removeReadyDownload` when there is a record: a stat on the usual path. */
export function dropReadyDownload(collection: string): void {
  if (hasReadyDownload(collection)) removeReadyDownload(collection);
}

/** Whether a record exists (cheap: no hash). */
export function hasReadyDownload(collection: string): boolean {
  return existsSync(recordPath(collection));
}

/**
 * Publishes a body already written and synced at `record.body`: the record is written to a
 * temporary, synced and renamed in, so a crash leaves either no record or a whole one.
 */
export function publishReadyDownload(collection: string, record: ReadyRecord): void {
  const temp = tempPathBeside(collection, ".ready");
  try {
    writeFileSync(temp, JSON.stringify(record));
    fsyncPath(temp);
    renameSync(temp, recordPath(collection));
  } finally {
    rmSync(temp, { force: true });
  }
}

/**
 * The body, moved to `to`, if the record is for `plan` and the stored file (at rest: the
 * caller closed it) holds the bytes it was made from; otherwise null, with the ready download
 * removed. Either way none is left: served, its bump changes the stored file.
 */
export function takeReadyDownload(
  collection: string,
  plan: string,
  to: string,
): ReadyRecord | null {
  try {
    const record = readRecord(collection);
    if (record?.plan !== plan) return null;
    const body = join(dirname(collection), record.body);
    if (!isOurBody(collection, record.body) || !sizeIs(body, record.bodySize)) return null;
    if (collectionFingerprint(collection) !== record.source) return null;
    return moved(body, to) ? record : null;
  } finally {
    removeReadyDownload(collection);
  }
}

/** False if the body is gone meanwhile (a task making the next one holds no lock). */
function moved(from: string, to: string): boolean {
  try {
    renameSync(from, to);
    return true;
  } catch {
    return false;
  }
}

function readRecord(collection: string): ReadyRecord | null {
  try {
    return JSON.parse(readFileSync(recordPath(collection), "utf8")) as ReadyRecord;
  } catch {
    return null;
  }
}

function isOurBody(collection: string, name: unknown): boolean {
  return (
    typeof name === "string" &&
    name === basename(name) &&
    name.startsWith(`${basename(collection)}${BODY_INFIX}`)
  );
}

function sizeIs(path: string, size: number): boolean {
  try {
    return statSync(path).size === size;
  } catch {
    return false;
  }
}

/** SQLite header bytes that change when a file is only opened and closed (see above). */
const COUNTERS: ReadonlyArray<readonly [number, number]> = [
  [24, 28],
  [92, 96],
];

const READ_BYTES = 1024 * 1024;

/** The fingerprint of a database file, its header's counters zeroed. */
export function collectionFingerprint(path: string): string {
  const hash = newFingerprinter();
  const buffer = Buffer.allocUnsafe(READ_BYTES);
  const fd = openSync(path, "r");
  try {
    let first = true;
    for (;;) {
      const read = readSync(fd, buffer, 0, READ_BYTES, null);
      if (read === 0) break;
      if (first) for (const [from, to] of COUNTERS) buffer.fill(0, from, Math.min(to, read));
      first = false;
      hash.update(buffer.subarray(0, read));
    }
  } finally {
    closeSync(fd);
  }
  return hash.digest();
}
