/**
 * The HTTP application: one Elysia plugin per area, given its dependencies, and the one
 * onError: the typed errors (SyncError, IdentityError, PlacementError; storage faults become SyncErrors) get
 * their status from status.ts.
 */

import { asDatabaseError, IdentityError } from "../identity/errors.ts";
import { PlacementError } from "../placement/errors.ts";
import { Elysia } from "../platform/elysia.ts";
import { SyncError } from "../sync/errors.ts";
import { asStorageError } from "../sync/storageErrors.ts";
import type { AppDeps } from "./deps.ts";
import { collectionSyncRoutes } from "./routes/collectionSync.ts";
import { healthRoutes } from "./routes/health.ts";
import { mediaSyncRoutes } from "./routes/mediaSync.ts";
import { metricsOnSyncPort, metricsRoutes } from "./routes/metrics.ts";
import { failOrForward, SyncCall } from "./syncEndpoint.ts";

interface ErrorContext {
  code: unknown;
  error: unknown;
  syncCall?: unknown;
  set: { status?: number | string };
}

export function createApp(deps: AppDeps) {
  /**
   * The registered errors are typed already. Anything else may be the shared database's fault
   * (PostgreSQL) or a storage fault; a file error naming no file is session.db's, the main
   * thread's database.
   */
  const typedError = (code: unknown, error: unknown): unknown => {
    if (code === "SyncError" || code === "IdentityError" || code === "PlacementError") return error;
    const shared = asDatabaseError(error);
    return shared instanceof IdentityError
      ? shared
      : asStorageError(error, deps.config.sessionDbPath);
  };

  return (
    new Elysia({
      serve: {
        // Full uploads are streamed to disk; the only cap is the decompressed-size limit. The
        // normal-sync steps allowed that much read their bodies whole, bounded by this alone.
        maxRequestBodySize: deps.config.maxUncompressedBytes,
        // Connections stay open between requests, as with Anki's own server: a sync is several
        // requests in a row. Idle ones are closed after this long, which is past the 90 s after
        // which Anki's client (reqwest's pool) stops reusing one, so the client never sends on a
        // connection the server is closing. A restart closes every connection with a FIN, even
        // those a client opened and never sent on (platform/bun/acceptAtOnce.ts), so none stays
        // in a client's pool to fail its next request.
        idleTimeout: 120,
      },
    })
      // Before the routes: hooks apply to the routes registered after them.
      .error({ SyncError, IdentityError, PlacementError })
      // Destructured, not taken whole: Elysia reads which context fields a hook uses, and a
      // whole context would make every route copy its response to merge headers.
      .onError(({ code, error, syncCall, set }: ErrorContext) => {
        if (code === "NOT_FOUND") return new Response("404", { status: 404 });
        if (syncCall instanceof SyncCall) {
          return failOrForward(deps, syncCall, typedError(code, error)).then((response) => {
            // Elysia answers an error hook's 200 with the error's status (500) unless told:
            // a forwarded answer keeps the owner's.
            set.status = response.status;
            return response;
          });
        }
        deps.log.error("unhandled error", { code, error: String(error) });
        return new Response("500", { status: 500 });
      })
      .use(healthRoutes(deps))
      .use(
        deps.metrics && metricsOnSyncPort(deps.config.metrics)
          ? metricsRoutes(deps.metrics, deps.config.metrics.token)
          : new Elysia(),
      )
      .use(collectionSyncRoutes(deps))
      .use(mediaSyncRoutes(deps))
  );
}
