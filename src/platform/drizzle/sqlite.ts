/**
 * What the server uses of Drizzle for session.db, imported as `#drizzle/sqlite`. On Bun that
 * name resolves to one bundle of this file made at install (scripts/bundle-deps.ts): the ~125
 * modules of the package cost an idle server ~2.5 MB, the same code in one module much less.
 * Deno, drizzle-kit and the type checker resolve it to this file, i.e. the package.
 */
export { and, eq, inArray, isNotNull, isNull, lt, ne, or, sql } from "drizzle-orm";
export { SQLiteBunSession } from "drizzle-orm/bun-sqlite/session";
export { DrizzleQueryError } from "drizzle-orm/errors";
export { readMigrationFiles } from "drizzle-orm/migrator";
export { createTableRelationsHelpers, extractTablesRelationalConfig } from "drizzle-orm/relations";
export {
  BaseSQLiteDatabase,
  index,
  integer,
  SQLiteSyncDialect,
  sqliteTable,
  text,
} from "drizzle-orm/sqlite-core";
