/** Password hashing on Bun: its native argon2id. */
export function hashPassword(password: string): Promise<string> {
  return released(Bun.password.hash(password, { algorithm: "argon2id" }));
}

export function verifyArgon2(password: string, hash: string): Promise<boolean> {
  return released(Bun.password.verify(password, hash));
}

/**
 * Hands the memory of finished hashes back to the system now. Each argon2id run takes 64 MiB;
 * Bun's allocator keeps freed blocks for about a second, so a server that checked its
 * SYNC_USERn passwords at start would otherwise show that much more memory when it goes idle.
 */
export function releaseHashingMemory(): void {
  Bun.gc(true);
}

/**
 * After a login the 64 MiB of its hash are still held for a while, on top of the sync that
 * follows (a peak the host must have room for), so they are released once no hash is running.
 * A release is a full collection on the calling thread (~10 ms): at most one a second, the
 * last one of a burst of logins deferred rather than skipped.
 */
const RELEASE_EVERY_MS = 1000;
let hashing = 0;
let lastRelease = 0;
let pending: ReturnType<typeof setTimeout> | undefined;

async function released<T>(work: Promise<T>): Promise<T> {
  hashing++;
  try {
    return await work;
  } finally {
    hashing--;
    if (hashing === 0) releaseSoon();
  }
}

function releaseSoon(): void {
  if (pending) return;
  const wait = lastRelease + RELEASE_EVERY_MS - Date.now();
  if (wait <= 0) {
    releaseAfterLogins();
    return;
  }
  pending = setTimeout(() => {
    pending = undefined;
    if (hashing === 0) releaseAfterLogins();
  }, wait);
  pending.unref?.();
}

function releaseAfterLogins(): void {
  lastRelease = Date.now();
  releaseHashingMemory();
}
