/**
 * Storage faults that are not bugs: a full disk, a read-only folder, a database held by another
 * program (sync/storageErrors.ts turns them into statuses). Code that maps failures to "bad
 * upload" asks here first, so a full disk is never blamed on the client.
 */
const DISK_FULL_CODES = new Set(["ENOSPC", "EDQUOT", "SQLITE_FULL"]);
const READ_ONLY_CODES = new Set(["EROFS", "EACCES", "EPERM", "SQLITE_READONLY"]);
const BUSY_CODES = new Set(["SQLITE_BUSY", "SQLITE_LOCKED"]);

export type StorageFault = "diskFull" | "readOnly" | "busy";

export function storageFault(err: unknown): StorageFault | null {
  if (!(err instanceof Error)) return null;
  const code = String((err as { code?: unknown }).code ?? "");
  const base = code.replace(/^(SQLITE_[A-Z]+)_.*$/, "$1");
  const message = err.message;
  if (DISK_FULL_CODES.has(base) || /database or disk is full|no space left/i.test(message))
    return "diskFull";
  if (BUSY_CODES.has(base) || /database (table )?is locked/i.test(message)) return "busy";
  if (
    READ_ONLY_CODES.has(base) ||
    /readonly database|read-only file system|permission denied/i.test(message)
  )
    return "readOnly";
  return null;
}
