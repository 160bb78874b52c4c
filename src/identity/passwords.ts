/**
 * Password verification for the PHC strings we store: argon2id (ours) and pbkdf2-sha256
 * (what Anki's own server accepts with PASSWORDS_HASHED, so existing .env files keep working).
 */
import { hashPassword, verifyArgon2 } from "../platform/password.ts";

export { hashPassword };

/**
 * Passwords set with `admin user add|passwd` must be at least this long. SYNC_USERn passwords
 * shorter than this only get a warning at start: Anki's own server accepts any, and its .env
 * files must keep working here.
 */
export const MIN_PASSWORD_LENGTH = 8;

/** Why a new password is too weak, or null. Length counts characters, not bytes. */
export function weakPasswordReason(password: string): string | null {
  const length = [...password].length;
  if (length < MIN_PASSWORD_LENGTH) {
    return `a password needs at least ${MIN_PASSWORD_LENGTH} characters (this one has ${length})`;
  }
  return null;
}

export async function verifyPassword(password: string, phc: string): Promise<boolean> {
  if (phc.startsWith("$argon2")) return verifyArgon2(password, phc).catch(() => false);
  if (phc.startsWith("$pbkdf2-")) return verifyPbkdf2(password, phc);
  return false;
}

/** A hash verified against when the user is unknown, so both paths cost the same. */
let dummyHash: Promise<string> | undefined;
export async function burnPasswordCheck(password: string): Promise<void> {
  dummyHash ??= hashPassword("no such user: equalise timing");
  await verifyPassword(password, await dummyHash);
}

const PBKDF2_HASHES: Record<string, string> = {
  "pbkdf2-sha256": "SHA-256",
  "pbkdf2-sha512": "SHA-512",
  "pbkdf2-sha1": "SHA-1",
};

async function verifyPbkdf2(password: string, phc: string): Promise<boolean> {
  const parsed = parsePbkdf2Phc(phc);
  if (!parsed) return false;
  // The salt is hashed as its decoded bytes, as Anki's server does (checked against it).
  const salt = b64Decode(parsed.salt);
  if (!salt) return false;
  const derived = await pbkdf2(
    password,
    salt,
    parsed.hash,
    parsed.iterations,
    parsed.expected.length,
  );
  return timingSafeEqual(derived, parsed.expected);
}

interface Pbkdf2Phc {
  hash: string;
  iterations: number;
  salt: string;
  expected: Uint8Array;
}

export function parsePbkdf2Phc(phc: string): Pbkdf2Phc | null {
  const [, id, params, salt, hash] = phc.split("$");
  const algorithm = id ? PBKDF2_HASHES[id] : undefined;
  if (!algorithm || !params || !salt || !hash) return null;
  const iterations = Number(/(?:^|,)i=(\d+)/.exec(params)?.[1]);
  const expected = b64Decode(hash);
  if (!Number.isInteger(iterations) || iterations < 1 || !expected) return null;
  return { hash: algorithm, iterations, salt, expected };
}

async function pbkdf2(
  password: string,
  salt: Uint8Array<ArrayBuffer>,
  hash: string,
  iterations: number,
  length: number,
): Promise<Uint8Array> {
  const key = await crypto.subtle.importKey(
    "raw",
    new TextEncoder().encode(password),
    "PBKDF2",
    false,
    ["deriveBits"],
  );
  const bits = await crypto.subtle.deriveBits(
    { name: "PBKDF2", hash, salt, iterations },
    key,
    length * 8,
  );
  return new Uint8Array(bits);
}

/** PHC "B64": standard alphabet without padding. */
function b64Decode(text: string): Uint8Array<ArrayBuffer> | null {
  if (!/^[A-Za-z0-9+/]*$/.test(text)) return null;
  const padded = text + "=".repeat((4 - (text.length % 4)) % 4);
  try {
    return Uint8Array.from(atob(padded), (c) => c.charCodeAt(0));
  } catch {
    return null;
  }
}

function timingSafeEqual(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false;
  let diff = 0;
  for (let i = 0; i < a.length; i++) diff |= (a[i] as number) ^ (b[i] as number);
  return diff === 0;
}
