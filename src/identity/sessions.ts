/**
 * Host-key sessions. A host key is 256 random bits given to the client once; only its SHA-256
 * is stored, so a leaked database does not let anyone sync as the user. A session unused for
 * `idleDays` stops working (and is deleted by the next prune).
 */
import { createHash, randomBytes } from "node:crypto";
import { and, eq, isNotNull, isNull, lt, ne, or, sql } from "#drizzle/sqlite";
import type { Db } from "../platform/sqlite.ts";
import { onProfileChange } from "./profileChanges.ts";
import type { Profile, Session } from "./schema.ts";
import { SessionCache, sessionCacheTtlFor } from "./sessionCache.ts";
import { first, type Orm, type StateDb, type Tables } from "./stateDb.ts";

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
  /** How long a resolved session is trusted before session.db is asked again (0: never kept). */
  cacheTtlMs?: number;
}

export class SessionStore {
  private readonly idleMs: number;
  private readonly orm: Orm;
  private readonly sessions: Tables["sessions"];
  private readonly cache: SessionCache;
  /**
   * Built and prepared once: resolving runs on every request. On session.db the answer is kept
   * for the `cache` TTL, so another process's revoke lands within it; on PostgreSQL every
   * request asks, so a session revoked anywhere is refused everywhere from the next request.
   */
  private readonly byKeyHash: (keyHash: string) => Promise<ResolvedSession | undefined>;

  constructor(db: StateDb, options: SessionStoreOptions = {}) {
    this.idleMs = (options.idleDays ?? 0) * DAY_MS;
    this.orm = db.orm;
    const { sessions, profiles } = db.tables;
    this.sessions = sessions;
    const cache = new SessionCache(options.cacheTtlMs ?? sessionCacheTtlFor(db));
    this.cache = cache;
    onProfileChange(db, (profileId) => cache.forgetProfile(profileId));
    if (db.sqlite) {
      this.byKeyHash = sqliteSessionLookup(db.sqlite);
      return;
    }
    const query = db.orm
      .select()
      .from(sessions)
      .innerJoin(profiles, eq(sessions.profileId, profiles.profileId))
      .where(and(eq(sessions.keyHash, sql.placeholder("keyHash")), isNull(sessions.revokedAt)))
      .prepare("session_by_key_hash");
    this.byKeyHash = async (keyHash) => {
      const row = first(await query.execute({ keyHash }));
      return row && { session: row.sessions, profile: row.profiles };
    };
  }

  async create(profileId: number, clientVersion: string | null): Promise<string> {
    const hostKey = randomHex(32);
    await this.orm
      .insert(this.sessions)
      .values({ keyHash: hashKey(hostKey), profileId, clientVersion });
    return hostKey;
  }

  async resolve(hostKey: string, now = new Date()): Promise<ResolvedSession | undefined> {
    if (!hostKey) return undefined;
    const resolved = await this.lookUp(hashKey(hostKey), now.getTime());
    if (!resolved) return undefined;
    const unusedMs = now.getTime() - resolved.session.lastUsedAt.getTime();
    if (this.idleMs > 0 && unusedMs > this.idleMs) return undefined;
    if (unusedMs > TOUCH_INTERVAL_MS) {
      // Set first: requests arriving while the write runs do not write it again.
      resolved.session.lastUsedAt = now;
      const s = this.sessions;
      await this.orm
        .update(s)
        .set({ lastUsedAt: now })
        .where(eq(s.sessionId, resolved.session.sessionId));
    }
    return resolved;
  }

  /** The cached row if read within the TTL, else session.db's (then cached). */
  private async lookUp(keyHash: string, now: number): Promise<ResolvedSession | undefined> {
    const cached = this.cache.get(keyHash, now);
    if (cached) return cached;
    const token = this.cache.readToken;
    const resolved = await this.byKeyHash(keyHash);
    if (resolved) this.cache.set(keyHash, resolved, now, token);
    return resolved;
  }

  async list(profileId?: number): Promise<Session[]> {
    const s = this.sessions;
    const query = this.orm.select().from(s);
    const wanted = profileId === undefined ? query : query.where(eq(s.profileId, profileId));
    return await wanted.orderBy(s.sessionId);
  }

  async revoke(sessionId: number, now = new Date()): Promise<boolean> {
    const s = this.sessions;
    const revoked = await this.orm
      .update(s)
      .set({ revokedAt: now })
      .where(and(eq(s.sessionId, sessionId), isNull(s.revokedAt)))
      .returning({ id: s.sessionId });
    this.cache.forgetSession(sessionId);
    return revoked.length > 0;
  }

  /** Revokes every active session of the profile, except `keep` (the caller's own) if given. */
  async revokeAllFor(profileId: number, now = new Date(), keep?: number): Promise<number> {
    const s = this.sessions;
    const revoked = await this.orm
      .update(s)
      .set({ revokedAt: now })
      .where(
        and(
          eq(s.profileId, profileId),
          isNull(s.revokedAt),
          keep === undefined ? undefined : ne(s.sessionId, keep),
        ),
      )
      .returning({ id: s.sessionId });
    this.cache.forgetProfile(profileId);
    return revoked.length;
  }

  /**
   * Deletes sessions unused past the idle limit and revoked ones older than a month, so the
   * table does not grow forever. Called at start and periodically by the server.
   */
  async prune(now = new Date()): Promise<number> {
    const s = this.sessions;
    const revokedBefore = new Date(now.getTime() - REVOKED_KEPT_MS);
    const stale =
      this.idleMs > 0 ? lt(s.lastUsedAt, new Date(now.getTime() - this.idleMs)) : undefined;
    const deleted = await this.orm
      .delete(s)
      .where(or(and(isNotNull(s.revokedAt), lt(s.revokedAt, revokedBefore)), stale))
      .returning({ id: s.sessionId });
    if (deleted.length > 0) this.cache.clear();
    return deleted.length;
  }
}

function hashKey(hostKey: string): string {
  return createHash("sha256").update(hostKey).digest("hex");
}

function randomHex(bytes: number): string {
  return randomBytes(bytes).toString("hex");
}

type SessionRow = [number, string, number, number, number, string | null, number | null];
type ProfileRow = [number, string, string, number, number, string, string | null, string | null];
type ProfileTimes = [number | null, number | null];

/**
 * session.db's lookup, without Drizzle: the request path's one query. Two prepared statements,
 * the session then its profile: ~4 µs, against ~45 µs for Drizzle's join with its row mapping
 * and ~12 µs for the same join in raw SQL (bun:sqlite is slow on joined rows). Rows are mapped
 * as Drizzle maps schema.ts's columns (timestamps in seconds, booleans as 0/1), so both
 * lookups give the same objects (test/unit/sessionLookup.test.ts).
 */
function sqliteSessionLookup(
  client: Db,
): (keyHash: string) => Promise<ResolvedSession | undefined> {
  const sessionByKey = client.prepare<SessionRow>(
    `SELECT session_id, key_hash, profile_id, created_at, last_used_at, client_version, revoked_at
       FROM sessions WHERE key_hash = ? AND revoked_at IS NULL`,
  );
  const profileById = client.prepare<[...ProfileRow, ...ProfileTimes]>(
    `SELECT profile_id, uuid, name, created_at, is_active, provider, email, provider_username,
            last_login_at, last_sync_at
       FROM profiles WHERE profile_id = ?`,
  );
  return async (keyHash) => {
    const s = sessionByKey.values(keyHash)[0] as SessionRow | undefined;
    if (!s) return undefined;
    const p = profileById.values(s[2])[0] as [...ProfileRow, ...ProfileTimes] | undefined;
    if (!p) return undefined; // removed in between: as if the session were gone
    const session: Session = {
      sessionId: s[0],
      keyHash: s[1],
      profileId: s[2],
      createdAt: seconds(s[3]),
      lastUsedAt: seconds(s[4]),
      clientVersion: s[5],
      revokedAt: s[6] === null ? null : seconds(s[6]),
    };
    const profile: Profile = {
      profileId: p[0],
      uuid: p[1],
      name: p[2],
      createdAt: seconds(p[3]),
      isActive: Number(p[4]) === 1,
      provider: p[5] as Profile["provider"],
      email: p[6],
      providerUsername: p[7],
      lastLoginAt: p[8] === null ? null : seconds(p[8]),
      lastSyncAt: p[9] === null ? null : seconds(p[9]),
    };
    return { session, profile };
  };
}

function seconds(value: number): Date {
  return new Date(value * 1000);
}
