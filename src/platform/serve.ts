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
   * Every connection is accepted as it opens, so stopping closes even one a client opened and
   * never sent on (with a FIN), and a client's pool drops it. False: the runtime defers
   * accepting and could not be told otherwise; such a connection then dies silently at
   * shutdown and the client's next request on it fails.
   */
  readonly acceptsAtOnce: boolean;
  /**
   * Stops accepting connections and closes those without a request in flight (idle ones and
   * ones never sent on); resolves when requests in flight have finished and their connections
   * are closed. With `closeConnections`, in-flight connections are closed at once (Bun; Deno
   * has no such thing: it resolves, and the process exit closes them).
   */
  stop(closeConnections?: boolean): Promise<void>;
}

/** The serve settings an app carries (`new Elysia({ serve })`), read by the Deno listener too. */
export interface ServeConfig {
  maxRequestBodySize?: number;
  idleTimeout?: number;
}
