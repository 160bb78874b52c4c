/**
 * Login rate limits: attempts per client IP, failed attempts per username. Token buckets: each
 * key holds up to `limit` tokens that come back evenly over the window, so a client that spent
 * them gets one attempt per window/limit after that. Memory stays bounded: full buckets carry
 * no information and are dropped first when the map grows.
 */
import type { LoginRateConfig } from "../config.ts";

export type RateLimitScope = "ip" | "user";

export class LoginRateLimiter {
  private readonly ips: TokenBuckets;
  private readonly users: TokenBuckets;

  constructor(config: LoginRateConfig, now: () => number = Date.now) {
    const windowMs = config.windowSecs * 1000;
    this.ips = new TokenBuckets(config.perIp, windowMs, now);
    this.users = new TokenBuckets(config.perUser, windowMs, now);
  }

  /** Counts an attempt from `ip` for `username`; returns the limit that refuses it, if any. */
  admit(ip: string, username: string): RateLimitScope | null {
    if (!this.ips.take(ip)) return "ip";
    if (!this.users.has(userKey(username))) return "user";
    return null;
  }

  failed(username: string): void {
    this.users.take(userKey(username));
  }

  /** A successful login forgives the username's earlier failures (not the IP's attempts). */
  succeeded(username: string): void {
    this.users.reset(userKey(username));
  }
}

/** Case and Unicode form do not make a new username for the limit (Cognito emails ignore case). */
function userKey(username: string): string {
  return username.normalize("NFC").trim().toLowerCase();
}

interface Bucket {
  tokens: number;
  at: number;
}

export class TokenBuckets {
  private readonly buckets = new Map<string, Bucket>();

  constructor(
    private readonly limit: number,
    private readonly windowMs: number,
    private readonly now: () => number = Date.now,
    private readonly maxKeys = 100_000,
  ) {}

  private level(key: string, at: number): number {
    const bucket = this.buckets.get(key);
    if (!bucket) return this.limit;
    const refilled = ((at - bucket.at) / this.windowMs) * this.limit;
    return Math.min(this.limit, bucket.tokens + refilled);
  }

  has(key: string): boolean {
    return this.limit === 0 || this.level(key, this.now()) >= 1;
  }

  /** Takes one token; false (and nothing taken) when the bucket is empty. */
  take(key: string): boolean {
    if (this.limit === 0) return true;
    const at = this.now();
    const level = this.level(key, at);
    if (level < 1) return false;
    this.buckets.delete(key); // re-insert: the map's order is then least recently used first
    this.buckets.set(key, { tokens: level - 1, at });
    if (this.buckets.size > this.maxKeys) this.evict(at);
    return true;
  }

  reset(key: string): void {
    this.buckets.delete(key);
  }

  get size(): number {
    return this.buckets.size;
  }

  private evict(at: number): void {
    for (const key of this.buckets.keys()) {
      if (this.level(key, at) >= this.limit) this.buckets.delete(key);
    }
    for (const key of this.buckets.keys()) {
      if (this.buckets.size <= this.maxKeys * 0.9) break;
      this.buckets.delete(key);
    }
  }
}
