/**
 * The database of shared state: profiles, local credentials, sessions, known logins (and
 * whatever else every node must agree on). Either session.db (SQLite, embedded, the default;
 * sessionDb.ts) or PostgreSQL when ANKISYNCD_DATABASE_URL is set (postgresDb.ts), so several
 * nodes can share it.
 *
 * Code using it is written once, against Drizzle's PostgreSQL types (`orm`, `tables`): both
 * dialects' query builders have the same shape and are awaitable, and schema.ts and
 * schema.postgres.ts declare the same tables with the same row types
 * (test/unit/stateDbSchema.test.ts). On SQLite the builders run synchronously when awaited.
 * Rules that keep that true: await every query (no `.get()`/`.all()`/`.run()`), take the first
 * row with `first()`, no `db.transaction` (SQLite's is synchronous; use one statement, e.g.
 * `INSERT ... ON CONFLICT`, or an order of writes that is safe if interrupted), no raw SQL
 * (one exception: session.db's host-key lookup, run on every request, is raw SQL on `sqlite`;
 * sessions.ts says why, and a test keeps it equal to the Drizzle query).
 * A query run on every request is built once with `.prepare(name)` (SQLite ignores the name).
 *
 * A new shared table goes into both schema files, then `bun run db:generate` and
 * `bun run db:generate:postgres` write the migrations applied at start.
 */
import type { PgDatabase, PgQueryResultHKT } from "drizzle-orm/pg-core";
import type { Logger } from "../log.ts";
import type { Db } from "../platform/sqlite.ts";
import type * as pgSchema from "./schema.postgres.ts";
import { openSessionDb, type SessionDbAdopter } from "./sessionDb.ts";

export type Tables = typeof pgSchema;
export type Orm = PgDatabase<PgQueryResultHKT, Tables>;
export type Dialect = "sqlite" | "postgres";

export interface StateDb {
  readonly dialect: Dialect;
  readonly orm: Orm;
  readonly tables: Tables;
  /** session.db's own connection (adopting older servers' files); null on PostgreSQL. */
  readonly sqlite: Db | null;
  /** Where it is, for logs: session.db's path, or the URL without its password. */
  readonly where: string;
  /** Resolves when the database answers a trivial query (readiness). */
  ping(): Promise<void>;
  close(): Promise<void>;
}

export interface StateDbOptions {
  /** ANKISYNCD_DATABASE_URL: PostgreSQL when set, else session.db at `sessionDbPath`. */
  databaseUrl: string | null;
  sessionDbPath: string;
  /** session.db on NFS/EFS: rollback journal instead of WAL. */
  networkFs?: boolean;
  /** Another server's session.db to make ours (session.db only). */
  adopt?: SessionDbAdopter;
  log?: Logger;
}

/** Opens the configured database and applies its migrations. */
export async function openStateDb(options: StateDbOptions): Promise<StateDb> {
  // Loaded only when asked for: the embedded default carries no PostgreSQL driver.
  if (options.databaseUrl) {
    const { openPostgresDb } = await import("./postgresDb.ts");
    return openPostgresDb(options.databaseUrl, options.log);
  }
  const { networkFs, adopt } = options;
  return openSessionDb(options.sessionDbPath, {
    ...(networkFs === undefined ? {} : { networkFs }),
    ...(adopt === undefined ? {} : { adopt }),
  });
}

/** The first row of a result, or undefined (both dialects answer selects with arrays). */
export function first<T>(rows: readonly T[]): T | undefined {
  return rows[0];
}
