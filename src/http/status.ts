/** The one place where errors become HTTP statuses. Clients never read error bodies. */
import { IdentityError, type IdentityErrorKind } from "../identity/errors.ts";
import { PlacementError, type PlacementErrorKind } from "../placement/errors.ts";
import { exceedsListenerCap } from "../platform/bodyCap.ts";
import { SyncError, type SyncErrorKind } from "../sync/errors.ts";

const STATUS: Record<SyncErrorKind, number> = {
  badRequest: 400,
  authFailed: 403,
  notFound: 404,
  conflict: 409,
  tooManyRequests: 429,
  clientTooOld: 501,
  diskFull: 500,
  serverError: 500,
};

const IDENTITY_STATUS: Record<IdentityErrorKind, number> = {
  authFailed: 403,
  tooManyRequests: 429,
  providerUnavailable: 500,
  databaseUnavailable: 500,
};

/** 308 is what Anki's client follows on `meta` (to the `Location` base); 409 and 503 it retries. */
const PLACEMENT_STATUS: Record<PlacementErrorKind, number> = {
  redirect: 308,
  elsewhere: 409,
  unavailable: 503,
};

export function statusFor(err: unknown): number {
  // The runtime has answered 413 already, whatever the error was wrapped in on its way here.
  if (exceedsListenerCap(err)) return 413;
  if (err instanceof SyncError) return STATUS[err.kind];
  if (err instanceof IdentityError) return IDENTITY_STATUS[err.kind];
  if (err instanceof PlacementError) return PLACEMENT_STATUS[err.kind];
  return 500;
}

/** The response for an error: its status, and for a redirect the base to go to. */
export function errorResponseFor(err: unknown): Response {
  const response = errorResponse(statusFor(err));
  if (err instanceof PlacementError && err.location) response.headers.set("location", err.location);
  return response;
}

/** Errors are a plain-text status number, never compressed, as Anki's server answers them. */
export function errorResponse(status: number): Response {
  const body = String(status);
  return new Response(body, {
    status,
    // What Bun would send anyway; set here, the metrics can count it.
    headers: { "content-type": "text/plain; charset=utf-8", "content-length": String(body.length) },
  });
}
