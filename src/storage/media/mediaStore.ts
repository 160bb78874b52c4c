/**
 * One user's media: the flat folder `<user>/media/` of files named by their NFC names, and
 * `<user>/media.db`. The database is opened on first use and stays open (exclusively) until the
 * worker closes the user. Temporary files (upload bodies, staged files, download zips) live
 * beside the folder as `media.tmp-*`, on the same filesystem so renames are atomic; those of
 * dead processes go when the user's lock is taken (storage/temporaries.ts).
 *
 * Uploads are made durable by `<user>/media.journal` (journal.ts) rather than by syncing each
 * small file and each media.db commit: the store remembers which files are not synced yet,
 * syncs them and media.db and empties the journal in `checkpoint()` (when the user goes idle,
 * or when the journal grows past a bound), and replays a journal it finds before anything
 * reads the store (docs/media.md#durability).
 */
import {
  closeSync,
  fdatasync,
  mkdirSync,
  openSync,
  renameSync,
  rmSync,
  writeFileSync,
} from "node:fs";
import { setImmediate } from "node:timers";
import { promisify } from "node:util";
import { syncFilesystem } from "../../platform/filesystemSync.ts";
import { fsyncPath, fsyncPathAsync } from "../collection/replace.ts";
import { resolveNetworkFs } from "../networkFs.ts";
import { journalPath, mediaTempPath, type UserPaths } from "../paths.ts";
import { mediaFilePath, unsafePathReason } from "./files.ts";
import {
  type JournalContents,
  type JournalRecord,
  type JournalRows,
  MediaJournal,
} from "./journal.ts";
import { MediaDb } from "./mediaDb.ts";

export interface MediaStoreOptions {
  networkFs: "auto" | boolean;
  /** Instead of syncing many files one by one (platform/filesystemSync.ts); false: cannot. */
  syncFilesystem?: (dir: string) => Promise<boolean>;
}

/** Past this much journal, the upload that passed it also syncs the files and empties it. */
export const JOURNAL_CHECKPOINT_BYTES = 16 * 1024 * 1024;

const SYNCS_AT_ONCE = 64;

/**
 * From this many files a checkpoint syncs the whole (local) filesystem at once: about where
 * one-by-one syncs, a few at a time on the file thread pool, start to take longer than one
 * filesystem commit (tens of milliseconds), which also writes out whatever else is pending.
 */
const FILESYSTEM_SYNC_FROM = 128;

const datasync = promisify(fdatasync);

export class MediaStore {
  private mediaDb: MediaDb | undefined;
  /** Known once the database is opened. */
  private networkFs: boolean | undefined;
  private readonly journal: MediaJournal;
  /** Files put in place since the journal was last emptied; their syncs are still owed. */
  private readonly unsynced = new Set<string>();
  /** A failure after a commit left files out of place: replay before the next use. */
  private replayNeeded = false;
  /** Bumped by every append and by close(): a checkpoint that raced either must not empty the journal. */
  private generation = 0;
  private checkpointFailed = false;
  /** Batches journaled whose commit has not settled yet: a checkpoint must not empty the journal under them. */
  private pending = 0;
  /** Work a batch left for after its answer (its files put in place); the next use waits for it. */
  private tail: Promise<void> | null = null;

  constructor(
    readonly paths: UserPaths,
    private readonly options: MediaStoreOptions = { networkFs: "auto" },
  ) {
    this.journal = new MediaJournal(journalPath(paths), paths.dir);
  }

  get folder(): string {
    return this.paths.media;
  }

  /**
   * The open database, creating the folder and an empty database on first use. A journal left
   * by an earlier run is replayed first, so no reader ever sees a file that a crash took.
   */
  db(): MediaDb {
    if (!this.mediaDb) {
      mkdirSync(this.paths.media, { recursive: true });
      const networkFs = resolveNetworkFs(this.options.networkFs, this.paths.dir);
      this.networkFs = networkFs;
      this.mediaDb = MediaDb.open(this.paths.mediaDb, { networkFs });
      this.replayNeeded = this.journal.leftOver;
    }
    if (this.replayNeeded) {
      replayJournal(this.mediaDb, this.paths, this.journal.read());
      this.mediaDb.syncNow();
      this.journal.clear();
      this.unsynced.clear();
      this.replayNeeded = false;
    }
    return this.mediaDb;
  }

  lastUsn(): number {
    return this.db().meta().lastUsn;
  }

  /** A fresh temporary path beside the media folder. */
  tempPath(suffix: string): string {
    return mediaTempPath(this.paths, suffix);
  }

  get isOpen(): boolean {
    return this.mediaDb !== undefined;
  }

  /** Bytes in the journal whose files are not known to be synced. */
  get journalBytes(): number {
    return this.journal.bytes;
  }

  /** Whether an idle user's files should be synced before the user is closed. */
  get wantsCheckpoint(): boolean {
    return this.journal.bytes > 0 && !this.checkpointFailed;
  }

  /**
   * Makes a batch durable in the journal, with one sync, before the commit that lists it: its
   * files' content and the rows it commits (null when it commits none). Every batch so journaled
   * must then be settled by `batchCommitted` or `batchFailed`.
   */
  async journalBatch(files: JournalRecord[], rows: JournalRows | null): Promise<JournalMark> {
    this.generation++;
    this.checkpointFailed = false;
    this.pending++;
    try {
      return { start: await this.journal.append(files, rows), prevUsn: rows?.prevUsn ?? null };
    } catch (err) {
      this.pending--;
      throw err;
    }
  }

  /** The journaled batch committed (its files may not all be in place: see `needsReplay`). */
  batchCommitted(): void {
    this.pending--;
  }

  /**
   * The journaled batch failed at or before its commit: its records are taken back, so no replay
   * commits what the client was told failed. If the commit happened after all, the batch is
   * completed from the journal before the next use instead.
   */
  batchFailed(mark: JournalMark): void {
    this.pending--;
    this.generation++;
    let committed = true;
    try {
      committed = mark.prevUsn !== null && this.mediaDb?.meta().lastUsn !== mark.prevUsn;
    } catch {
      // Cannot tell: the records stay, and the batch is settled by the next replay.
    }
    if (committed) {
      this.replayNeeded = true;
      return;
    }
    try {
      this.journal.undo(mark.start);
    } catch {
      // Kept records of an uncommitted batch are skipped on replay once a later batch follows
      // (committedRows); only a crash before then would commit it, as if it had succeeded.
    }
  }

  /** The journaled files are in place (not synced yet). */
  filesPlaced(names: Iterable<string>): void {
    for (const name of names) this.unsynced.add(name);
  }

  /** Committed files did not all reach their place: the journal puts them there before the next use. */
  needsReplay(): void {
    this.replayNeeded = true;
  }

  /**
   * Runs `work` (what a journaled, committed batch still owes: its files put in place) once the
   * current job has answered, so the client's next batch is on its way meanwhile. Everything
   * that uses the store next waits for it (`settled`). Skipped if the store is closed first,
   * and any failure has the journal put the batch in place before the next use: the batch is
   * durable in the journal already.
   */
  afterAnswer(work: () => Promise<void> | void): void {
    const db = this.mediaDb;
    const previous = this.tail ?? Promise.resolve();
    const tail: Promise<void> = previous
      .then(() => new Promise<void>((resolve) => setImmediate(resolve)))
      .then(() => (this.mediaDb === db && db !== undefined ? work() : undefined))
      .catch(() => {
        if (this.mediaDb === db) this.replayNeeded = true;
      })
      .finally(() => {
        if (this.tail === tail) this.tail = null;
      });
    this.tail = tail;
  }

  /** Resolves once the work left by earlier batches (`afterAnswer`) is done; never rejects. */
  settled(): Promise<void> {
    return this.tail ?? Promise.resolve();
  }

  /** Whether work left by a batch is still to run. */
  get settling(): boolean {
    return this.tail !== null;
  }

  /**
   * Syncs the files put in place since the journal was last emptied, then empties it. Runs
   * between the user's jobs (an idle user), or inside an upload job; returns false, leaving the
   * journal as it is, when an append or close() came meanwhile (the next idle sweep tries again).
   */
  async checkpoint(): Promise<boolean> {
    if (this.journal.bytes === 0) return true;
    const generation = this.generation;
    try {
      const names = [...this.unsynced];
      if (!(await this.syncedAtOnce(names.length))) {
        // A bounded number at once: issued together the filesystem can commit them together,
        // but a journal of tiny files could name thousands.
        for (let i = 0; i < names.length; i += SYNCS_AT_ONCE) {
          const some = names.slice(i, i + SYNCS_AT_ONCE);
          await Promise.all(some.map((name) => syncIfPresent(this.paths.media, name)));
        }
        await fsyncPathAsync(this.paths.media);
      }
      // The journal holds the rows of commits media.db has not synced.
      await this.mediaDb?.sync();
    } catch (err) {
      this.checkpointFailed = true;
      throw err;
    }
    if (generation !== this.generation || this.replayNeeded || this.pending > 0) return false;
    // Synchronous from here: no job of this user can run in between.
    this.journal.clear();
    this.unsynced.clear();
    return true;
  }

  /**
   * Many placed files on a local disk: synced, with their folder, by one sync of the filesystem
   * holding them. Never on a network filesystem, where what a client-side sync of the whole
   * mount guarantees is less clear than a file's own fsync.
   */
  private syncedAtOnce(files: number): Promise<boolean> {
    if (files < FILESYSTEM_SYNC_FROM || this.networkFs !== false) return Promise.resolve(false);
    return (this.options.syncFilesystem ?? syncFilesystem)(this.paths.media);
  }

  /** Closes the database; a journal not emptied yet stays and is replayed at the next open. */
  close(): void {
    this.generation++;
    this.unsynced.clear();
    this.replayNeeded = false;
    this.mediaDb?.close();
    this.mediaDb = undefined;
  }
}

/** Where a journaled batch starts, and media.db's usn before it (null: it commits no rows). */
export interface JournalMark {
  start: number;
  prevUsn: number | null;
}

// Kept in paths.ts, so that the start-up sweep and the upload path name these files without
// loading the store; re-exported for the store's other users.
export { journalPath, mediaTempPath };

/**
 * Restores what a journal holds: first the rows of committed batches that media.db lost (a power
 * loss rolls back its latest, unsynced commits), then, durably, every journaled file whose
 * content is what media.db lists for its name now; any other file record belongs to a batch
 * that never committed or was superseded, and is skipped. Idempotent, so a replay interrupted
 * by a crash is simply done again. The caller syncs media.db before emptying the journal.
 */
export function replayJournal(db: MediaDb, paths: UserPaths, journal: JournalContents): number {
  replayRows(db, journal.rows);
  const names = [
    ...journal.files.map((f) => f.name),
    ...journal.rows.flatMap((batch) => batch.entries.map((e) => e.fname)),
  ];
  removeDeletedAgain(db, paths, new Set(names));
  return replayFiles(db, paths, journal.files);
}

/** A removal the crash may have undone is done again (a leftover is harmless, never served). */
function removeDeletedAgain(db: MediaDb, paths: UserPaths, names: Set<string>): void {
  for (const name of names) {
    if (unsafePathReason(name) || db.entry(name)?.size !== 0) continue;
    rmSync(mediaFilePath(paths.media, name), { force: true });
  }
}

/**
 * Commits again the journaled batches media.db does not have: those of the committed chain
 * (committedRows) past its last usn. A power loss keeps a prefix of media.db's commits, so
 * those missing are the chain's last ones. Returns how many were committed again.
 */
export function replayRows(db: MediaDb, rows: JournalRows[]): number {
  const lastUsn = db.meta().lastUsn;
  const missing = committedRows(rows).filter((batch) => batch.meta.lastUsn > lastUsn);
  if (missing.length === 0) return 0;
  db.transaction(() => {
    for (const batch of missing) {
      for (const entry of batch.entries)
        if (entry.usn > lastUsn && !unsafePathReason(entry.fname)) db.putEntry(entry);
      db.writeMeta(batch.meta);
    }
  });
  return missing.length;
}

/**
 * The batches that committed, oldest first. Each commit starts from the usn the one before it
 * ended at, so the chain is followed back from the last batch (which committed, or was cut
 * short by the crash before its answer: committing it then is as if it had finished). A batch
 * whose commit failed, with a later one after it, ends at a usn the next one does not start
 * from, and is left out.
 */
export function committedRows(rows: JournalRows[]): JournalRows[] {
  const chain: JournalRows[] = [];
  let next: number | null = null;
  for (let i = rows.length - 1; i >= 0; i--) {
    const batch = rows[i] as JournalRows;
    if (next !== null && batch.meta.lastUsn !== next) continue;
    chain.push(batch);
    next = batch.prevUsn;
  }
  return chain.reverse();
}

/** Puts back, durably, the journaled files whose content media.db lists now. */
function replayFiles(db: MediaDb, paths: UserPaths, records: JournalRecord[]): number {
  const wanted = new Map<string, JournalRecord>();
  for (const record of records) {
    if (unsafePathReason(record.name)) continue;
    const entry = db.entry(record.name);
    if (entry && entry.size > 0 && sameBytes(entry.csum, record.sha1))
      wanted.set(record.name, record);
  }
  // All written first, then all synced: the filesystem commits the first sync's transaction
  // with every file's data in it, so the later syncs find little left to do.
  const temps = new Map<string, string>();
  try {
    for (const record of wanted.values()) {
      const temp = mediaTempPath(paths, ".replay");
      temps.set(record.name, temp);
      writeFileSync(temp, record.bytes, { flag: "wx" });
    }
    for (const temp of temps.values()) fsyncPath(temp);
    for (const [name, temp] of temps) {
      renameSync(temp, mediaFilePath(paths.media, name));
      temps.delete(name);
    }
  } finally {
    for (const temp of temps.values()) rmSync(temp, { force: true });
  }
  if (wanted.size > 0) fsyncPath(paths.media);
  return wanted.size;
}

async function syncIfPresent(folder: string, name: string): Promise<void> {
  let fd: number;
  try {
    fd = openSync(mediaFilePath(folder, name), "r");
  } catch (err) {
    // Deleted by a later batch: nothing to sync.
    if ((err as NodeJS.ErrnoException).code === "ENOENT") return;
    throw err;
  }
  try {
    await datasync(fd);
  } finally {
    closeSync(fd);
  }
}

function sameBytes(a: Uint8Array, b: Uint8Array): boolean {
  return a.byteLength === b.byteLength && a.every((byte, i) => byte === b[i]);
}
