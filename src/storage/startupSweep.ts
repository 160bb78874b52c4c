/**
 * At start: every user's temporaries that no running process owns are removed and a media
 * journal left by a crash is replayed (the user's lock says nobody syncs that user meanwhile;
 * a busy user is swept when next locked, and a journal is replayed whenever the store opens),
 * a collection left in WAL mode by a crash is put back at rest (so a copy of the file, e.g. a
 * file-level backup, is whole before the user syncs again), then the lease files of dead
 * processes. The media store and the collection file's module are loaded only for such a
 * leftover: the main thread has no other use for them, and every module stays in its memory.
 */
import { existsSync, readdirSync, statSync } from "node:fs";
import { join } from "node:path";
import type { Logger } from "../log.ts";
import { removeDeadLeases } from "./instance.ts";
import type { MediaStoreOptions } from "./media/mediaStore.ts";
import { journalPath, userPaths } from "./paths.ts";
import { removeDeadTemporaries } from "./temporaries.ts";
import { UserLock } from "./userLock.ts";

export async function sweepDeadTemporaries(
  dataDir: string,
  log: Logger,
  media: MediaStoreOptions = { networkFs: "auto" },
): Promise<void> {
  let files = 0;
  let bytes = 0;
  for (const uuid of userNames(dataDir)) {
    const paths = userPaths(dataDir, uuid);
    const lock = UserLock.tryAcquire(paths.dir);
    if (!lock) continue;
    try {
      for (const temp of removeDeadTemporaries(dataDir, paths.dir)) {
        files++;
        bytes += temp.bytes;
      }
      if (hasJournal(paths)) await replayMediaJournal(paths, media, log);
      if (existsSync(`${paths.collection}-wal`))
        await restCollectionLeftInWal(paths.collection, log);
    } finally {
      lock.release();
    }
  }
  removeDeadLeases(dataDir);
  if (files > 0) log.info("removed temporaries of interrupted requests", { files, bytes });
}

function hasJournal(paths: ReturnType<typeof userPaths>): boolean {
  try {
    return statSync(journalPath(paths)).size > 0;
  } catch {
    return false;
  }
}

/** Opening the store replays its journal; a failure is left for the next open to retry. */
async function replayMediaJournal(
  paths: ReturnType<typeof userPaths>,
  media: MediaStoreOptions,
  log: Logger,
): Promise<void> {
  const { MediaStore } = await import("./media/mediaStore.ts");
  const store = new MediaStore(paths, media);
  try {
    store.db();
    log.info("replayed the media journal of an interrupted run", { user: store.paths.dir });
  } catch (err) {
    log.warn("media journal not replayed; retried when the user's media is next opened", {
      user: store.paths.dir,
      error: (err as Error).message,
    });
  } finally {
    store.close();
  }
}

/** Another program holding the file (a web app) keeps it; the server's next open recovers it. */
async function restCollectionLeftInWal(collection: string, log: Logger): Promise<void> {
  const { restCollectionFile } = await import("./collection/collectionFile.ts");
  try {
    restCollectionFile(collection);
    log.info("collection left in WAL mode by an interrupted run put back at rest", { collection });
  } catch (err) {
    log.warn("collection left in WAL mode; recovered when it is next opened", {
      collection,
      error: (err as Error).message,
    });
  }
}

function userNames(dataDir: string): string[] {
  const root = join(dataDir, "collections");
  try {
    return readdirSync(root, { withFileTypes: true })
      .filter((e) => e.isDirectory() && /^[A-Za-z0-9][A-Za-z0-9_-]{0,127}$/.test(e.name))
      .map((e) => e.name);
  } catch {
    return [];
  }
}
