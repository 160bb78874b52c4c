/** Local users: username + password hash in session.db; SYNC_USERn are synchronised at start. */
import { eq } from "drizzle-orm";
import type { SyncUserSpec } from "../config.ts";
import type { Logger } from "../log.ts";
import type { SessionDb } from "../platform/sessionDb.ts";
import { hashPassword, parsePbkdf2Phc, verifyPassword } from "./passwords.ts";
import type { ProfileStore } from "./profiles.ts";
import { localCredentials, type Profile } from "./schema.ts";

export type LocalCredential = typeof localCredentials.$inferSelect;

export class LocalUserStore {
  constructor(
    private readonly db: SessionDb,
    private readonly profiles: ProfileStore,
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

  /** Creates the user (and their profile) or replaces their password hash. */
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
      const profile = this.profiles.create({ name: username, provider: "local" });
      this.db
        .insert(localCredentials)
        .values({ profileId: profile.profileId, username, passwordHash, source })
        .run();
      return profile;
    });
  }

  /**
   * Makes session.db agree with SYNC_USERn. Passwords are only re-hashed when they changed,
   * so a restart does not pay for argon2 per user.
   */
  async syncFromEnv(users: SyncUserSpec[], passwordsHashed: boolean, log: Logger): Promise<void> {
    for (const user of users) {
      const existing = this.byUsername(user.username);
      const hash = await this.hashFor(user, passwordsHashed, existing);
      if (hash === existing?.passwordHash && existing.source === `env:${user.source}`) continue;
      this.upsert(user.username, hash, `env:${user.source}`);
      log.info(
        existing ? "local user updated from environment" : "local user created from environment",
        {
          user: user.username,
          source: user.source,
        },
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
