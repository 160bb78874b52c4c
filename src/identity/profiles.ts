/** The `profiles` table: one row per person, keyed for data by a permanent UUID. */
import { eq } from "#drizzle/sqlite";
import { profileChanged } from "./profileChanges.ts";
import type { Profile } from "./schema.ts";
import { first, type Orm, type StateDb, type Tables } from "./stateDb.ts";

export interface NewProfile {
  uuid?: string;
  name: string;
  provider: Profile["provider"];
  email?: string | null;
  providerUsername?: string | null;
}

/** Written on every login and sync: changing them alone changes nothing a session depends on. */
const BOOKKEEPING: ReadonlySet<string> = new Set(["lastLoginAt", "lastSyncAt"]);

export class ProfileStore {
  private readonly orm: Orm;
  private readonly profiles: Tables["profiles"];

  constructor(private readonly db: StateDb) {
    this.orm = db.orm;
    this.profiles = db.tables.profiles;
  }

  async byId(profileId: number): Promise<Profile | undefined> {
    const p = this.profiles;
    return first(await this.orm.select().from(p).where(eq(p.profileId, profileId)));
  }

  async byUuid(uuid: string): Promise<Profile | undefined> {
    const p = this.profiles;
    return first(await this.orm.select().from(p).where(eq(p.uuid, uuid)));
  }

  async list(): Promise<Profile[]> {
    return await this.orm.select().from(this.profiles).orderBy(this.profiles.profileId);
  }

  async create(profile: NewProfile): Promise<Profile> {
    const row = { ...profile, uuid: profile.uuid ?? crypto.randomUUID() };
    const created = first(await this.orm.insert(this.profiles).values(row).returning());
    if (!created) throw new Error(`profile ${row.uuid} was not created`);
    return created;
  }

  async update(
    profileId: number,
    changes: Partial<Omit<Profile, "profileId" | "uuid">>,
  ): Promise<void> {
    const p = this.profiles;
    await this.orm.update(p).set(changes).where(eq(p.profileId, profileId));
    if (Object.keys(changes).some((k) => !BOOKKEEPING.has(k))) profileChanged(this.db, profileId);
  }

  async remove(profileId: number): Promise<void> {
    await this.orm.delete(this.profiles).where(eq(this.profiles.profileId, profileId));
    profileChanged(this.db, profileId);
  }
}
