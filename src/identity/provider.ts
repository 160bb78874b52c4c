/** An identity provider checks credentials and names the profile they belong to. */
import type { Profile } from "./schema.ts";

export type ProviderName = Profile["provider"];

export type AuthOutcome =
  | { ok: true; profile: Profile }
  /**
   * `reason` is for the log only; the client gets the same 403 whatever it is. `final`: the
   * provider knows the user and refused, so later providers are not asked.
   */
  | { ok: false; reason: string; final: boolean };

/** Whether an account may still sync (checked on host-key use for providers that need it). */
export type AccountStatus = { ok: true } | { ok: false; reason: string };

/**
 * A provider could not answer: unreachable, throttled or misconfigured. A login that no
 * provider accepted fails with 500 (the client shows a server error) instead of 403, so a
 * user is not told their password is wrong during an outage.
 */
export class ProviderUnavailable extends Error {
  override readonly name = "ProviderUnavailable";
}

export interface IdentityProvider {
  readonly name: ProviderName;
  authenticate(username: string, password: string): Promise<AuthOutcome>;
  /**
   * For accounts that can be disabled outside ankisyncd: asked on every authenticated request
   * (the provider caches). Never throws; when the provider cannot tell, the session is kept.
   */
  accountStatus?(profile: Profile): Promise<AccountStatus>;
}
