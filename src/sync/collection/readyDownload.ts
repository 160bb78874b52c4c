/**
 * Full downloads made ahead. After a full upload the user's other devices download the file
 * next, and each download's copy, upgrade to schema 18 and zstd compression (the 100 MB body:
 * 1-2 s of CPU here) then happen while a client waits. Instead, right after the upload:
 *
 * 1. `copyForReadyDownload`, a job under the user's lock once the user has been quiet a moment:
 *    a copy of the stored file at rest, as a download takes it;
 * 2. `makeReadyDownload`, on a task thread (low priority, no lock): that copy made into what a
 *    current client gets (download.ts `makeClientCopy`) with the time its download bump will
 *    carry, compressed as it is sent, and published with a record of the source's hash
 *    (storage/collection/readyDownload.ts);
 * 3. `takeReadyForDownload`, in a download under the lock: served as it is when the stored file
 *    still hashes the same, with the stored file's bump of the record's time, so the client's
 *    copy and the stored file end alike, as in any download. Any mismatch: the usual path.
 *
 * Made for one plan only, that of current Anki clients; others keep the usual path.
 */
import { copyFileSync, existsSync, renameSync, rmSync, statfsSync, statSync } from "node:fs";
import { basename, dirname } from "node:path";
import { compressStream } from "../../compression.ts";
import {
  fileSize,
  fileStream,
  WRITE_BEHIND_BYTES,
  writeStreamToFile,
} from "../../platform/files.ts";
import {
  collectionFingerprint,
  hasReadyDownload,
  publishReadyDownload,
  readyBodyPath,
  takeReadyDownload,
} from "../../storage/collection/readyDownload.ts";
import { fsyncPath } from "../../storage/collection/replace.ts";
import { sqliteLeftovers, tempPathBeside } from "../../storage/paths.ts";
import { type DownloadSnapshot, loadUpgrade, makeClientCopy } from "./download.ts";
import type { DownloadPlan } from "./downloadSchema.ts";
import type { SyncState } from "./syncState.ts";

/** The plan a ready download is made for: Anki 25.09 to 26.09 (downloadSchema.ts). */
export const READY_PLAN: DownloadPlan = { schema: 18, unknownKeys: "keep" };

function planKey(plan: DownloadPlan): string {
  return JSON.stringify(plan);
}

/** Which collection to make the ready download of, from which copy of it (the task's to remove). */
export interface ReadySource {
  collection: string;
  source: string;
}

/**
 * Step 1, a job under the user's lock: the collection closed, as for a download, and copied.
 * Under the lock because the copy opens and closes a descriptor of the file, and that drops
 * every POSIX lock the process holds on it: a copy beside a job of the user that has it open
 * would take SQLite's locks from under that job. Skipped (false) during a normal sync, and when
 * the disk is short: a cache must not be what fills it (the copy and the body may take twice the
 * file for a moment; as much again is left for syncs).
 */
export function copyForReadyDownload(user: SyncState, target: string): boolean {
  const collection = user.paths.collection;
  if (user.session || !existsSync(collection)) return false;
  if (freeBytes(dirname(collection)) < 3 * statSync(collection).size) return false;
  user.collection.closeForCopy();
  copyFileSync(collection, target);
  return true;
}

/**
 * Step 2, on a task thread, without the user's lock: only a copy whose bytes equal the stored
 * file's at the time of a download is ever served, so a job of the user that changes the file
 * meanwhile only makes this one unused. Every temporary is gone afterwards, the source included,
 * whatever happens.
 */
export async function makeReadyDownload({ collection, source }: ReadySource): Promise<boolean> {
  const sourcePath = source;
  const bodyTemp = tempPathBeside(collection, ".ready-body");
  try {
    const now = Date.now();
    const hash = collectionFingerprint(sourcePath);
    const made = makeClientCopy(sourcePath, READY_PLAN, await loadUpgrade(), now);
    const originalSize = await fileSize(sourcePath);
    const compressed = compressStream(fileStream(sourcePath), "zstd");
    // Flushed as it goes: one sync of the whole body at the end would hold up every other
    // user's commit on the same disk for as long (platform/files.ts).
    const bodySize = await writeStreamToFile(compressed, bodyTemp, Number.POSITIVE_INFINITY, {
      blocking: true,
      writeBehindBytes: WRITE_BEHIND_BYTES,
    });
    fsyncPath(bodyTemp);
    const body = readyBodyPath(collection);
    renameSync(bodyTemp, body);
    publishReadyDownload(collection, {
      source: hash,
      plan: planKey(READY_PLAN),
      now,
      ...made,
      originalSize,
      body: basename(body),
      bodySize,
    });
    return true;
  } finally {
    for (const leftover of [sourcePath, ...sqliteLeftovers(sourcePath), bodyTemp]) {
      rmSync(leftover, { force: true });
    }
  }
}

function freeBytes(dir: string): number {
  const fs = statfsSync(dir);
  return fs.bavail * fs.bsize;
}

/**
 * Step 3, under the user's lock, in place of download.ts's snapshot: the ready body as the
 * snapshot (already compressed) and the time of the stored file's bump, or null.
 */
export function takeReadyForDownload(
  user: SyncState,
  plan: DownloadPlan,
): { snapshot: DownloadSnapshot; now: number } | null {
  const collection = user.paths.collection;
  if (planKey(plan) !== planKey(READY_PLAN) || !hasReadyDownload(collection)) return null;
  user.abortSession();
  user.collection.closeForCopy();
  const path = tempPathBeside(collection, ".download");
  const record = takeReadyDownload(collection, planKey(plan), path);
  if (!record) return null;
  const snapshot: DownloadSnapshot = {
    path,
    originalSize: record.originalSize,
    schema: record.schema,
    compressed: true,
  };
  if (record.notUpgraded !== undefined) snapshot.notUpgraded = record.notUpgraded;
  return { snapshot, now: record.now };
}
