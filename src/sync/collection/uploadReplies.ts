/**
 * The exact texts clients show after a full upload; only `OK` means success. A module of
 * their own so the main thread can use them without loading the upload code.
 */
export const UPLOAD_OK = "OK";
export const UPLOAD_TOO_LARGE = "collection exceeds size limit";
export const UPLOAD_CORRUPT =
  "Your upload was corrupt. Please use Check Database, or restore from backup.";
