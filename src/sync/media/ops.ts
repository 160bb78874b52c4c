/** The media-sync operations a worker runs for a user, as one job kind (`{ kind: "media" }`). */
import type { MediaChange } from "../../storage/media/mediaDb.ts";
import type { MediaStore } from "../../storage/media/mediaStore.ts";
import { type MediaBeginResult, mediaBegin } from "./begin.ts";
import { mediaChanges } from "./changes.ts";
import { downloadFiles, type MediaDownloadOutcome } from "./download.ts";
import { type MediaSanityResult, mediaSanity } from "./sanity.ts";
import {
  type MediaUploadInput,
  type MediaUploadLimits,
  type MediaUploadResult,
  uploadChanges,
} from "./upload.ts";

export type MediaOp =
  | { method: "begin" }
  | { method: "mediaChanges"; lastUsn: number }
  | { method: "uploadChanges"; input: MediaUploadInput }
  | { method: "downloadFiles"; files: string[]; compress: boolean }
  | { method: "mediaSanity"; local: number };

export interface MediaOpResults {
  begin: MediaBeginResult;
  mediaChanges: MediaChange[];
  uploadChanges: MediaUploadResult;
  downloadFiles: MediaDownloadOutcome;
  mediaSanity: MediaSanityResult;
}

export type MediaOpResult<O extends MediaOp> = MediaOpResults[O["method"]];

export function runMediaOp(store: MediaStore, op: MediaOp, limits: MediaUploadLimits): unknown {
  switch (op.method) {
    case "begin":
      return mediaBegin(store);
    case "mediaChanges":
      return mediaChanges(store, op.lastUsn);
    case "uploadChanges":
      return uploadChanges(store, op.input, limits);
    case "downloadFiles":
      return downloadFiles(store, op.files, op.compress);
    case "mediaSanity":
      return mediaSanity(store, op.local);
  }
}
