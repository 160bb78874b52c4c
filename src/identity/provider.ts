/** An identity provider checks credentials and names the profile they belong to. */
import type { Profile } from "./schema.ts";

export type AuthOutcome =
  | { ok: true; profile: Profile }
  /** `reason` is for the log only; the client gets the same 403 whatever it is. */
  | { ok: false; reason: string; final: boolean };

export interface IdentityProvider {
  readonly name: string;
  authenticate(username: string, password: string): Promise<AuthOutcome>;
}
