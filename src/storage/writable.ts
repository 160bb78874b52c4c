/**
 * Whether the server can write where it must: refused at start (one sentence naming the path)
 * and reported by `/ready` while the data folder is read-only or nearly full.
 */
import {
  accessSync,
  closeSync,
  constants,
  existsSync,
  mkdirSync,
  openSync,
  rmSync,
  statfsSync,
  statSync,
} from "node:fs";
import { dirname, join } from "node:path";
import { instanceTag } from "./instance.ts";

/** Start-up cannot go on; main.ts prints the sentence and exits 2. */
export class StartupRefused extends Error {}

/**
 * Refuses unless the data folder and session.db (and its folder) can be written; `sessionDbPath`
 * is null when the shared state is in PostgreSQL.
 */
export function checkWritableAtStart(dataDir: string, sessionDbPath: string | null): void {
  try {
    mkdirSync(dataDir, { recursive: true });
  } catch (err) {
    throw new StartupRefused(`cannot create the data folder ${dataDir}: ${reason(err)}`, {
      cause: err,
    });
  }
  probeFolder(dataDir, "the data folder");
  if (sessionDbPath === null) return;
  const sessionDir = dirname(sessionDbPath);
  if (sessionDir !== dataDir) {
    try {
      mkdirSync(sessionDir, { recursive: true });
    } catch (err) {
      throw new StartupRefused(`cannot create the folder of ${sessionDbPath}: ${reason(err)}`, {
        cause: err,
      });
    }
    probeFolder(sessionDir, `the folder of ${sessionDbPath}`);
  }
  // A missing one is created by SQLite in the folder just probed.
  if (!existsSync(sessionDbPath)) return;
  try {
    closeSync(openSync(sessionDbPath, constants.O_RDWR));
  } catch (err) {
    throw new StartupRefused(`session database ${sessionDbPath} is not writable: ${reason(err)}`, {
      cause: err,
    });
  }
}

/** A real write, since permission bits say nothing to root and nothing of read-only mounts. */
function probeFolder(dir: string, what: string): void {
  const probe = join(dir, `.write-probe-${instanceTag()}`);
  try {
    closeSync(openSync(probe, "w"));
    rmSync(probe, { force: true });
  } catch (err) {
    throw new StartupRefused(`${what} ${dir} is not writable: ${reason(err)}`, { cause: err });
  }
}

export interface Readiness {
  ready: boolean;
  /** Why not, in one sentence. */
  reason?: string;
  freeBytes?: number;
}

/** Bytes an unprivileged writer may still use on the filesystem holding `dir`. */
export function freeBytes(dir: string): number {
  const fs = statfsSync(dir);
  return fs.bavail * fs.bsize;
}

/**
 * Whether a cache made from `file` may be written beside it: the cache's copy of the file and
 * what it makes from it may take twice the file for a moment, and as much again is left for
 * syncs, so a cache is never what fills the disk.
 */
export function roomForCache(file: string): boolean {
  return freeBytes(dirname(file)) >= 3 * statSync(file).size;
}

/** Cheap enough for a health check every few seconds: two system calls, no writes. */
export function readiness(
  dataDir: string,
  sessionDbPath: string | null,
  minFreeBytes: number,
): Readiness {
  try {
    accessSync(dataDir, constants.W_OK);
    if (sessionDbPath !== null) accessSync(sessionDbPath, constants.W_OK);
  } catch (err) {
    return { ready: false, reason: `not writable: ${reason(err)}` };
  }
  let free: number;
  try {
    free = freeBytes(dataDir);
  } catch (err) {
    return { ready: false, reason: `cannot read free space of ${dataDir}: ${reason(err)}` };
  }
  if (free < minFreeBytes) {
    return {
      ready: false,
      freeBytes: free,
      reason: `${dataDir} has ${mib(free)} MiB free, under ANKISYNCD_MIN_FREE_MEGS=${mib(minFreeBytes)}`,
    };
  }
  return { ready: true, freeBytes: free };
}

const mib = (bytes: number) => Math.floor(bytes / (1024 * 1024));

function reason(err: unknown): string {
  const e = err as NodeJS.ErrnoException;
  return e.code ? `${e.code} (${e.message.split("\n")[0]})` : String(e.message ?? err);
}
