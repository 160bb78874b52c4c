/**
 * Serving an Elysia app: the runtime's listener (#platform/serve.ts). Bun: Elysia's own
 * `app.listen` (Bun.serve with native routes). Deno: `Deno.serve` + `app.fetch`, since
 * Elysia's web-standard adapter cannot listen.
 */
export { clientAddress, listen } from "#platform/serve.ts";

export interface Listener {
  /** The address and port actually bound. */
  readonly hostname: string;
  readonly port: number;
  /**
   * Stops accepting connections; resolves when requests in flight have finished. With
   * `closeConnections`, in-flight connections are closed at once (Bun; Deno has no such thing:
   * it resolves, and the process exit closes them).
   */
  stop(closeConnections?: boolean): Promise<void>;
}

/** The serve settings an app carries (`new Elysia({ serve })`), read by the Deno listener too. */
export interface ServeConfig {
  maxRequestBodySize?: number;
  idleTimeout?: number;
}
