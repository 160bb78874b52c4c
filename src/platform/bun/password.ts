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
 * follows (a peak the host must have room for), so they are released once no hash is running,
 * before the login is answered. A release is a full collection on the calling thread (5-10
 * ms): in a burst of logins they are at least RELEASE_GAP_MS apart, the last one of the burst
 * deferred rather than skipped. Logins that each take a hash (~0.4 s of CPU) cannot come much
 * faster than that on a small host anyway, so a lone login is released at once.
 */
const RELEASE_GAP_MS = 100;
let hashing = 0;
let lastRelease = Number.NEGATIVE_INFINITY;
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
  const wait = lastRelease + RELEASE_GAP_MS - performance.now();
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
  releaseHashingMemory();
  lastRelease = performance.now();
}
