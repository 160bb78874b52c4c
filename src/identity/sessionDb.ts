/**
 * Opens session.db (the default shared-state database, stateDb.ts) with Drizzle over the
 * platform's SQL driver (platform/sqlite.ts) and applies migrations/ before anything uses it. Drizzle's bun-sqlite *session* only calls
 * prepare/exec/transaction on its client, which `Db` provides on every runtime; its driver
 * module (`drizzle-orm/bun-sqlite`) would import bun:sqlite, so it is not used.
 */
import { mkdirSync } from "node:fs";
import { dirname, resolve } from "node:path";
import {
  BaseSQLiteDatabase,
  createTableRelationsHelpers,
  extractTablesRelationalConfig,
  readMigrationFiles,
  SQLiteBunSession,
  SQLiteSyncDialect,
} from "#drizzle/sqlite";
import { type Db, openDatabase } from "../platform/sqlite.ts";
import * as schema from "./schema.ts";
import type { Orm, StateDb, Tables } from "./stateDb.ts";

type Schema = typeof schema;
type SessionDb = BaseSQLiteDatabase<"sync", void, Schema>;

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
  return new BaseSQLiteDatabase("sync", dialect, session, relations as any) as SessionDb;
}

/**
 * Makes a session.db another server left ours (src/adoption/ gives one; identity knows none).
 * Its steps run on every open, so each must do nothing once done.
 */
export interface SessionDbAdopter {
  /** Whose file it adopts, for the error when the file is neither ours nor that: "X's". */
  readonly whose: string;
  /** Before the migrations: moves aside what would collide with our tables. */
  beforeMigrations(client: Db, path: string): void;
  /** After them: carries the moved-aside rows over. */
  afterMigrations(client: Db): void;
}

/** drizzle-orm/bun-sqlite/migrator's migrate(), without its bun:sqlite import. */
function migrate(db: SessionDb, config: { migrationsFolder: string }): void {
  // biome-ignore lint/suspicious/noExplicitAny: the session is internal in drizzle's types
  dialect.migrate(readMigrationFiles(config), (db as any).session, config);
}

export function openSessionDb(
  path: string,
  options: { networkFs?: boolean; adopt?: SessionDbAdopter } = {},
): StateDb {
  mkdirSync(dirname(path), { recursive: true });
  const client = openDatabase(path, { create: true });
  client.exec("PRAGMA busy_timeout = 5000");
  options.adopt?.beforeMigrations(client, path);
  // WAL needs shared memory, which network filesystems do not provide reliably.
  client.exec(`PRAGMA journal_mode = ${options.networkFs ? "DELETE" : "WAL"}`);
  client.exec("PRAGMA foreign_keys = ON");
  const db = drizzle(client);
  try {
    migrate(db, { migrationsFolder: MIGRATIONS });
  } catch (err) {
    client.close();
    const why = (err as Error & { cause?: Error }).cause?.message ?? (err as Error).message;
    const what = options.adopt
      ? `neither ankisyncd's session.db nor ${options.adopt.whose}`
      : "not ankisyncd's session.db";
    throw new Error(`${path} is ${what}: ${why.split("\n")[0]}`, { cause: err });
  }
  options.adopt?.afterMigrations(client);
  return asStateDb(db, client, path);
}

/**
 * session.db as the shared-state database. The stores are written against Drizzle's
 * PostgreSQL types (stateDb.ts says why that holds for SQLite too): hence the casts.
 */
function asStateDb(db: SessionDb, client: Db, path: string): StateDb {
  return {
    dialect: "sqlite",
    orm: db as unknown as Orm,
    tables: schema as unknown as Tables,
    sqlite: client,
    where: path,
    ping: async () => {
      client.query("SELECT 1").get();
    },
    close: async () => client.close(),
  };
}
