/**
 * Full downloads made ahead. After a full upload the user's other devices download the file
 * next, and each download's copy, upgrade to schema 18 and zstd compression (the 100 MB body:
 * 1-2 s of CPU here) then happen while a client waits. Instead, right after the upload:
 *
 * 1. the source. From a current client, the file it uploaded, kept as received (schema 18, as
 *    Anki's server would send it; prepareUpload.ts), with the fingerprint of the stored file
 *    that upload became. Otherwise (an older client's schema 11 upload), `copyForReadyDownload`,
 *    a job under the user's lock once the user has been quiet a moment: a copy of the stored
 *    file at rest, as a download takes it, fingerprinted and upgraded in step 2;
 * 2. `makeReadyDownload`, on a task thread (low priority, no lock): the source made into what a
 *    current client gets (download.ts `makeClientCopy`) with the time its download bump will
 *    carry, compressed as it is sent, and published with a record of the stored file's
 *    fingerprint (storage/collection/readyDownload.ts);
 * 3. `takeReadyForDownload`, in a download under the lock: served as it is when the stored file
 *    still has that fingerprint, with the stored file's bump of the record's time, so the
 *    client's copy and the stored file end alike, as in any download. Any mismatch: the usual
 *    path.
 *
 * Made for one plan only, that of current Anki clients; others keep the usual path.
 */
import { copyFileSync, existsSync, renameSync, rmSync } from "node:fs";
import { basename } from "node:path";
import { compressStream } from "../../compression.ts";
import {
  fileSize,
  fileStream,
  WRITE_BEHIND_BYTES,
  writeStreamToFile,
} from "../../platform/files.ts";
import type { ZstdEffort } from "../../platform/zstd.ts";
import {
  collectionFingerprint,
  hasReadyDownload,
  publishReadyDownload,
  readyBodyPath,
  takeReadyDownload,
} from "../../storage/collection/readyDownload.ts";
import { fsyncPath } from "../../storage/collection/replace.ts";
import { sqliteLeftovers, tempPathBeside } from "../../storage/paths.ts";
import { roomForCache } from "../../storage/writable.ts";
import { type DownloadSnapshot, loadUpgrade, makeClientCopy } from "./download.ts";
import { type DownloadPlan, isReadyPlan, planKey, READY_PLAN } from "./downloadSchema.ts";
import type { SyncState } from "./syncState.ts";

export { READY_PLAN };

/** Which collection to make the ready download of, from which file (the task's to remove). */
export interface ReadySource {
  collection: string;
  /**
   * Without `storedFingerprint`: a copy of the stored file (step 1), fingerprinted and upgraded
   * here. With it: the file a current client uploaded, kept as received (schema 18 already),
   * and the fingerprint of the stored file that upload became.
   */
  source: string;
  storedFingerprint?: string;
  /** How hard the body is compressed (default "small", level 3: the fewest bytes). */
  effort?: ZstdEffort;
}

/**
 * Step 1, a job under the user's lock: the collection closed, as for a download, and copied.
 * Under the lock because the copy opens and closes a descriptor of the file, and that drops
 * every POSIX lock the process holds on it: a copy beside a job of the user that has it open
 * would take SQLite's locks from under that job. Skipped (false) during a normal sync, and when
 * the disk is short (`roomForCache`).
 */
export function copyForReadyDownload(user: SyncState, target: string): boolean {
  const collection = user.paths.collection;
  if (user.session || !existsSync(collection) || !roomForCache(collection)) return false;
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
export async function makeReadyDownload({
  collection,
  source,
  storedFingerprint,
  effort = "small",
}: ReadySource): Promise<boolean> {
  const sourcePath = source;
  const bodyTemp = tempPathBeside(collection, ".ready-body");
  try {
    const now = Date.now();
    const hash = storedFingerprint ?? collectionFingerprint(sourcePath);
    const upgrade = storedFingerprint === undefined ? await loadUpgrade() : null;
    const made = makeClientCopy(sourcePath, READY_PLAN, upgrade, now);
    const originalSize = await fileSize(sourcePath);
    const compressed = compressStream(fileStream(sourcePath), "zstd", effort);
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

/**
 * Step 3, under the user's lock, in place of download.ts's snapshot: the ready body as the
 * snapshot (already compressed) and the time of the stored file's bump, or null.
 */
export function takeReadyForDownload(
  user: SyncState,
  plan: DownloadPlan,
): { snapshot: DownloadSnapshot; now: number } | null {
  const collection = user.paths.collection;
  if (!isReadyPlan(plan) || !hasReadyDownload(collection)) return null;
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
