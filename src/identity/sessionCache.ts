/**
 * Sessions resolved in the last second, so the ~11 requests of one sync ask session.db once:
 * each lookup is two WAL read transactions, 15-25 µs of the main thread's CPU, ~10% of what it
 * spends on a request (bench/README.md, "Where ours spends its time").
 *
 * Revocations done in this process drop their entries at once (SessionStore calls `forget*`).
 * A revocation by another process (the admin CLI, another node on PostgreSQL) is seen when the
 * entry is re-read, at most `SESSION_CACHE_TTL_MS` later. Only sessions that exist are kept, so
 * unknown keys cannot fill it, and it holds at most `SESSION_CACHE_MAX_ENTRIES`.
 */
import type { ResolvedSession } from "./sessions.ts";

/** How long a session read from session.db is trusted: the delay of an out-of-process revoke. */
export const SESSION_CACHE_TTL_MS = 1_000;

/**
 * Kept on session.db only. With PostgreSQL the nodes share sessions, and asking the database on
 * every request keeps two promises a cache would bend: a revoke on one node refuses the key on
 * every node from the next request, and during an outage syncs fail cleanly (docs/identity.md).
 */
export function sessionCacheTtlFor(db: { readonly sqlite: unknown }): number {
  return db.sqlite ? SESSION_CACHE_TTL_MS : 0;
}

/** ~1 KB an entry: a bound on memory however many keys arrive within one TTL. */
export const SESSION_CACHE_MAX_ENTRIES = 10_000;

interface Entry {
  /** When it was read from the database (ms, the resolve's clock). */
  readAt: number;
  resolved: ResolvedSession;
}

export class SessionCache {
  /** By key hash, in the order read: the oldest first, so a sweep stops at the first fresh one. */
  private readonly entries = new Map<string, Entry>();
  /** Bumped by every `forget*`: a read that began before it must not be kept. */
  private generation = 0;

  constructor(
    private readonly ttlMs = SESSION_CACHE_TTL_MS,
    private readonly maxEntries = SESSION_CACHE_MAX_ENTRIES,
  ) {}

  get size(): number {
    return this.entries.size;
  }

  /** A token for `set`: a `forget*` in between makes the read it guards too old to keep. */
  get readToken(): number {
    return this.generation;
  }

  get(keyHash: string, now: number): ResolvedSession | undefined {
    if (this.ttlMs <= 0) return undefined;
    const entry = this.entries.get(keyHash);
    if (!entry) return undefined;
    if (this.fresh(entry, now)) return entry.resolved;
    this.entries.delete(keyHash);
    return undefined;
  }

  set(keyHash: string, resolved: ResolvedSession, now: number, readToken: number): void {
    if (this.ttlMs <= 0 || readToken !== this.generation) return;
    this.entries.delete(keyHash);
    this.entries.set(keyHash, { readAt: now, resolved });
    this.sweep(now);
  }

  forgetSession(sessionId: number): void {
    this.forgetWhere((r) => r.session.sessionId === sessionId);
  }

  forgetProfile(profileId: number): void {
    this.forgetWhere((r) => r.session.profileId === profileId);
  }

  clear(): void {
    this.generation++;
    this.entries.clear();
  }

  private forgetWhere(matches: (resolved: ResolvedSession) => boolean): void {
    this.generation++;
    for (const [key, entry] of this.entries) if (matches(entry.resolved)) this.entries.delete(key);
  }

  private fresh(entry: Entry, now: number): boolean {
    const age = now - entry.readAt;
    return age >= 0 && age < this.ttlMs;
  }

  /** Drops expired entries from the old end, and the oldest beyond the bound. */
  private sweep(now: number): void {
    for (const [key, entry] of this.entries) {
      if (this.entries.size <= this.maxEntries && this.fresh(entry, now)) return;
      this.entries.delete(key);
    }
  }
}
