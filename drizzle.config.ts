// drizzle-kit cannot drive bun:sqlite, so Studio talks to session.db through @libsql/client.
import { defineConfig } from "drizzle-kit";

const base = process.env.SYNC_BASE ?? "./data";

export default defineConfig({
  dialect: "sqlite",
  schema: "./src/identity/schema.ts",
  out: "./migrations",
  dbCredentials: { url: `file:${process.env.ANKISYNCD_SESSION_DB ?? `${base}/session.db`}` },
});
