/**
 * Entry point: `bun run start` (or `deno task start`). Configuration comes from the environment
 * and `.env`.
 */
import { ConfigError, ignoredSyncUsers, loadConfig, unknownSettings } from "./config.ts";
import { createLogger } from "./log.ts";
import { loadEnvFile } from "./platform/env.ts";
import { startServer } from "./server.ts";
import { StartupRefused } from "./storage/writable.ts";

async function main(): Promise<void> {
  loadEnvFile();
  let config: ReturnType<typeof loadConfig>;
  try {
    config = loadConfig();
  } catch (err) {
    if (err instanceof ConfigError) {
      console.error(err.message);
      process.exit(2);
    }
    throw err;
  }
  const log = createLogger(config.logLevel, config.logFormat, { batched: true });
  for (const name of unknownSettings()) log.warn("unknown setting ignored (typo?)", { name });
  const ignored = ignoredSyncUsers();
  if (ignored.length > 0) {
    log.warn(
      "SYNC_USERn after a gap are ignored: users are read from SYNC_USER1 up to the first missing number",
      {
        ignored: ignored.join(","),
      },
    );
  }
  if (config.syncUsers.length === 0 && !config.authProviders.includes("cognito")) {
    log.warn("no SYNC_USERn configured: only users added with `bun run admin user add` can log in");
  }
  let server: Awaited<ReturnType<typeof startServer>>;
  try {
    server = await startServer(config, { log });
  } catch (err) {
    if (err instanceof StartupRefused) {
      log.error(`cannot start: ${err.message}`);
      process.exit(2);
    }
    log.error("cannot start", { error: (err as Error).message });
    process.exit(1);
  }
  // One shutdown whatever arrives: SIGTERM to a process group reaches us twice under `bun run`.
  let stopping = false;
  const shutdown = async (signal: string) => {
    if (stopping) {
      log.info("already shutting down", { signal });
      return;
    }
    stopping = true;
    log.info("shutting down", { signal });
    try {
      await server.stop();
    } catch (err) {
      log.error("error while stopping", { error: (err as Error).message });
      process.exit(1);
    }
    process.exit(0);
  };
  process.on("SIGINT", () => void shutdown("SIGINT"));
  process.on("SIGTERM", () => void shutdown("SIGTERM"));
}

await main();
