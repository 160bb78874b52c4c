/**
 * Serving on Deno: Deno.serve + app.fetch (Elysia's web-standard adapter cannot listen, and
 * its handler context has no server). The peer address is kept per Request. Deno.serve has
 * no body-size cap and no idle timeout: the cap (the app's serve.maxRequestBodySize) is
 * enforced here; an idle timeout is not available.
 */
import type { AnyElysia } from "elysia";
import { ListenerCapExceeded } from "../bodyCap.ts";
import type { Listener, ServeConfig } from "../serve.ts";

interface DenoServer {
  addr: { hostname: string; port: number };
  shutdown(): Promise<void>;
}
declare const Deno: {
  serve(
    options: { hostname: string; port: number; onListen?: () => void },
    handler: (
      request: Request,
      info: { remoteAddr: { hostname: string } },
    ) => Response | Promise<Response>,
  ): DenoServer;
};

const addresses = new WeakMap<Request, string>();

export function clientAddress(request: Request, _server?: unknown): string | undefined {
  return addresses.get(request);
}

function tooLarge(): Response {
  return new Response("Payload Too Large", { status: 413 });
}

/** The request with its body cut off (an error) past `limit` bytes. */
function capped(request: Request, limit: number): Request | Response {
  const declared = Number(request.headers.get("content-length") ?? Number.NaN);
  if (declared > limit) return tooLarge();
  if (!request.body || Number.isFinite(declared)) return request;
  let total = 0;
  const body = request.body.pipeThrough(
    new TransformStream<Uint8Array, Uint8Array>({
      transform(chunk, controller) {
        total += chunk.byteLength;
        if (total > limit) controller.error(new ListenerCapExceeded(limit));
        else controller.enqueue(chunk);
      },
    }),
  );
  // A new Request from parts (not `new Request(request, …)`, whose copied signal makes Deno warn).
  return new Request(request.url, {
    method: request.method,
    headers: request.headers,
    body,
    duplex: "half",
  } as RequestInit);
}

export function listen(app: AnyElysia, options: { hostname: string; port: number }): Listener {
  const limit =
    (app.config.serve as ServeConfig | undefined)?.maxRequestBodySize ?? Number.POSITIVE_INFINITY;
  const server = Deno.serve(
    { hostname: options.hostname, port: options.port, onListen() {} },
    (request, info) => {
      const limited = capped(request, limit);
      if (limited instanceof Response) return limited;
      addresses.set(limited, info.remoteAddr.hostname);
      return app.fetch(limited);
    },
  );
  return {
    hostname: server.addr.hostname,
    port: server.addr.port,
    acceptsAtOnce: true, // Deno's listener does not defer accepting
    async stop(closeConnections = false) {
      // Deno has no forced close: shutdown() waits for requests in flight; the caller's
      // timer decides how long, then the process exit closes what is left.
      if (!closeConnections) await server.shutdown();
    },
  };
}
