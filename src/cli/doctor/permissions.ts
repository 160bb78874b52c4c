/**
 * Everything must be readable and writable (folders also searchable) by the user the server
 * runs as. Judged from owner, group and mode bits (supplementary groups and ACLs are not seen
 * unless we are that user). Run as root, --fix gives what it cannot use to that user.
 */
import { chmodSync, chownSync, lstatSync, type Stats } from "node:fs";
import { basename } from "node:path";
import type { DoctorOptions } from "./options.ts";
import type { CheckContext } from "./report.ts";
import { dirAndChildren, walk } from "./walk.ts";

/** Permission problems listed one by one before they are only counted. */
const MAX_LISTED = 20;

/** `dir` and everything below it (`recursive`) or directly in it, minus the folders in `skip`. */
export function checkPermissions(
  ctx: CheckContext,
  dir: string,
  recursive: boolean,
  skip: ReadonlySet<string> = new Set(),
): void {
  const entries = recursive ? [...walk(dir, skip)] : dirAndChildren(dir, skip);
  let listed = 0;
  let unlisted = 0;
  for (const [path, stats] of entries) {
    // The lock's journal is ours (it exists while we hold the lock) and goes with the lock.
    if (stats.isSymbolicLink() || basename(path) === ".lock-journal") continue;
    if (canUse(stats, ctx.options.uid, ctx.options.gid)) continue;
    const fixed = ctx.options.fix && giveToContainerUser(ctx, path, stats);
    if (listed < MAX_LISTED || fixed) {
      listed++;
      ctx.add(path, "problem", accessProblem(stats, ctx.options, fixed), fixed || undefined);
    } else unlisted++;
  }
  if (unlisted > 0) {
    ctx.add(dir, "problem", `${unlisted} more files or folders the server's user cannot use`);
  }
}

function accessProblem(stats: Stats, { uid, gid }: DoctorOptions, fixed: boolean): string {
  const mode = (stats.mode & 0o7777).toString(8).padStart(4, "0");
  const what = `owner ${stats.uid}:${stats.gid} mode ${mode}: user ${uid}:${gid} cannot ${stats.isDirectory() ? "use this folder" : "read and write this file"}`;
  if (fixed) return `${what}: given to ${uid}:${gid}`;
  return `${what}${isRoot() ? " (--fix chowns it)" : ` (as root: chown ${uid}:${gid})`}`;
}

function canUse(stats: Stats, uid: number, gid: number): boolean {
  if (uid === 0) return true;
  const need = stats.isDirectory() ? 0o7 : 0o6;
  const bits =
    stats.uid === uid
      ? (stats.mode >> 6) & 0o7
      : stats.gid === gid
        ? (stats.mode >> 3) & 0o7
        : stats.mode & 0o7;
  return (bits & need) === need;
}

function isRoot(): boolean {
  return process.getuid?.() === 0;
}

/** chown to the container user (root only), plus owner read/write(/search) bits if missing. */
export function giveToContainerUser(ctx: CheckContext, path: string, stats?: Stats): boolean {
  const { uid, gid } = ctx.options;
  if (!isRoot() || uid === 0) return false;
  try {
    const s = stats ?? lstatSync(path);
    chownSync(path, uid, gid);
    const need = s.isDirectory() ? 0o700 : 0o600;
    if ((s.mode & need) !== need) chmodSync(path, (s.mode & 0o7777) | need);
    return true;
  } catch {
    return false;
  }
}
