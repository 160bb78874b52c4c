/**
 * A fingerprint of some bytes, fed in pieces of any size (`update`, then `digest`): the
 * runtime's fastest hash (#platform/fingerprint.ts). Digests name their algorithm, so one made
 * on the other runtime never matches.
 */
export { newFingerprinter } from "#platform/fingerprint.ts";
