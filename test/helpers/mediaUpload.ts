/**
 * A media upload's two steps at once, on the calling thread: the server stages on a task
 * worker and applies on the user's worker (src/sync/media/upload.ts).
 */
import type { MediaStore } from "../../src/storage/media/mediaStore.ts";
import {
  applyMediaUpload,
  type MediaUploadInput,
  type MediaUploadLimits,
  type MediaUploadResult,
  stageMediaUpload,
} from "../../src/sync/media/upload.ts";

export async function uploadChanges(
  store: MediaStore,
  input: MediaUploadInput,
  limits: MediaUploadLimits,
): Promise<MediaUploadResult> {
  const paths = { zipPath: store.tempPath(".upload.zip"), staging: store.tempPath(".staging") };
  return applyMediaUpload(store, await stageMediaUpload(input, paths, limits));
}
