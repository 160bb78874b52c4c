import { Elysia } from "elysia";

/** Liveness for Docker/Caddy health checks: no auth, empty body. */
export const healthRoutes = new Elysia({ name: "health" }).get(
  "/health",
  () => new Response(null, { status: 200 }),
);
