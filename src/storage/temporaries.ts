/**
 * Temporary files in a user's folder (upload bodies, prepared collections, download copies,
 * media staging): how much room they take, and removing those of processes that are gone.
 * Only called while holding the user's lock or for a user nobody else can be syncing; a live
 * process's temporaries are never touched (storage/instance.ts says which are live).
 */
import { lstatSync, rmSync } from "node:fs";
import { join } from "node:path";
import { namesIn } from "./dirNames.ts";
import { instanceAlive, instanceTag } from "./instance.ts";
import { temporaryOwner } from "./paths.ts";

/** Ours but this old: a leak of a crashed thread; nothing in flight takes a day. */
const OWN_STALE_MS = 24 * 60 * 60 * 1000;

export interface Temporary {
  path: string;
  owner: string;
  bytes: number;
  mtimeMs: number;
}

/** The temporaries directly in `userDir` (staging folders counted with their contents). */
export function listTemporaries(userDir: string): Temporary[] {
  const found: Temporary[] = [];
  for (const name of namesIn(userDir)) {
    const owner = temporaryOwner(name);
    if (owner === null) continue;
    const path = join(userDir, name);
    try {
      found.push({ path, owner, bytes: sizeOf(path), mtimeMs: lstatSync(path).mtimeMs });
    } catch {
      // Removed by its owner meanwhile.
    }
  }
  return found;
}

export function temporaryBytes(userDir: string): number {
  return listTemporaries(userDir).reduce((sum, t) => sum + t.bytes, 0);
}

/** Temporaries nobody can be using: their process is gone (or it is ours and a day old). */
export function deadTemporaries(dataDir: string, userDir: string, now = Date.now()): Temporary[] {
  const alive = new Map<string, boolean>();
  return listTemporaries(userDir).filter((t) => {
    if (t.owner === instanceTag()) return now - t.mtimeMs > OWN_STALE_MS;
    let live = alive.get(t.owner);
    if (live === undefined) {
      live = instanceAlive(dataDir, t.owner);
      alive.set(t.owner, live);
    }
    return !live;
  });
}

/** Removes the dead temporaries of one user; returns what went. Errors are left for next time. */
export function removeDeadTemporaries(dataDir: string, userDir: string): Temporary[] {
  const removed: Temporary[] = [];
  for (const temp of deadTemporaries(dataDir, userDir)) {
    try {
      rmSync(temp.path, { recursive: true, force: true });
      removed.push(temp);
    } catch {
      // Not removable now (permissions, read-only); the next sweep tries again.
    }
  }
  return removed;
}

function sizeOf(path: string): number {
  const stats = lstatSync(path);
  if (!stats.isDirectory()) return stats.size;
  return namesIn(path).reduce((sum, name) => {
    try {
      return sum + sizeOf(join(path, name));
    } catch {
      return sum;
    }
  }, 0);
}
