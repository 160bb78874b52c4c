/** Local users: username + password hash in session.db; SYNC_USERn are synchronised at start. */
import { eq } from "drizzle-orm";
import type { SyncUserSpec } from "../config.ts";
import type { Logger } from "../log.ts";
import type { Db } from "../platform/sqlite.ts";
import { hashPassword, parsePbkdf2Phc, verifyPassword, weakPasswordReason } from "./passwords.ts";
import type { ProfileStore } from "./profiles.ts";
import { localCredentials, type Profile } from "./schema.ts";
import type { SessionDb } from "./sessionDb.ts";
import type { SessionStore } from "./sessions.ts";

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
  constructor(
    private readonly db: SessionDb,
    private readonly profiles: ProfileStore,
    private readonly profileToTakeOver: ProfileToTakeOver = () => null,
  ) {}

  byUsername(username: string): LocalCredential | undefined {
    return this.db
      .select()
      .from(localCredentials)
      .where(eq(localCredentials.username, username))
      .get();
  }

  list(): LocalCredential[] {
    return this.db.select().from(localCredentials).orderBy(localCredentials.username).all();
  }

  /**
   * Creates the user (and their profile) or replaces their password hash. A new user may take
   * over an adopted profile (`profileToTakeOver`), and with it the data.
   */
  upsert(username: string, passwordHash: string, source: string): Profile {
    const existing = this.byUsername(username);
    if (existing) {
      this.db
        .update(localCredentials)
        .set({ passwordHash, source, updatedAt: new Date() })
        .where(eq(localCredentials.profileId, existing.profileId))
        .run();
      return this.profiles.byId(existing.profileId) as Profile;
    }
    return this.db.transaction(() => {
      const adopted = this.profileToTakeOver(this.db.$client, username);
      if (adopted !== null) this.profiles.update(adopted, { provider: "local" });
      const profile =
        adopted !== null
          ? (this.profiles.byId(adopted) as Profile)
          : this.profiles.create({ name: username, provider: "local" });
      this.db
        .insert(localCredentials)
        .values({ profileId: profile.profileId, username, passwordHash, source })
        .run();
      return profile;
    });
  }

  /** A new user (and profile); throws if the name is taken. */
  create(username: string, passwordHash: string, source: string): Profile {
    if (this.byUsername(username)) throw new Error(`local user ${username} already exists`);
    return this.upsert(username, passwordHash, source);
  }

  setPassword(profileId: number, passwordHash: string): void {
    this.db
      .update(localCredentials)
      .set({ passwordHash, updatedAt: new Date() })
      .where(eq(localCredentials.profileId, profileId))
      .run();
  }

  setSource(profileId: number, source: string): void {
    this.db
      .update(localCredentials)
      .set({ source, updatedAt: new Date() })
      .where(eq(localCredentials.profileId, profileId))
      .run();
  }

  /**
   * Makes session.db agree with SYNC_USERn. Passwords are only re-hashed when they changed,
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
    for (const gone of this.list()) {
      if (!gone.source.startsWith("env:") || inEnv.has(gone.username)) continue;
      this.setSource(gone.profileId, ADMIN_SOURCE);
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
      const existing = this.byUsername(user.username);
      const hash = await this.hashFor(user, passwordsHashed, existing);
      if (hash === existing?.passwordHash && existing.source === `env:${user.source}`) continue;
      const profile = this.upsert(user.username, hash, `env:${user.source}`);
      const revoked =
        existing && hash !== existing.passwordHash
          ? sessions?.revokeAllFor(profile.profileId)
          : undefined;
      log.info(
        existing ? "local user updated from environment" : "local user created from environment",
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
