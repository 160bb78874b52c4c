/**
 * Full download: the client replaces its collection with the server's. The usn is bumped (in
 * the copy sent and in the stored file alike) so the client's next normal sync does not fetch
 * again what the file already contains. A current client gets the copy in schema 18, as
 * Anki's server sends it (the stored schema 11 file would make the client upgrade and
 * re-analyze it on opening); which clients do is downloadSchema.ts's decision. The user's
 * worker only takes a snapshot; compressing and sending it happens while streaming.
 *
 * The stored file's bump (a commit: two fsyncs) is not waited for before the copy is sent:
 * the worker applies it right after the snapshot (`bumpStoredUsn`), before any other job of
 * the user, and the caller holds back the end of the body until it is durable, so no client
 * ever has a complete copy whose usn the server could lose.
 */
import { copyFileSync, rmSync } from "node:fs";
import { fileSize } from "../../platform/files.ts";
import { type Db, openDatabase } from "../../platform/sqlite.ts";
import type { UpgradeOptions } from "../../storage/collection/convert/upgrade.ts";
import { tempPathBeside } from "../../storage/paths.ts";
import type { DownloadPlan } from "./downloadSchema.ts";
import type { SyncState } from "./syncState.ts";

export interface DownloadSnapshot {
  /** A temporary copy of the collection the caller streams to the client and then deletes. */
  path: string;
  /** Its size (the `anki-original-size` of a v11 response). */
  originalSize: number;
  /** The schema the copy is in. */
  schema: 11 | 18;
  /** Why a schema 18 copy was planned and a schema 11 one is sent (the client upgrades it). */
  notUpgraded?: string;
  /** The file is the body as sent (zstd), made ahead (readyDownload.ts): not compressed again. */
  compressed?: boolean;
}

export async function snapshotForDownload(
  user: SyncState,
  plan: DownloadPlan,
  now = Date.now(),
): Promise<DownloadSnapshot> {
  // Awaited first: from here on nothing yields, so no other job of the user runs in between.
  const upgrade = plan.schema === 18 ? await loadUpgrade() : null;
  user.abortSession();
  // Closed, the file on disk is complete and stable while it is copied (a new user's empty
  // collection is created).
  user.collection.closeForCopy();
  const path = tempPathBeside(user.paths.collection, ".download");
  try {
    // The copy is made and bumped before the stored file is: if the disk is full, nothing
    // stored has changed and nothing is left behind.
    copyFileSync(user.paths.collection, path);
    const { schema, notUpgraded } = makeClientCopy(path, plan, upgrade, now);
    return { path, originalSize: await fileSize(path), schema, notUpgraded };
  } catch (err) {
    for (const leftover of [path, `${path}-journal`]) rmSync(leftover, { force: true });
    throw err;
  }
}

/**
 * Turns a copy of the stored file into what the client gets: upgraded when planned (and
 * possible), its usn bumped as at `now`. `upgrade`: loaded by the caller when the plan needs it.
 */
export function makeClientCopy(
  path: string,
  plan: DownloadPlan,
  upgrade: Upgrade | null,
  now: number,
): { schema: 11 | 18; notUpgraded?: string } {
  const copy = scratchDatabase(path, upgrade !== null);
  let notUpgraded: string | undefined;
  try {
    if (upgrade && plan.schema === 18) {
      notUpgraded = upgradeOrReason(copy, upgrade, { unknownKeys: plan.unknownKeys });
    }
    bumpUsn(copy, now);
  } finally {
    copy.close();
  }
  const schema = plan.schema === 18 && notUpgraded === undefined ? 18 : 11;
  return notUpgraded === undefined ? { schema } : { schema, notUpgraded };
}

/**
 * The copy is a temporary file: a crash leaves it to the startup sweep, so its change needs no
 * fsync (with the journal, those took 7-12 ms of every download here). The journal is kept in
 * memory so that an upgrade that fails half-way rolls back; without an upgrade none is needed.
 */
function scratchDatabase(path: string, upgrade: boolean): Db {
  const db = openDatabase(path, { create: false, unicase: upgrade });
  try {
    db.exec(`PRAGMA journal_mode = ${upgrade ? "MEMORY" : "OFF"}`);
    db.exec("PRAGMA synchronous = OFF");
    return db;
  } catch (err) {
    db.close();
    throw err;
  }
}

export type Upgrade = (db: Db, options: UpgradeOptions) => void;

/**
 * Loaded when first needed, not when the worker starts: the conversion brings protobufjs,
 * which nothing else in a user's worker uses (startup time, idle memory).
 */
export async function loadUpgrade(): Promise<Upgrade> {
  return (await import("../../storage/collection/convert/upgrade.ts")).upgradeToSchema18;
}

/**
 * After a full upload every other device of the user has to download the collection, so the
 * conversion is loaded now (once per worker thread: 50-75 ms of its time here) and run once on
 * an empty collection (warmUp.ts: a 10 MB collection's first upgrade on a thread took ~70 ms,
 * ~30 after the warm-up, ~20 warm) rather than in the first of those downloads. Deferred to a
 * later task, so the upload's reply goes out first; a failure shows in the download that needs
 * the conversion.
 */
export function loadUpgradeSoon(): void {
  setTimeout(() => {
    loadUpgrade()
      .then(() => import("../../storage/collection/convert/warmUp.ts"))
      .then(({ warmUpConversion }) => warmUpConversion())
      .catch(() => undefined);
  }, 0);
}

/** Upgrades the copy; a collection the upgrade does not handle stays schema 11 (the reason). */
function upgradeOrReason(db: Db, upgrade: Upgrade, options: UpgradeOptions): string | undefined {
  try {
    upgrade(db, options);
    return undefined;
  } catch (err) {
    return err instanceof Error ? err.message : String(err);
  }
}

/**
 * The stored file's side of a download whose snapshot was taken at `now`: the same bump the
 * copy got. Run before any other job of the user touches the collection.
 */
export function bumpStoredUsn(user: SyncState, now: number): void {
  bumpUsn(user.collection.open(), now);
}

function bumpUsn(db: Db, now: number): void {
  db.query("update col set usn = usn + 1, mod = $now").run({ now });
}
