/** Opens session.db with Drizzle over bun:sqlite and applies migrations/ before anything uses it. */
import { Database } from "bun:sqlite";
import { mkdirSync } from "node:fs";
import { dirname, resolve } from "node:path";
import { type BunSQLiteDatabase, drizzle } from "drizzle-orm/bun-sqlite";
import { migrate } from "drizzle-orm/bun-sqlite/migrator";
import * as schema from "../identity/schema.ts";

export type SessionDb = BunSQLiteDatabase<typeof schema> & { $client: Database };

const MIGRATIONS = resolve(import.meta.dir, "../../migrations");

export function openSessionDb(path: string, options: { networkFs?: boolean } = {}): SessionDb {
  mkdirSync(dirname(path), { recursive: true });
  const client = new Database(path, { create: true, strict: true });
  // WAL needs shared memory, which network filesystems do not provide reliably.
  client.exec(`PRAGMA journal_mode = ${options.networkFs ? "DELETE" : "WAL"}`);
  client.exec("PRAGMA busy_timeout = 5000");
  client.exec("PRAGMA foreign_keys = ON");
  const db = drizzle({ client, schema });
  migrate(db, { migrationsFolder: MIGRATIONS });
  return db;
}
