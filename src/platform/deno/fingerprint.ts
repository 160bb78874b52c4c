/** Content fingerprints on Deno: SHA-256 (node:crypto); see bun/fingerprint.ts for their use. */
import { createHash } from "node:crypto";

export function newFingerprinter(): { update(bytes: Uint8Array): void; digest(): string } {
  const hash = createHash("sha256");
  return {
    update(bytes) {
      hash.update(bytes);
    },
    digest: () => `sha256:${hash.digest("hex")}`,
  };
}
