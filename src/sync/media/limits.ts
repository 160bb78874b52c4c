/**
 * Fixed limits of media sync (docs/protocol.md#media-limits); clients build their batches to the
 * same numbers.
 */

/** Files per zip, both directions; more requested or uploaded is a 400. */
export const MAX_FILES_PER_BATCH = 25;
/** A download zip stops growing once its files exceed this (the crossing file included). */
export const DOWNLOAD_TARGET_BYTES = 2_621_440;
/** Largest media file accepted. */
export const MAX_MEDIA_FILE_BYTES = 100 * 1024 * 1024;
/** Largest `_meta` accepted in an upload zip. */
export const MAX_UPLOAD_META_BYTES = 50 * 1024;
/** Rows per `mediaChanges` answer. */
export const CHANGES_PER_BATCH = 1000;
/** Zip entries (files + `_meta`) an upload may contain; clients send at most 26. */
export const MAX_UPLOAD_ZIP_ENTRIES = 2 * MAX_FILES_PER_BATCH + 1;
/** An upload whose zip is at most this big is checked and stored in place, on the user's worker. */
export const IN_PLACE_MAX_BYTES = 1024 * 1024;
