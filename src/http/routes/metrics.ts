/**
 * `GET /metrics` for Prometheus: on a listener of its own (ANKISYNCD_METRICS_PORT), or on the
 * sync port when a token protects it (ANKISYNCD_METRICS_TOKEN). A set token is required
 * wherever it is served; without a port or a token there is no /metrics at all.
 */
import { createHash, timingSafeEqual } from "node:crypto";
import type { MetricsConfig } from "../../config.ts";
import type { ServerMetrics } from "../../metrics/serverMetrics.ts";
import { Elysia } from "../../platform/elysia.ts";
import { listen } from "../../platform/serve.ts";

export function metricsRoutes(metrics: ServerMetrics, token: string | null) {
  return new Elysia({ name: "metrics" }).get("/metrics", async ({ request }) => {
    if (token !== null && !bearerMatches(request.headers.get("authorization"), token)) {
      return new Response("401", {
        status: 401,
        headers: { "www-authenticate": 'Bearer realm="metrics"' },
      });
    }
    return new Response(await metrics.render(), {
      headers: { "content-type": metrics.contentType },
    });
  });
}

/** Whether the sync port serves /metrics (only behind a token). */
export function metricsOnSyncPort(config: MetricsConfig): boolean {
  return config.port === null && config.token !== null;
}

/** The listener of its own, or null when metrics are off or on the sync port. */
export function startMetricsListener(metrics: ServerMetrics, config: MetricsConfig) {
  if (config.port === null) return null;
  const app = new Elysia()
    .use(metricsRoutes(metrics, config.token))
    .onError(({ code }) =>
      code === "NOT_FOUND"
        ? new Response("404", { status: 404 })
        : new Response("500", { status: 500 }),
    );
  return listen(app, { hostname: config.host, port: config.port });
}

function bearerMatches(header: string | null, token: string): boolean {
  const match = /^Bearer\s+(.+)$/i.exec(header ?? "");
  if (!match) return false;
  // Equal-length digests: the comparison takes the same time whatever was sent.
  const digest = (s: string) => createHash("sha256").update(s).digest();
  return timingSafeEqual(digest(match[1] as string), digest(token));
}
