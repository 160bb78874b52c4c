/**
 * `/health`: liveness (the process answers), no auth, empty body. `/ready`: readiness, what the
 * container's health check asks: 503 with the reason while the data folder or session.db is
 * not writable or free space is under ANKISYNCD_MIN_FREE_MEGS, so a full disk never looks
 * healthy.
 */
import { Elysia } from "elysia";
import { readiness } from "../../storage/writable.ts";
import type { AppDeps } from "../deps.ts";

export function healthRoutes(deps: AppDeps) {
  const { dataDir, sessionDbPath, minFreeBytes } = deps.config;
  return new Elysia({ name: "health" })
    .get("/health", () => new Response(null, { status: 200 }))
    .get("/ready", () => {
      const state = readiness(dataDir, sessionDbPath, minFreeBytes);
      if (state.ready) return new Response("ready\n", { status: 200 });
      deps.log.warn("not ready", { reason: state.reason });
      return new Response(`not ready: ${state.reason}\n`, {
        status: 503,
        headers: { "content-type": "text/plain; charset=utf-8" },
      });
    });
}
