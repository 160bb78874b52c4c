/**
 * The requests of a normal sync, as `/sync/<method>` names them. A module of its own: the
 * HTTP layer needs the names on the main thread, not the steps (normalSync.ts), whose code
 * and JSON parser only the workers load.
 */
export const NORMAL_SYNC_METHODS = [
  "start",
  "applyGraves",
  "applyChanges",
  "chunk",
  "applyChunk",
  "sanityCheck2",
  "finish",
  "abort",
] as const;

export type NormalSyncMethod = (typeof NORMAL_SYNC_METHODS)[number];
