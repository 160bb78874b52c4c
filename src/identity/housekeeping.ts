/**
 * Keeps the shared database from growing forever: expired and long-revoked sessions and forgotten
 * known-login pairs are deleted at start and then hourly (a few indexed deletes).
 */
import type { Logger } from "../log.ts";
import { describeDbError } from "./errors.ts";
import type { KnownLoginStore } from "./knownLogins.ts";
import type { SessionStore } from "./sessions.ts";

const PRUNE_INTERVAL_MS = 3_600_000;

/** An address not used to log in as that user for this long counts as unknown again. */
const KNOWN_LOGIN_TTL_MS = 365 * 86_400_000;

export async function pruneIdentity(
  sessions: SessionStore,
  knownLogins: KnownLoginStore,
  log: Logger,
  now = new Date(),
): Promise<void> {
  try {
    const removed = await sessions.prune(now);
    const forgotten = await knownLogins.prune(new Date(now.getTime() - KNOWN_LOGIN_TTL_MS));
    if (removed || forgotten) {
      log.info("sessions pruned", { sessions: removed, knownLogins: forgotten });
    }
  } catch (err) {
    // A busy or full session.db, or PostgreSQL away, must not stop the server: retried later.
    log.warn("session prune failed; retried later", { error: describeDbError(err) });
  }
}

/** Prunes now and every hour; returns the function that stops it. */
export function startPruning(
  sessions: SessionStore,
  knownLogins: KnownLoginStore,
  log: Logger,
): () => void {
  void pruneIdentity(sessions, knownLogins, log);
  const timer = setInterval(
    () => void pruneIdentity(sessions, knownLogins, log),
    PRUNE_INTERVAL_MS,
  );
  timer.unref?.();
  return () => clearInterval(timer);
}
