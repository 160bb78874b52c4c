/** Password hashing on Bun: its native argon2id. */
export function hashPassword(password: string): Promise<string> {
  return Bun.password.hash(password, { algorithm: "argon2id" });
}

export function verifyArgon2(password: string, hash: string): Promise<boolean> {
  return Bun.password.verify(password, hash);
}

/**
 * Hands the memory of finished hashes back to the system now. Each argon2id run takes 64 MiB;
 * Bun's allocator keeps freed blocks for a while, so a server that checked its SYNC_USERn
 * passwords at start would otherwise show that much more memory when it goes idle.
 */
export function releaseHashingMemory(): void {
  Bun.gc(true);
}
