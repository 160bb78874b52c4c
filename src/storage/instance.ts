/**
 * Which server process made a temporary file, and whether that process still runs. Every
 * temporary name carries the tag of the process that made it (`paths.ts`), and while a process
 * runs it holds an exclusive SQLite lock on `<data>/.instances/<tag>.lock`. Like the user's
 * lock, the OS drops it when the process dies (also over NFS), so a temporary whose tag has no
 * held lock belongs to nobody and may go, however young it is; a pid alone would not say so
 * after a container restart reuses it, nor for a process on another host.
 */
import { existsSync, mkdirSync, rmSync } from "node:fs";
import { join } from "node:path";
import { type Db, openDatabase } from "../platform/sqlite.ts";
import { namesIn } from "./dirNames.ts";

const INSTANCES_DIR = ".instances";
const LEASE_SUFFIX = ".lock";

/** The tag of this process: the pid plus random digits, shared by all its threads. */
let ownTag = `${process.pid}x${crypto.getRandomValues(new Uint32Array(1))[0]?.toString(16)}`;

export function instanceTag(): string {
  return ownTag;
}

/** Worker threads take the tag of the process that started them. */
export function adoptInstanceTag(tag: string): void {
  ownTag = tag;
}

const leasePath = (dataDir: string, tag: string) =>
  join(dataDir, INSTANCES_DIR, `${tag}${LEASE_SUFFIX}`);

/** Leases held by this process, shared by servers started in it on one folder (tests). */
const held = new Map<string, { db: Db; holders: number }>();

/** Held by a running server for its whole life. */
export class InstanceLease {
  private released = false;

  private constructor(private readonly path: string) {}

  static acquire(dataDir: string): InstanceLease {
    mkdirSync(join(dataDir, INSTANCES_DIR), { recursive: true });
    const path = leasePath(dataDir, ownTag);
    const entry = held.get(path);
    if (entry) entry.holders++;
    else {
      const db = lockExclusively(path);
      if (!db) throw new Error(`cannot lock ${path}`);
      held.set(path, { db, holders: 1 });
    }
    return new InstanceLease(path);
  }

  release(): void {
    const entry = held.get(this.path);
    if (this.released || !entry) return;
    this.released = true;
    if (--entry.holders > 0) return;
    held.delete(this.path);
    removeLeaseFiles(this.path);
    entry.db.exec("ROLLBACK");
    entry.db.close();
  }
}

/**
 * Whether the process that wrote temporaries tagged `tag` still runs. Tags of the old form
 * (a bare pid) predate the leases: their process is gone or is an older version.
 */
export function instanceAlive(dataDir: string, tag: string): boolean {
  if (tag === ownTag) return true;
  if (/^\d+$/.test(tag)) return false;
  const path = leasePath(dataDir, tag);
  if (!existsSync(path)) return false;
  const db = lockExclusively(path);
  if (!db) return true;
  db.exec("ROLLBACK");
  db.close();
  return false;
}

/** Removes the lease files of processes that are gone (their temporaries count as dead anyway). */
export function removeDeadLeases(dataDir: string): void {
  const dir = join(dataDir, INSTANCES_DIR);
  for (const name of namesIn(dir)) {
    if (!name.endsWith(LEASE_SUFFIX)) continue;
    const tag = name.slice(0, -LEASE_SUFFIX.length);
    if (tag === ownTag) continue;
    const db = lockExclusively(join(dir, name));
    if (!db) continue;
    removeLeaseFiles(join(dir, name));
    db.exec("ROLLBACK");
    db.close();
  }
}

/** The lease and the (empty) journal SQLite keeps beside it while locked. */
function removeLeaseFiles(path: string): void {
  rmSync(path, { force: true });
  rmSync(`${path}-journal`, { force: true });
}

function lockExclusively(path: string): Db | null {
  let db: Db;
  try {
    db = openDatabase(path);
  } catch {
    return null;
  }
  try {
    db.exec("PRAGMA busy_timeout = 0");
    db.exec("PRAGMA journal_mode = DELETE");
    db.exec("BEGIN EXCLUSIVE");
    return db;
  } catch {
    db.close();
    return null;
  }
}
