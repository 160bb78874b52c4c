/**
 * Picks up a data folder laid out by Anki's own sync server (`<base>/<username>/collection.anki2`,
 * `media/`, `media.db`) for the local user of that name. Nothing is moved or deleted: the
 * databases are copied consistently (VACUUM INTO also captures a WAL left by a crash) and media
 * files are hard-linked, so the old server's folder stays usable.
 */
import {
  copyFileSync,
  existsSync,
  linkSync,
  mkdirSync,
  readdirSync,
  renameSync,
  statSync,
} from "node:fs";
import { join } from "node:path";
import type { LocalCredential } from "../identity/localUsers.ts";
import type { ProfileStore } from "../identity/profiles.ts";
import type { Logger } from "../log.ts";
import { openDatabase } from "../platform/sqlite.ts";
import { tempPathBeside, userPaths } from "../storage/paths.ts";

export async function adoptAnkiServerFolders(
  dataDir: string,
  users: LocalCredential[],
  profiles: ProfileStore,
  log: Logger,
): Promise<void> {
  for (const user of users) {
    const source = join(dataDir, user.username);
    if (!isSafeName(user.username) || !existsSync(join(source, "collection.anki2"))) continue;
    const profile = await profiles.byId(user.profileId);
    if (!profile) continue;
    const target = userPaths(dataDir, profile.uuid);
    if (existsSync(target.collection)) continue;
    try {
      adoptFolder(source, target);
      log.info("adopted Anki server data", { user: user.username, from: source, to: target.dir });
    } catch (err) {
      log.error("could not adopt Anki server data; left untouched", {
        user: user.username,
        error: (err as Error).message,
      });
    }
  }
}

function adoptFolder(source: string, target: ReturnType<typeof userPaths>): void {
  mkdirSync(target.dir, { recursive: true });
  if (existsSync(join(source, "media")) && !existsSync(target.media))
    linkTree(join(source, "media"), target.media);
  if (existsSync(join(source, "media.db")) && !existsSync(target.mediaDb)) {
    copyDatabase(join(source, "media.db"), target.mediaDb, false);
  }
  // The collection last: its presence marks the adoption as done.
  copyDatabase(join(source, "collection.anki2"), target.collection, true);
}

/** A consistent copy of a live or crashed SQLite file; the schema is converted on first open. */
function copyDatabase(from: string, to: string, unicase: boolean): void {
  const temp = tempPathBeside(to, ".adopt");
  const db = openDatabase(from, { readonly: true, unicase });
  try {
    db.query("VACUUM INTO $path").run({ path: temp });
  } finally {
    db.close();
  }
  renameSync(temp, to);
}

function linkTree(from: string, to: string): void {
  const temp = tempPathBeside(to, ".adopt");
  mkdirSync(temp);
  for (const name of readdirSync(from)) {
    const file = join(from, name);
    if (!statSync(file).isFile()) continue;
    try {
      linkSync(file, join(temp, name));
    } catch {
      copyFileSync(file, join(temp, name));
    }
  }
  renameSync(temp, to);
}

function isSafeName(name: string): boolean {
  return (
    name !== "" && name !== "." && name !== ".." && name !== "collections" && !/[/\\\0]/.test(name)
  );
}
