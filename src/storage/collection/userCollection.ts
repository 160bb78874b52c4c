/** One user's collection file, opened on first use and closed when idle or before replacement. */
import { copyFileSync, rmSync } from "node:fs";
import type { Db } from "../../platform/sqlite.ts";
import { tempPathBeside, type UserPaths } from "../paths.ts";
import { openCollection, readCol } from "./collectionFile.ts";
import { replaceWithBackup } from "./replace.ts";
import { SCHEMA11_VERSION } from "./schema11.ts";
import { prepareReceivedCollection } from "./uploadedFile.ts";

/** Backups kept when a file found at rest in another schema is converted. */
const CONVERSION_BACKUPS = 3;

export class UserCollection {
  private db: Db | undefined;
  lastUsed = Date.now();

  constructor(readonly paths: UserPaths) {}

  /** The open database, creating an empty collection if the user has none yet. */
  open(): Db {
    this.lastUsed = Date.now();
    this.db ??= this.openAtRestSchema();
    return this.db;
  }

  get isOpen(): boolean {
    return this.db !== undefined;
  }

  close(): void {
    this.db?.close();
    this.db = undefined;
  }

  /**
   * Files adopted from Anki's own server (or an older ankisyncd) may be schema 18; they are
   * converted once, keeping the original as a backup.
   */
  private openAtRestSchema(): Db {
    const db = openCollection(this.paths.collection);
    if (readCol(db).ver === SCHEMA11_VERSION) return db;
    db.close();
    const temp = tempPathBeside(this.paths.collection, ".convert");
    try {
      copyFileSync(this.paths.collection, temp);
      prepareReceivedCollection(temp);
      replaceWithBackup(temp, this.paths.collection, this.paths.backups, CONVERSION_BACKUPS);
    } finally {
      rmSync(temp, { force: true });
    }
    return openCollection(this.paths.collection);
  }
}
