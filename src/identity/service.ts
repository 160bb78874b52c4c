/**
 * Login and host-key authentication, whatever the provider. Providers are tried in order;
 * a provider that knows the user and refuses ends the attempt.
 */
import type { Logger } from "../log.ts";
import { authFailed } from "../sync/errors.ts";
import type { ProfileStore } from "./profiles.ts";
import type { IdentityProvider } from "./provider.ts";
import type { SessionStore } from "./sessions.ts";

export interface SyncUser {
  profileId: number;
  uuid: string;
  name: string;
  sessionId: number;
}

export class IdentityService {
  constructor(
    private readonly providers: readonly IdentityProvider[],
    private readonly profiles: ProfileStore,
    private readonly sessions: SessionStore,
    private readonly log: Logger,
  ) {}

  /** Returns a new host key, or throws authFailed (403). */
  async login(
    username: string,
    password: string,
    clientVersion: string | null,
    ip: string,
  ): Promise<string> {
    const reasons: string[] = [];
    for (const provider of this.providers) {
      const outcome = await provider.authenticate(username, password);
      if (outcome.ok) {
        if (!outcome.profile.isActive) {
          reasons.push(`${provider.name}: profile disabled`);
          break;
        }
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
      if (outcome.final) break;
    }
    this.log.warn("login refused", { user: username, ip, why: reasons.join("; ") });
    throw authFailed("invalid credentials");
  }

  /** Resolves a host key to its user, or throws authFailed (403). */
  authenticate(hostKey: string): SyncUser {
    const resolved = this.sessions.resolve(hostKey);
    if (!resolved) throw authFailed("invalid hkey");
    if (!resolved.profile.isActive)
      throw authFailed(`profile ${resolved.profile.uuid} is disabled`);
    return {
      profileId: resolved.profile.profileId,
      uuid: resolved.profile.uuid,
      name: resolved.profile.name,
      sessionId: resolved.session.sessionId,
    };
  }

  recordSync(user: SyncUser): void {
    this.profiles.update(user.profileId, { lastSyncAt: new Date() });
  }
}
