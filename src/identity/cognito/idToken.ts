/**
 * Verifies Cognito ID tokens with the pool's JWKS before any claim is trusted: RS256 signature,
 * issuer `https://cognito-idp.<region>.amazonaws.com/<pool>`, audience = the app client id,
 * `token_use` = id, expiry. The key set is fetched once and cached; an unknown `kid` (key
 * rotation) triggers a refetch, at most every 30 s (jose's remote JWKS does both).
 */
import {
  createRemoteJWKSet,
  type JWTPayload,
  type JWTVerifyGetKey,
  errors as joseErrors,
  jwtVerify,
} from "jose";
import type { CognitoConfig } from "../../config.ts";
import { ProviderUnavailable } from "../provider.ts";

export interface IdClaims {
  sub: string;
  /** `cognito:username`: what AdminGetUser takes. */
  username: string;
  email: string | null;
  name: string | null;
}

/** A token that fails verification: refused, and logged as an error (it should never happen). */
export class InvalidIdToken extends Error {
  override readonly name = "InvalidIdToken";
}

export function cognitoIssuer(config: Pick<CognitoConfig, "region" | "userPoolId">): string {
  return `https://cognito-idp.${config.region}.amazonaws.com/${config.userPoolId}`;
}

export function jwksUrl(config: Pick<CognitoConfig, "region" | "userPoolId" | "endpoint">): URL {
  const base = config.endpoint ? `${config.endpoint}/${config.userPoolId}` : cognitoIssuer(config);
  return new URL(`${base}/.well-known/jwks.json`);
}

/** jose error codes that mean "this token is bad", as opposed to "the key set is unreachable". */
const INVALID_TOKEN_CODES = new Set([
  "ERR_JWT_EXPIRED",
  "ERR_JWT_CLAIM_VALIDATION_FAILED",
  "ERR_JWT_INVALID",
  "ERR_JWS_INVALID",
  "ERR_JWS_SIGNATURE_VERIFICATION_FAILED",
  "ERR_JWKS_NO_MATCHING_KEY",
  "ERR_JWKS_MULTIPLE_MATCHING_KEYS",
  "ERR_JOSE_ALG_NOT_ALLOWED",
  "ERR_JOSE_NOT_SUPPORTED",
]);

export class IdTokenVerifier {
  private readonly keys: JWTVerifyGetKey;
  private readonly issuer: string;

  constructor(
    private readonly config: Pick<CognitoConfig, "region" | "userPoolId" | "endpoint" | "clientId">,
    keys?: JWTVerifyGetKey,
  ) {
    this.issuer = cognitoIssuer(config);
    this.keys =
      keys ??
      createRemoteJWKSet(jwksUrl(config), {
        timeoutDuration: 5000,
        cooldownDuration: 30_000,
        cacheMaxAge: 24 * 3600_000,
      });
  }

  async verify(token: string): Promise<IdClaims> {
    let payload: JWTPayload;
    try {
      ({ payload } = await jwtVerify(token, this.keys, {
        issuer: this.issuer,
        audience: this.config.clientId,
        algorithms: ["RS256"],
        requiredClaims: ["exp", "iat", "sub"],
        clockTolerance: 30,
      }));
    } catch (err) {
      if (err instanceof joseErrors.JOSEError && INVALID_TOKEN_CODES.has(err.code)) {
        throw new InvalidIdToken(`${err.code}: ${err.message}`, { cause: err });
      }
      throw new ProviderUnavailable(
        `cannot fetch the pool's signing keys: ${err instanceof Error ? err.message : String(err)}`,
        { cause: err },
      );
    }
    if (payload.token_use !== "id")
      throw new InvalidIdToken(`token_use is ${String(payload.token_use)}, not id`);
    const sub = payload.sub;
    if (typeof sub !== "string" || sub === "") throw new InvalidIdToken("no sub claim");
    const username = payload["cognito:username"];
    return {
      sub,
      username: typeof username === "string" && username ? username : sub,
      email: typeof payload.email === "string" ? payload.email : null,
      name: typeof payload.name === "string" && payload.name ? payload.name : null,
    };
  }
}
