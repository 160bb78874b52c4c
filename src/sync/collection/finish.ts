/**
 * `finish`: stamps the sync (last-sync and modification time now, usn counter + 1) and
 * commits everything since `start` at once. The client adopts the returned time as its own
 * `mod`, so the next `meta` sees both sides equal.
 */
import type { Db } from "../../platform/sqlite.ts";
import { commitSessionTransaction } from "./session.ts";

export function finish(db: Db, now = Date.now()): string {
  db.query("update col set ls = $now, mod = $now, usn = usn + 1 where id = 1").run({ now });
  commitSessionTransaction(db);
  return String(now);
}
