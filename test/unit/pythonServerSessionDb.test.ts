/**
 * The earlier Python server's session.db (profiles + a clear-text host-key table) is adopted
 * at start: backed up, old tables moved aside, profiles and host keys carried over.
 */
import { Database } from "bun:sqlite";
import { afterEach, describe, expect, test } from "bun:test";
import { existsSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import {
  adoptedProfileNamed,
  epochSeconds,
  moveAsidePythonTables,
  pythonServerSessionDb,
} from "../../src/adoption/pythonServerSessionDb.ts";
import { loadConfig } from "../../src/config.ts";
import { LocalUserStore } from "../../src/identity/localUsers.ts";
import { ProfileStore } from "../../src/identity/profiles.ts";
import { openSessionDb as openOurs } from "../../src/identity/sessionDb.ts";
import { SessionStore } from "../../src/identity/sessions.ts";
import { silentLogger } from "../../src/log.ts";
import { startServer } from "../../src/server.ts";

const ALICE = "5e768ca5-a29d-440c-9849-900301a2c96e";
const BOB = "0f5a1f9c-3a51-4c4e-9d0e-7b1c2d3e4f50";
const CAROL = "9d2c7e15-0000-4abc-8def-123456789abc";

/** As the server and the admin CLI open it. */
const openSessionDb = (path: string) => openOurs(path, { adopt: pythonServerSessionDb() });

const dirs: string[] = [];
afterEach(() => {
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});

/** session.db as the Python server left it (SQLAlchemy-style DDL, text timestamps). */
function oldSessionDb(): { dataDir: string; path: string } {
  const dataDir = mkdtempSync(join(tmpdir(), "ankisyncd-pysession-"));
  dirs.push(dataDir);
  const path = join(dataDir, "session.db");
  const db = new Database(path);
  db.exec(`
    CREATE TABLE profiles (
      profile_id INTEGER PRIMARY KEY AUTOINCREMENT,
      uuid VARCHAR NOT NULL UNIQUE,
      name VARCHAR NOT NULL,
      created_at TIMESTAMP DEFAULT CURRENT_TIMESTAMP,
      is_active BOOLEAN DEFAULT 1
    );
    CREATE TABLE session (
      hkey VARCHAR PRIMARY KEY, skey VARCHAR, username VARCHAR, path VARCHAR,
      refresh_token VARCHAR, actual_username VARCHAR
    );
    INSERT INTO profiles (profile_id, uuid, name, created_at, is_active) VALUES
      (3, '${ALICE}', 'alice@example.com', '2024-03-01 09:30:00', 1),
      (7, '${BOB}', 'bob@example.com', '2024-05-02 10:00:00', 0),
      (8, '${CAROL}', 'carol', 1717243200, 1);
    INSERT INTO session VALUES
      ('hkey-alice', 'sk1', 'alice@example.com', '/efs/collections/${ALICE}', 'rt', '${ALICE}'),
      ('hkey-carol', 'sk2', 'carol', NULL, NULL, NULL),
      ('hkey-nobody', 'sk3', 'ghost', '/efs/collections/unknown', NULL, NULL);
  `);
  db.close();
  return { dataDir, path };
}

const rows = (path: string, sql: string) => {
  const db = new Database(path, { readonly: true });
  try {
    return db.query(sql).all();
  } finally {
    db.close();
  }
};

describe("adopting the Python server's session.db", () => {
  test("profiles keep uuid, name, created_at, is_active; old tables kept; host keys carried", async () => {
    const { path } = oldSessionDb();
    const query = "SELECT uuid, name FROM profiles ORDER BY profile_id";
    const before = rows(path, query);

    const db = openSessionDb(path);
    try {
      expect(rows(`${path}.python-server.bak`, query)).toEqual(before);
      expect(rows(path, query)).toEqual(before);
      expect(rows(path, "SELECT uuid FROM profiles WHERE is_active = 1 ORDER BY uuid")).toEqual([
        { uuid: ALICE },
        { uuid: CAROL },
      ]);
      const profiles = await new ProfileStore(db).list();
      expect(profiles.map((p) => [p.profileId, p.provider, p.isActive])).toEqual([
        [3, "cognito", true],
        [7, "cognito", false],
        [8, "cognito", true],
      ]);
      expect(profiles[0]?.createdAt.toISOString()).toBe("2024-03-01T09:30:00.000Z");
      expect(profiles[2]?.createdAt.getTime()).toBe(1717243200_000);
      // moved aside, not dropped
      expect(rows(path, "SELECT count(*) AS n FROM python_profiles")).toEqual([{ n: 3 }]);
      expect(rows(path, "SELECT hkey FROM python_session ORDER BY hkey")).toHaveLength(3);

      const sessions = new SessionStore(db);
      expect((await sessions.resolve("hkey-alice"))?.profile.uuid).toBe(ALICE);
      expect((await sessions.resolve("hkey-carol"))?.profile.uuid).toBe(CAROL);
      expect(await sessions.resolve("hkey-nobody")).toBeUndefined();
      expect(rows(path, "SELECT count(*) AS n FROM sessions WHERE key_hash LIKE 'hkey%'")).toEqual([
        { n: 0 },
      ]);
    } finally {
      await db.close();
    }

    // a second start changes nothing (a profile removed since is not brought back)
    const again = openSessionDb(path);
    try {
      await new ProfileStore(again).remove(7);
    } finally {
      await again.close();
    }
    const third = openSessionDb(path);
    try {
      expect((await new ProfileStore(third).list()).map((p) => p.profileId)).toEqual([3, 8]);
    } finally {
      await third.close();
    }
  });

  test("a start interrupted between moving aside and importing completes at the next", async () => {
    const { path } = oldSessionDb();
    const raw = new Database(path);
    moveAsidePythonTables(raw, path);
    raw.close();
    const db = openSessionDb(path);
    try {
      expect((await new ProfileStore(db).list()).map((p) => p.uuid)).toEqual([ALICE, BOB, CAROL]);
      expect((await new SessionStore(db).resolve("hkey-carol"))?.profile.uuid).toBe(CAROL);
    } finally {
      await db.close();
    }
  });

  test("a SYNC_USERn of the same name takes over the adopted profile, with its data key", async () => {
    const { path } = oldSessionDb();
    const db = openSessionDb(path);
    try {
      const profiles = new ProfileStore(db);
      const users = new LocalUserStore(db, profiles, adoptedProfileNamed);
      await users.syncFromEnv(
        loadConfig({ SYNC_USER1: "carol:carols-password", SYNC_USER2: "dan:dans-password" })
          .syncUsers,
        false,
        silentLogger,
      );
      const carol = await profiles.byId((await users.byUsername("carol"))?.profileId ?? -1);
      expect(carol).toMatchObject({ uuid: CAROL, provider: "local", profileId: 8 });
      const dan = await profiles.byId((await users.byUsername("dan"))?.profileId ?? -1);
      expect(dan?.uuid).not.toBe(CAROL);
    } finally {
      await db.close();
    }
  });

  test("the server starts on it; GET /sync/hostKey answers JSON saying it is not a login", async () => {
    const { dataDir } = oldSessionDb();
    const server = await startServer(
      loadConfig({ SYNC_HOST: "127.0.0.1", SYNC_PORT: "0", SYNC_BASE: dataDir }),
      { log: silentLogger },
    );
    try {
      const res = await fetch(`${server.url}sync/hostKey`);
      expect(res.status).toBe(405);
      expect(res.headers.get("allow")).toBe("POST");
      expect(((await res.json()) as { error: string }).error).toContain("GET is not a login");
      expect(existsSync(join(dataDir, "session.db.python-server.bak"))).toBe(true);
    } finally {
      await server.stop();
    }
  });

  test("a session.db of another shape is refused in one sentence naming it", () => {
    const dir = mkdtempSync(join(tmpdir(), "ankisyncd-pysession-"));
    dirs.push(dir);
    const path = join(dir, "session.db");
    const raw = new Database(path);
    raw.exec("CREATE TABLE sessions (x)");
    raw.close();
    expect(() => openSessionDb(path)).toThrow(
      `${path} is neither ankisyncd's session.db nor the earlier Python server's: table \`sessions\` already exists`,
    );
    expect(() => openOurs(path)).toThrow(
      `${path} is not ankisyncd's session.db: table \`sessions\` already exists`,
    );
  });

  test("created_at in the shapes the old server may have written", () => {
    expect(epochSeconds("2024-03-01 09:30:00")).toBe(1709285400);
    expect(epochSeconds("2024-03-01T09:30:00+01:00")).toBe(1709281800);
    expect(epochSeconds(1709285400)).toBe(1709285400);
    expect(epochSeconds(1709285400123)).toBe(1709285400);
    expect(epochSeconds("1709285400.5")).toBe(1709285400);
    expect(epochSeconds("yesterday")).toBeNull();
  });
});
