/** The media usn reported in `meta`: 0 until the user has a media database. */
import { existsSync } from "node:fs";
import { openDatabase } from "../../platform/sqlite.ts";

export function readMediaUsn(mediaDbPath: string): number {
  if (!existsSync(mediaDbPath)) return 0;
  const db = openDatabase(mediaDbPath, { readonly: true });
  try {
    const row = db.query("select last_usn from meta").get() as { last_usn: number } | null;
    return row?.last_usn ?? 0;
  } finally {
    db.close();
  }
}
