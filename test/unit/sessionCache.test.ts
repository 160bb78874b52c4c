/**
 * Resolved sessions are kept for a short TTL (identity/sessionCache.ts): revocations in this
 * process act at once, a change made by another process (the admin CLI writes session.db
 * directly) within the TTL, and the cache stays bounded.
 */
import { afterEach, expect, test } from "bun:test";
import { readFileSync } from "node:fs";
import { ProfileStore } from "../../src/identity/profiles.ts";
import {
  SESSION_CACHE_TTL_MS,
  SessionCache,
  sessionCacheTtlFor,
} from "../../src/identity/sessionCache.ts";
import type { ResolvedSession } from "../../src/identity/sessions.ts";
import { SessionStore } from "../../src/identity/sessions.ts";
import { openTestStateDb, type TestStateDb } from "../helpers/stateDbs.ts";

const opened: TestStateDb[] = [];
afterEach(async () => {
  for (const t of opened.splice(0)) await t.dispose();
});

async function fixture() {
  const t = await openTestStateDb("sqlite");
  opened.push(t);
  const sql = t.db.sqlite;
  if (!sql) throw new Error("session.db expected");
  const profiles = new ProfileStore(t.db);
  const profile = await profiles.create({ name: "ann", provider: "local" });
  const sessions = new SessionStore(t.db);
  /** What `bun run admin session revoke` does from its own process: no call into ours. */
  const revokeOutside = () => sql.exec("UPDATE sessions SET revoked_at = unixepoch()");
  return { sessions, profiles, profile, revokeOutside, sql };
}

test("a session revoked by another process is refused once the TTL has passed", async () => {
  const { sessions, profile, revokeOutside } = await fixture();
  const key = await sessions.create(profile.profileId, null);
  const t0 = Date.now();
  expect(await sessions.resolve(key, new Date(t0))).toBeDefined();
  revokeOutside();
  const within = new Date(t0 + SESSION_CACHE_TTL_MS - 1);
  expect(await sessions.resolve(key, within)).toBeDefined();
  expect(await sessions.resolve(key, new Date(t0 + SESSION_CACHE_TTL_MS))).toBeUndefined();
});

test("revocations in this process act on the next request", async () => {
  const { sessions, profile } = await fixture();
  const one = await sessions.create(profile.profileId, null);
  const two = await sessions.create(profile.profileId, null);
  const three = await sessions.create(profile.profileId, null);
  const now = new Date();
  for (const key of [one, two, three]) expect(await sessions.resolve(key, now)).toBeDefined();
  const first = await sessions.resolve(one, now);
  await sessions.revoke(first?.session.sessionId ?? -1);
  expect(await sessions.resolve(one, now)).toBeUndefined();
  expect(await sessions.resolve(two, now)).toBeDefined();
  await sessions.revokeAllFor(profile.profileId);
  expect(await sessions.resolve(two, now)).toBeUndefined();
  expect(await sessions.resolve(three, now)).toBeUndefined();
});

test("last_used_at is still written once a minute, not once per request", async () => {
  const { sessions, profile, sql } = await fixture();
  const key = await sessions.create(profile.profileId, null);
  const lastUsed = () =>
    (sql.query("SELECT last_used_at FROM sessions").get() as { last_used_at: number }).last_used_at;
  const later = Date.now() + 120_000;
  expect((await sessions.resolve(key, new Date(later)))?.session.lastUsedAt.getTime()).toBe(later);
  expect(lastUsed()).toBe(Math.floor(later / 1000));
  sql.exec("UPDATE sessions SET last_used_at = 0");
  expect(await sessions.resolve(key, new Date(later + 10))).toBeDefined();
  expect(lastUsed()).toBe(0); // answered from the cache: no second write
});

test("an idle session is refused even when cached", async () => {
  const t = await openTestStateDb("sqlite");
  opened.push(t);
  const profile = await new ProfileStore(t.db).create({ name: "bo", provider: "local" });
  const sessions = new SessionStore(t.db, { idleDays: 1 });
  const key = await sessions.create(profile.profileId, null);
  const now = Date.now();
  expect(await sessions.resolve(key, new Date(now))).toBeDefined();
  t.db.sqlite?.exec("UPDATE sessions SET last_used_at = 0");
  expect(await sessions.resolve(key, new Date(now + 2 * SESSION_CACHE_TTL_MS))).toBeUndefined();
});

test("kept on session.db; with PostgreSQL every request asks the shared database", async () => {
  const t = await openTestStateDb("sqlite");
  opened.push(t);
  expect(sessionCacheTtlFor(t.db)).toBe(SESSION_CACHE_TTL_MS);
  expect(sessionCacheTtlFor({ sqlite: null })).toBe(0);
});

test("cacheTtlMs 0 asks session.db on every request", async () => {
  const t = await openTestStateDb("sqlite");
  opened.push(t);
  const profile = await new ProfileStore(t.db).create({ name: "cy", provider: "local" });
  const sessions = new SessionStore(t.db, { cacheTtlMs: 0 });
  const key = await sessions.create(profile.profileId, null);
  const now = new Date();
  expect(await sessions.resolve(key, now)).toBeDefined();
  t.db.sqlite?.exec("UPDATE sessions SET revoked_at = unixepoch()");
  expect(await sessions.resolve(key, now)).toBeUndefined();
});

function resolved(sessionId: number, profileId = 1): ResolvedSession {
  return { session: { sessionId, profileId }, profile: { profileId } } as ResolvedSession;
}

test("the cache holds at most its bound, dropping the oldest and the expired", () => {
  const cache = new SessionCache(1000, 3);
  for (let i = 1; i <= 5; i++) cache.set(`k${i}`, resolved(i), i, cache.readToken);
  expect(cache.size).toBe(3);
  expect(cache.get("k1", 5)).toBeUndefined();
  expect(cache.get("k5", 5)?.session.sessionId).toBe(5);
  cache.set("k6", resolved(6), 1004, cache.readToken); // k3 and k4 have expired
  expect(cache.size).toBe(2);
  expect(cache.get("k5", 1004)).toBeDefined();
});

test("a read that began before a revocation is not kept", () => {
  const cache = new SessionCache();
  const token = cache.readToken;
  cache.forgetProfile(7); // a revoke ran while the (PostgreSQL) read was in flight
  cache.set("k", resolved(1, 7), 0, token);
  expect(cache.get("k", 0)).toBeUndefined();
});

test("disabling or removing the profile in this process acts on the next request", async () => {
  const { sessions, profiles, profile, sql } = await fixture();
  const key = await sessions.create(profile.profileId, null);
  const now = new Date();
  expect((await sessions.resolve(key, now))?.profile.isActive).toBe(true);
  await profiles.update(profile.profileId, { lastSyncAt: now }); // bookkeeping: kept
  expect((await sessions.resolve(key, now))?.profile.lastSyncAt).toBeNull();
  await profiles.update(profile.profileId, { isActive: false });
  expect((await sessions.resolve(key, now))?.profile.isActive).toBe(false);
  sql.exec("PRAGMA foreign_keys = ON");
  await profiles.remove(profile.profileId);
  expect(await sessions.resolve(key, now)).toBeUndefined();
});

test("the real-client test waits out the same TTL", () => {
  const e2e = readFileSync(new URL("../e2e/test_sessions.py", import.meta.url), "utf8");
  const seconds = Number(/^SESSION_CACHE_TTL_S = ([\d.]+)$/m.exec(e2e)?.[1]);
  expect(seconds * 1000).toBe(SESSION_CACHE_TTL_MS);
});
