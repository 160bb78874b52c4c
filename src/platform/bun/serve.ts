/** Serving on Bun: Elysia's own listener (Bun.serve, with the app's serve settings). */
import type { AnyElysia } from "elysia";
import type { Listener } from "../serve.ts";

export function listen(app: AnyElysia, options: { hostname: string; port: number }): Listener {
  app.listen(options);
  const server = app.server;
  if (!server) throw new Error("Elysia did not start a server");
  return {
    hostname: server.hostname ?? options.hostname,
    port: server.port ?? options.port,
    stop: (closeConnections = false) => server.stop(closeConnections),
  };
}

/** The peer address of a request; `server` is the one in Elysia's handler context. */
export function clientAddress(
  request: Request,
  server: { requestIP(request: Request): { address: string } | null } | null | undefined,
): string | undefined {
  return server?.requestIP(request)?.address;
}
