/**
 * One user's collection file, opened on first use and closed when idle or before replacement.
 * Another program may share the folder (a web app using Anki's library): when the file was
 * changed or replaced behind the open handle, it is opened afresh, which converts it back to
 * schema 11 if need be and adopts that program's pending changes (outsideChanges.ts).
 * With `wal`, the file is in WAL mode while open and put back at rest (checkpointed, rollback
 * journal) when closed: closing is what makes the file whole for a copy or a replacement.
 */
import { closeSync, existsSync, openSync, rmSync, statSync } from "node:fs";
import { copyFromDescriptor } from "../../platform/files.ts";
import type { Db } from "../../platform/sqlite.ts";
import { tempPathBeside, type UserPaths } from "../paths.ts";
import { openCollection, readCol, restCollection, useWal } from "./collectionFile.ts";
import { adoptPendingChanges } from "./outsideChanges.ts";
import { replaceWithBackup } from "./replace.ts";
import { SCHEMA11_VERSION } from "./schema11.ts";

/** Backups kept when a file found at rest in another schema is converted. */
const CONVERSION_BACKUPS = 3;

/**
 * The conversion of a file found at rest in another schema (uploadedFile.ts: protobufjs and its
 * schema, ~6 MB and tens of ms of CPU in each worker thread that loads it), loaded once a file
 * needs it (`UserCollection.prepare`), not by every collection worker.
 */
let convertInPlace: ((path: string) => unknown) | undefined;

/** Loads the conversion of files at rest in another schema, once per thread. */
export async function loadConversion(): Promise<void> {
  convertInPlace ??= (await import("./uploadedFile.ts")).prepareReceivedCollection;
}

/** The file needs the conversion and it is not loaded yet (`prepare` was not awaited first). */
export class ConversionNotLoaded extends Error {
  constructor(version: number) {
    super(`collection at rest is schema ${version}; its conversion was not loaded yet`);
    this.name = "ConversionNotLoaded";
  }
}

export class UserCollection {
  private db: Db | undefined;
  /** What the file was when opened: another program's commit or a replaced file changes it. */
  private opened: { ino: number; dataVersion: number } | undefined;
  lastUsed = Date.now();

  /** `wal`: local filesystem, ANKISYNCD_COLLECTION_WAL on (collectionFile.ts). */
  constructor(
    readonly paths: UserPaths,
    private readonly wal = false,
  ) {}

  /** The open database, creating an empty collection if the user has none yet. */
  open(): Db {
    this.lastUsed = Date.now();
    if (this.db && this.changedBehindUs(this.db)) this.close();
    if (!this.db) {
      this.db = this.openAtRestSchema();
      this.opened = { ino: statSync(this.paths.collection).ino, dataVersion: dataVersion(this.db) };
    }
    return this.db;
  }

  /**
   * Opens the file ahead of a job that starts by opening it, first loading the conversion if
   * the file needs it (`open` cannot wait for an import). A user with no file yet gets one in
   * schema 11 from the job itself. Any other failure is left to the job's own `open`, which
   * reports it as it always has.
   */
  async prepare(): Promise<void> {
    if (convertInPlace || (!this.db && !existsSync(this.paths.collection))) return;
    try {
      this.open();
    } catch (err) {
      if (err instanceof ConversionNotLoaded) await loadConversion();
    }
  }

  /**
   * Only between our transactions: inside one (a normal sync) we hold the write lock, so no
   * one else commits, and the inode is ours to replace.
   */
  private changedBehindUs(db: Db): boolean {
    if (db.inTransaction || !this.opened) return false;
    let ino: number;
    try {
      ino = statSync(this.paths.collection).ino;
    } catch {
      return true;
    }
    return ino !== this.opened.ino || dataVersion(db) !== this.opened.dataVersion;
  }

  get isOpen(): boolean {
    return this.db !== undefined;
  }

  /** Open in WAL mode, so not at rest. */
  get inWal(): boolean {
    return this.wal && this.db !== undefined;
  }

  /**
   * The handle as it is, unchecked and not opened: enough to roll back a transaction on it
   * (a file changed behind us is only noticed between transactions), without the stat and
   * query `open` spends on every request.
   */
  get openHandle(): Db | undefined {
    return this.db;
  }

  /**
   * Throws, leaving the file open, if it cannot be put back at rest (another connection reads
   * its WAL): a caller about to copy or replace the file must not go on.
   */
  close(): void {
    if (!this.db) return;
    if (this.wal) restCollection(this.db);
    this.db.close();
    this.db = undefined;
    this.opened = undefined;
  }

  /**
   * Leaves the file at rest and complete for a copy, having done what `open` does first (a new
   * user's empty file, a conversion, another program's pending changes adopted), but without
   * opening a closed file in WAL mode only to put it back at rest: each switch is a commit
   * with its syncs, which a full download's first byte would wait for.
   */
  closeForCopy(): void {
    const current = this.db !== undefined && !this.changedBehindUs(this.db);
    this.close();
    if (!current) this.openAtRestSchema(false).close();
  }

  /**
   * Files adopted from Anki's own server (or an older ankisyncd) may be schema 18; they are
   * converted once, keeping the original as a backup. `inWal`: left in WAL mode if we use it.
   */
  private openAtRestSchema(inWal = true): Db {
    const db = openCollection(this.paths.collection);
    let converted = false;
    try {
      const { ver } = readCol(db);
      if (ver !== SCHEMA11_VERSION) {
        this.convertHeld(db, ver);
        converted = true;
      }
    } catch (err) {
      db.close();
      throw err;
    }
    if (!converted) return this.readyForUse(db, inWal);
    db.close();
    return this.readyForUse(openCollection(this.paths.collection), inWal);
  }

  /** Another program's pending changes adopted while still at rest, then WAL if wanted. */
  private readyForUse(db: Db, inWal: boolean): Db {
    try {
      adoptPendingChanges(db);
      if (this.wal && inWal) useWal(db);
    } catch (err) {
      db.close();
      throw err;
    }
    return db;
  }

  /**
   * Copies, converts and swaps in the file while holding it exclusively: a program sharing the
   * folder cannot commit to the old file in between, where its change would be lost.
   */
  private convertHeld(db: Db, version: number): void {
    if (!convertInPlace) throw new ConversionNotLoaded(version);
    // Opened before the lock is taken and closed after it is let go (see copyFromDescriptor).
    const source = openSync(this.paths.collection, "r");
    const temp = tempPathBeside(this.paths.collection, ".convert");
    try {
      db.exec("BEGIN EXCLUSIVE");
      try {
        copyFromDescriptor(source, temp);
        convertInPlace(temp);
        replaceWithBackup(temp, this.paths.collection, this.paths.backups, {
          keep: CONVERSION_BACKUPS,
        });
      } finally {
        for (const leftover of [temp, `${temp}-journal`]) rmSync(leftover, { force: true });
        db.exec("ROLLBACK");
      }
    } finally {
      closeSync(source);
    }
  }
}

function dataVersion(db: Db): number {
  return (db.query("PRAGMA data_version").get() as { data_version: number }).data_version;
}
