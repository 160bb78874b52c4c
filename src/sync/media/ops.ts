/** The media-sync operations a worker runs for a user, as one job kind (`{ kind: "media" }`). */

import type { Compression } from "../../compression.ts";
import type { MediaChange } from "../../storage/media/mediaDb.ts";
import type { MediaStore } from "../../storage/media/mediaStore.ts";
import { type MediaBeginResult, mediaBegin } from "./begin.ts";
import { mediaChanges } from "./changes.ts";
import { downloadFiles, type MediaDownloadOutcome } from "./download.ts";
import { type MediaSanityResult, mediaSanity } from "./sanity.ts";
import {
  applyMediaUpload,
  type MediaUploadLimits,
  type MediaUploadResult,
  type StagedMediaUpload,
  uploadSmallChanges,
} from "./upload.ts";

export type MediaOp =
  | { method: "begin" }
  | { method: "mediaChanges"; lastUsn: number }
  /** Staged already by the `stageMediaUpload` task (executor/tasks.ts). */
  | { method: "uploadChanges"; staged: StagedMediaUpload }
  /** A small body, checked and stored right here; null when it turns out not to be small. */
  | {
      method: "uploadSmallChanges";
      body: Uint8Array;
      compression: Compression;
      limits: MediaUploadLimits;
    }
  | { method: "downloadFiles"; files: string[]; compress: boolean }
  | { method: "mediaSanity"; local: number };

export interface MediaOpResults {
  begin: MediaBeginResult;
  mediaChanges: MediaChange[];
  uploadChanges: MediaUploadResult;
  uploadSmallChanges: MediaUploadResult | null;
  downloadFiles: MediaDownloadOutcome;
  mediaSanity: MediaSanityResult;
}

export type MediaOpResult<O extends MediaOp> = MediaOpResults[O["method"]];

export function runMediaOp(store: MediaStore, op: MediaOp): unknown {
  switch (op.method) {
    case "begin":
      return mediaBegin(store);
    case "mediaChanges":
      return mediaChanges(store, op.lastUsn);
    case "uploadChanges":
      return applyMediaUpload(store, op.staged);
    case "uploadSmallChanges":
      return uploadSmallChanges(store, op.body, op.compression, op.limits);
    case "downloadFiles":
      return downloadFiles(store, op.files, op.compress);
    case "mediaSanity":
      return mediaSanity(store, op.local);
  }
}
