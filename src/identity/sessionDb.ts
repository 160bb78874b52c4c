/**
 * Opens session.db with Drizzle over the platform's SQL driver (platform/sqlite.ts) and applies
 * migrations/ before anything uses it. Drizzle's bun-sqlite *session* only calls
 * prepare/exec/transaction on its client, which `Db` provides on every runtime; its driver
 * module (`drizzle-orm/bun-sqlite`) would import bun:sqlite, so it is not used.
 */
import { mkdirSync } from "node:fs";
import { dirname, resolve } from "node:path";
import { SQLiteBunSession } from "drizzle-orm/bun-sqlite/session";
import { readMigrationFiles } from "drizzle-orm/migrator";
import { createTableRelationsHelpers, extractTablesRelationalConfig } from "drizzle-orm/relations";
import { BaseSQLiteDatabase, SQLiteSyncDialect } from "drizzle-orm/sqlite-core";
import type { Logger } from "../log.ts";
import { type Db, openDatabase } from "../platform/sqlite.ts";
import { importPythonRows, moveAsidePythonTables } from "./pythonServerSessionDb.ts";
import * as schema from "./schema.ts";

type Schema = typeof schema;
export type SessionDb = BaseSQLiteDatabase<"sync", void, Schema> & { $client: Db };

const MIGRATIONS = resolve(import.meta.dirname, "../../migrations");

const dialect = new SQLiteSyncDialect();

/** What `drizzle({ client, schema })` of drizzle-orm/bun-sqlite builds, over any `Db`. */
function drizzle(client: Db): SessionDb {
  const tables = extractTablesRelationalConfig(schema, createTableRelationsHelpers);
  const relations = {
    fullSchema: schema,
    schema: tables.tables,
    tableNamesMap: tables.tableNamesMap,
  };
  // biome-ignore lint/suspicious/noExplicitAny: the session is typed for bun:sqlite's Database
  const session = new SQLiteBunSession(client as any, dialect, relations as any, {});
  // biome-ignore lint/suspicious/noExplicitAny: drizzle's relational config type is internal
  const db = new BaseSQLiteDatabase("sync", dialect, session, relations as any) as SessionDb;
  db.$client = client;
  return db;
}

/** drizzle-orm/bun-sqlite/migrator's migrate(), without its bun:sqlite import. */
function migrate(db: SessionDb, config: { migrationsFolder: string }): void {
  // biome-ignore lint/suspicious/noExplicitAny: the session is internal in drizzle's types
  dialect.migrate(readMigrationFiles(config), (db as any).session, config);
}

export function openSessionDb(
  path: string,
  options: { networkFs?: boolean; log?: Logger } = {},
): SessionDb {
  mkdirSync(dirname(path), { recursive: true });
  const client = openDatabase(path, { create: true });
  client.exec("PRAGMA busy_timeout = 5000");
  // The earlier Python server's session.db: backed up and its tables moved aside first.
  const adopted = moveAsidePythonTables(client, path);
  // WAL needs shared memory, which network filesystems do not provide reliably.
  client.exec(`PRAGMA journal_mode = ${options.networkFs ? "DELETE" : "WAL"}`);
  client.exec("PRAGMA foreign_keys = ON");
  const db = drizzle(client);
  try {
    migrate(db, { migrationsFolder: MIGRATIONS });
  } catch (err) {
    client.close();
    const why = (err as Error & { cause?: Error }).cause?.message ?? (err as Error).message;
    throw new Error(
      `${path} is neither ankisyncd's session.db nor the earlier Python server's: ${why.split("\n")[0]}`,
      { cause: err },
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
