/**
 * Password hashing on Deno: argon2id through @node-rs/argon2 (N-API, off the JS thread), with
 * Bun.password's parameters, so hashes made by either runtime verify on the other.
 */
import { hash, verify } from "@node-rs/argon2";

// algorithm 2 is Algorithm.Argon2id (a const enum, not importable under verbatimModuleSyntax).
const PARAMS = { algorithm: 2, memoryCost: 65536, timeCost: 2, parallelism: 1 };

export function hashPassword(password: string): Promise<string> {
  return hash(password, PARAMS);
}

export function verifyArgon2(password: string, phc: string): Promise<boolean> {
  return verify(phc, password);
}

/** Nothing to do: @node-rs/argon2 frees each hash's memory when it ends. */
export function releaseHashingMemory(): void {}
