/** argon2id password hashing (PHC strings): the runtime's implementation. */
export { hashPassword, verifyArgon2 } from "#platform/password.ts";
