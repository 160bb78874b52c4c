/** The `profiles` table: one row per person, keyed for data by a permanent UUID. */
import { eq } from "drizzle-orm";
import { type Profile, profiles } from "./schema.ts";
import type { SessionDb } from "./sessionDb.ts";

export interface NewProfile {
  uuid?: string;
  name: string;
  provider: Profile["provider"];
  email?: string | null;
  providerUsername?: string | null;
}

export class ProfileStore {
  constructor(private readonly db: SessionDb) {}

  byId(profileId: number): Profile | undefined {
    return this.db.select().from(profiles).where(eq(profiles.profileId, profileId)).get();
  }

  byUuid(uuid: string): Profile | undefined {
    return this.db.select().from(profiles).where(eq(profiles.uuid, uuid)).get();
  }

  list(): Profile[] {
    return this.db.select().from(profiles).orderBy(profiles.profileId).all();
  }

  create(profile: NewProfile): Profile {
    const row = { ...profile, uuid: profile.uuid ?? crypto.randomUUID() };
    return this.db.insert(profiles).values(row).returning().get();
  }

  update(profileId: number, changes: Partial<Omit<Profile, "profileId" | "uuid">>): void {
    this.db.update(profiles).set(changes).where(eq(profiles.profileId, profileId)).run();
  }

  remove(profileId: number): void {
    this.db.delete(profiles).where(eq(profiles.profileId, profileId)).run();
  }
}
