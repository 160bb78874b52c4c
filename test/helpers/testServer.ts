/** Starts a real ankisyncd on 127.0.0.1:0 in a temporary data folder. */
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { loadConfig } from "../../src/config.ts";
import { silentLogger } from "../../src/log.ts";
import { type RunningServer, startServer } from "../../src/server.ts";

export interface TestServer extends RunningServer {
  dataDir: string;
  env: Record<string, string>;
  /** Stops the server and starts a new one on the same data folder. */
  restart(): Promise<TestServer>;
  /** Stops the server and removes its data folder. */
  dispose(): Promise<void>;
}

export async function startTestServer(
  env: Record<string, string> = {},
  dataDir = mkdtempSync(join(tmpdir(), "ankisyncd-test-")),
): Promise<TestServer> {
  const fullEnv = {
    SYNC_HOST: "127.0.0.1",
    SYNC_PORT: "0",
    SYNC_BASE: dataDir,
    SYNC_USER1: "alice:secret",
    SYNC_USER2: "bob:hunter2",
    ANKISYNCD_WORKERS: "1",
    ...env,
  };
  const server = await startServer(loadConfig(fullEnv), { log: silentLogger });
  return {
    ...server,
    dataDir,
    env: fullEnv,
    async restart() {
      await server.stop();
      return startTestServer(env, dataDir);
    },
    async dispose() {
      await server.stop();
      rmSync(dataDir, { recursive: true, force: true });
    },
  };
}
