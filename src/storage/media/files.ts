/**
 * Media file names and file operations. A name becomes one path component inside the user's
 * media folder, so anything that could leave that folder or alias another file is refused
 * before it gets near the filesystem.
 */
import { closeSync, constants, openSync, renameSync, rmSync, writeSync } from "node:fs";
import { join } from "node:path";

/** Anki's server limit on uploaded names (UTF-8 bytes). */
export const MAX_NAME_BYTES = 255;

/** Windows device names; clients rename them (`CON.jpg` → `CON_.jpg`) and never upload them. */
const DEVICE_NAME = /^(con|prn|aux|nul|com[1-9]|lpt[1-9])(\..*)?$/i;

const encoder = new TextEncoder();

/**
 * Why `name` cannot be used as a file name in the media folder, or null if it can. This is
 * the check for every file access (including names read from an adopted database).
 */
export function unsafePathReason(name: string): string | null {
  if (name === "") return "empty name";
  if (name === "." || name === "..") return "name is . or ..";
  if (/[/\\]/.test(name)) return "name contains a path separator";
  if (name.includes("\0")) return "name contains NUL";
  if (!name.isWellFormed()) return "name is not valid Unicode";
  if (encoder.encode(name).byteLength > MAX_NAME_BYTES)
    return `name longer than ${MAX_NAME_BYTES} bytes`;
  return null;
}

/** Why a client may not upload a file under `name`, or null if it may. */
export function uploadNameProblem(name: string): string | null {
  const unsafe = unsafePathReason(name);
  if (unsafe) return unsafe;
  if (name.normalize("NFC") !== name) return "name is not in Unicode NFC";
  if (DEVICE_NAME.test(name)) return "name is a reserved device name";
  return null;
}

/** The path of a media file; throws on a name that `unsafePathReason` refuses. */
export function mediaFilePath(folder: string, name: string): string {
  const reason = unsafePathReason(name);
  if (reason) throw new Error(`unsafe media file name ${JSON.stringify(name)}: ${reason}`);
  return join(folder, name);
}

/** Puts an already durable file in place atomically (same filesystem), replacing any old one. */
export function installFile(staged: string, target: string): void {
  renameSync(staged, target);
}

/** Deletes a media file; one already gone is fine. */
export function removeMediaFile(path: string): void {
  rmSync(path, { force: true });
}

/**
 * Creates the file `path` holding `bytes` (unsynced), in three calls and no rename; false, with
 * nothing written, when something is there already (never followed, if it is a link).
 */
export function createNewFile(path: string, bytes: Uint8Array): boolean {
  let fd: number;
  try {
    fd = openSync(path, constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === "EEXIST") return false;
    throw err;
  }
  try {
    let done = 0;
    while (done < bytes.byteLength) done += writeSync(fd, bytes, done, bytes.byteLength - done);
  } finally {
    closeSync(fd);
  }
  return true;
}
