/** The one place where errors become HTTP statuses. Clients never read error bodies. */
import { IdentityError, type IdentityErrorKind } from "../identity/errors.ts";
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

export function statusFor(err: unknown): number {
  if (err instanceof SyncError) return STATUS[err.kind];
  if (err instanceof IdentityError) return IDENTITY_STATUS[err.kind];
  return 500;
}

/** Errors are a plain-text status number, never compressed, as Anki's server answers them. */
export function errorResponse(status: number): Response {
  return new Response(String(status), {
    status,
    headers: { "content-type": "text/plain; charset=utf-8" },
  });
}
