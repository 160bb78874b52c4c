/**
 * The shared-state databases the identity tests run against, the same cases on each: session.db
 * (SQLite) always, and PostgreSQL when one can be had: ANKISYNCD_TEST_DATABASE_URL
 * (scripts/test.sh starts one cluster for the whole run), else a throwaway cluster started here
 * (scripts/pg-test-cluster.sh) and stopped once the process has exited. Each test gets a
 * database of its own. Without PostgreSQL installed, only SQLite runs, saying so (an error in CI).
 */
import { spawn, spawnSync } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import postgres from "postgres";
import { type Dialect, openStateDb, type StateDb } from "../../src/identity/stateDb.ts";

const SCRIPT = resolve(import.meta.dir, "../../scripts/pg-test-cluster.sh");

let serverUrl: string | null | undefined;

/** A PostgreSQL server for tests (the `postgres` database of a superuser), or null. */
export function testPostgresUrl(): string | null {
  if (serverUrl !== undefined) return serverUrl;
  serverUrl = process.env.ANKISYNCD_TEST_DATABASE_URL || startCluster();
  return serverUrl;
}

function startCluster(): string | null {
  const dir = mkdtempSync(join(tmpdir(), "ankisyncd-pg-"));
  const started = spawnSync("bash", [SCRIPT, "start", dir], { encoding: "utf8" });
  if (started.status !== 0) {
    rmSync(dir, { recursive: true, force: true });
    const why = `no PostgreSQL for the tests: ${started.stderr.trim() || `exit ${started.status}`}`;
    if (process.env.CI) throw new Error(why);
    console.warn(`${why}; the identity tests run on SQLite only`);
    return null;
  }
  stopWhenGone(process.pid, dir);
  return started.stdout.trim();
}

/**
 * `bun test` runs no exit handlers, so a detached watcher stops the cluster and removes its
 * folder once this process is gone, however it ends.
 */
function stopWhenGone(pid: number, dir: string): void {
  const watch = `while kill -0 ${pid} 2>/dev/null; do sleep 1; done; bash "$0" stop "$1"; rm -rf "$1"`;
  spawn("bash", ["-c", watch, SCRIPT, dir], { detached: true, stdio: "ignore" }).unref();
}

/** The dialects to run the parametrised cases on. */
export function testDialects(): Dialect[] {
  return testPostgresUrl() ? ["sqlite", "postgres"] : ["sqlite"];
}

/** A new, empty database on the test server; `drop()` removes it. */
export async function freshPostgresDatabase(): Promise<{ url: string; drop(): Promise<void> }> {
  const server = testPostgresUrl();
  if (!server) throw new Error("no PostgreSQL for the tests");
  const name = `ankisyncd_test_${crypto.randomUUID().replaceAll("-", "")}`;
  const admin = postgres(server, { max: 1, onnotice: () => {} });
  try {
    await admin.unsafe(`CREATE DATABASE ${name}`);
  } finally {
    await admin.end();
  }
  const url = new URL(server);
  url.pathname = `/${name}`;
  return {
    url: url.toString(),
    async drop() {
      const again = postgres(server, { max: 1, onnotice: () => {} });
      try {
        await again.unsafe(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`);
      } finally {
        await again.end();
      }
    },
  };
}

export interface TestStateDb {
  db: StateDb;
  /** session.db's folder (SQLite), or a scratch folder (PostgreSQL). */
  dir: string;
  /** Closes the database and removes it. */
  dispose(): Promise<void>;
}

/** An empty shared-state database of `dialect`, migrated, as the server opens it. */
export async function openTestStateDb(dialect: Dialect): Promise<TestStateDb> {
  const dir = mkdtempSync(join(tmpdir(), "ankisyncd-statedb-"));
  const fresh = dialect === "postgres" ? await freshPostgresDatabase() : null;
  const db = await openStateDb({
    databaseUrl: fresh?.url ?? null,
    sessionDbPath: join(dir, "session.db"),
  });
  return {
    db,
    dir,
    async dispose() {
      await db.close();
      await fresh?.drop();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
