import type { LocalUserStore } from "./localUsers.ts";
import { burnPasswordCheck, verifyPassword } from "./passwords.ts";
import type { ProfileStore } from "./profiles.ts";
import type { AuthOutcome, IdentityProvider } from "./provider.ts";

export class LocalProvider implements IdentityProvider {
  readonly name = "local";

  constructor(
    private readonly users: LocalUserStore,
    private readonly profiles: ProfileStore,
  ) {}

  async authenticate(username: string, password: string): Promise<AuthOutcome> {
    const credential = await this.users.byUsername(username);
    if (!credential) {
      await burnPasswordCheck(password);
      return { ok: false, reason: "unknown user", final: false };
    }
    if (!(await verifyPassword(password, credential.passwordHash))) {
      return { ok: false, reason: "wrong password", final: true };
    }
    const profile = await this.profiles.byId(credential.profileId);
    if (!profile) return { ok: false, reason: "profile missing", final: true };
    return { ok: true, profile };
  }
}
