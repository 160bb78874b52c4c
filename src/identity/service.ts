/**
 * Login and host-key authentication, whatever the provider. Providers are tried in order;
 * a provider that knows the user and refuses ends the attempt. Logins are rate-limited per
 * client IP and per username, and refusals take a minimum time so that which check failed
 * (unknown user, wrong password, which provider) does not show in the response time.
 */
import type { Logger } from "../log.ts";
import { authFailed, describeDbError, IdentityError } from "./errors.ts";
import type { ProfileStore } from "./profiles.ts";
import { type IdentityProvider, ProviderUnavailable } from "./provider.ts";
import type { Admission, LoginRateLimiter, LoginResult } from "./rateLimit.ts";
import type { Profile } from "./schema.ts";
import type { SessionStore } from "./sessions.ts";

export interface SyncUser {
  profileId: number;
  uuid: string;
  name: string;
  sessionId: number;
}

export interface IdentityServiceOptions {
  providers: readonly IdentityProvider[];
  profiles: ProfileStore;
  sessions: SessionStore;
  log: Logger;
  rateLimiter?: LoginRateLimiter;
  /** Refused logins are answered no sooner than this after they arrived. */
  minRefusalMs?: number;
  /** Time and waiting, injectable so tests of the limits need no real waiting. */
  clock?: Clock;
}

export interface Clock {
  now(): number;
  sleep(ms: number): Promise<void>;
}

const realClock: Clock = {
  now: () => performance.now(),
  sleep: (ms) => (ms > 0 ? new Promise((resolve) => setTimeout(resolve, ms)) : Promise.resolve()),
};

/** `last_sync_at` is written at most this often per profile: one write, not one per sync. */
const SYNC_RECORD_INTERVAL_MS = 60_000;

/** Above the cost of an argon2 check plus a Cognito round trip. */
export const DEFAULT_MIN_REFUSAL_MS = 500;

export class IdentityService {
  private readonly providers: readonly IdentityProvider[];
  private readonly profiles: ProfileStore;
  private readonly sessions: SessionStore;
  private readonly log: Logger;
  private readonly rateLimiter: LoginRateLimiter | undefined;
  private readonly minRefusalMs: number;
  private readonly clock: Clock;
  private readonly syncRecorded = new Map<number, number>();

  constructor(options: IdentityServiceOptions) {
    this.providers = options.providers;
    this.profiles = options.profiles;
    this.sessions = options.sessions;
    this.log = options.log;
    this.rateLimiter = options.rateLimiter;
    this.minRefusalMs = options.minRefusalMs ?? DEFAULT_MIN_REFUSAL_MS;
    this.clock = options.clock ?? realClock;
  }

  /**
   * Returns a new host key and the user it names (a sync of theirs follows), or throws an
   * IdentityError: authFailed (403), tooManyRequests (429), or providerUnavailable (500) when no
   * provider accepted and one of them could not be asked.
   */
  async login(
    username: string,
    password: string,
    clientVersion: string | null,
    ip: string,
  ): Promise<{ hostKey: string; uuid: string }> {
    const started = this.clock.now();
    const admission = await this.rateLimiter?.admit(ip, username);
    if (admission?.refused) {
      const limited = admission.refused;
      this.log.warn("login rate-limited", {
        user: username,
        ip,
        limit: limited === "ip" ? "failed logins per IP" : "per username, unknown address",
      });
      throw new IdentityError("tooManyRequests", `login rate limit (${limited})`);
    }
    let result: LoginResult = "undecided";
    try {
      if (admission?.waitMs) {
        this.log.info("login slowed: username under attempts from unknown addresses", {
          user: username,
          ip,
          waitMs: admission.waitMs,
        });
        await this.clock.sleep(admission.waitMs);
      }
      const checked = await this.checkCredentials(username, password);
      if ("profile" in checked) {
        result = "succeeded";
        const { profile, provider } = checked;
        await this.profiles.update(profile.profileId, { lastLoginAt: new Date() });
        const hostKey = await this.sessions.create(profile.profileId, clientVersion);
        this.log.info("login", { user: username, uuid: profile.uuid, provider, ip });
        return { hostKey, uuid: profile.uuid };
      }
      const { why, unavailable } = checked;
      if (!unavailable) result = "failed";
      await this.clock.sleep(this.minRefusalMs - (this.clock.now() - started));
      if (unavailable) {
        this.log.error("login failed: identity provider unavailable", { user: username, ip, why });
        throw new IdentityError("providerUnavailable", `identity provider unavailable: ${why}`);
      }
      this.log.warn("login refused", { user: username, ip, why });
      throw authFailed("invalid credentials");
    } finally {
      if (admission) await this.settle(admission, result);
    }
  }

  /** Asks the providers in order; a provider that knows the user and refuses ends the tries. */
  private async checkCredentials(
    username: string,
    password: string,
  ): Promise<{ profile: Profile; provider: string } | { why: string; unavailable: boolean }> {
    const reasons: string[] = [];
    let unavailable = false;
    for (const provider of this.providers) {
      let outcome: Awaited<ReturnType<IdentityProvider["authenticate"]>>;
      try {
        outcome = await provider.authenticate(username, password);
      } catch (err) {
        if (!(err instanceof ProviderUnavailable)) throw err;
        unavailable = true;
        reasons.push(`${provider.name}: ${err.message}`);
        continue;
      }
      if (outcome.ok) {
        if (outcome.profile.isActive) return { profile: outcome.profile, provider: provider.name };
        reasons.push(`${provider.name}: profile disabled (is_active = 0)`);
        return { why: reasons.join("; "), unavailable: false };
      }
      reasons.push(`${provider.name}: ${outcome.reason}`);
      if (outcome.final) return { why: reasons.join("; "), unavailable: false };
    }
    return { why: reasons.join("; "), unavailable };
  }

  /**
   * Resolves a host key to its user, or throws authFailed (403). Providers that can disable
   * accounts elsewhere (Cognito) are asked, through their cache, whether the account may still
   * sync; if not, all of the profile's sessions are revoked.
   */
  async authenticate(hostKey: string): Promise<SyncUser> {
    const resolved = await this.sessions.resolve(hostKey);
    if (!resolved) throw authFailed("invalid hkey");
    const { profile, session } = resolved;
    if (!profile.isActive) throw authFailed(`profile ${profile.uuid} is disabled`);
    await this.checkAccount(profile);
    return {
      profileId: profile.profileId,
      uuid: profile.uuid,
      name: profile.name,
      sessionId: session.sessionId,
    };
  }

  /**
   * Called after each completed sync (collection or full); writes at most once a minute, in the
   * background: the sync is done whether or not the time could be written.
   */
  recordSync(user: SyncUser): void {
    const now = Date.now();
    const last = this.syncRecorded.get(user.profileId);
    if (last !== undefined && now - last < SYNC_RECORD_INTERVAL_MS) return;
    this.syncRecorded.set(user.profileId, now);
    this.profiles.update(user.profileId, { lastSyncAt: new Date(now) }).catch((err) => {
      this.syncRecorded.delete(user.profileId);
      this.log.warn("last sync time not written", { uuid: user.uuid, error: describeDbError(err) });
    });
  }

  /** The limiter's bookkeeping; a known login not remembered only costs a later slow-down. */
  private async settle(admission: Admission, result: LoginResult): Promise<void> {
    try {
      await this.rateLimiter?.settle(admission, result);
    } catch (err) {
      this.log.warn("known login not remembered", { error: describeDbError(err) });
    }
  }

  private async checkAccount(profile: Profile): Promise<void> {
    const provider = this.providers.find((p) => p.name === profile.provider);
    // A provider taken out of ANKISYNCD_AUTH_PROVIDERS no longer vouches for its users.
    if (!provider)
      throw authFailed(`provider ${profile.provider} of ${profile.uuid} is not enabled`);
    if (!provider.accountStatus) return;
    const status = await provider.accountStatus(profile);
    if (status.ok) return;
    const revoked = await this.sessions.revokeAllFor(profile.profileId);
    this.log.warn("sessions revoked", {
      uuid: profile.uuid,
      provider: provider.name,
      why: status.reason,
      revoked,
    });
    throw authFailed(`${profile.uuid}: ${status.reason}`);
  }
}
