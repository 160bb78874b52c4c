/**
 * The PostgreSQL twin of schema.ts (ANKISYNCD_DATABASE_URL): the same tables, columns and row
 * types, so one store implementation serves both (stateDb.ts). Migrations: migrations/postgres/.
 * test/unit/stateDbSchema.test.ts fails when the two schemas' row types drift apart.
 */
import { bigint, boolean, index, integer, pgTable, text, timestamp } from "#drizzle/postgres";

const at = (name: string) => timestamp(name, { withTimezone: true, mode: "date" });

export const profiles = pgTable("profiles", {
  profileId: integer("profile_id").primaryKey().generatedByDefaultAsIdentity(),
  uuid: text("uuid").notNull().unique(),
  name: text("name").notNull(),
  createdAt: at("created_at").notNull().defaultNow(),
  isActive: boolean("is_active").notNull().default(true),
  provider: text("provider", { enum: ["local", "cognito"] })
    .notNull()
    .default("local"),
  email: text("email"),
  providerUsername: text("provider_username"),
  lastLoginAt: at("last_login_at"),
  lastSyncAt: at("last_sync_at"),
});

export const localCredentials = pgTable("local_credentials", {
  profileId: integer("profile_id")
    .primaryKey()
    .references(() => profiles.profileId, { onDelete: "cascade" }),
  username: text("username").notNull().unique(),
  passwordHash: text("password_hash").notNull(),
  source: text("source").notNull(),
  updatedAt: at("updated_at").notNull().defaultNow(),
});

export const sessions = pgTable(
  "sessions",
  {
    sessionId: integer("session_id").primaryKey().generatedByDefaultAsIdentity(),
    keyHash: text("key_hash").notNull().unique(),
    profileId: integer("profile_id")
      .notNull()
      .references(() => profiles.profileId, { onDelete: "cascade" }),
    createdAt: at("created_at").notNull().defaultNow(),
    lastUsedAt: at("last_used_at").notNull().defaultNow(),
    clientVersion: text("client_version"),
    revokedAt: at("revoked_at"),
  },
  (t) => [index("sessions_profile_idx").on(t.profileId)],
);

export const knownLogins = pgTable("known_logins", {
  keyHash: text("key_hash").primaryKey(),
  lastLoginAt: at("last_login_at").notNull().defaultNow(),
});

/** Scale-out: see schema.ts. Milliseconds since the epoch need 64 bits. */
const millis = (name: string) => bigint(name, { mode: "number" });

export const nodes = pgTable("nodes", {
  id: text("id").primaryKey(),
  publicUrl: text("public_url").notNull(),
  instance: text("instance").notNull(),
  startedAt: millis("started_at").notNull(),
  leaseExpiresAt: millis("lease_expires_at").notNull(),
});

export const placements = pgTable(
  "placements",
  {
    userUuid: text("user_uuid").primaryKey(),
    nodeId: text("node_id").notNull(),
    leaseExpiresAt: millis("lease_expires_at").notNull(),
    movingTo: text("moving_to"),
  },
  (t) => [index("placements_node_idx").on(t.nodeId)],
);
