/**
 * Cognito logins: USER_PASSWORD_AUTH, then the ID token is verified and only then its `sub`
 * trusted. The profile is keyed by `sub` (permanent; the email may change), created on first
 * login and refreshed (email, name, Cognito username) on later ones.
 *
 * Rechecks: a user disabled or deleted in Cognito keeps a valid host key here, so sessions of
 * Cognito users are re-checked with AdminGetUser at most every ANKISYNCD_COGNITO_RECHECK_SECS
 * (cached per profile, shared by concurrent requests, never waited on for more than a few
 * seconds). When Cognito cannot be asked, the session keeps working and the failure is logged.
 */
import type { CognitoConfig } from "../../config.ts";
import type { Logger } from "../../log.ts";
import type { ProfileStore } from "../profiles.ts";
import type { AccountStatus, AuthOutcome, IdentityProvider } from "../provider.ts";
import { RecheckCache } from "../recheckCache.ts";
import type { Profile } from "../schema.ts";
import type { CognitoApi } from "./api.ts";
import { type IdClaims, IdTokenVerifier, InvalidIdToken } from "./idToken.ts";

/** Statuses that mean an administrator took the account's credentials away. */
const REVOKING_STATUSES = new Set([
  "RESET_REQUIRED",
  "FORCE_CHANGE_PASSWORD",
  "COMPROMISED",
  "ARCHIVED",
]);

/** The longest a request waits for a recheck before going on with the last known status. */
const RECHECK_WAIT_MS = 4000;

export interface CognitoProviderOptions {
  config: CognitoConfig;
  api: CognitoApi;
  profiles: ProfileStore;
  log: Logger;
  verifier?: IdTokenVerifier;
  now?: () => number;
  /** How long a request waits for a recheck (default RECHECK_WAIT_MS). */
  recheckWaitMs?: number;
}

export class CognitoProvider implements IdentityProvider {
  readonly name = "cognito" as const;
  private readonly api: CognitoApi;
  private readonly profiles: ProfileStore;
  private readonly log: Logger;
  private readonly verifier: IdTokenVerifier;
  private readonly rechecks: RecheckCache<number>;

  constructor(options: CognitoProviderOptions) {
    this.api = options.api;
    this.profiles = options.profiles;
    this.log = options.log;
    this.verifier = options.verifier ?? new IdTokenVerifier(options.config);
    this.rechecks = new RecheckCache<number>({
      intervalMs: options.config.recheckSecs * 1000,
      timeoutMs: options.recheckWaitMs ?? RECHECK_WAIT_MS,
      check: (profileId) => this.checkAccount(profileId),
      onUnknown: (profileId, why) =>
        this.log.warn("Cognito recheck failed; session kept", { profileId, why }),
      ...(options.now ? { now: options.now } : {}),
    });
  }

  async authenticate(username: string, password: string): Promise<AuthOutcome> {
    const result = await this.api.passwordAuth(username, password);
    if (result.kind === "refused")
      return { ok: false, reason: result.reason, final: result.knownUser };
    let claims: IdClaims;
    try {
      claims = await this.verifier.verify(result.idToken);
    } catch (err) {
      if (!(err instanceof InvalidIdToken)) throw err;
      this.log.error("Cognito ID token failed verification; login refused", { error: err.message });
      return { ok: false, reason: `invalid ID token (${err.message})`, final: true };
    }
    const profile = await this.upsertProfile(claims);
    if (profile.provider !== "cognito") {
      return {
        ok: false,
        reason: `profile ${claims.sub} belongs to provider ${profile.provider}`,
        final: true,
      };
    }
    this.rechecks.set(profile.profileId);
    return { ok: true, profile };
  }

  accountStatus(profile: Profile): Promise<AccountStatus> {
    return this.rechecks.get(profile.profileId);
  }

  /** Startup diagnostics: without credentials, disabled users cannot be noticed. */
  async checkCredentials(): Promise<void> {
    if (await this.api.hasCredentials()) return;
    this.log.error(
      "no AWS credentials for Cognito rechecks: users disabled or deleted in Cognito keep syncing " +
        "until their sessions are revoked (bun run admin session revoke); set AWS_ACCESS_KEY_ID/" +
        "AWS_SECRET_ACCESS_KEY or give the host a role allowed cognito-idp:AdminGetUser",
    );
  }

  private async upsertProfile(claims: IdClaims): Promise<Profile> {
    const fields = {
      email: claims.email,
      name: claims.name ?? claims.email ?? claims.username,
      providerUsername: claims.username,
    };
    const existing = await this.profiles.byUuid(claims.sub);
    if (!existing) {
      const created = await this.profiles.create({
        uuid: claims.sub,
        provider: "cognito",
        ...fields,
      });
      this.log.info("profile created for Cognito user", { uuid: claims.sub, email: claims.email });
      return created;
    }
    if (
      existing.provider === "cognito" &&
      (existing.email !== fields.email ||
        existing.name !== fields.name ||
        existing.providerUsername !== fields.providerUsername)
    ) {
      await this.profiles.update(existing.profileId, fields);
      return { ...existing, ...fields };
    }
    return existing;
  }

  private async checkAccount(profileId: number): Promise<AccountStatus> {
    const profile = await this.profiles.byId(profileId);
    if (!profile) return { ok: false, reason: "profile removed" };
    const user = await this.api.getUser(profile.providerUsername ?? profile.uuid);
    if (!user.found) return { ok: false, reason: "user deleted in Cognito" };
    if (!user.enabled) return { ok: false, reason: "user disabled in Cognito" };
    if (REVOKING_STATUSES.has(user.status))
      return { ok: false, reason: `Cognito user status ${user.status}` };
    return { ok: true };
  }
}
