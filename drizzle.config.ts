// drizzle-kit cannot drive bun:sqlite, so Studio talks to session.db through @libsql/client.
// `bun run db:studio` reads .env like the server: ANKISYNCD_SESSION_DB, else SYNC_BASE, else on
// a Docker host the folder compose mounts (DATA_VOLUME_SOURCE, ./efs by default), else ./data.
import { existsSync } from "node:fs";
import { defineConfig } from "drizzle-kit";

function sessionDbPath(env: NodeJS.ProcessEnv): string {
  if (env.ANKISYNCD_SESSION_DB) return env.ANKISYNCD_SESSION_DB;
  if (env.SYNC_BASE) return `${env.SYNC_BASE}/session.db`;
  // A named Docker volume (no slash) is not a folder on this host.
  const volume = env.DATA_VOLUME_SOURCE;
  if (volume?.includes("/")) return `${volume}/session.db`;
  const found = ["./data", "./efs"].find((dir) => existsSync(`${dir}/session.db`));
  return `${found ?? "./data"}/session.db`;
}

export default defineConfig({
  dialect: "sqlite",
  schema: "./src/identity/schema.ts",
  out: "./migrations",
  dbCredentials: { url: `file:${sessionDbPath(process.env)}` },
});
