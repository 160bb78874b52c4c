/**
 * Host-key sessions. A host key is 256 random bits given to the client once; only its SHA-256
 * is stored, so a leaked session.db does not let anyone sync as the user. A session unused for
 * `idleDays` stops working (and is deleted by the next prune).
 */
import { createHash, randomBytes } from "node:crypto";
import { and, eq, isNotNull, isNull, lt, ne, or, sql } from "drizzle-orm";
import { type Profile, profiles, type Session, sessions } from "./schema.ts";
import type { SessionDb } from "./sessionDb.ts";

/** Avoid a write per request: last_used_at only moves when it is this stale. */
const TOUCH_INTERVAL_MS = 60_000;

const DAY_MS = 86_400_000;

/** Revoked sessions stay listed (`session list --all`) this long before a prune deletes them. */
const REVOKED_KEPT_MS = 30 * DAY_MS;

export interface ResolvedSession {
  session: Session;
  profile: Profile;
}

export interface SessionStoreOptions {
  /** Sessions unused this many days are refused (0: never). */
  idleDays?: number;
}

export class SessionStore {
  private readonly idleMs: number;
  /** Built and prepared once: resolving runs on every request, on the main thread. */
  private readonly byKeyHash;

  constructor(
    private readonly db: SessionDb,
    options: SessionStoreOptions = {},
  ) {
    this.idleMs = (options.idleDays ?? 0) * DAY_MS;
    this.byKeyHash = db
      .select()
      .from(sessions)
      .innerJoin(profiles, eq(sessions.profileId, profiles.profileId))
      .where(and(eq(sessions.keyHash, sql.placeholder("keyHash")), isNull(sessions.revokedAt)))
      .prepare();
  }

  create(profileId: number, clientVersion: string | null): string {
    const hostKey = randomHex(32);
    this.db
      .insert(sessions)
      .values({ keyHash: hashKey(hostKey), profileId, clientVersion })
      .run();
    return hostKey;
  }

  resolve(hostKey: string, now = new Date()): ResolvedSession | undefined {
    if (!hostKey) return undefined;
    const row = this.byKeyHash.get({ keyHash: hashKey(hostKey) });
    if (!row) return undefined;
    if (this.idleMs > 0 && now.getTime() - row.sessions.lastUsedAt.getTime() > this.idleMs) {
      return undefined;
    }
    if (now.getTime() - row.sessions.lastUsedAt.getTime() > TOUCH_INTERVAL_MS) {
      this.db
        .update(sessions)
        .set({ lastUsedAt: now })
        .where(eq(sessions.sessionId, row.sessions.sessionId))
        .run();
    }
    return { session: row.sessions, profile: row.profiles };
  }

  list(profileId?: number): Session[] {
    const query = this.db.select().from(sessions);
    return (profileId === undefined ? query : query.where(eq(sessions.profileId, profileId)))
      .orderBy(sessions.sessionId)
      .all();
  }

  revoke(sessionId: number, now = new Date()): boolean {
    const result = this.db
      .update(sessions)
      .set({ revokedAt: now })
      .where(and(eq(sessions.sessionId, sessionId), isNull(sessions.revokedAt)))
      .returning({ id: sessions.sessionId })
      .all();
    return result.length > 0;
  }

  /** Revokes every active session of the profile, except `keep` (the caller's own) if given. */
  revokeAllFor(profileId: number, now = new Date(), keep?: number): number {
    const result = this.db
      .update(sessions)
      .set({ revokedAt: now })
      .where(
        and(
          eq(sessions.profileId, profileId),
          isNull(sessions.revokedAt),
          keep === undefined ? undefined : ne(sessions.sessionId, keep),
        ),
      )
      .returning({ id: sessions.sessionId })
      .all();
    return result.length;
  }

  /**
   * Deletes sessions unused past the idle limit and revoked ones older than a month, so the
   * table does not grow forever. Called at start and periodically by the server.
   */
  prune(now = new Date()): number {
    const revokedBefore = new Date(now.getTime() - REVOKED_KEPT_MS);
    const stale =
      this.idleMs > 0 ? lt(sessions.lastUsedAt, new Date(now.getTime() - this.idleMs)) : undefined;
    return this.db
      .delete(sessions)
      .where(or(and(isNotNull(sessions.revokedAt), lt(sessions.revokedAt, revokedBefore)), stale))
      .returning({ id: sessions.sessionId })
      .all().length;
  }
}

function hashKey(hostKey: string): string {
  return createHash("sha256").update(hostKey).digest("hex");
}

function randomHex(bytes: number): string {
  return randomBytes(bytes).toString("hex");
}
