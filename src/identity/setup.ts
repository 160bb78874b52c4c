/** Builds the identity service from the configuration: providers in ANKISYNCD_AUTH_PROVIDERS order. */
import type { Config } from "../config.ts";
import type { Logger } from "../log.ts";
import type { KnownLoginStore } from "./knownLogins.ts";
import { LocalProvider } from "./localProvider.ts";
import type { LocalUserStore } from "./localUsers.ts";
import type { ProfileStore } from "./profiles.ts";
import type { IdentityProvider } from "./provider.ts";
import { LoginRateLimiter } from "./rateLimit.ts";
import { IdentityService } from "./service.ts";
import type { SessionStore } from "./sessions.ts";

export interface IdentityStores {
  profiles: ProfileStore;
  sessions: SessionStore;
  localUsers: LocalUserStore;
  knownLogins: KnownLoginStore;
}

export async function createIdentity(
  config: Config,
  stores: IdentityStores,
  log: Logger,
): Promise<IdentityService> {
  // The AWS SDK costs tens of MB of memory, jose (ID tokens) a few: load them only when
  // Cognito is configured.
  const [sdk, cognito] = config.cognito
    ? await Promise.all([import("./cognito/api.ts"), import("./cognito/provider.ts")])
    : [undefined, undefined];
  const providers: IdentityProvider[] = config.authProviders.map((name) => {
    if (name === "local") return new LocalProvider(stores.localUsers, stores.profiles);
    if (!config.cognito || !sdk || !cognito)
      throw new Error("cognito provider without a user pool");
    const provider = new cognito.CognitoProvider({
      config: config.cognito,
      api: new sdk.SdkCognitoApi(config.cognito),
      profiles: stores.profiles,
      log,
    });
    log.info("Cognito logins enabled", {
      pool: config.cognito.userPoolId,
      region: config.cognito.region,
      endpoint: config.cognito.endpoint ?? undefined,
      recheckSecs: config.cognito.recheckSecs,
      credentials: config.cognito.credentials ? "from settings" : "AWS SDK chain",
      order: config.authProviders.join(","),
    });
    provider.checkCredentials().catch(() => {});
    return provider;
  });
  return new IdentityService({
    providers,
    profiles: stores.profiles,
    sessions: stores.sessions,
    log,
    rateLimiter: new LoginRateLimiter(config.loginRate, Date.now, stores.knownLogins),
  });
}
