/** Sync protocol versions the server accepts, each named for what it introduced. */
/** Session keys on collection sync; the oldest version we accept. */
export const SYNC_VERSION_08_SESSIONKEY = 8;
/** Client understands the v2 scheduler. */
export const SYNC_VERSION_09_V2_SCHEDULER = 9;
/** Client understands the v2 timezone handling (creationOffset). */
export const SYNC_VERSION_10_V2_TIMEZONE = 10;
/** `anki-sync` header and zstd bodies; media without a separate session key. */
export const SYNC_VERSION_11_DIRECT_POST = 11;

export const SYNC_VERSION_MIN = SYNC_VERSION_08_SESSIONKEY;
export const SYNC_VERSION_MAX = SYNC_VERSION_11_DIRECT_POST;

export function isSupportedVersion(v: number): boolean {
  return Number.isInteger(v) && v >= SYNC_VERSION_MIN && v <= SYNC_VERSION_MAX;
}
