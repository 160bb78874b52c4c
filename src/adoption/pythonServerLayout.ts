/**
 * Picks up the media that the earlier Python server of this design left in a user's folder.
 * Its collection is already where ours is (`collections/<uuid>/collection.anki2`); its media
 * were `collection.media/` (files) and `collection.media.server.db`, the ankicommunity server's
 * table `media(fname, usn, csum)` with `csum` the SHA-1 in hex, NULL once deleted.
 *
 * Adoption, under the user's lock: the old database is converted into a new `media.db`
 * (storage/media/mediaDb.ts: Anki's server layout), `collection.media/` is renamed to `media/`,
 * then the new database is renamed into place; `collection.media.server.db` itself is kept.
 * Each step is checked again at the next start, so an interrupted adoption completes later.
 * A database of any other schema, or files without a database, are left untouched and logged.
 */
import { createHash } from "node:crypto";
import { existsSync, readdirSync, readFileSync, renameSync, rmSync, statSync } from "node:fs";
import { join } from "node:path";
import type { Logger } from "../log.ts";
import { openDatabase } from "../platform/sqlite.ts";
import { MediaDb } from "../storage/media/mediaDb.ts";
import { tempPathBeside, type UserPaths, userPaths } from "../storage/paths.ts";
import { UserLock } from "../storage/userLock.ts";

export const OLD_MEDIA_DIR = "collection.media";
export const OLD_MEDIA_DB = "collection.media.server.db";

/** A deleted entry has no checksum in the old table; ours needs one (size 0 marks deletion). */
const TOMBSTONE_CSUM = new Uint8Array(20);

type OldDbKind = "ankicommunity" | "anki-v4" | "unknown";

export interface AdoptionReport {
  uuid: string;
  files: number;
  deleted: number;
  missing: number;
}

export function adoptPythonServerMedia(dataDir: string, log: Logger): AdoptionReport[] {
  const root = join(dataDir, "collections");
  if (!existsSync(root)) return [];
  const reports: AdoptionReport[] = [];
  for (const uuid of readdirSync(root)) {
    const dir = join(root, uuid);
    if (!existsSync(join(dir, OLD_MEDIA_DIR)) && !existsSync(join(dir, OLD_MEDIA_DB))) continue;
    let paths: UserPaths;
    try {
      paths = userPaths(dataDir, uuid);
    } catch {
      continue;
    }
    const lock = UserLock.tryAcquire(paths.dir);
    if (!lock) {
      log.warn("old media folder not adopted: user's files in use; retried at next start", {
        uuid,
      });
      continue;
    }
    try {
      const report = adoptUser(uuid, paths, log);
      if (report) reports.push(report);
    } catch (err) {
      log.error("could not adopt old media; left untouched", {
        uuid,
        error: (err as Error).message,
      });
    } finally {
      lock.release();
    }
  }
  return reports;
}

function adoptUser(uuid: string, paths: UserPaths, log: Logger): AdoptionReport | null {
  const oldDir = join(paths.dir, OLD_MEDIA_DIR);
  const oldDb = join(paths.dir, OLD_MEDIA_DB);
  const moveFolder = existsSync(oldDir) && !existsSync(paths.media);
  const convertDb = existsSync(oldDb) && !existsSync(paths.mediaDb);
  if (existsSync(oldDir) && existsSync(paths.media)) {
    log.warn(`both ${OLD_MEDIA_DIR}/ and media/ exist; left untouched`, { uuid, dir: paths.dir });
    return null;
  }
  if (!moveFolder && !convertDb) return null;
  if (moveFolder && !convertDb && !existsSync(paths.mediaDb)) {
    log.warn(`${OLD_MEDIA_DIR}/ without ${OLD_MEDIA_DB}; left untouched`, { uuid, dir: paths.dir });
    return null;
  }
  const filesDir = moveFolder ? oldDir : paths.media;
  let temp: string | null = null;
  let report: AdoptionReport = { uuid, files: 0, deleted: 0, missing: 0 };
  if (convertDb) {
    const kind = oldDbKind(oldDb);
    if (kind === "unknown") {
      log.warn(`${OLD_MEDIA_DB} has an unknown schema; media left untouched`, {
        uuid,
        dir: paths.dir,
      });
      return null;
    }
    temp = tempPathBeside(paths.mediaDb, ".adopt");
    try {
      report =
        kind === "anki-v4"
          ? copyDb(oldDb, temp, uuid)
          : convertAnkicommunity(oldDb, temp, filesDir, uuid);
    } catch (err) {
      rmSync(temp, { force: true });
      throw err;
    }
  }
  if (moveFolder) renameSync(oldDir, paths.media);
  if (temp) renameSync(temp, paths.mediaDb);
  log.info("adopted media left by the earlier Python server", {
    uuid,
    files: report.files,
    deleted: report.deleted,
    missingFiles: report.missing || undefined,
    kept: convertDb ? OLD_MEDIA_DB : undefined,
  });
  return report;
}

function oldDbKind(path: string): OldDbKind {
  const db = openDatabase(path, { readonly: true });
  try {
    const columns = (table: string) =>
      (db.query(`PRAGMA table_info(${table})`).all() as { name: string }[])
        .map((c) => c.name)
        .sort()
        .join(",");
    const media = columns("media");
    if (media === "csum,fname,usn") return "ankicommunity";
    if (
      media === "csum,fname,mtime,size,usn" &&
      columns("meta") === "last_usn,total_bytes,total_nonempty_files"
    ) {
      return "anki-v4";
    }
    return "unknown";
  } finally {
    db.close();
  }
}

function copyDb(from: string, to: string, uuid: string): AdoptionReport {
  const db = openDatabase(from, { readonly: true });
  try {
    db.query("VACUUM INTO $path").run({ path: to });
    const row = db.query("SELECT count(*) AS files, sum(size = 0) AS deleted FROM media").get() as {
      files: number;
      deleted: number | null;
    };
    return { uuid, files: row.files - (row.deleted ?? 0), deleted: row.deleted ?? 0, missing: 0 };
  } finally {
    db.close();
  }
}

function convertAnkicommunity(
  from: string,
  to: string,
  filesDir: string,
  uuid: string,
): AdoptionReport {
  const old = openDatabase(from, { readonly: true });
  const rows = old.query("SELECT fname, usn, csum FROM media ORDER BY usn").all() as {
    fname: string;
    usn: number;
    csum: string | null;
  }[];
  old.close();
  const report: AdoptionReport = { uuid, files: 0, deleted: 0, missing: 0 };
  // A rollback journal, so the finished database is one file to rename.
  const db = MediaDb.open(to, { networkFs: true });
  try {
    db.transaction(() => {
      let lastUsn = 0;
      let totalBytes = 0;
      const now = Math.floor(Date.now() / 1000);
      for (const row of rows) {
        lastUsn = Math.max(lastUsn, row.usn);
        if (row.csum === null) {
          db.putEntry({
            fname: row.fname,
            csum: TOMBSTONE_CSUM,
            size: 0,
            usn: row.usn,
            mtime: now,
          });
          report.deleted++;
          continue;
        }
        const file = join(filesDir, row.fname);
        const stat = existsSync(file) ? statSync(file) : null;
        if (!stat?.isFile() || stat.size === 0) {
          report.missing++; // the old server could not serve it either; clients keep their copy
          continue;
        }
        const csum = /^[0-9a-f]{40}$/i.test(row.csum)
          ? Uint8Array.from(Buffer.from(row.csum, "hex"))
          : new Uint8Array(createHash("sha1").update(readFileSync(file)).digest());
        db.putEntry({
          fname: row.fname,
          csum,
          size: stat.size,
          usn: row.usn,
          mtime: Math.floor(stat.mtimeMs / 1000),
        });
        report.files++;
        totalBytes += stat.size;
      }
      db.writeMeta({ lastUsn, totalBytes, totalNonemptyFiles: report.files });
    });
  } finally {
    db.close();
  }
  return report;
}
