/**
 * Full downloads made ahead. After a full upload the user's other devices download the file
 * next, and each download's copy, upgrade to schema 18 and zstd compression (the 100 MB body:
 * 1-2 s of CPU here) then happen while a client waits. Instead, right after the upload:
 *
 * 1. `copyReadySource`, under the user's lock: a copy of the closed collection, and the time
 *    its download bump will carry;
 * 2. `makeReadyDownload`, on a task thread (low priority, no lock): that copy made into what a
 *    current client gets (download.ts `makeClientCopy`), compressed as it is sent, and published
 *    with a record of the source's hash (storage/collection/readyDownload.ts);
 * 3. `takeReadyForDownload`, in a download under the lock: served as it is when the stored file
 *    still hashes the same, with the stored file's bump of the record's time, so the client's
 *    copy and the stored file end alike, as in any download. Any mismatch: the usual path.
 *
 * Made for one plan only, that of current Anki clients; others keep the usual path.
 */
import { copyFileSync, renameSync, rmSync, statfsSync, statSync } from "node:fs";
import { compressStream } from "../../compression.ts";
import { fileSize, fileStream, writeStreamToFile } from "../../platform/files.ts";
import {
  collectionFingerprint,
  hasReadyDownload,
  publishReadyDownload,
  readyBodyPath,
  removeReadyDownload,
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

/** What the task makes the ready download from. */
export interface ReadySource {
  collection: string;
  /** A temporary copy of the stored file, which the task consumes. */
  sourcePath: string;
  now: number;
}

/**
 * Step 1, under the user's lock. Null while a normal sync is under way (its writes would make
 * the copy stale at once), or when the disk is short: a cache must not be what fills it (the
 * copy and the body may take twice the file for a moment; as much again is left for syncs).
 */
export function copyReadySource(user: SyncState, now = Date.now()): ReadySource | null {
  if (user.session) return null;
  const collection = user.paths.collection;
  removeReadyDownload(collection);
  user.collection.closeForCopy();
  if (freeBytes(user.paths.dir) < 3 * statSync(collection).size) return null;
  const sourcePath = tempPathBeside(collection, ".ready-source");
  try {
    copyFileSync(collection, sourcePath);
  } catch (err) {
    rmSync(sourcePath, { force: true });
    throw err;
  }
  return { collection, sourcePath, now };
}

function freeBytes(dir: string): number {
  const fs = statfsSync(dir);
  return fs.bavail * fs.bsize;
}

/** Step 2, on a task thread. Every temporary is gone afterwards, whatever happens. */
export async function makeReadyDownload(source: ReadySource): Promise<boolean> {
  const { collection, sourcePath, now } = source;
  const bodyTemp = tempPathBeside(collection, ".ready-body");
  try {
    const hash = collectionFingerprint(sourcePath);
    const made = makeClientCopy(sourcePath, READY_PLAN, await loadUpgrade(), now);
    const originalSize = await fileSize(sourcePath);
    const compressed = compressStream(fileStream(sourcePath), "zstd");
    const bodySize = await writeStreamToFile(compressed, bodyTemp, Number.POSITIVE_INFINITY, {
      blocking: true,
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
      body: body.slice(body.lastIndexOf("/") + 1),
      bodySize,
    });
    return true;
  } finally {
    for (const leftover of [sourcePath, ...sqliteLeftovers(sourcePath), bodyTemp]) {
      rmSync(leftover, { force: true });
    }
  }
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
