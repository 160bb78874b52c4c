/**
 * Cognito provider against a fake Cognito API (the SDK calls themselves run against moto in
 * test/e2e/test_cognito.py) with real ID tokens signed by a key made here.
 */
import { afterEach, beforeAll, describe, expect, setDefaultTimeout, test } from "bun:test";
import { createLocalJWKSet, exportJWK, generateKeyPair, type JWTPayload, SignJWT } from "jose";
import type { CognitoConfig } from "../../src/config.ts";
import type {
  CognitoApi,
  CognitoUserState,
  PasswordAuthResult,
} from "../../src/identity/cognito/api.ts";
import { IdTokenVerifier, InvalidIdToken } from "../../src/identity/cognito/idToken.ts";
import { CognitoProvider } from "../../src/identity/cognito/provider.ts";
import { cognitoSecretHash } from "../../src/identity/cognito/secretHash.ts";
import { IdentityError } from "../../src/identity/errors.ts";
import { LocalProvider } from "../../src/identity/localProvider.ts";
import { LocalUserStore } from "../../src/identity/localUsers.ts";
import { hashPassword } from "../../src/identity/passwords.ts";
import { ProfileStore } from "../../src/identity/profiles.ts";
import { ProviderUnavailable } from "../../src/identity/provider.ts";
import { IdentityService } from "../../src/identity/service.ts";

import { SessionStore } from "../../src/identity/sessions.ts";
import { silentLogger } from "../../src/log.ts";
import { openTestStateDb, type TestStateDb } from "../helpers/stateDbs.ts";

// argon2 hashing and checks make some cases take seconds on a loaded machine.
setDefaultTimeout(20_000);

describe("SECRET_HASH", () => {
  // Vectors computed independently with Python:
  //   base64.b64encode(hmac.new(secret.encode(), (username + client_id).encode(), hashlib.sha256).digest())
  test("matches AWS's documented algorithm", () => {
    expect(
      cognitoSecretHash(
        "alice@example.com",
        "1example23456789",
        "examplesecret0123456789abcdefghijklmnopqrstuvwx",
      ),
    ).toBe("P4bqgRagoNMcXelXMnBs4VC07M08ZBX6NsYp5CTjKPM=");
    expect(cognitoSecretHash("ünïcode@example.com", "abc", "s3cr3t")).toBe(
      "QL+HciXWI+nrhooOsk3Y98GqgD3A06gIKs//i7rlL/E=",
    );
  });
});

const POOL: CognitoConfig = {
  userPoolId: "eu-west-1_TestPool",
  clientId: "client123",
  clientSecret: null,
  region: "eu-west-1",
  credentials: null,
  endpoint: null,
  recheckSecs: 300,
};
const ISSUER = `https://cognito-idp.eu-west-1.amazonaws.com/${POOL.userPoolId}`;

let privateKey: CryptoKey;
let otherKey: CryptoKey;
let keys: ReturnType<typeof createLocalJWKSet>;

beforeAll(async () => {
  const pair = await generateKeyPair("RS256");
  privateKey = pair.privateKey;
  otherKey = (await generateKeyPair("RS256")).privateKey;
  const jwk = { ...(await exportJWK(pair.publicKey)), kid: "k1", alg: "RS256", use: "sig" };
  keys = createLocalJWKSet({ keys: [jwk] });
});

async function idToken(
  claims: JWTPayload,
  options: { key?: CryptoKey; kid?: string; expiresIn?: string } = {},
) {
  return new SignJWT({ token_use: "id", aud: POOL.clientId, iss: ISSUER, ...claims })
    .setProtectedHeader({ alg: "RS256", kid: options.kid ?? "k1" })
    .setIssuedAt()
    .setExpirationTime(options.expiresIn ?? "1h")
    .sign(options.key ?? privateKey);
}

describe("ID token verification", () => {
  const verifier = () => new IdTokenVerifier(POOL, keys);

  test("accepts a good token and reads sub, email, username", async () => {
    const claims = await verifier().verify(
      await idToken({ sub: "sub-1", email: "a@example.com", "cognito:username": "sub-1" }),
    );
    expect(claims).toEqual({ sub: "sub-1", username: "sub-1", email: "a@example.com", name: null });
  });

  const bad: [string, () => Promise<string>][] = [
    [
      "wrong issuer",
      () => idToken({ sub: "s", iss: "https://cognito-idp.eu-west-1.amazonaws.com/other" }),
    ],
    ["wrong audience", () => idToken({ sub: "s", aud: "another-client" })],
    ["access token", () => idToken({ sub: "s", token_use: "access" })],
    ["expired", () => idToken({ sub: "s" }, { expiresIn: "-5m" })],
    ["signed by another key", () => idToken({ sub: "s" }, { key: otherKey })],
    ["unknown kid", () => idToken({ sub: "s" }, { kid: "nope" })],
    ["no sub", () => idToken({})],
  ];
  for (const [name, make] of bad) {
    test(`refuses a token: ${name}`, async () => {
      await expect(verifier().verify(await make())).rejects.toBeInstanceOf(InvalidIdToken);
    });
  }

  test("an unsigned (alg none) token is refused", async () => {
    const header = Buffer.from(JSON.stringify({ alg: "none" })).toString("base64url");
    const body = Buffer.from(
      JSON.stringify({
        sub: "s",
        iss: ISSUER,
        aud: POOL.clientId,
        token_use: "id",
        exp: 9e9,
        iat: 1,
      }),
    ).toString("base64url");
    await expect(verifier().verify(`${header}.${body}.`)).rejects.toBeInstanceOf(InvalidIdToken);
  });

  test("an unreachable JWKS is an outage, not a bad token", async () => {
    const remote = new IdTokenVerifier({ ...POOL, endpoint: "http://127.0.0.1:9" });
    await expect(remote.verify(await idToken({ sub: "s" }))).rejects.toBeInstanceOf(
      ProviderUnavailable,
    );
  });
});

interface FakeUser {
  sub: string;
  email: string;
  password: string;
  enabled: boolean;
  status: string;
  challenge?: string;
}

class FakeCognito implements CognitoApi {
  users: FakeUser[] = [];
  reachable = true;
  slowMs = 0;
  getUserCalls = 0;

  async passwordAuth(username: string, password: string): Promise<PasswordAuthResult> {
    if (!this.reachable) throw new ProviderUnavailable("connect ECONNREFUSED");
    const user = this.users.find((u) => u.email === username);
    if (!user) return { kind: "refused", reason: "unknown user", knownUser: false };
    if (!user.enabled)
      return { kind: "refused", reason: "user disabled in Cognito", knownUser: true };
    if (user.password !== password)
      return { kind: "refused", reason: "wrong password or unknown user", knownUser: false };
    if (user.challenge)
      return { kind: "refused", reason: `challenge ${user.challenge}`, knownUser: true };
    return {
      kind: "tokens",
      idToken: await idToken({ sub: user.sub, email: user.email, "cognito:username": user.sub }),
    };
  }

  async getUser(username: string): Promise<CognitoUserState> {
    this.getUserCalls++;
    if (this.slowMs) await new Promise((r) => setTimeout(r, this.slowMs));
    if (!this.reachable) throw new ProviderUnavailable("connect ECONNREFUSED");
    const user = this.users.find((u) => u.sub === username);
    return user ? { found: true, enabled: user.enabled, status: user.status } : { found: false };
  }

  async hasCredentials(): Promise<boolean> {
    return true;
  }
}

interface Fixture {
  testDb: TestStateDb;
  cognito: FakeCognito;
  profiles: ProfileStore;
  sessions: SessionStore;
  local: LocalUserStore;
  identity: IdentityService;
  clock: { now: number };
}

const fixtures: Fixture[] = [];
afterEach(async () => {
  for (const f of fixtures.splice(0)) await f.testDb.dispose();
});

async function fixture(order: ("local" | "cognito")[] = ["local", "cognito"]): Promise<Fixture> {
  const testDb = await openTestStateDb("sqlite");
  const db = testDb.db;
  const profiles = new ProfileStore(db);
  const sessions = new SessionStore(db);
  const local = new LocalUserStore(db, profiles);
  const cognito = new FakeCognito();
  const clock = { now: 1_000_000 };
  const cognitoProvider = new CognitoProvider({
    config: POOL,
    api: cognito,
    profiles,
    log: silentLogger,
    verifier: new IdTokenVerifier(POOL, keys),
    now: () => clock.now,
    recheckWaitMs: 100,
  });
  const localProvider = new LocalProvider(local, profiles);
  const identity = new IdentityService({
    providers: order.map((p) => (p === "local" ? localProvider : cognitoProvider)),
    profiles,
    sessions,
    log: silentLogger,
    minRefusalMs: 0,
  });
  const f = { testDb, cognito, profiles, sessions, local, identity, clock };
  fixtures.push(f);
  return f;
}

const alice = (): FakeUser => ({
  sub: "0f7b7a4e-1111-4c4c-9d9d-aaaaaaaaaaaa",
  email: "alice@example.com",
  password: "Correct-horse-1",
  enabled: true,
  status: "CONFIRMED",
});

async function refusal(promise: Promise<unknown>): Promise<string> {
  try {
    await promise;
  } catch (err) {
    if (err instanceof IdentityError) return err.kind;
    throw err;
  }
  throw new Error("expected a refusal");
}

describe("Cognito logins", () => {
  test("first login creates the profile keyed by sub; later logins update it", async () => {
    const f = await fixture();
    const user = alice();
    f.cognito.users.push(user);
    const key = (await f.identity.login(user.email, user.password, "anki,26", "127.0.0.1")).hostKey;
    const synced = await f.identity.authenticate(key);
    expect(synced.uuid).toBe(user.sub);
    const profile = await f.profiles.byUuid(user.sub);
    expect(profile).toMatchObject({
      provider: "cognito",
      email: user.email,
      providerUsername: user.sub,
      isActive: true,
    });
    expect(profile?.lastLoginAt).toBeInstanceOf(Date);

    user.email = "alice@new.example.com";
    await f.identity.login(user.email, user.password, null, "127.0.0.1");
    expect(await f.profiles.list()).toHaveLength(1);
    expect((await f.profiles.byUuid(user.sub))?.email).toBe("alice@new.example.com");
  });

  test("wrong password, unknown user, disabled user and challenges are all 403", async () => {
    const f = await fixture();
    f.cognito.users.push(alice(), {
      ...alice(),
      sub: "s2",
      email: "off@example.com",
      enabled: false,
    });
    f.cognito.users.push({
      ...alice(),
      sub: "s3",
      email: "new@example.com",
      challenge: "NEW_PASSWORD_REQUIRED",
    });
    expect(await refusal(f.identity.login("alice@example.com", "nope", null, "ip"))).toBe(
      "authFailed",
    );
    expect(await refusal(f.identity.login("nobody@example.com", "x", null, "ip"))).toBe(
      "authFailed",
    );
    expect(await refusal(f.identity.login("off@example.com", "Correct-horse-1", null, "ip"))).toBe(
      "authFailed",
    );
    expect(await refusal(f.identity.login("new@example.com", "Correct-horse-1", null, "ip"))).toBe(
      "authFailed",
    );
    expect(await f.profiles.list()).toHaveLength(0);
  });

  test("is_active = 0 blocks a Cognito user whatever Cognito says", async () => {
    const f = await fixture();
    const user = alice();
    f.cognito.users.push(user);
    const key = (await f.identity.login(user.email, user.password, null, "ip")).hostKey;
    const profile = await f.profiles.byUuid(user.sub);
    await f.profiles.update(profile?.profileId ?? 0, { isActive: false });
    expect(await refusal(f.identity.authenticate(key))).toBe("authFailed");
    expect(await refusal(f.identity.login(user.email, user.password, null, "ip"))).toBe(
      "authFailed",
    );
  });

  test("Cognito unreachable: new logins fail with 500, local users still log in", async () => {
    const f = await fixture(["cognito", "local"]);
    await f.local.upsert("bob", await hashPassword("pw"), "admin");
    f.cognito.reachable = false;
    expect(await refusal(f.identity.login("alice@example.com", "x", null, "ip"))).toBe(
      "providerUnavailable",
    );
    expect(typeof (await f.identity.login("bob", "pw", null, "ip")).hostKey).toBe("string");
    // a local user with a wrong password is a plain 403, not an outage
    expect(await refusal(f.identity.login("bob", "wrong", null, "ip"))).toBe("authFailed");
  });
});

describe("Cognito rechecks", () => {
  async function loggedIn(f: Fixture) {
    const user = alice();
    f.cognito.users.push(user);
    const key = (await f.identity.login(user.email, user.password, null, "ip")).hostKey;
    return { user, key };
  }

  test("no recheck within the interval after login; one per interval after", async () => {
    const f = await fixture();
    const { key } = await loggedIn(f);
    await f.identity.authenticate(key);
    await f.identity.authenticate(key);
    expect(f.cognito.getUserCalls).toBe(0);
    f.clock.now += 301_000;
    await Promise.all([f.identity.authenticate(key), f.identity.authenticate(key)]);
    expect(f.cognito.getUserCalls).toBe(1);
    await f.identity.authenticate(key);
    expect(f.cognito.getUserCalls).toBe(1);
  });

  const changes: [string, (u: FakeUser, c: FakeCognito) => void][] = [
    [
      "disabled",
      (u) => {
        u.enabled = false;
      },
    ],
    [
      "deleted",
      (_u, c) => {
        c.users.pop();
      },
    ],
    [
      "reset",
      (u) => {
        u.status = "RESET_REQUIRED";
      },
    ],
  ];
  for (const [what, change] of changes) {
    test(`a user ${what} in Cognito loses all sessions at the next recheck`, async () => {
      const f = await fixture();
      const { user, key } = await loggedIn(f);
      const second = (await f.identity.login(user.email, user.password, null, "ip")).hostKey;
      change(user, f.cognito);
      await f.identity.authenticate(key); // still within the interval
      f.clock.now += 301_000;
      expect(await refusal(f.identity.authenticate(key))).toBe("authFailed");
      expect(await refusal(f.identity.authenticate(second))).toBe("authFailed");
      expect((await f.sessions.list()).every((s) => s.revokedAt)).toBe(true);
    });
  }

  test("re-enabled users log in again and sync", async () => {
    const f = await fixture();
    const { user, key } = await loggedIn(f);
    user.enabled = false;
    f.clock.now += 301_000;
    expect(await refusal(f.identity.authenticate(key))).toBe("authFailed");
    user.enabled = true;
    const again = (await f.identity.login(user.email, user.password, null, "ip")).hostKey;
    expect((await f.identity.authenticate(again)).uuid).toBe(user.sub);
  });

  test("Cognito unreachable during a recheck: the session keeps working", async () => {
    const f = await fixture();
    const { key } = await loggedIn(f);
    f.cognito.reachable = false;
    f.clock.now += 301_000;
    expect((await f.identity.authenticate(key)).uuid).toBe(alice().sub);
    expect(f.cognito.getUserCalls).toBe(1);
    await f.identity.authenticate(key); // the failure is cached for the interval too
    expect(f.cognito.getUserCalls).toBe(1);
  });

  test("a slow Cognito holds a request no longer than the wait; its answer still counts", async () => {
    const f = await fixture();
    const { user, key } = await loggedIn(f);
    user.enabled = false;
    f.cognito.slowMs = 300;
    f.clock.now += 301_000;
    const started = performance.now();
    expect((await f.identity.authenticate(key)).uuid).toBe(user.sub);
    expect(performance.now() - started).toBeLessThan(250);
    await new Promise((r) => setTimeout(r, 400));
    expect(await refusal(f.identity.authenticate(key))).toBe("authFailed");
  });

  test("a session whose provider is no longer enabled is refused", async () => {
    const f = await fixture();
    const { key } = await loggedIn(f);
    const localOnly = new IdentityService({
      providers: [new LocalProvider(f.local, f.profiles)],
      profiles: f.profiles,
      sessions: f.sessions,
      log: silentLogger,
    });
    expect(await refusal(localOnly.authenticate(key))).toBe("authFailed");
  });
});
