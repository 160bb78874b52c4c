/** Local users, SYNC_USERn, login rate limits and refusal timing, through IdentityService. */
import { afterEach, describe, expect, setDefaultTimeout, test } from "bun:test";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { loadConfig } from "../../src/config.ts";
import { LocalProvider } from "../../src/identity/localProvider.ts";
import { LocalUserStore } from "../../src/identity/localUsers.ts";
import { hashPassword } from "../../src/identity/passwords.ts";
import { ProfileStore } from "../../src/identity/profiles.ts";
import { LoginRateLimiter, TokenBuckets } from "../../src/identity/rateLimit.ts";
import { IdentityService } from "../../src/identity/service.ts";
import { SessionStore } from "../../src/identity/sessions.ts";
import { type Logger, silentLogger } from "../../src/log.ts";
import { openSessionDb, type SessionDb } from "../../src/platform/sessionDb.ts";
import { SyncError } from "../../src/sync/errors.ts";

// argon2 hashing and checks make some cases take seconds on a loaded machine.
setDefaultTimeout(20_000);

interface Fixture {
  dir: string;
  db: SessionDb;
  profiles: ProfileStore;
  sessions: SessionStore;
  users: LocalUserStore;
  identity: IdentityService;
  clock: { now: number };
  logged: string[];
}

const fixtures: Fixture[] = [];
afterEach(() => {
  for (const f of fixtures.splice(0)) {
    f.db.$client.close();
    rmSync(f.dir, { recursive: true, force: true });
  }
});

function fixture(rate = { perIp: 0, perUser: 0, windowSecs: 60 }, minRefusalMs = 0): Fixture {
  const dir = mkdtempSync(join(tmpdir(), "ankisyncd-local-"));
  const db = openSessionDb(join(dir, "session.db"));
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
  });
  const f = { dir, db, profiles, sessions, users, identity, clock, logged };
  fixtures.push(f);
  return f;
}

async function kind(promise: Promise<unknown>): Promise<string> {
  try {
    await promise;
    return "ok";
  } catch (err) {
    if (err instanceof SyncError) return err.kind;
    throw err;
  }
}

describe("local users", () => {
  test("add, log in, change password, disable, remove", async () => {
    const f = fixture();
    const profile = f.users.create("carol", await hashPassword("first"), "admin");
    expect(() => f.users.create("carol", "x", "admin")).toThrow(/already exists/);
    const key = await f.identity.login("carol", "first", "anki,1", "ip");
    expect((await f.identity.authenticate(key)).uuid).toBe(profile.uuid);
    expect(await kind(f.identity.login("Carol", "first", null, "ip"))).toBe("authFailed"); // exact match

    f.users.setPassword(profile.profileId, await hashPassword("second"));
    expect(await kind(f.identity.login("carol", "first", null, "ip"))).toBe("authFailed");
    expect(await kind(f.identity.login("carol", "second", null, "ip"))).toBe("ok");

    f.profiles.update(profile.profileId, { isActive: false });
    expect(await kind(f.identity.authenticate(key))).toBe("authFailed");
    expect(await kind(f.identity.login("carol", "second", null, "ip"))).toBe("authFailed");
    f.profiles.update(profile.profileId, { isActive: true });
    expect((await f.identity.authenticate(key)).uuid).toBe(profile.uuid);

    f.profiles.remove(profile.profileId);
    expect(f.users.byUsername("carol")).toBeUndefined();
    expect(f.sessions.list()).toEqual([]);
    expect(await kind(f.identity.authenticate(key))).toBe("authFailed");
  });

  test("SYNC_USERn: created, password changes applied, removal keeps the user", async () => {
    const f = fixture();
    const env = { SYNC_USER1: "alice:pw1", SYNC_USER2: "bob:pw2" };
    await f.users.syncFromEnv(loadConfig(env).syncUsers, false, silentLogger);
    const alice = f.users.byUsername("alice");
    expect(alice?.source).toBe("env:SYNC_USER1");
    expect(await kind(f.identity.login("bob", "pw2", null, "ip"))).toBe("ok");

    // alice's password changes; bob leaves the environment
    await f.users.syncFromEnv(
      loadConfig({ SYNC_USER1: "alice:pw1b" }).syncUsers,
      false,
      silentLogger,
    );
    expect(await kind(f.identity.login("alice", "pw1", null, "ip"))).toBe("authFailed");
    expect(await kind(f.identity.login("alice", "pw1b", null, "ip"))).toBe("ok");
    expect(f.users.byUsername("alice")?.profileId).toBe(alice?.profileId ?? -1);
    expect(f.users.byUsername("bob")?.source).toBe("admin");
    expect(await kind(f.identity.login("bob", "pw2", null, "ip"))).toBe("ok");

    // back in the environment: env-managed again, same profile
    const bobProfile = f.users.byUsername("bob")?.profileId;
    await f.users.syncFromEnv(
      loadConfig({ ...env, SYNC_USER2: "bob:pw2" }).syncUsers,
      false,
      silentLogger,
    );
    expect(f.users.byUsername("bob")).toMatchObject({
      source: "env:SYNC_USER2",
      profileId: bobProfile,
    });
  });

  test("an unchanged SYNC_USERn is not re-hashed at start", async () => {
    const f = fixture();
    const users = loadConfig({ SYNC_USER1: "alice:pw" }).syncUsers;
    await f.users.syncFromEnv(users, false, silentLogger);
    const before = f.users.byUsername("alice")?.passwordHash;
    await f.users.syncFromEnv(users, false, silentLogger);
    expect(f.users.byUsername("alice")?.passwordHash).toBe(before ?? "");
  });
});

describe("login rate limits", () => {
  test("token buckets refill over the window", () => {
    const clock = { now: 0 };
    const buckets = new TokenBuckets(3, 60_000, () => clock.now);
    expect([buckets.take("a"), buckets.take("a"), buckets.take("a"), buckets.take("a")]).toEqual([
      true,
      true,
      true,
      false,
    ]);
    expect(buckets.take("b")).toBe(true);
    clock.now += 20_000; // a third of the window: one token back
    expect([buckets.take("a"), buckets.take("a")]).toEqual([true, false]);
    clock.now += 60_000;
    expect(buckets.has("a")).toBe(true);
  });

  test("memory stays bounded: full buckets are dropped first", () => {
    const clock = { now: 0 };
    const buckets = new TokenBuckets(5, 60_000, () => clock.now, 100);
    for (let i = 0; i < 1000; i++) buckets.take(`k${i}`);
    expect(buckets.size).toBeLessThanOrEqual(100);
  });

  test("per username: failures count, case-insensitively; success forgives", async () => {
    const f = fixture({ perIp: 0, perUser: 3, windowSecs: 300 });
    f.users.create("dave", await hashPassword("right"), "admin");
    for (const name of ["dave", "DAVE", "dave"]) {
      expect(await kind(f.identity.login(name, "wrong", null, `10.0.0.${name.length}`))).toBe(
        "authFailed",
      );
    }
    // locked: even the right password is refused without being checked
    expect(await kind(f.identity.login("dave", "right", null, "10.0.0.9"))).toBe("tooManyRequests");
    expect(
      f.logged.some((l) => l.startsWith("login rate-limited") && l.includes("per username")),
    ).toBe(true);
    f.clock.now += 100_000; // a third of the window: one attempt back
    expect(await kind(f.identity.login("dave", "right", null, "10.0.0.9"))).toBe("ok");
    // success reset the count
    for (let i = 0; i < 3; i++)
      expect(await kind(f.identity.login("dave", "wrong", null, "ip"))).toBe("authFailed");
  });

  test("per IP: every attempt counts", async () => {
    const f = fixture({ perIp: 2, perUser: 0, windowSecs: 60 });
    f.users.create("erin", await hashPassword("pw"), "admin");
    expect(await kind(f.identity.login("erin", "pw", null, "192.0.2.1"))).toBe("ok");
    expect(await kind(f.identity.login("erin", "pw", null, "192.0.2.1"))).toBe("ok");
    expect(await kind(f.identity.login("erin", "pw", null, "192.0.2.1"))).toBe("tooManyRequests");
    expect(await kind(f.identity.login("erin", "pw", null, "192.0.2.2"))).toBe("ok");
  });
});

describe("refusal timing", () => {
  test("unknown user and wrong password take about the same time, at least the floor", async () => {
    const f = fixture(undefined, 1000); // well above an argon2 check, even on a loaded machine
    f.users.create("frank", await hashPassword("pw"), "admin");
    const time = async (user: string) => {
      const started = performance.now();
      expect(await kind(f.identity.login(user, "bad", null, "ip"))).toBe("authFailed");
      return performance.now() - started;
    };
    const wrong = await time("frank");
    const unknown = await time("nobody");
    expect(wrong).toBeGreaterThanOrEqual(995);
    expect(unknown).toBeGreaterThanOrEqual(995);
    expect(Math.abs(wrong - unknown)).toBeLessThan(150);
  });
});
