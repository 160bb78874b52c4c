// The PostgreSQL schema (ANKISYNCD_DATABASE_URL): `bun run db:generate:postgres` writes
// migrations/postgres/, `bun run db:studio:postgres` opens Drizzle Studio on the database that
// ANKISYNCD_DATABASE_URL (from the environment or .env, as the server reads it) names.
import { defineConfig } from "drizzle-kit";

export default defineConfig({
  dialect: "postgresql",
  schema: "./src/identity/schema.postgres.ts",
  out: "./migrations/postgres",
  dbCredentials: { url: process.env.ANKISYNCD_DATABASE_URL ?? "postgres://localhost/ankisyncd" },
});
