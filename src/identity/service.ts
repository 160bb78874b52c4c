/**
 * Login and host-key authentication, whatever the provider. Providers are tried in order;
 * a provider that knows the user and refuses ends the attempt. Logins are rate-limited per
 * client IP and per username, and refusals take a minimum time so that which check failed
 * (unknown user, wrong password, which provider) does not show in the response time.
 */
import type { Logger } from "../log.ts";
import { authFailed, SyncError, serverError } from "../sync/errors.ts";
import type { ProfileStore } from "./profiles.ts";
import { type IdentityProvider, ProviderUnavailable } from "./provider.ts";
import type { LoginRateLimiter } from "./rateLimit.ts";
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
}

/** Above the cost of an argon2 check plus a Cognito round trip. */
export const DEFAULT_MIN_REFUSAL_MS = 500;

export class IdentityService {
  private readonly providers: readonly IdentityProvider[];
  private readonly profiles: ProfileStore;
  private readonly sessions: SessionStore;
  private readonly log: Logger;
  private readonly rateLimiter: LoginRateLimiter | undefined;
  private readonly minRefusalMs: number;

  constructor(options: IdentityServiceOptions) {
    this.providers = options.providers;
    this.profiles = options.profiles;
    this.sessions = options.sessions;
    this.log = options.log;
    this.rateLimiter = options.rateLimiter;
    this.minRefusalMs = options.minRefusalMs ?? DEFAULT_MIN_REFUSAL_MS;
  }

  /**
   * Returns a new host key, or throws authFailed (403), tooManyRequests (429), or serverError
   * (500) when no provider accepted and one of them could not be asked.
   */
  async login(
    username: string,
    password: string,
    clientVersion: string | null,
    ip: string,
  ): Promise<string> {
    const started = performance.now();
    const limited = this.rateLimiter?.admit(ip, username);
    if (limited) {
      this.log.warn("login rate-limited", {
        user: username,
        ip,
        limit: limited === "ip" ? "per IP" : "per username",
      });
      throw new SyncError("tooManyRequests", `login rate limit (${limited})`);
    }
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
        if (!outcome.profile.isActive) {
          reasons.push(`${provider.name}: profile disabled (is_active = 0)`);
          break;
        }
        this.rateLimiter?.succeeded(username);
        this.profiles.update(outcome.profile.profileId, { lastLoginAt: new Date() });
        this.log.info("login", {
          user: username,
          uuid: outcome.profile.uuid,
          provider: provider.name,
          ip,
        });
        return this.sessions.create(outcome.profile.profileId, clientVersion);
      }
      reasons.push(`${provider.name}: ${outcome.reason}`);
      if (outcome.final) {
        unavailable = false; // a provider that knows the user answered: a plain refusal
        break;
      }
    }
    const why = reasons.join("; ");
    if (!unavailable) this.rateLimiter?.failed(username);
    await sleep(this.minRefusalMs - (performance.now() - started));
    if (unavailable) {
      this.log.error("login failed: identity provider unavailable", { user: username, ip, why });
      throw serverError(`identity provider unavailable: ${why}`);
    }
    this.log.warn("login refused", { user: username, ip, why });
    throw authFailed("invalid credentials");
  }

  /**
   * Resolves a host key to its user, or throws authFailed (403). Providers that can disable
   * accounts elsewhere (Cognito) are asked, through their cache, whether the account may still
   * sync; if not, all of the profile's sessions are revoked.
   */
  async authenticate(hostKey: string): Promise<SyncUser> {
    const resolved = this.sessions.resolve(hostKey);
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

  recordSync(user: SyncUser): void {
    this.profiles.update(user.profileId, { lastSyncAt: new Date() });
  }

  private async checkAccount(profile: Profile): Promise<void> {
    const provider = this.providers.find((p) => p.name === profile.provider);
    // A provider taken out of ANKISYNCD_AUTH_PROVIDERS no longer vouches for its users.
    if (!provider)
      throw authFailed(`provider ${profile.provider} of ${profile.uuid} is not enabled`);
    if (!provider.accountStatus) return;
    const status = await provider.accountStatus(profile);
    if (status.ok) return;
    const revoked = this.sessions.revokeAllFor(profile.profileId);
    this.log.warn("sessions revoked", {
      uuid: profile.uuid,
      provider: provider.name,
      why: status.reason,
      revoked,
    });
    throw authFailed(`${profile.uuid}: ${status.reason}`);
  }
}

function sleep(ms: number): Promise<void> {
  return ms > 0 ? new Promise((resolve) => setTimeout(resolve, ms)) : Promise.resolve();
}
