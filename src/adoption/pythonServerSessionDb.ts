/**
 * Adopts the session.db of the earlier Python server of this design (Cognito, `./efs`, nginx).
 * Its `profiles(profile_id, uuid, name, created_at, is_active)` has the meaning ours has, and
 * its session table (hkey, skey, username, path, refresh_token, actual_username) keeps host
 * keys in clear. Without this, our first migration fails on `CREATE TABLE profiles`.
 *
 * In two steps around the migrations (the hooks `openSessionDb` of identity/sessionDb.ts is
 * given by `pythonServerSessionDb()`), each idempotent, so an interrupted start completes later:
 * 1. `moveAsidePythonTables` (before): a copy of the file is written to
 *    `session.db.python-server.bak` (once), then the old `profiles` is renamed
 *    `python_profiles_pending`, the session table and any other table or index whose name ours
 *    need get a `python_` prefix. Nothing is dropped.
 * 2. `importPythonRows` (after): every profile is copied with its profile_id, uuid, name,
 *    created_at and is_active (provider `cognito`, the old server's), each old host key whose
 *    user is known becomes a session (only its SHA-256 is stored, as for ours), so clients go on
 *    syncing without logging in again; then `python_profiles_pending` becomes `python_profiles`.
 */

import { createHash } from "node:crypto";
import { existsSync } from "node:fs";
import type { SessionDbAdopter } from "../identity/sessionDb.ts";
import type { Logger } from "../log.ts";
import type { Db as Database } from "../platform/sqlite.ts";

export const PYTHON_BACKUP_SUFFIX = ".python-server.bak";
const PENDING = "python_profiles_pending";
export const PYTHON_PROFILES = "python_profiles";

/** Tables and indexes our migrations create: an old one by the same name is moved aside. */
const OUR_TABLES = ["profiles", "local_credentials", "sessions", "known_logins"];
const OUR_INDEXES = [
  "local_credentials_username_unique",
  "profiles_uuid_unique",
  "sessions_key_hash_unique",
  "sessions_profile_idx",
];

export interface PythonAdoption {
  backup: string;
  movedAside: string[];
}

export interface PythonImport {
  profiles: number;
  sessions: number;
  /** Old sessions whose user could not be told: those clients log in once more. */
  sessionsUnmatched: number;
}

/** Both steps, for `openSessionDb`; what was adopted is logged once, after the second. */
export function pythonServerSessionDb(log?: Logger): SessionDbAdopter {
  let adopted: PythonAdoption | null = null;
  return {
    whose: "the earlier Python server's",
    beforeMigrations(client, path) {
      adopted = moveAsidePythonTables(client, path);
    },
    afterMigrations(client) {
      const imported = importPythonRows(client);
      if (!adopted && !imported) return;
      log?.info("adopted session.db of the earlier Python server", {
        backup: adopted?.backup,
        movedAside: adopted?.movedAside.join(", "),
        profiles: imported?.profiles,
        sessions: imported?.sessions,
        sessionsUnmatched: imported?.sessionsUnmatched || undefined,
      });
    },
  };
}

/** Step 1, before migrations: null when the file is not the Python server's (or done). */
export function moveAsidePythonTables(client: Database, path: string): PythonAdoption | null {
  const tables = tableNames(client);
  if (tables.has("__drizzle_migrations") || !tables.has("profiles")) return null;
  const backup = `${path}${PYTHON_BACKUP_SUFFIX}`;
  // The first copy is the original; a start interrupted after it must not overwrite it.
  if (!existsSync(backup)) client.query("VACUUM INTO $backup").run({ backup });
  const movedAside: string[] = [];
  client.transaction(() => {
    for (const table of tables) {
      const target =
        table === "profiles"
          ? PENDING
          : OUR_TABLES.includes(table) || isPythonSessionTable(client, table)
            ? freeName(client, `python_${table}`)
            : null;
      if (!target) continue;
      client.exec(`ALTER TABLE ${quote(table)} RENAME TO ${quote(target)}`);
      movedAside.push(`${table} -> ${target}`);
    }
    const indexes = client
      .query("SELECT name, sql FROM sqlite_master WHERE type = 'index' AND sql IS NOT NULL")
      .all() as { name: string; sql: string }[];
    for (const index of indexes) {
      if (!OUR_INDEXES.includes(index.name)) continue;
      // SQLite cannot rename an index: it is recreated under a free name (same definition).
      const target = freeName(client, `python_${index.name}`);
      client.exec(`DROP INDEX ${quote(index.name)}`);
      client.exec(
        index.sql.replace(
          /INDEX\s+(IF NOT EXISTS\s+)?("[^"]+"|`[^`]+`|\S+)/i,
          `INDEX ${quote(target)}`,
        ),
      );
      movedAside.push(`index ${index.name} -> ${target}`);
    }
  })();
  return { backup, movedAside };
}

/** Step 2, after migrations: copies the old rows in once. */
export function importPythonRows(client: Database): PythonImport | null {
  if (!tableNames(client).has(PENDING)) return null;
  return client.transaction(() => {
    const report: PythonImport = { profiles: 0, sessions: 0, sessionsUnmatched: 0 };
    const rows = client.query(`SELECT * FROM ${PENDING}`).all() as Record<string, unknown>[];
    const insert = client.query(
      `INSERT OR IGNORE INTO profiles (profile_id, uuid, name, created_at, is_active, provider)
       VALUES ($id, $uuid, $name, $createdAt, $active, 'cognito')`,
    );
    const now = Math.floor(Date.now() / 1000);
    for (const row of rows) {
      if (typeof row.uuid !== "string" || !row.uuid) continue;
      const result = insert.run({
        id: typeof row.profile_id === "number" ? row.profile_id : null,
        uuid: row.uuid,
        name: row.name == null ? row.uuid : String(row.name),
        createdAt: epochSeconds(row.created_at) ?? now,
        active: isActive(row.is_active) ? 1 : 0,
      });
      report.profiles += result.changes;
    }
    importSessions(client, report);
    client.exec(`ALTER TABLE ${PENDING} RENAME TO ${quote(freeName(client, PYTHON_PROFILES))}`);
    return report;
  })();
}

/**
 * The adopted profile a new local user of this name takes over (so `SYNC_USERn` can stand in
 * for the old server's Cognito login): one named exactly so, never logged in here. A
 * `ProfileToTakeOver` (identity/localUsers.ts).
 */
export function adoptedProfileNamed(client: Database, username: string): number | null {
  if (!tableNames(client).has(PYTHON_PROFILES)) return null;
  const rows = client
    .query(
      `SELECT p.profile_id AS id FROM profiles p JOIN ${PYTHON_PROFILES} o ON o.uuid = p.uuid
       WHERE p.name = $username AND p.provider = 'cognito' AND p.last_login_at IS NULL
         AND p.provider_username IS NULL
         AND NOT EXISTS (SELECT 1 FROM local_credentials c WHERE c.profile_id = p.profile_id)`,
    )
    .all({ username }) as { id: number }[];
  return rows.length === 1 ? (rows[0]?.id ?? null) : null;
}

function importSessions(client: Database, report: PythonImport): void {
  const profiles = client.query("SELECT profile_id, uuid, name FROM profiles").all() as {
    profile_id: number;
    uuid: string;
    name: string;
  }[];
  const byUuid = new Map(profiles.map((p) => [p.uuid, p.profile_id]));
  const byName = new Map<string, number | null>();
  for (const p of profiles) byName.set(p.name, byName.has(p.name) ? null : p.profile_id);
  const insert = client.query(
    "INSERT OR IGNORE INTO sessions (key_hash, profile_id, client_version) VALUES ($hash, $id, NULL)",
  );
  for (const table of tableNames(client)) {
    if (!table.startsWith("python_") || !isPythonSessionTable(client, table)) continue;
    for (const row of client.query(`SELECT * FROM ${quote(table)}`).all() as Record<
      string,
      unknown
    >[]) {
      if (typeof row.hkey !== "string" || !row.hkey) continue;
      const profileId = ownerOf(row, byUuid, byName);
      if (profileId === null) {
        report.sessionsUnmatched++;
        continue;
      }
      const hash = createHash("sha256").update(row.hkey).digest("hex");
      report.sessions += insert.run({ hash, id: profileId }).changes;
    }
  }
}

/** The collection path names the uuid; otherwise a username that is exactly one profile's name. */
function ownerOf(
  row: Record<string, unknown>,
  byUuid: Map<string, number>,
  byName: Map<string, number | null>,
): number | null {
  if (typeof row.path === "string") {
    for (const part of row.path.split(/[\\/]/)) {
      const id = byUuid.get(part);
      if (id !== undefined) return id;
    }
  }
  for (const key of ["username", "actual_username"]) {
    const value = row[key];
    if (typeof value !== "string") continue;
    const id = byUuid.get(value) ?? byName.get(value);
    if (id != null) return id;
  }
  return null;
}

function isPythonSessionTable(client: Database, table: string): boolean {
  const columns = new Set(
    (client.query(`PRAGMA table_info(${quote(table)})`).all() as { name: string }[]).map(
      (c) => c.name,
    ),
  );
  return columns.has("hkey") && columns.has("skey") && columns.has("username");
}

function tableNames(client: Database): Set<string> {
  const rows = client
    .query("SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%'")
    .all() as { name: string }[];
  return new Set(rows.map((r) => r.name));
}

function freeName(client: Database, wanted: string): string {
  const taken = (name: string) =>
    client.query("SELECT 1 FROM sqlite_master WHERE name = $name").get({ name }) !== null;
  let name = wanted;
  for (let i = 2; taken(name); i++) name = `${wanted}_${i}`;
  return name;
}

function quote(name: string): string {
  return `"${name.replaceAll('"', '""')}"`;
}

function isActive(value: unknown): boolean {
  if (value === null || value === undefined) return true;
  if (typeof value === "string")
    return !["0", "false", "f", "no", ""].includes(value.toLowerCase());
  return Boolean(value);
}

/**
 * created_at as Unix seconds: the old server's may be Unix seconds or milliseconds, or text
 * (SQLite's `CURRENT_TIMESTAMP`, UTC, or ISO 8601). Null when it cannot be read.
 */
export function epochSeconds(value: unknown): number | null {
  if (typeof value === "number" || typeof value === "bigint") {
    const n = Number(value);
    return Math.floor(n > 1e11 ? n / 1000 : n);
  }
  if (typeof value !== "string" || !value.trim()) return null;
  const text = value.trim();
  if (/^\d+(\.\d+)?$/.test(text)) return epochSeconds(Number(text));
  const iso = text.includes("T") ? text : text.replace(" ", "T");
  const ms = Date.parse(/[zZ]|[+-]\d\d:?\d\d$/.test(iso) ? iso : `${iso}Z`);
  return Number.isNaN(ms) ? null : Math.floor(ms / 1000);
}
