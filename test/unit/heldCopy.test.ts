/**
 * A copy of a collection made while a connection holds it exclusively (the schema conversion)
 * must not let go of that lock: closing any descriptor of the file drops every POSIX lock the
 * process holds on it, so another program could commit to a file about to be replaced.
 */
import { afterEach, expect, test } from "bun:test";
import { closeSync, copyFileSync, mkdtempSync, openSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { copyFromDescriptor } from "../../src/platform/files.ts";
import { openDatabase } from "../../src/platform/sqlite.ts";

const dirs: string[] = [];
afterEach(() => {
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});

function lockedDatabase(): { path: string; dir: string; release: () => void } {
  const dir = mkdtempSync(join(tmpdir(), "ankisyncd-heldcopy-"));
  dirs.push(dir);
  const path = join(dir, "collection.anki2");
  const db = openDatabase(path);
  db.exec("CREATE TABLE t (a); INSERT INTO t VALUES (1), (2)");
  db.exec("BEGIN EXCLUSIVE");
  return {
    path,
    dir,
    release: () => {
      db.exec("ROLLBACK");
      db.close();
    },
  };
}

/** Whether another process can start a write on `path` right now. */
function otherProcessCanWrite(path: string): boolean {
  const script = `
    const { Database } = require("bun:sqlite");
    const db = new Database(${JSON.stringify(path)});
    try { db.exec("BEGIN IMMEDIATE"); db.exec("ROLLBACK"); console.log("wrote"); }
    catch { console.log("locked"); }`;
  const proc = Bun.spawnSync([process.execPath, "-e", script], { stdout: "pipe" });
  return proc.stdout.toString().trim() === "wrote";
}

test("a copy through a descriptor opened beforehand keeps the lock and copies every byte", () => {
  const { path, dir, release } = lockedDatabase();
  const fd = openSync(path, "r");
  try {
    const copy = join(dir, "copy.anki2");
    copyFromDescriptor(fd, copy);
    expect(otherProcessCanWrite(path)).toBe(false);
    expect(readFileSync(copy)).toEqual(readFileSync(path));
  } finally {
    release();
    closeSync(fd);
  }
  expect(otherProcessCanWrite(path)).toBe(true);
});

test("a copy by path drops the lock (why the conversion does not use one)", () => {
  const { path, dir, release } = lockedDatabase();
  try {
    copyFileSync(path, join(dir, "copy.anki2"));
    expect(otherProcessCanWrite(path)).toBe(true);
  } finally {
    release();
  }
});
