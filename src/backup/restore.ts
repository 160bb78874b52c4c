/**
 * `admin restore <dir>`: puts a backup (backup.ts) into an empty data folder. Every file is
 * checked against the manifest before anything is written, and session.db is written last, so
 * a folder without it is an unfinished restore (empty it and run again).
 */
import { existsSync, mkdirSync, readdirSync } from "node:fs";
import { dirname, join } from "node:path";
import type { Config } from "../config.ts";
import { mediaFilePath } from "../storage/media/files.ts";
import { userPaths } from "../storage/paths.ts";
import { copyDurably, fileSha256, fsyncFile, readIfPresent, sha1Hex } from "./copying.ts";
import { BackupError, type FileEntry, type Manifest, readManifest } from "./manifest.ts";

/** What a fresh filesystem or volume may already hold. */
const IGNORABLE = new Set(["lost+found"]);

export function restoreDataFolder(config: Config, source: string): Manifest {
  const manifest = readManifest(source);
  verifyBackup(source, manifest);
  requireEmptyTarget(config);
  mkdirSync(config.dataDir, { recursive: true });
  for (const user of manifest.users) {
    const to = userPaths(config.dataDir, user.uuid);
    mkdirSync(to.dir, { recursive: true });
    if (user.collection) copyDurably(join(source, user.collection.path), to.collection);
    if (user.mediaDb) copyDurably(join(source, user.mediaDb.path), to.mediaDb);
    if (user.mediaFiles.length > 0) mkdirSync(to.media, { recursive: true });
    const from = userPaths(source, user.uuid);
    for (const [name] of user.mediaFiles) {
      copyDurably(mediaFilePath(from.media, name), mediaFilePath(to.media, name));
    }
    if (user.mediaFiles.length > 0) fsyncFile(to.media);
    fsyncFile(to.dir);
  }
  mkdirSync(dirname(config.sessionDbPath), { recursive: true });
  copyDurably(join(source, manifest.sessionDb.path), config.sessionDbPath);
  fsyncFile(dirname(config.sessionDbPath));
  return manifest;
}

/** Every file the manifest names is there with its checksum; throws naming the first few. */
export function verifyBackup(source: string, manifest: Manifest): void {
  const problems: string[] = [];
  const checkFile = (entry: FileEntry | null) => {
    if (!entry) return;
    const path = join(source, entry.path);
    if (!existsSync(path)) problems.push(`${path} is missing`);
    else if (fileSha256(path).sha256 !== entry.sha256) problems.push(`${path} is damaged`);
  };
  checkFile(manifest.sessionDb);
  for (const user of manifest.users) {
    checkFile(user.collection);
    checkFile(user.mediaDb);
    const media = userPaths(source, user.uuid).media;
    for (const [name, , sha1] of user.mediaFiles) {
      const bytes = readIfPresent(mediaFilePath(media, name));
      if (bytes === null) problems.push(`${join(media, name)} is missing`);
      else if (sha1Hex(bytes) !== sha1) problems.push(`${join(media, name)} is damaged`);
    }
  }
  if (problems.length > 0) {
    const more = problems.length > 5 ? ` (and ${problems.length - 5} more)` : "";
    throw new BackupError(
      `backup ${source} is incomplete, nothing restored: ${problems.slice(0, 5).join("; ")}${more}`,
    );
  }
}

function requireEmptyTarget(config: Config): void {
  const dir = config.dataDir;
  if (existsSync(dir)) {
    const present = readdirSync(dir).filter((name) => !IGNORABLE.has(name));
    if (present.length > 0) {
      throw new BackupError(
        `${dir} is not empty (${present.slice(0, 3).join(", ")}${present.length > 3 ? ", ..." : ""}): restore only into an empty data folder`,
      );
    }
  }
  if (existsSync(config.sessionDbPath)) {
    throw new BackupError(
      `${config.sessionDbPath} exists: restore only where there is no session.db yet`,
    );
  }
}
