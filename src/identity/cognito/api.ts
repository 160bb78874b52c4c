/**
 * The two Cognito calls ankisyncd makes, behind a narrow interface (tests use a fake):
 * InitiateAuth with USER_PASSWORD_AUTH for logins (an unauthenticated API: no AWS credentials
 * needed), and AdminGetUser for rechecks (needs credentials allowed `cognito-idp:AdminGetUser`).
 * Errors become a refusal (a 403 for the client) or ProviderUnavailable (a 500).
 */
import {
  AdminGetUserCommand,
  CognitoIdentityProviderClient,
  InitiateAuthCommand,
} from "@aws-sdk/client-cognito-identity-provider";
import type { CognitoConfig } from "../../config.ts";
import { ProviderUnavailable } from "../provider.ts";
import { cognitoSecretHash } from "./secretHash.ts";

export type PasswordAuthResult =
  | { kind: "tokens"; idToken: string }
  /** `knownUser`: Cognito told us the account exists (disabled, unconfirmed, challenge...). */
  | { kind: "refused"; reason: string; knownUser: boolean };

export type CognitoUserState = { found: false } | { found: true; enabled: boolean; status: string };

export interface CognitoApi {
  passwordAuth(username: string, password: string): Promise<PasswordAuthResult>;
  getUser(username: string): Promise<CognitoUserState>;
  /** Whether AWS credentials can be found for AdminGetUser (startup diagnostics). */
  hasCredentials(): Promise<boolean>;
}

export class SdkCognitoApi implements CognitoApi {
  private readonly client: CognitoIdentityProviderClient;

  constructor(private readonly config: CognitoConfig) {
    this.client = new CognitoIdentityProviderClient({
      region: config.region,
      ...(config.endpoint ? { endpoint: config.endpoint } : {}),
      ...(config.credentials ? { credentials: config.credentials } : {}),
      // Fail fast: a login or a recheck waits on this, and an outage must not pile requests up.
      maxAttempts: 2,
      requestHandler: { connectionTimeout: 3000, requestTimeout: 5000 },
    });
  }

  async passwordAuth(username: string, password: string): Promise<PasswordAuthResult> {
    const params: Record<string, string> = { USERNAME: username, PASSWORD: password };
    if (this.config.clientSecret) {
      params.SECRET_HASH = cognitoSecretHash(
        username,
        this.config.clientId,
        this.config.clientSecret,
      );
    }
    try {
      const out = await this.client.send(
        new InitiateAuthCommand({
          AuthFlow: "USER_PASSWORD_AUTH",
          ClientId: this.config.clientId,
          AuthParameters: params,
        }),
      );
      if (out.ChallengeName) {
        return {
          kind: "refused",
          reason: `Cognito asks for challenge ${out.ChallengeName} (to be completed in the pool's own sign-in; Anki cannot)`,
          knownUser: true,
        };
      }
      const idToken = out.AuthenticationResult?.IdToken;
      if (!idToken) throw new ProviderUnavailable("Cognito answered without an ID token");
      return { kind: "tokens", idToken };
    } catch (err) {
      return refusalFor(err);
    }
  }

  async getUser(username: string): Promise<CognitoUserState> {
    try {
      const out = await this.client.send(
        new AdminGetUserCommand({ UserPoolId: this.config.userPoolId, Username: username }),
      );
      return { found: true, enabled: out.Enabled !== false, status: out.UserStatus ?? "UNKNOWN" };
    } catch (err) {
      if (errorName(err) === "UserNotFoundException") return { found: false };
      throw unavailable("AdminGetUser", err);
    }
  }

  async hasCredentials(): Promise<boolean> {
    try {
      await this.client.config.credentials();
      return true;
    } catch {
      return false;
    }
  }
}

function refusalFor(err: unknown): PasswordAuthResult {
  if (err instanceof ProviderUnavailable) throw err;
  const name = errorName(err);
  const message = err instanceof Error ? err.message : String(err);
  switch (name) {
    case "UserNotFoundException":
      return { kind: "refused", reason: "unknown user", knownUser: false };
    case "UserNotConfirmedException":
      return { kind: "refused", reason: "user not confirmed in Cognito", knownUser: true };
    case "PasswordResetRequiredException":
      return { kind: "refused", reason: "Cognito requires a password reset", knownUser: true };
    case "NotAuthorizedException":
      if (/disabled/i.test(message)) {
        return { kind: "refused", reason: "user disabled in Cognito", knownUser: true };
      }
      if (/attempts exceeded/i.test(message)) {
        return { kind: "refused", reason: `Cognito: ${message}`, knownUser: true };
      }
      // A wrong secret hash or a client without the flow is our configuration, not the user.
      if (/secret hash|not enabled|client/i.test(message)) throw unavailable("InitiateAuth", err);
      // "Incorrect username or password.": also what an unknown user gets when the pool
      // prevents user-existence errors.
      return { kind: "refused", reason: "wrong password or unknown user", knownUser: false };
    default:
      throw unavailable("InitiateAuth", err);
  }
}

function unavailable(operation: string, err: unknown): ProviderUnavailable {
  const name = errorName(err);
  const message = err instanceof Error ? err.message : String(err);
  let hint = "";
  if (name === "CredentialsProviderError") {
    hint =
      " (no AWS credentials: set AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY or give the host a role)";
  } else if (name === "AccessDeniedException") {
    hint = " (the AWS credentials need cognito-idp:AdminGetUser on the pool)";
  } else if (name === "InvalidParameterException" && /USER_PASSWORD_AUTH/.test(message)) {
    hint = " (enable ALLOW_USER_PASSWORD_AUTH on the app client)";
  }
  return new ProviderUnavailable(`Cognito ${operation} failed: ${name}: ${message}${hint}`, {
    cause: err,
  });
}

function errorName(err: unknown): string {
  if (err && typeof err === "object" && "name" in err && typeof err.name === "string")
    return err.name;
  return "Error";
}
