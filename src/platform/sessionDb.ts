/** Opens session.db with Drizzle over bun:sqlite and applies migrations/ before anything uses it. */
import { Database } from "bun:sqlite";
import { mkdirSync } from "node:fs";
import { dirname, resolve } from "node:path";
import { type BunSQLiteDatabase, drizzle } from "drizzle-orm/bun-sqlite";
import { migrate } from "drizzle-orm/bun-sqlite/migrator";
import { importPythonRows, moveAsidePythonTables } from "../identity/pythonServerSessionDb.ts";
import * as schema from "../identity/schema.ts";
import type { Logger } from "../log.ts";

export type SessionDb = BunSQLiteDatabase<typeof schema> & { $client: Database };

const MIGRATIONS = resolve(import.meta.dir, "../../migrations");

export function openSessionDb(
  path: string,
  options: { networkFs?: boolean; log?: Logger } = {},
): SessionDb {
  mkdirSync(dirname(path), { recursive: true });
  const client = new Database(path, { create: true, strict: true });
  client.exec("PRAGMA busy_timeout = 5000");
  // The earlier Python server's session.db: backed up and its tables moved aside first.
  const adopted = moveAsidePythonTables(client, path);
  // WAL needs shared memory, which network filesystems do not provide reliably.
  client.exec(`PRAGMA journal_mode = ${options.networkFs ? "DELETE" : "WAL"}`);
  client.exec("PRAGMA foreign_keys = ON");
  const db = drizzle({ client, schema });
  try {
    migrate(db, { migrationsFolder: MIGRATIONS });
  } catch (err) {
    client.close();
    const why = (err as Error & { cause?: Error }).cause?.message ?? (err as Error).message;
    throw new Error(
      `${path} is neither ankisyncd's session.db nor the earlier Python server's: ${why.split("\n")[0]}`,
    );
  }
  const imported = importPythonRows(client);
  if (adopted || imported) {
    options.log?.info("adopted session.db of the earlier Python server", {
      backup: adopted?.backup,
      movedAside: adopted?.movedAside.join(", "),
      profiles: imported?.profiles,
      sessions: imported?.sessions,
      sessionsUnmatched: imported?.sessionsUnmatched || undefined,
    });
  }
  return db;
}
