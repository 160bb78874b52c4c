/**
 * Full download: the client replaces its collection with the server's. The usn is bumped first
 * so the client's next normal sync does not fetch again what the file already contains.
 */
import { copyFileSync } from "node:fs";
import { compressStream } from "../../compression.ts";
import type { UserState } from "../../executor/userState.ts";
import { fileSize, fileStream, writeStreamToFile } from "../../platform/files.ts";
import { tempPathBeside } from "../../storage/paths.ts";

export interface DownloadOutcome {
  /** A temporary file the caller streams to the client and then deletes. */
  path: string;
  /** Size of the collection itself (the `anki-original-size` of a v11 response). */
  originalSize: number;
  compressed: boolean;
}

export async function download(
  user: UserState,
  compress: boolean,
  now = Date.now(),
): Promise<DownloadOutcome> {
  user.abortSession();
  const db = user.collection.open();
  db.query("update col set usn = usn + 1, mod = $now").run({ now });
  // Closing makes the file on disk complete and stable while it is copied.
  user.collection.close();
  const source = user.paths.collection;
  const originalSize = await fileSize(source);
  const path = tempPathBeside(source, compress ? ".download.zst" : ".download");
  if (compress) await writeStreamToFile(compressStream(fileStream(source), "zstd"), path);
  else copyFileSync(source, path);
  return { path, originalSize, compressed: compress };
}
