/**
 * `msync/begin`: the media usn. The caller returns the host key as `sk`
 * (docs/protocol.md#media-begin).
 */
import type { MediaStore } from "../../storage/media/mediaStore.ts";

export interface MediaBeginResult {
  usn: number;
}

export function mediaBegin(store: MediaStore): MediaBeginResult {
  return { usn: store.lastUsn() };
}
