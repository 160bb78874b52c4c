/** Local users: username + password hash in the shared database; SYNC_USERn applied at start. */
import { availableParallelism } from "node:os";
import { eq } from "#drizzle/sqlite";
import type { SyncUserSpec } from "../config.ts";
import type { Logger } from "../log.ts";
import type { Db } from "../platform/sqlite.ts";
import { hashPassword, parsePbkdf2Phc, verifyPassword, weakPasswordReason } from "./passwords.ts";
import type { ProfileStore } from "./profiles.ts";
import type { localCredentials, Profile } from "./schema.ts";
import type { SessionStore } from "./sessions.ts";
import { first, type Orm, type StateDb, type Tables } from "./stateDb.ts";

/**
 * SYNC_USERn passwords hashed (or checked against session.db) at once at start: argon2id runs
 * on the runtime's thread pool, so one at a time used a single core and 50 users took ~12 s of
 * a quiet machine's start (~0.24 s each), minutes on a loaded one. Each run holds 64 MiB while
 * it runs, hence a bound rather than all of them.
 */
const HASHES_AT_ONCE = Math.min(4, Math.max(2, availableParallelism()));

export type LocalCredential = typeof localCredentials.$inferSelect;

/** `source` of users added with the admin CLI (or left over from the environment). */
export const ADMIN_SOURCE = "admin";

export function isEnvManaged(credential: LocalCredential): boolean {
  return credential.source.startsWith("env:");
}

/**
 * The profile, made elsewhere than by a login here (adopted from another server's session.db,
 * src/adoption/), that a new local user of this name takes over with its data; null if none.
 */
export type ProfileToTakeOver = (client: Db, username: string) => number | null;

export class LocalUserStore {
  private readonly orm: Orm;
  private readonly credentials: Tables["localCredentials"];

  constructor(
    private readonly db: StateDb,
    private readonly profiles: ProfileStore,
    private readonly profileToTakeOver: ProfileToTakeOver = () => null,
  ) {
    this.orm = db.orm;
    this.credentials = db.tables.localCredentials;
  }

  async byUsername(username: string): Promise<LocalCredential | undefined> {
    const c = this.credentials;
    return first(await this.orm.select().from(c).where(eq(c.username, username)));
  }

  async list(): Promise<LocalCredential[]> {
    return await this.orm.select().from(this.credentials).orderBy(this.credentials.username);
  }

  /**
   * Creates the user (and their profile) or replaces their password hash. A new user may take
   * over an adopted profile (`profileToTakeOver`, session.db only), and with it the data.
   */
  async upsert(username: string, passwordHash: string, source: string): Promise<Profile> {
    const existing = await this.byUsername(username);
    if (existing) {
      await this.update(existing.profileId, { passwordHash, source });
      return (await this.profiles.byId(existing.profileId)) as Profile;
    }
    return (
      (await this.insertNew(username, passwordHash, source)) ??
      this.upsert(username, passwordHash, source)
    );
  }

  /**
   * A profile (or the adopted one), then its login: interrupted in between, a new profile is
   * left without a login (and without data), and the next attempt makes another one. An adopted
   * profile gets its login before it stops being a Cognito one, which makes it no longer
   * adoptable. Null when another node sharing the database created the user at the same moment:
   * theirs stands.
   */
  private async insertNew(
    username: string,
    passwordHash: string,
    source: string,
  ): Promise<Profile | null> {
    const adopted = this.db.sqlite ? this.profileToTakeOver(this.db.sqlite, username) : null;
    const profile =
      adopted === null
        ? await this.profiles.create({ name: username, provider: "local" })
        : ((await this.profiles.byId(adopted)) as Profile);
    const c = this.credentials;
    const inserted = await this.orm
      .insert(c)
      .values({ profileId: profile.profileId, username, passwordHash, source })
      .onConflictDoNothing({ target: c.username })
      .returning({ profileId: c.profileId });
    if (inserted.length === 0) {
      if (adopted === null) await this.profiles.remove(profile.profileId);
      return null;
    }
    if (adopted === null) return profile;
    await this.profiles.update(adopted, { provider: "local" });
    return { ...profile, provider: "local" };
  }

  /** A new user (and profile); throws if the name is taken. */
  async create(username: string, passwordHash: string, source: string): Promise<Profile> {
    if (await this.byUsername(username)) throw new Error(`local user ${username} already exists`);
    return this.upsert(username, passwordHash, source);
  }

  setPassword(profileId: number, passwordHash: string): Promise<void> {
    return this.update(profileId, { passwordHash });
  }

  setSource(profileId: number, source: string): Promise<void> {
    return this.update(profileId, { source });
  }

  private async update(
    profileId: number,
    changes: Pick<Partial<LocalCredential>, "passwordHash" | "source">,
  ): Promise<void> {
    const c = this.credentials;
    await this.orm
      .update(c)
      .set({ ...changes, updatedAt: new Date() })
      .where(eq(c.profileId, profileId));
  }

  /**
   * Makes the database agree with SYNC_USERn. Passwords are only re-hashed when they changed,
   * so a restart does not pay for argon2 per user. A user who was env-managed and is no longer
   * in the environment is not deleted (their profile keys their data): they become an
   * admin-managed user, still able to log in, and a warning says how to disable or remove them.
   * A changed password revokes the user's sessions (given `sessions`), as `admin user passwd`
   * does: every device logs in again with the new one.
   */
  async syncFromEnv(
    users: SyncUserSpec[],
    passwordsHashed: boolean,
    log: Logger,
    sessions?: Pick<SessionStore, "revokeAllFor">,
  ): Promise<void> {
    const inEnv = new Set(users.map((u) => u.username));
    const stored = await this.list();
    const existing = new Map(stored.map((c) => [c.username, c]));
    for (const gone of stored) {
      if (!gone.source.startsWith("env:") || inEnv.has(gone.username)) continue;
      await this.setSource(gone.profileId, ADMIN_SOURCE);
      log.warn("local user no longer in the environment: kept, and can still log in", {
        user: gone.username,
        was: gone.source.slice(4),
        hint: "bun run admin user disable|remove",
      });
    }
    for (const user of users) {
      const weak = passwordsHashed ? null : weakPasswordReason(user.secret);
      if (weak)
        log.warn(`${user.source}: weak password, accepted as given`, {
          user: user.username,
          why: weak,
        });
    }
    const hashes = await mapBounded(users, HASHES_AT_ONCE, (user) =>
      this.hashFor(user, passwordsHashed, existing.get(user.username)),
    );
    for (const [i, user] of users.entries()) {
      const known = existing.get(user.username);
      const hash = hashes[i] as string;
      if (hash === known?.passwordHash && known.source === `env:${user.source}`) continue;
      const profile = await this.upsert(user.username, hash, `env:${user.source}`);
      const revoked =
        known && hash !== known.passwordHash
          ? await sessions?.revokeAllFor(profile.profileId)
          : undefined;
      log.info(
        known ? "local user updated from environment" : "local user created from environment",
        { user: user.username, source: user.source, sessionsRevoked: revoked || undefined },
      );
    }
  }

  private async hashFor(
    user: SyncUserSpec,
    hashed: boolean,
    existing?: LocalCredential,
  ): Promise<string> {
    if (hashed) {
      if (!user.secret.startsWith("$argon2") && !parsePbkdf2Phc(user.secret)) {
        throw new Error(
          `${user.source}: PASSWORDS_HASHED is set but the password is not a PHC string`,
        );
      }
      return user.secret;
    }
    if (existing && (await verifyPassword(user.secret, existing.passwordHash)))
      return existing.passwordHash;
    return hashPassword(user.secret);
  }
}

/** `work` over `items`, at most `limit` running at a time; results in the items' order. */
async function mapBounded<T, R>(
  items: readonly T[],
  limit: number,
  work: (item: T) => Promise<R>,
): Promise<R[]> {
  const results = new Array<R>(items.length);
  let next = 0;
  const lane = async (): Promise<void> => {
    while (next < items.length) {
      const i = next++;
      results[i] = await work(items[i] as T);
    }
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, lane));
  return results;
}
