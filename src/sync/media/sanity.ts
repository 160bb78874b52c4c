/** `msync/mediaSanity`: does the client hold as many files as the server? */
import type { MediaStore } from "../../storage/media/mediaStore.ts";

export type MediaSanityResult = "OK" | "mediaSanity";

export function mediaSanity(store: MediaStore, localCount: number): MediaSanityResult {
  return store.db().meta().totalNonemptyFiles === localCount ? "OK" : "mediaSanity";
}
