/** The HTTP application: one Elysia plugin per area, given its dependencies. */
import { Elysia } from "elysia";
import type { AppDeps } from "./deps.ts";
import { collectionSyncRoutes } from "./routes/collectionSync.ts";
import { healthRoutes } from "./routes/health.ts";
import { mediaSyncRoutes } from "./routes/mediaSync.ts";
import { metricsOnSyncPort, metricsRoutes } from "./routes/metrics.ts";

export function createApp(deps: AppDeps) {
  return (
    new Elysia({
      serve: {
        // Full uploads are streamed to disk; the only cap is the decompressed-size limit.
        maxRequestBodySize: deps.config.maxUncompressedBytes,
        idleTimeout: 120,
      },
    })
      // One request per connection. Anki's client sometimes opens a spare connection it never
      // sends on; Bun's listener uses TCP_DEFER_ACCEPT, so at shutdown that connection is dropped
      // without FIN or RST and the client's next request after a restart fails ("error sending
      // request"). Closing after each response avoids it; Caddy keeps client connections alive.
      .mapResponse(({ response }) => {
        if (response instanceof Response) response.headers.set("connection", "close");
        return response as Response;
      })
      .use(healthRoutes(deps))
      .use(collectionSyncRoutes(deps))
      .use(mediaSyncRoutes(deps))
      .use(
        deps.metrics && metricsOnSyncPort(deps.config.metrics)
          ? metricsRoutes(deps.metrics, deps.config.metrics.token)
          : new Elysia(),
      )
      .onError(({ code, error }) => {
        if (code === "NOT_FOUND") return new Response("404", { status: 404 });
        deps.log.error("unhandled error", { code, error: String(error) });
        return new Response("500", { status: 500 });
      })
  );
}
