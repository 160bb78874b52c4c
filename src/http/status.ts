/** The one place where errors become HTTP statuses. Clients never read error bodies. */
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

export function statusFor(err: unknown): number {
  return err instanceof SyncError ? STATUS[err.kind] : 500;
}

/** Errors are a plain-text status number, never compressed, as Anki's server answers them. */
export function errorResponse(status: number): Response {
  return new Response(String(status), {
    status,
    headers: { "content-type": "text/plain; charset=utf-8" },
  });
}
