/** Password hashing on Bun: its native argon2id. */
export function hashPassword(password: string): Promise<string> {
  return Bun.password.hash(password, { algorithm: "argon2id" });
}

export function verifyArgon2(password: string, hash: string): Promise<boolean> {
  return Bun.password.verify(password, hash);
}
