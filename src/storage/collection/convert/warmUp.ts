/**
 * The conversion run once on an empty collection in memory. A task thread is new for most
 * uploads (one idle for a second is stopped), and the conversion's code run for the first time
 * there (protobuf codecs generated, functions compiled) costs far more than the conversion of a
 * typical collection itself: a 10 MB collection's downgrade took ~45 ms of CPU cold against
 * ~10 ms warm. Run while the upload's body is still arriving, that cost leaves the time the
 * client waits for its answer.
 */
import { openDatabase } from "../../../platform/sqlite.ts";
import { writeEmptyCollection } from "../collectionFile.ts";
import { downgradeToSchema11 } from "./downgrade.ts";
import { upgradeToSchema18 } from "./upgrade.ts";

let warm = false;

/** Once per thread: later runs find the code warm. */
export function warmUpConversion(): void {
  if (warm) return;
  warm = true;
  const db = openDatabase(":memory:", { unicase: true });
  try {
    writeEmptyCollection(db);
    upgradeToSchema18(db);
    downgradeToSchema11(db);
  } finally {
    db.close();
  }
}
