/**
 * `finish`: stamps the sync (last-sync and modification time now, usn counter + 1) and
 * commits everything since `start` at once. The client adopts the returned time as its own
 * `mod`, so the next `meta` sees both sides equal.
 */
import type { Db } from "../../platform/sqlite.ts";
import { commitCheckpointingLater } from "../../storage/collection/collectionFile.ts";
import { commitSessionTransaction } from "./session.ts";

/**
 * With `checkpointLater` the commit leaves the WAL's checkpoint to the caller, after the
 * answer: the commit is just as durable, and the client need not wait for the copy.
 */
export function finish(db: Db, now = Date.now(), checkpointLater = false): string {
  db.query("update col set ls = $now, mod = $now, usn = usn + 1 where id = 1").run({ now });
  if (checkpointLater) commitCheckpointingLater(db, () => commitSessionTransaction(db));
  else commitSessionTransaction(db);
  return String(now);
}
