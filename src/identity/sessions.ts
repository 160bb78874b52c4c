/**
 * Host-key sessions. A host key is 256 random bits given to the client once; only its SHA-256
 * is stored, so a leaked session.db does not let anyone sync as the user.
 */
import { createHash, randomBytes } from "node:crypto";
import { and, eq, isNull, lt } from "drizzle-orm";
import type { SessionDb } from "../platform/sessionDb.ts";
import { type Profile, profiles, type Session, sessions } from "./schema.ts";

/** Avoid a write per request: last_used_at only moves when it is this stale. */
const TOUCH_INTERVAL_MS = 60_000;

export interface ResolvedSession {
  session: Session;
  profile: Profile;
}

export class SessionStore {
  constructor(private readonly db: SessionDb) {}

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
    const row = this.db
      .select()
      .from(sessions)
      .innerJoin(profiles, eq(sessions.profileId, profiles.profileId))
      .where(and(eq(sessions.keyHash, hashKey(hostKey)), isNull(sessions.revokedAt)))
      .get();
    if (!row) return undefined;
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

  revokeAllFor(profileId: number, now = new Date()): number {
    const result = this.db
      .update(sessions)
      .set({ revokedAt: now })
      .where(and(eq(sessions.profileId, profileId), isNull(sessions.revokedAt)))
      .returning({ id: sessions.sessionId })
      .all();
    return result.length;
  }

  /** Sessions unused for a long time are deleted rather than kept forever. */
  prune(olderThan: Date): number {
    return this.db
      .delete(sessions)
      .where(lt(sessions.lastUsedAt, olderThan))
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
