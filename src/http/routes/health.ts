/**
 * `/health`: liveness (the process answers), no auth, empty body. `/ready`: readiness, what the
 * container's health check asks: 503 with the reason while the data folder or session.db is
 * not writable, free space is under ANKISYNCD_MIN_FREE_MEGS, or the shared PostgreSQL database
 * does not answer, so a full disk or a lost database never looks healthy.
 */

import { describeDbError } from "../../identity/errors.ts";
import { Elysia } from "../../platform/elysia.ts";
import { readiness } from "../../storage/writable.ts";
import type { AppDeps } from "../deps.ts";

export function healthRoutes(deps: AppDeps) {
  const { dataDir, sessionDbPath, databaseUrl, minFreeBytes } = deps.config;
  const sessionDb = databaseUrl ? null : sessionDbPath;
  return new Elysia({ name: "health" })
    .get("/health", () => new Response(null, { status: 200 }))
    .get("/ready", async () => {
      const state = readiness(dataDir, sessionDb, minFreeBytes);
      const reason = state.ready ? await sharedDbProblem(deps) : state.reason;
      if (!reason) return new Response("ready\n", { status: 200 });
      deps.log.warn("not ready", { reason });
      return new Response(`not ready: ${reason}\n`, {
        status: 503,
        headers: { "content-type": "text/plain; charset=utf-8" },
      });
    });
}

/** A health check must answer while PostgreSQL does not: it is given this long. */
const PING_TIMEOUT_MS = 3000;

async function sharedDbProblem(deps: AppDeps): Promise<string | undefined> {
  const db = deps.sharedDb;
  if (!db) return undefined;
  let timer: ReturnType<typeof setTimeout> | undefined;
  const late = new Promise<string>((resolve) => {
    timer = setTimeout(() => resolve(`no answer in ${PING_TIMEOUT_MS} ms`), PING_TIMEOUT_MS);
  });
  const answered = db.ping().then(
    () => undefined,
    (err: unknown) => describeDbError(err),
  );
  const problem = await Promise.race([answered, late]);
  clearTimeout(timer);
  return problem && `shared database ${db.where} unavailable: ${problem}`;
}
