/** `msync/mediaChanges`: what changed on the server after the client's last media usn. */
import type { MediaChange } from "../../storage/media/mediaDb.ts";
import type { MediaStore } from "../../storage/media/mediaStore.ts";
import { CHANGES_PER_BATCH } from "./limits.ts";

/** Up to 1000 rows after `lastUsn`, ascending; an empty list means the client is up to date. */
export function mediaChanges(store: MediaStore, lastUsn: number): MediaChange[] {
  return store.db().changesAfter(lastUsn, CHANGES_PER_BATCH);
}
