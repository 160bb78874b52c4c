/**
 * Host-key sessions. A host key is 256 random bits given to the client once; only its SHA-256
 * is stored, so a leaked database does not let anyone sync as the user. A session unused for
 * `idleDays` stops working (and is deleted by the next prune).
 */
import { createHash, randomBytes } from "node:crypto";
import { and, eq, isNotNull, isNull, lt, ne, or, sql } from "drizzle-orm";
import type { Db } from "../platform/sqlite.ts";
import type { Profile, Session } from "./schema.ts";
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
}

export class SessionStore {
  private readonly idleMs: number;
  private readonly orm: Orm;
  private readonly sessions: Tables["sessions"];
  /**
   * Built and prepared once: resolving runs on every request. Every node asks the database, so
   * a session revoked anywhere is refused everywhere from the next request on (no cache).
   */
  private readonly byKeyHash: (keyHash: string) => Promise<ResolvedSession | undefined>;

  constructor(db: StateDb, options: SessionStoreOptions = {}) {
    this.idleMs = (options.idleDays ?? 0) * DAY_MS;
    this.orm = db.orm;
    const { sessions, profiles } = db.tables;
    this.sessions = sessions;
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
    const resolved = await this.byKeyHash(hashKey(hostKey));
    if (!resolved) return undefined;
    const unusedMs = now.getTime() - resolved.session.lastUsedAt.getTime();
    if (this.idleMs > 0 && unusedMs > this.idleMs) return undefined;
    if (unusedMs > TOUCH_INTERVAL_MS) {
      const s = this.sessions;
      await this.orm
        .update(s)
        .set({ lastUsedAt: now })
        .where(eq(s.sessionId, resolved.session.sessionId));
    }
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
    return deleted.length;
  }
}

function hashKey(hostKey: string): string {
  return createHash("sha256").update(hostKey).digest("hex");
}

function randomHex(bytes: number): string {
  return randomBytes(bytes).toString("hex");
}

type SqliteSessionRow = [
  ...[number, string, number, number, number, string | null, number | null],
  ...[number, string, string, number, number, string, string | null, string | null],
  ...[number | null, number | null],
];

/**
 * session.db's lookup, without Drizzle: the request path's one query, where Drizzle's join and
 * row mapping cost ~45 µs against ~6 µs for the statement itself. Rows are mapped as Drizzle
 * maps schema.ts's columns (timestamps in seconds, booleans as 0/1), so both lookups give the
 * same objects (test/unit/sessionLookup.test.ts).
 */
function sqliteSessionLookup(
  client: Db,
): (keyHash: string) => Promise<ResolvedSession | undefined> {
  const statement = client.prepare<SqliteSessionRow>(
    `SELECT s.session_id, s.key_hash, s.profile_id, s.created_at, s.last_used_at,
            s.client_version, s.revoked_at,
            p.profile_id, p.uuid, p.name, p.created_at, p.is_active, p.provider, p.email,
            p.provider_username, p.last_login_at, p.last_sync_at
       FROM sessions s JOIN profiles p ON p.profile_id = s.profile_id
      WHERE s.key_hash = ? AND s.revoked_at IS NULL`,
  );
  return async (keyHash) => {
    const r = statement.values(keyHash)[0] as SqliteSessionRow | undefined;
    if (!r) return undefined;
    const session: Session = {
      sessionId: r[0],
      keyHash: r[1],
      profileId: r[2],
      createdAt: seconds(r[3]),
      lastUsedAt: seconds(r[4]),
      clientVersion: r[5],
      revokedAt: r[6] === null ? null : seconds(r[6]),
    };
    const profile: Profile = {
      profileId: r[7],
      uuid: r[8],
      name: r[9],
      createdAt: seconds(r[10]),
      isActive: Number(r[11]) === 1,
      provider: r[12] as Profile["provider"],
      email: r[13],
      providerUsername: r[14],
      lastLoginAt: r[15] === null ? null : seconds(r[15]),
      lastSyncAt: r[16] === null ? null : seconds(r[16]),
    };
    return { session, profile };
  };
}

function seconds(value: number): Date {
  return new Date(value * 1000);
}
