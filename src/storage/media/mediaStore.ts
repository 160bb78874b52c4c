/**
 * One user's media: the flat folder `<user>/media/` of files named by their NFC names, and
 * `<user>/media.db`. The database is opened on first use and stays open (exclusively) until the
 * worker closes the user. Temporary files (upload bodies, staged files, download zips) live
 * beside the folder as `media.tmp-*`, on the same filesystem so renames are atomic; those of
 * dead processes go when the user's lock is taken (storage/temporaries.ts).
 */
import { mkdirSync } from "node:fs";
import { resolveNetworkFs } from "../networkFs.ts";
import { tempPathBeside, type UserPaths } from "../paths.ts";
import { MediaDb } from "./mediaDb.ts";

export interface MediaStoreOptions {
  networkFs: "auto" | boolean;
}

export class MediaStore {
  private mediaDb: MediaDb | undefined;

  constructor(
    readonly paths: UserPaths,
    private readonly options: MediaStoreOptions = { networkFs: "auto" },
  ) {}

  get folder(): string {
    return this.paths.media;
  }

  /** The open database, creating the folder and an empty database on first use. */
  db(): MediaDb {
    if (!this.mediaDb) {
      mkdirSync(this.paths.media, { recursive: true });
      const networkFs = resolveNetworkFs(this.options.networkFs, this.paths.dir);
      this.mediaDb = MediaDb.open(this.paths.mediaDb, { networkFs });
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

  close(): void {
    this.mediaDb?.close();
    this.mediaDb = undefined;
  }
}

export function mediaTempPath(paths: UserPaths, suffix: string): string {
  return tempPathBeside(paths.media, suffix);
}
