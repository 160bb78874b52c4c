/**
 * The manifest of a backup folder: what was copied, with checksums, so a restore can prove the
 * copy is whole before it writes anything. It is written last; a folder without one is not a
 * finished backup.
 */
import { readFileSync } from "node:fs";
import { join } from "node:path";

export const MANIFEST_NAME = "manifest.json";
export const MANIFEST_FORMAT = "ankisyncd-backup";
export const MANIFEST_VERSION = 1;

/** A file of the backup, relative to its folder. */
export interface FileEntry {
  path: string;
  bytes: number;
  sha256: string;
}

export interface CollectionEntry extends FileEntry {
  /** The collection's `col` row when it was copied: what clients compare at their next sync. */
  usn: number;
  mod: number;
  scm: number;
}

export interface MediaDbEntry extends FileEntry {
  lastUsn: number;
}

/** `[name, bytes, sha1 hex]`: one live media file, as media.db records it. */
export type MediaFileEntry = [string, number, string];

export interface UserEntry {
  uuid: string;
  collection: CollectionEntry | null;
  mediaDb: MediaDbEntry | null;
  mediaFiles: MediaFileEntry[];
  /** Files media.db lists that were missing, or whose bytes never matched it, on the server. */
  problems: string[];
}

export interface Manifest {
  format: typeof MANIFEST_FORMAT;
  version: typeof MANIFEST_VERSION;
  startedAt: string;
  finishedAt: string;
  /** The data folder it was taken from (for the operator; restore does not need it). */
  source: string;
  sessionDb: FileEntry;
  users: UserEntry[];
}

export class BackupError extends Error {}

export function readManifest(dir: string): Manifest {
  const path = join(dir, MANIFEST_NAME);
  let parsed: unknown;
  try {
    parsed = JSON.parse(readFileSync(path, "utf8"));
  } catch (err) {
    throw new BackupError(
      `${path}: no readable manifest, so ${dir} is not a finished backup (${(err as Error).message})`,
      { cause: err },
    );
  }
  const manifest = parsed as Partial<Manifest>;
  if (manifest.format !== MANIFEST_FORMAT || manifest.version !== MANIFEST_VERSION) {
    throw new BackupError(
      `${path}: not an ankisyncd backup manifest of version ${MANIFEST_VERSION}`,
    );
  }
  return manifest as Manifest;
}
