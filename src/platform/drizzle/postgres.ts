/**
 * What the server uses of Drizzle for PostgreSQL, imported as `#drizzle/postgres`, loaded only
 * when PostgreSQL is configured. Bundled with `#drizzle/sqlite` (scripts/bundle-deps.ts), so
 * both share one copy of Drizzle's core: identity/errors.ts tells a failed query by its class.
 */
export { bigint, boolean, index, integer, pgTable, text, timestamp } from "drizzle-orm/pg-core";
export { drizzle } from "drizzle-orm/postgres-js";
export { migrate } from "drizzle-orm/postgres-js/migrator";
