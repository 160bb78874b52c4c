/**
 * The file operations of backup and restore: consistent database snapshots (SQLite's
 * `VACUUM INTO` on its own connection, so the server's locks are respected and only committed
 * data is copied), checksums, and durable copies.
 */
import { createHash } from "node:crypto";
import {
  closeSync,
  copyFileSync,
  fsyncSync,
  openSync,
  readFileSync,
  readSync,
  rmSync,
  writeSync,
} from "node:fs";
import { openDatabase } from "../platform/sqlite.ts";

/** How long a snapshot waits for a writer to finish its commit. */
const SNAPSHOT_BUSY_MS = 30_000;

/**
 * Writes a consistent copy of the database at `source` to `target` (which must not exist).
 * `VACUUM INTO` reads one transaction's view: a sync in progress on the server is not in it,
 * and a commit waits (the server's busy timeout) until the copy is done.
 */
export function snapshotDatabase(source: string, target: string, unicase = false): void {
  const db = openDatabase(source, { create: false, unicase });
  try {
    db.exec(`PRAGMA busy_timeout = ${SNAPSHOT_BUSY_MS}`);
    db.query("VACUUM INTO ?").run(target);
  } finally {
    db.close();
  }
  fsyncFile(target);
}

export function fileSha256(path: string): { bytes: number; sha256: string } {
  const hash = createHash("sha256");
  const fd = openSync(path, "r");
  const buffer = Buffer.alloc(1 << 20);
  let bytes = 0;
  try {
    for (;;) {
      const n = readSync(fd, buffer, 0, buffer.length, null);
      if (n === 0) break;
      hash.update(buffer.subarray(0, n));
      bytes += n;
    }
  } finally {
    closeSync(fd);
  }
  return { bytes, sha256: hash.digest("hex") };
}

export function sha1Hex(bytes: Uint8Array): string {
  return createHash("sha1").update(bytes).digest("hex");
}

/** The bytes of `path`, or null if it does not exist. */
export function readIfPresent(path: string): Buffer | null {
  try {
    return readFileSync(path);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === "ENOENT") return null;
    throw err;
  }
}

/** Writes a new file and flushes it to disk. */
export function writeDurably(path: string, bytes: Uint8Array | string): void {
  const fd = openSync(path, "wx");
  try {
    const data = typeof bytes === "string" ? Buffer.from(bytes) : bytes;
    let done = 0;
    while (done < data.byteLength) done += writeSync(fd, data, done);
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
}

/** Copies a file that nothing changes (a backup's own files) and flushes the copy. */
export function copyDurably(source: string, target: string): void {
  copyFileSync(source, target, 1 /* COPYFILE_EXCL */);
  fsyncFile(target);
}

export function fsyncFile(path: string): void {
  const fd = openSync(path, "r");
  try {
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
}

export function removeFile(path: string): void {
  rmSync(path, { force: true });
}
