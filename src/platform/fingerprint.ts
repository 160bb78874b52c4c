/**
 * A fingerprint of some bytes, fed in pieces of any size: the runtime's fastest hash
 * (#platform/fingerprint.ts). Digests name their algorithm, so one made on the other runtime
 * never matches.
 */
export interface Fingerprinter {
  update(bytes: Uint8Array): void;
  digest(): string;
}

export { newFingerprinter } from "#platform/fingerprint.ts";
