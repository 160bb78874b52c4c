/**
 * Atomic, durable replacement of a user's collection, keeping the replaced file as a backup
 * so a mistaken full upload can be undone by an admin.
 */
import {
  closeSync,
  existsSync,
  fsyncSync,
  linkSync,
  mkdirSync,
  openSync,
  readdirSync,
  renameSync,
  rmSync,
} from "node:fs";
import { open, rm } from "node:fs/promises";
import { dirname, join } from "node:path";

export function fsyncPath(path: string): void {
  const fd = openSync(path, "r");
  try {
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
}

/** `fsyncPath` on the thread pool: the calling thread is free while the disk commits. */
export async function fsyncPathAsync(path: string): Promise<void> {
  const handle = await open(path, "r");
  try {
    await handle.sync();
  } finally {
    await handle.close();
  }
}

export interface ReplaceOptions {
  /** Backups kept in `backupDir`; 0: none made. */
  keep: number;
  /** `incoming` is on disk already (its writer synced it): not synced again. */
  synced?: boolean;
  /**
   * Older backups past `keep` are left for the caller to prune (`pruneBackups`) once it has
   * answered: removing a replaced collection is no part of the swap's durability.
   */
  pruneLater?: boolean;
  now?: Date;
}

/** Moves `incoming` over `target`; the old file stays reachable in `backupDir` (hard link). */
export function replaceWithBackup(
  incoming: string,
  target: string,
  backupDir: string,
  { keep, synced = false, pruneLater = false, now = new Date() }: ReplaceOptions,
): string | null {
  if (!synced) fsyncPath(incoming);
  let backup: string | null = null;
  if (keep > 0 && existsSync(target)) {
    mkdirSync(backupDir, { recursive: true });
    backup = join(backupDir, `collection-${stamp(now)}.anki2`);
    // A link, not a rename: there is never a moment without a collection at `target`.
    linkSync(target, backup);
    fsyncPath(backupDir);
  }
  renameSync(incoming, target);
  fsyncPath(dirname(target));
  if (!pruneLater) pruneBackups(backupDir, keep);
  return backup;
}

export function pruneBackups(backupDir: string, keep: number): void {
  for (const old of backupsPast(backupDir, keep)) rmSync(old, { force: true });
}

/**
 * `pruneBackups` with the removals on the thread pool: freeing a 100 MB backup took 70-120 ms
 * of the calling thread here (ext4 with `discard`), which on a collection worker held up the
 * other users pinned to it.
 */
export async function pruneBackupsAsync(backupDir: string, keep: number): Promise<void> {
  for (const old of backupsPast(backupDir, keep)) await rm(old, { force: true });
}

/** The oldest backups beyond the `keep` newest (their names sort by time). */
function backupsPast(backupDir: string, keep: number): string[] {
  if (!existsSync(backupDir)) return [];
  const files = readdirSync(backupDir)
    .filter((f) => f.startsWith("collection-") && f.endsWith(".anki2"))
    .sort();
  return files.slice(0, Math.max(0, files.length - keep)).map((f) => join(backupDir, f));
}

function stamp(now: Date): string {
  const rand = crypto.getRandomValues(new Uint16Array(1))[0]?.toString(16).padStart(4, "0");
  return `${now.toISOString().replace(/[:.]/g, "-")}-${rand}`;
}
