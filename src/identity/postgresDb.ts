/**
 * PostgreSQL as the shared-state database (ANKISYNCD_DATABASE_URL), through postgres.js, which
 * runs on Bun and Deno. Migrations (migrations/postgres/) are applied at start under an
 * advisory lock, so nodes starting together do not race. The pool reconnects by itself: while
 * PostgreSQL is down or restarting, queries fail (the request gets 500, errors.ts) and the next
 * ones succeed once it is back, without restarting the server.
 */
import { resolve } from "node:path";
import postgres from "postgres";
import { drizzle, migrate } from "#drizzle/postgres";
import type { Logger } from "../log.ts";
import { describeDbError } from "./errors.ts";
import * as schema from "./schema.postgres.ts";
import type { StateDb } from "./stateDb.ts";

const MIGRATIONS = resolve(import.meta.dirname, "../../migrations/postgres");

/** pg_advisory_lock key held while one node migrates ("ankisync" in ASCII). */
const MIGRATION_LOCK = 0x616e6b6973796e63n;

/** Connections per process: requests on the main thread only, so a few are plenty. */
const POOL_SIZE = 8;

const CONNECT_TIMEOUT_SECS = 10;

/**
 * Every query the server makes is a small indexed one; one that waits longer (on a lock an
 * admin's session holds, or a server that stopped answering mid-query) is failed by PostgreSQL
 * itself, so the request gets 500 and the client retries, instead of the pool's connections
 * hanging one by one until every request does.
 */
export const STATEMENT_TIMEOUT_MS = 30_000;

export async function openPostgresDb(
  url: string,
  log?: Logger,
  statementTimeoutMs = STATEMENT_TIMEOUT_MS,
): Promise<StateDb> {
  const where = redacted(url);
  try {
    await migrateLocked(url);
  } catch (err) {
    throw new Error(`PostgreSQL at ${where}: ${describeDbError(err)}`);
  }
  const client = postgres(url, {
    max: POOL_SIZE,
    connect_timeout: CONNECT_TIMEOUT_SECS,
    idle_timeout: 60,
    // Sent at connect, so it holds for every query on every pooled connection.
    connection: { statement_timeout: statementTimeoutMs },
    onnotice: () => {},
  });
  log?.info("shared state in PostgreSQL", { database: where });
  return {
    dialect: "postgres",
    orm: drizzle(client, { schema }),
    tables: schema,
    sqlite: null,
    where,
    ping: async () => {
      await client`SELECT 1`;
    },
    close: () => client.end({ timeout: 5 }),
  };
}

/** One connection, holding the advisory lock (released when it closes) while migrating. */
async function migrateLocked(url: string): Promise<void> {
  const client = postgres(url, {
    max: 1,
    connect_timeout: CONNECT_TIMEOUT_SECS,
    onnotice: () => {},
  });
  try {
    await client`SELECT pg_advisory_lock(${MIGRATION_LOCK.toString()}::bigint)`;
    await migrate(drizzle(client), { migrationsFolder: MIGRATIONS });
  } finally {
    await client.end({ timeout: 5 });
  }
}

/** The URL as logs may show it: without its password. */
export function redacted(url: string): string {
  try {
    const parsed = new URL(url);
    if (parsed.password) parsed.password = "***";
    return parsed.toString();
  } catch {
    return "(unparsable ANKISYNCD_DATABASE_URL)";
  }
}
