/**
 * Identity's refusals. The HTTP layer maps `kind` to a status in one place
 * (src/http/status.ts); the client only sees the status, the log gets `message`.
 */
export type IdentityErrorKind =
  | "authFailed" // 403: wrong credentials, unknown or revoked host key, disabled account
  | "tooManyRequests" // 429: login rate limit
  | "providerUnavailable"; // 500: no provider accepted and one could not be asked

export class IdentityError extends Error {
  constructor(
    readonly kind: IdentityErrorKind,
    message: string,
  ) {
    super(message);
    this.name = "IdentityError";
  }
}

export const authFailed = (msg: string) => new IdentityError("authFailed", msg);
