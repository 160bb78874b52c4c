/**
 * Errors that carry a protocol meaning. The HTTP layer maps `kind` to a status in one place
 * (src/http/status.ts); the client only ever sees the status, the log gets `message`.
 */
export type SyncErrorKind =
  | "badRequest" // 400: malformed request, or the client should run Check Database
  | "authFailed" // 403: wrong credentials or unknown host key
  | "notFound" // 404: unknown method
  | "conflict" // 409: no/other active sync, missing media file
  | "tooManyRequests" // 429: login rate limit
  | "clientTooOld" // 501: meta with an unsupported version
  | "diskFull" // 500, as Anki's server answers I/O errors; logged as "disk full"
  | "serverError"; // 500

export class SyncError extends Error {
  constructor(
    readonly kind: SyncErrorKind,
    message: string,
    options?: ErrorOptions,
  ) {
    super(message, options);
    this.name = "SyncError";
  }
}

export const badRequest = (msg: string, options?: ErrorOptions) =>
  new SyncError("badRequest", msg, options);
export const conflict = (msg: string, options?: ErrorOptions) =>
  new SyncError("conflict", msg, options);

export function isSyncError(err: unknown): err is SyncError {
  return err instanceof SyncError;
}
