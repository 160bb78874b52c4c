/** session.db: profiles, local credentials and host-key sessions (Drizzle, migrations/). */
import { index, integer, sql, sqliteTable, text } from "#drizzle/sqlite";

const now = sql`(unixepoch())`;

export const profiles = sqliteTable("profiles", {
  profileId: integer("profile_id").primaryKey({ autoIncrement: true }),
  /** Permanent key of the user's data: the Cognito `sub`, or a generated UUID for local users. */
  uuid: text("uuid").notNull().unique(),
  name: text("name").notNull(),
  createdAt: integer("created_at", { mode: "timestamp" }).notNull().default(now),
  isActive: integer("is_active", { mode: "boolean" }).notNull().default(true),
  provider: text("provider", { enum: ["local", "cognito"] })
    .notNull()
    .default("local"),
  email: text("email"),
  /** The provider's own name for the account (Cognito `cognito:username`), for admin lookups. */
  providerUsername: text("provider_username"),
  lastLoginAt: integer("last_login_at", { mode: "timestamp" }),
  lastSyncAt: integer("last_sync_at", { mode: "timestamp" }),
});

export const localCredentials = sqliteTable("local_credentials", {
  profileId: integer("profile_id")
    .primaryKey()
    .references(() => profiles.profileId, { onDelete: "cascade" }),
  /** Login name, compared exactly (case-sensitive), as Anki's own server does. */
  username: text("username").notNull().unique(),
  /** PHC string: argon2id for passwords we hashed, pbkdf2-sha256 when given pre-hashed. */
  passwordHash: text("password_hash").notNull(),
  /** `env:SYNC_USER1` when managed by the environment, `admin` when added by the CLI. */
  source: text("source").notNull(),
  updatedAt: integer("updated_at", { mode: "timestamp" }).notNull().default(now),
});

export const sessions = sqliteTable(
  "sessions",
  {
    sessionId: integer("session_id").primaryKey({ autoIncrement: true }),
    /** SHA-256 of the host key; the key itself is never stored. */
    keyHash: text("key_hash").notNull().unique(),
    profileId: integer("profile_id")
      .notNull()
      .references(() => profiles.profileId, { onDelete: "cascade" }),
    createdAt: integer("created_at", { mode: "timestamp" }).notNull().default(now),
    lastUsedAt: integer("last_used_at", { mode: "timestamp" }).notNull().default(now),
    clientVersion: text("client_version"),
    revokedAt: integer("revoked_at", { mode: "timestamp" }),
  },
  (t) => [index("sessions_profile_idx").on(t.profileId)],
);

/**
 * (username, client address) pairs that logged in successfully, so the per-username login limit
 * never refuses them (rateLimit.ts). Only a hash of the pair is kept.
 */
export const knownLogins = sqliteTable("known_logins", {
  keyHash: text("key_hash").primaryKey(),
  lastLoginAt: integer("last_login_at", { mode: "timestamp" }).notNull().default(now),
});
/**
 * Scale-out (placement/): the nodes sharing the data folder, and which node serves which user.
 * Times are milliseconds since the epoch, by the writing node's clock (nodes keep NTP time;
 * leases last tens of seconds).
 */
export const nodes = sqliteTable("nodes", {
  /** ANKISYNCD_NODE_ID. */
  id: text("id").primaryKey(),
  /** ANKISYNCD_PUBLIC_URL: the base clients are redirected to. */
  publicUrl: text("public_url").notNull(),
  /** The process holding the id (storage/instance.ts tag): a second one with that id is refused. */
  instance: text("instance").notNull(),
  startedAt: integer("started_at").notNull(),
  /** The node counts as alive until then; it renews several times per lease. */
  leaseExpiresAt: integer("lease_expires_at").notNull(),
});

export const placements = sqliteTable(
  "placements",
  {
    userUuid: text("user_uuid").primaryKey(),
    nodeId: text("node_id").notNull(),
    /** Renewed by the node while it serves the user; afterwards any node may take the user. */
    leaseExpiresAt: integer("lease_expires_at").notNull(),
    /** A move asked for (`admin user move`, a legacy client at another node): the owner hands over once the user's sync has ended. */
    movingTo: text("moving_to"),
  },
  (t) => [index("placements_node_idx").on(t.nodeId)],
);

export type Profile = typeof profiles.$inferSelect;
export type Session = typeof sessions.$inferSelect;
