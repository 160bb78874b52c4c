/**
 * Serving on Bun: Elysia's own listener (Bun.serve, with the app's serve settings), with
 * deferred accepting turned off (acceptAtOnce.ts says why).
 */
import type { AnyElysia } from "elysia";
import type { Listener } from "../serve.ts";
import { acceptConnectionsAtOnce } from "./acceptAtOnce.ts";

/** How often a graceful stop looks whether requests are still in flight. */
const STOP_POLL_MS = 10;

export function listen(app: AnyElysia, options: { hostname: string; port: number }): Listener {
  app.listen(options);
  const server = app.server;
  if (!server) throw new Error("Elysia did not start a server");
  const port = server.port ?? options.port;
  let forced = false;
  return {
    hostname: server.hostname ?? options.hostname,
    port,
    acceptsAtOnce: acceptConnectionsAtOnce(port),
    async stop(closeConnections = false) {
      if (closeConnections) {
        forced = true;
        return server.stop(true);
      }
      const stopped = server.stop(false);
      // Bun's graceful stop closes idle connections but waits for one that has not sent a
      // request yet as if a request were in flight. Once none is (a response counts until Bun
      // has handed all of it to the kernel, which still delivers it after the close), what
      // is left carries no request and is closed.
      while (server.pendingRequests > 0 && !forced) await Bun.sleep(STOP_POLL_MS);
      if (!forced) await server.stop(true);
      await stopped;
    },
  };
}

/** The peer address of a request; `server` is the one in Elysia's handler context. */
export function clientAddress(
  request: Request,
  server: { requestIP(request: Request): { address: string } | null } | null | undefined,
): string | undefined {
  return server?.requestIP(request)?.address;
}
