/**
 * Identity's refusals. The HTTP layer maps `kind` to a status in one place
 * (src/http/status.ts); the client only sees the status, the log gets `message`.
 */
import { DrizzleQueryError } from "#drizzle/sqlite";

export type IdentityErrorKind =
  | "authFailed" // 403: wrong credentials, unknown or revoked host key, disabled account
  | "tooManyRequests" // 429: login rate limit
  | "providerUnavailable" // 500: no provider accepted and one could not be asked
  | "databaseUnavailable"; // 500: the shared database (PostgreSQL) could not be asked

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

/**
 * A failed query of the shared PostgreSQL database (down, restarting, unreachable, refusing) as
 * an IdentityError with one line saying so; anything else (session.db's errors are storage
 * faults, mapped elsewhere) is returned as it is.
 */
export function asDatabaseError(err: unknown): unknown {
  if (err instanceof IdentityError || !isPostgresFault(err)) return err;
  return new IdentityError(
    "databaseUnavailable",
    `shared database (PostgreSQL) unavailable: ${describeDbError(err)}`,
  );
}

/**
 * postgres.js errors as Drizzle passes them on: a PostgresError (the server refused or is
 * shutting down) or a connection failure. Only errors of a query qualify, so a client's dropped
 * connection (ECONNRESET on the request) is never taken for the database's.
 */
function isPostgresFault(err: unknown): boolean {
  const cause = err instanceof DrizzleQueryError ? err.cause : err;
  if (!(cause instanceof Error)) return false;
  if (cause.name === "PostgresError") return true;
  const code = (cause as { code?: unknown }).code;
  return (
    err instanceof DrizzleQueryError &&
    typeof code === "string" &&
    /^(CONNECT|CONNECTION_|ECONN|ETIMEDOUT|EHOSTUNREACH|ENOTFOUND|EAI_AGAIN|EPIPE)/.test(code)
  );
}

/** One line: the driver's code and message, seen through Drizzle's query wrapper. */
export function describeDbError(err: unknown): string {
  const cause = (err as { cause?: unknown } | null)?.cause ?? err;
  const { code, message } = (cause ?? {}) as { code?: unknown; message?: unknown };
  const text = String(message ?? cause).split("\n")[0] ?? "";
  return typeof code === "string" && !text.includes(code) ? `${code}: ${text}` : text;
}
