/**
 * Full downloads made ahead. After a full upload the user's other devices download the file
 * next, and each download's copy, upgrade to schema 18 and zstd compression (the 100 MB body:
 * 1-2 s of CPU here) then happen while a client waits. Instead, right after the upload:
 *
 * 1. the source. From a current client, the file it uploaded, copied as received (schema 18,
 *    as Anki's server would send it) by the thread that received it, as soon as it is written
 *    (executor/unpackOnTask.ts). Otherwise (an older client's schema 11 upload),
 *    `copyForReadyDownload`, a job under the user's lock once the user has been quiet a moment:
 *    a copy of the stored file at rest, as a download takes it, fingerprinted and upgraded in
 *    step 2;
 * 2. `makeReadyBody`, on a task thread (low priority, no lock): the source made into what a
 *    current client gets (download.ts `makeClientCopy`) with the time its download bump will
 *    carry, compressed as it is sent; then `publishReadyBody` with the fingerprint of the stored
 *    file it stands for (storage/collection/readyDownload.ts). An upload's body is made while
 *    the upload is checked and converted, and published only once it is installed, with the
 *    fingerprint of the file installed; a refused upload's is removed;
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
import { type DownloadSnapshot, loadUpgrade, makeClientCopy, type Upgrade } from "./download.ts";
import { type DownloadPlan, isReadyPlan, planKey, READY_PLAN } from "./downloadSchema.ts";
import type { SyncState } from "./syncState.ts";

export { READY_PLAN };

/** Which collection to make the ready download of, from which copy (the task's to remove). */
export interface ReadySource {
  collection: string;
  /** A copy of the stored file (step 1), fingerprinted and upgraded here. */
  source: string;
}

/** Where a body is made from a file already in the current clients' schema, and how. */
export interface ReadyBodyInput {
  /** The file (the task's to remove), and where the compressed body is written. */
  source: string;
  body: string;
  /** How hard the body is compressed (level 1 or 3). */
  effort: ZstdEffort;
  /** Given for a copy of the stored file (schema 11): upgraded first. */
  upgrade?: Upgrade | null;
}

/** A body made and synced, not yet published: what its record will say of it. */
export interface ReadyBody {
  path: string;
  now: number;
  schema: 11 | 18;
  notUpgraded?: string;
  originalSize: number;
  bodySize: number;
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
 * Step 2 for a copy of the stored file, on a task thread, without the user's lock: only a copy
 * whose bytes equal the stored file's at the time of a download is ever served, so a job of the
 * user that changes the file meanwhile only makes this one unused.
 */
export async function makeReadyDownload({ collection, source }: ReadySource): Promise<boolean> {
  // Until makeReadyBody takes the source over (it removes it whatever happens), it is ours.
  let fingerprint: string;
  let upgrade: Upgrade;
  try {
    fingerprint = collectionFingerprint(source);
    upgrade = await loadUpgrade();
  } catch (err) {
    removeWithLeftovers(source);
    throw err;
  }
  const body = tempPathBeside(collection, ".ready-body");
  const made = await makeReadyBody({ source, body, effort: "small", upgrade });
  publishReadyBody(collection, made, fingerprint);
  return true;
}

/**
 * The body a current client's download of `source` would get, with the time its bump carries,
 * written to `body` and synced. The source is gone afterwards, and the body too if it fails.
 */
export async function makeReadyBody({
  source,
  body,
  effort,
  upgrade = null,
}: ReadyBodyInput): Promise<ReadyBody> {
  try {
    const now = Date.now();
    const made = makeClientCopy(source, READY_PLAN, upgrade, now);
    const originalSize = await fileSize(source);
    const compressed = compressStream(fileStream(source), "zstd", effort);
    // Flushed as it goes: one sync of the whole body at the end would hold up every other
    // user's commit on the same disk for as long (platform/files.ts).
    const bodySize = await writeStreamToFile(compressed, body, Number.POSITIVE_INFINITY, {
      blocking: true,
      writeBehindBytes: WRITE_BEHIND_BYTES,
    });
    fsyncPath(body);
    return { path: body, now, ...made, originalSize, bodySize };
  } catch (err) {
    rmSync(body, { force: true });
    throw err;
  } finally {
    removeWithLeftovers(source);
  }
}

function removeWithLeftovers(path: string): void {
  for (const file of [path, ...sqliteLeftovers(path)]) rmSync(file, { force: true });
}

/**
 * The body becomes the collection's ready download, for as long as the stored file's
 * fingerprint is `fingerprint`: moved to its own name, then the record naming it published.
 */
export function publishReadyBody(collection: string, made: ReadyBody, fingerprint: string): void {
  const { path, ...described } = made;
  const body = readyBodyPath(collection);
  try {
    renameSync(path, body);
    publishReadyDownload(collection, {
      source: fingerprint,
      plan: planKey(READY_PLAN),
      ...described,
      body: basename(body),
    });
  } catch (err) {
    for (const file of [path, body]) rmSync(file, { force: true });
    throw err;
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
