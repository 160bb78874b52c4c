/** The HTTP application: one Elysia plugin per area, given its dependencies. */
import { Elysia } from "elysia";
import type { AppDeps } from "./deps.ts";
import { collectionSyncRoutes } from "./routes/collectionSync.ts";
import { healthRoutes } from "./routes/health.ts";
import { mediaSyncRoutes } from "./routes/mediaSync.ts";

export function createApp(deps: AppDeps) {
  return (
    new Elysia({
      serve: {
        // Full uploads are streamed to disk; the only cap is the decompressed-size limit.
        maxRequestBodySize: deps.config.maxUncompressedBytes,
        idleTimeout: 120,
      },
    })
      // One request per connection. Anki's client pools connections; with Bun's keep-alive a
      // pooled connection sometimes goes stale after a streamed upload, and the client's next
      // request then fails with "error sending request" (seen across server restarts). A new
      // connection per request costs one local handshake; Caddy keeps client connections alive.
      .mapResponse(({ response }) => {
        if (response instanceof Response) response.headers.set("connection", "close");
        return response as Response;
      })
      .use(healthRoutes)
      .use(collectionSyncRoutes(deps))
      .use(mediaSyncRoutes(deps))
      .onError(({ code, error }) => {
        if (code === "NOT_FOUND") return new Response("404", { status: 404 });
        deps.log.error("unhandled error", { code, error: String(error) });
        return new Response("500", { status: 500 });
      })
  );
}
