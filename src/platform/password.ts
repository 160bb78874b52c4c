/** argon2id password hashing (PHC strings): the runtime's implementation. */
export { hashPassword, releaseHashingMemory, verifyArgon2 } from "#platform/password.ts";
