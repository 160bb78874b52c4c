/**
 * session.db's host-key lookup runs without Drizzle (sessions.ts sqliteSessionLookup): it must
 * give exactly what the Drizzle query gives, every column mapped the same way.
 */
import { afterEach, expect, test } from "bun:test";
import { ProfileStore } from "../../src/identity/profiles.ts";
import { SessionStore } from "../../src/identity/sessions.ts";
import { openTestStateDb, type TestStateDb } from "../helpers/stateDbs.ts";

const opened: TestStateDb[] = [];
afterEach(async () => {
  for (const t of opened.splice(0)) await t.dispose();
});

test("the raw SQLite lookup and the Drizzle one resolve the same session and profile", async () => {
  const t = await openTestStateDb("sqlite");
  opened.push(t);
  const raw = new SessionStore(t.db);
  // The same database through the query every other dialect uses.
  const viaDrizzle = new SessionStore({ ...t.db, sqlite: null });
  const profiles = new ProfileStore(t.db);
  const bare = await profiles.create({ name: "bare", provider: "local" });
  const full = await profiles.create({
    name: "full",
    provider: "cognito",
    email: "full@example.org",
    providerUsername: "full-sub",
  });
  await profiles.update(full.profileId, {
    isActive: false,
    lastLoginAt: new Date(1_700_000_000_000),
    lastSyncAt: new Date(1_700_000_123_000),
  });
  const now = new Date(Date.now() + 1000);
  for (const profile of [bare, full]) {
    const key = await raw.create(profile.profileId, profile === bare ? null : "25.02.5,x,linux");
    const expected = await viaDrizzle.resolve(key, now);
    expect(expected?.profile.profileId).toBe(profile.profileId);
    expect(await raw.resolve(key, now)).toEqual(expected);
  }
  const revoked = await raw.create(bare.profileId, null);
  const [session] = (await raw.list(bare.profileId)).slice(-1);
  await raw.revoke(session?.sessionId ?? -1);
  expect(await raw.resolve(revoked)).toBeUndefined();
  expect(await viaDrizzle.resolve(revoked)).toBeUndefined();
  expect(await raw.resolve("no-such-key")).toBeUndefined();
});
