/**
 * SECRET_HASH for app clients that have a secret:
 * Base64(HMAC-SHA256(key = client secret, message = username + client id)).
 * `username` is exactly what is sent as USERNAME (the email, for pools that log in by email).
 */
import { createHmac } from "node:crypto";

export function cognitoSecretHash(
  username: string,
  clientId: string,
  clientSecret: string,
): string {
  return createHmac("sha256", clientSecret)
    .update(username + clientId)
    .digest("base64");
}
