/** Where a user's files live: `<data>/collections/<uuid>/`. */
import { join } from "node:path";
import { instanceTag } from "./instance.ts";

export interface UserPaths {
  /** The data folder this user's folder belongs to. */
  dataDir: string;
  dir: string;
  collection: string;
  media: string;
  mediaDb: string;
  backups: string;
}

const UUID_LIKE = /^[A-Za-z0-9][A-Za-z0-9_-]{0,127}$/;

export function userPaths(dataDir: string, uuid: string): UserPaths {
  // The uuid becomes a path component; refuse anything that could escape the data folder.
  if (!UUID_LIKE.test(uuid)) throw new Error(`unsafe user key: ${JSON.stringify(uuid)}`);
  const dir = join(dataDir, "collections", uuid);
  return {
    dataDir,
    dir,
    collection: join(dir, "collection.anki2"),
    media: join(dir, "media"),
    mediaDb: join(dir, "media.db"),
    backups: join(dir, "backups"),
  };
}

/** A user's media journal (storage/media/journal.ts). */
export function journalPath(paths: UserPaths): string {
  return join(paths.dir, "media.journal");
}

/** A temporary beside the user's media folder, e.g. an incoming media batch. */
export function mediaTempPath(paths: UserPaths, suffix: string): string {
  return tempPathBeside(paths.media, suffix);
}

/**
 * A unique temporary name in the same folder as `target`, so a rename over it is atomic. It
 * names the process that made it (storage/instance.ts), so leftovers of dead ones can be found.
 */
export function tempPathBeside(target: string, suffix: string): string {
  const rand = crypto.getRandomValues(new Uint32Array(2)).join("");
  return `${target}.tmp-${instanceTag()}-${rand}${suffix}`;
}

/** The process tag in a name made by `tempPathBeside`, or null if it is not a temporary. */
export function temporaryOwner(name: string): string | null {
  return /\.tmp-(\d+(?:x[0-9a-f]+)?)-\d+/.exec(name)?.[1] ?? null;
}

/** The files SQLite may keep beside a database (rollback journal, WAL and its index). */
export function sqliteLeftovers(path: string): string[] {
  return [`${path}-journal`, `${path}-wal`, `${path}-shm`];
}
