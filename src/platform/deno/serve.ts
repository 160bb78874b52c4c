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

/** The request with its body read by `readBody`: cut off (an error) past `limit` bytes. */
function capped(request: Request, limit: number): Request | Response {
  const declared = Number(request.headers.get("content-length") ?? Number.NaN);
  if (declared > limit) return tooLarge();
  if (!request.body) return request;
  // A new Request from parts (not `new Request(request, …)`, whose copied signal makes Deno warn).
  return new Request(request.url, {
    method: request.method,
    headers: request.headers,
    body: readBody(request.body, limit),
    duplex: "half",
  } as RequestInit);
}

/** The buffer each read of a body goes into, reused (see `readBody`). */
const READ_BYTES = 32 * 1024;

/**
 * A body, read into one buffer handed back and forth, as the app asks for it. A client's body
 * arrives in pieces of a few KiB (the real client's: 4 KiB), and each of Deno's reads costs in
 * proportion to the buffer it reads into: the default reader's fresh 64 KiB per read took
 * 2.6 s for 100 MiB in 4 KiB pieces here, reads into one reused 32 KiB buffer 1.5 s (16 KiB
 * or 64 KiB fresh: 1.8 / 3.3 s). With the app's writes blocking (deno/files.ts), the real
 * client's 100 MiB media batch took 3 s instead of 6 s. A body that is not a byte stream is
 * read as it is.
 */
function readBody(source: ReadableStream<Uint8Array>, limit: number): ReadableStream<Uint8Array> {
  const next = byteReads(source);
  let total = 0;
  return new ReadableStream<Uint8Array>(
    {
      async pull(controller) {
        const chunk = await next.read();
        if (!chunk) return controller.close();
        total += chunk.byteLength;
        if (total <= limit) return controller.enqueue(chunk);
        const over = new ListenerCapExceeded(limit);
        controller.error(over);
        next.cancel(over);
      },
      cancel: (reason) => next.cancel(reason),
    },
    { highWaterMark: 0 },
  );
}

interface ByteReads {
  /** The next bytes received (the caller's to keep), or null at the end. */
  read(): Promise<Uint8Array | null>;
  cancel(reason: unknown): void;
}

function byteReads(source: ReadableStream<Uint8Array>): ByteReads {
  let byob: ReadableStreamBYOBReader;
  try {
    byob = source.getReader({ mode: "byob" });
  } catch {
    const reader = source.getReader();
    return {
      read: async () => {
        const { done, value } = await reader.read();
        return done ? null : value;
      },
      cancel: (reason) => void reader.cancel(reason).catch(() => {}),
    };
  }
  let buffer = new Uint8Array(READ_BYTES);
  return {
    async read() {
      const { done, value } = await byob.read(buffer);
      if (done || !value) return null;
      buffer = new Uint8Array(value.buffer);
      return value.slice();
    },
    cancel: (reason) => void byob.cancel(reason).catch(() => {}),
  };
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
