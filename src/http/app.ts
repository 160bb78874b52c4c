/** The HTTP application: one Elysia plugin per area, given its dependencies. */
import { Elysia } from "elysia";
import type { AppDeps } from "./deps.ts";
import { collectionSyncRoutes } from "./routes/collectionSync.ts";
import { healthRoutes } from "./routes/health.ts";

export function createApp(deps: AppDeps) {
  return new Elysia({
    serve: {
      // Full uploads are streamed to disk; the only cap is the decompressed-size limit.
      maxRequestBodySize: deps.config.maxUncompressedBytes,
      idleTimeout: 120,
    },
  })
    .use(healthRoutes)
    .use(collectionSyncRoutes(deps))
    .onError(({ code, error }) => {
      if (code === "NOT_FOUND") return new Response("404", { status: 404 });
      deps.log.error("unhandled error", { code, error: String(error) });
      return new Response("500", { status: 500 });
    });
}
