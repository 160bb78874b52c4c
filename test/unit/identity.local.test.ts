/**
 * Local users, SYNC_USERn, sessions and refusal timing, through IdentityService (limits:
 * loginLimits.test.ts). The store cases run on session.db and on PostgreSQL (stateDbs.ts).
 */
import { afterEach, describe, expect, setDefaultTimeout, test } from "bun:test";
import { loadConfig } from "../../src/config.ts";
import { asDatabaseError, IdentityError } from "../../src/identity/errors.ts";
import { LocalProvider } from "../../src/identity/localProvider.ts";
import { LocalUserStore } from "../../src/identity/localUsers.ts";
import { hashPassword } from "../../src/identity/passwords.ts";
import { ProfileStore } from "../../src/identity/profiles.ts";
import { LoginRateLimiter } from "../../src/identity/rateLimit.ts";
import { type Clock, IdentityService } from "../../src/identity/service.ts";
import { SessionStore } from "../../src/identity/sessions.ts";
import type { Dialect, StateDb } from "../../src/identity/stateDb.ts";
import { type Logger, silentLogger } from "../../src/log.ts";
import { loginOutcome } from "../helpers/loginOutcome.ts";
import { openTestStateDb, type TestStateDb, testDialects } from "../helpers/stateDbs.ts";

// argon2 hashing and checks make some cases take seconds on a loaded machine.
setDefaultTimeout(20_000);

interface Fixture {
  testDb: TestStateDb;
  db: StateDb;
  profiles: ProfileStore;
  sessions: SessionStore;
  users: LocalUserStore;
  identity: IdentityService;
  clock: { now: number };
  logged: string[];
}

const fixtures: Fixture[] = [];
afterEach(async () => {
  for (const f of fixtures.splice(0)) await f.testDb.dispose();
});

async function fixture(
  dialect: Dialect = "sqlite",
  rate = { perIp: 0, perUser: 0, windowSecs: 60 },
  minRefusalMs = 0,
  serviceClock?: Clock,
): Promise<Fixture> {
  const testDb = await openTestStateDb(dialect);
  const db = testDb.db;
  const profiles = new ProfileStore(db);
  const sessions = new SessionStore(db);
  const users = new LocalUserStore(db, profiles);
  const clock = { now: 0 };
  const logged: string[] = [];
  const log: Logger = { ...silentLogger, warn: (m, f) => logged.push(`${m} ${JSON.stringify(f)}`) };
  const identity = new IdentityService({
    providers: [new LocalProvider(users, profiles)],
    profiles,
    sessions,
    log,
    rateLimiter: new LoginRateLimiter(rate, () => clock.now),
    minRefusalMs,
    ...(serviceClock ? { clock: serviceClock } : {}),
  });
  const f = { testDb, db, profiles, sessions, users, identity, clock, logged };
  fixtures.push(f);
  return f;
}

describe.each(testDialects())("local users (%s)", (dialect) => {
  test("add, log in, change password, disable, remove", async () => {
    const f = await fixture(dialect);
    const profile = await f.users.create("carol", await hashPassword("first"), "admin");
    await expect(f.users.create("carol", "x", "admin")).rejects.toThrow(/already exists/);
    const key = (await f.identity.login("carol", "first", "anki,1", "ip")).hostKey;
    expect((await f.identity.authenticate(key)).uuid).toBe(profile.uuid);
    expect(await loginOutcome(f.identity.login("Carol", "first", null, "ip"))).toBe("authFailed"); // exact match

    await f.users.setPassword(profile.profileId, await hashPassword("second"));
    expect(await loginOutcome(f.identity.login("carol", "first", null, "ip"))).toBe("authFailed");
    expect(await loginOutcome(f.identity.login("carol", "second", null, "ip"))).toBe("ok");

    await f.profiles.update(profile.profileId, { isActive: false });
    expect(await loginOutcome(f.identity.authenticate(key))).toBe("authFailed");
    expect(await loginOutcome(f.identity.login("carol", "second", null, "ip"))).toBe("authFailed");
    await f.profiles.update(profile.profileId, { isActive: true });
    expect((await f.identity.authenticate(key)).uuid).toBe(profile.uuid);

    await f.profiles.remove(profile.profileId);
    expect(await f.users.byUsername("carol")).toBeUndefined();
    expect(await f.sessions.list()).toEqual([]);
    expect(await loginOutcome(f.identity.authenticate(key))).toBe("authFailed");
  });

  test("SYNC_USERn: created, password changes applied, removal keeps the user", async () => {
    const f = await fixture(dialect);
    const env = { SYNC_USER1: "alice:pw1", SYNC_USER2: "bob:pw2" };
    await f.users.syncFromEnv(loadConfig(env).syncUsers, false, silentLogger);
    const alice = await f.users.byUsername("alice");
    expect(alice?.source).toBe("env:SYNC_USER1");
    expect(await loginOutcome(f.identity.login("bob", "pw2", null, "ip"))).toBe("ok");

    // alice's password changes; bob leaves the environment
    await f.users.syncFromEnv(
      loadConfig({ SYNC_USER1: "alice:pw1b" }).syncUsers,
      false,
      silentLogger,
    );
    expect(await loginOutcome(f.identity.login("alice", "pw1", null, "ip"))).toBe("authFailed");
    expect(await loginOutcome(f.identity.login("alice", "pw1b", null, "ip"))).toBe("ok");
    expect((await f.users.byUsername("alice"))?.profileId).toBe(alice?.profileId ?? -1);
    expect((await f.users.byUsername("bob"))?.source).toBe("admin");
    expect(await loginOutcome(f.identity.login("bob", "pw2", null, "ip"))).toBe("ok");

    // back in the environment: env-managed again, same profile
    const bobProfile = (await f.users.byUsername("bob"))?.profileId;
    await f.users.syncFromEnv(
      loadConfig({ ...env, SYNC_USER2: "bob:pw2" }).syncUsers,
      false,
      silentLogger,
    );
    expect(await f.users.byUsername("bob")).toMatchObject({
      source: "env:SYNC_USER2",
      profileId: bobProfile,
    });
  });

  test("nodes creating the same user at once end with one user and one profile", async () => {
    const f = await fixture(dialect);
    const created = await Promise.all(
      ["hash-a", "hash-b", "hash-c"].map((hash) => f.users.upsert("lee", hash, "env:SYNC_USER1")),
    );
    expect(new Set(created.map((p) => p.profileId)).size).toBe(1);
    expect(await f.profiles.list()).toHaveLength(1);
    expect(await f.users.list()).toHaveLength(1);
  });

  test("SYNC_USERn hashed several at a time: each user gets their own password", async () => {
    const f = await fixture(dialect);
    const env = Object.fromEntries(
      Array.from({ length: 6 }, (_, i) => [`SYNC_USER${i + 1}`, `user${i}:password-${i}`]),
    );
    await f.users.syncFromEnv(loadConfig(env).syncUsers, false, silentLogger);
    for (let i = 0; i < 6; i++) {
      expect((await f.users.byUsername(`user${i}`))?.source).toBe(`env:SYNC_USER${i + 1}`);
      expect(await loginOutcome(f.identity.login(`user${i}`, `password-${i}`, null, "ip"))).toBe(
        "ok",
      );
      const other = `password-${(i + 1) % 6}`;
      expect(await loginOutcome(f.identity.login(`user${i}`, other, null, "ip"))).toBe(
        "authFailed",
      );
    }
  });

  test("an unchanged SYNC_USERn is not re-hashed at start", async () => {
    const f = await fixture(dialect);
    const users = loadConfig({ SYNC_USER1: "alice:pw" }).syncUsers;
    await f.users.syncFromEnv(users, false, silentLogger);
    const before = (await f.users.byUsername("alice"))?.passwordHash;
    await f.users.syncFromEnv(users, false, silentLogger);
    expect((await f.users.byUsername("alice"))?.passwordHash).toBe(before ?? "");
  });
});

describe("refusal timing", () => {
  test("unknown user and wrong password are both padded to the floor", async () => {
    // Virtual time: the real time the checks take, plus whatever the service asked to sleep,
    // without really sleeping, so a loaded machine changes nothing.
    let slept = 0;
    const clock: Clock = {
      now: () => performance.now() + slept,
      sleep: async (ms) => {
        slept += Math.max(0, ms);
      },
    };
    const f = await fixture("sqlite", undefined, 1000, clock);
    await f.users.create("frank", await hashPassword("pw"), "admin");
    const time = async (user: string) => {
      const started = clock.now();
      expect(await loginOutcome(f.identity.login(user, "bad", null, "ip"))).toBe("authFailed");
      return clock.now() - started;
    };
    expect(await time("frank")).toBeGreaterThanOrEqual(1000);
    expect(await time("nobody")).toBeGreaterThanOrEqual(1000);
  });
});

describe.each(testDialects())("sessions (%s)", (dialect) => {
  test("a session unused past the idle limit stops working and is pruned", async () => {
    const f = await fixture(dialect);
    const profile = await f.users.create("gina", await hashPassword("pw-gina-1"), "admin");
    const sessions = new SessionStore(f.db, { idleDays: 30 });
    const key = await sessions.create(profile.profileId, null);
    const day = 86_400_000;
    const created = (await sessions.list())[0]?.lastUsedAt.getTime() ?? 0;
    // used on day 20: last_used_at moves, so it lives 30 days from then
    expect(await sessions.resolve(key, new Date(created + 20 * day))).toBeDefined();
    expect(await sessions.resolve(key, new Date(created + 49 * day))).toBeDefined();
    expect(await sessions.resolve(key, new Date(created + 80 * day))).toBeUndefined();
    expect(await sessions.prune(new Date(created + 80 * day))).toBe(1);
    expect(await sessions.list()).toEqual([]);
  });

  test("revoked sessions are listed for a month, then pruned; idle 0 never expires", async () => {
    const f = await fixture(dialect);
    const profile = await f.users.create("hal", await hashPassword("pw-hal-11"), "admin");
    const key = await f.sessions.create(profile.profileId, null);
    await f.sessions.create(profile.profileId, null);
    const now = Date.now();
    expect(await f.sessions.revokeAllFor(profile.profileId, new Date(now))).toBe(2);
    expect(await f.sessions.prune(new Date(now + 86_400_000))).toBe(0);
    expect(await f.sessions.prune(new Date(now + 31 * 86_400_000))).toBe(2);
    const other = await f.sessions.create(profile.profileId, null);
    expect(await f.sessions.resolve(other, new Date(now + 3650 * 86_400_000))).toBeDefined();
    expect(await f.sessions.resolve(key)).toBeUndefined();
  });

  test("a password changed in SYNC_USERn revokes the user's sessions", async () => {
    const f = await fixture(dialect);
    await f.users.syncFromEnv(
      loadConfig({ SYNC_USER1: "ivy:first-pw" }).syncUsers,
      false,
      silentLogger,
      f.sessions,
    );
    const key = (await f.identity.login("ivy", "first-pw", null, "ip")).hostKey;
    // unchanged: kept
    await f.users.syncFromEnv(
      loadConfig({ SYNC_USER1: "ivy:first-pw" }).syncUsers,
      false,
      silentLogger,
      f.sessions,
    );
    expect((await f.identity.authenticate(key)).name).toBe("ivy");
    await f.users.syncFromEnv(
      loadConfig({ SYNC_USER1: "ivy:second-pw" }).syncUsers,
      false,
      silentLogger,
      f.sessions,
    );
    expect(await loginOutcome(f.identity.authenticate(key))).toBe("authFailed");
  });

  test("a short SYNC_USERn password is accepted with a warning", async () => {
    const f = await fixture(dialect);
    const warned: string[] = [];
    const log: Logger = { ...silentLogger, warn: (m) => warned.push(m) };
    await f.users.syncFromEnv(loadConfig({ SYNC_USER1: "jo:abc" }).syncUsers, false, log);
    expect(warned.some((m) => m.startsWith("SYNC_USER1: weak password"))).toBe(true);
    expect(await loginOutcome(f.identity.login("jo", "abc", null, "ip"))).toBe("ok");
  });
});

describe.skipIf(!testDialects().includes("postgres"))("PostgreSQL unreachable", () => {
  test("a failed query is a databaseUnavailable error naming the cause; others pass as they are", async () => {
    const f = await fixture("postgres");
    const profile = await f.users.create("kim", await hashPassword("pw-kim-123"), "admin");
    const key = await f.sessions.create(profile.profileId, null);
    await f.db.close(); // as good as a database gone: every query now fails
    const failed = await f.identity.authenticate(key).catch((err: unknown) => err);
    const mapped = asDatabaseError(failed);
    expect(mapped).toBeInstanceOf(IdentityError);
    expect((mapped as IdentityError).kind).toBe("databaseUnavailable");
    expect((mapped as IdentityError).message).toMatch(
      /^shared database \(PostgreSQL\) unavailable: /,
    );
    const dropped = Object.assign(new Error("socket hang up"), { code: "ECONNRESET" });
    expect(asDatabaseError(dropped)).toBe(dropped);
  });
});
