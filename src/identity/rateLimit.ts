/**
 * Login rate limits, built so that guessing stays bounded without locking real users out:
 *
 * - Per client IP, failed logins count; successful ones do not, so a school or office behind
 *   one address is never refused for logging in. Attempts still being checked count against
 *   the IP as well (at most `MAX_IN_FLIGHT_PER_IP` at once), so a burst of parallel guesses
 *   cannot all slip through before the first failure is known.
 * - Per username, attempts from addresses that have not logged in successfully as that user
 *   count, from the moment they start. An address that has (a "known" login, remembered in
 *   session.db) skips this limit: someone guessing alice's password cannot make alice's own
 *   correct login fail.
 * - When the username's tokens are spent, an unknown address is first slowed (its attempt waits
 *   for the next token if that comes within `MAX_WAIT_MS`) and only then refused (429).
 *
 * Tokens come back evenly over the window, so the number of passwords actually checked for one
 * username from unknown addresses in any period T is at most perUser + T·perUser/window plus
 * the attempts slowed at the end. Memory stays bounded: full buckets carry no information and
 * are dropped first when the map grows.
 */
import type { LoginRateConfig } from "../config.ts";

export type RateLimitScope = "ip" | "user";

/** Where successful (username, address) pairs are remembered. */
export interface KnownLogins {
  has(userKey: string, ip: string): boolean | Promise<boolean>;
  remember(userKey: string, ip: string): void | Promise<void>;
}

/** The longest an unknown address is slowed before it is refused instead. */
export const MAX_WAIT_MS = 10_000;

/** Password checks running at once for one client IP (a whole classroom logging in fits). */
export const MAX_IN_FLIGHT_PER_IP = 100;

export type Admission =
  | { refused: RateLimitScope }
  | { refused: null; waitMs: number; ip: string; userKey: string; known: boolean };

export type LoginResult = "succeeded" | "failed" | "undecided";

export class LoginRateLimiter {
  private readonly ips: TokenBuckets;
  private readonly users: TokenBuckets;
  private readonly known: KnownLogins;
  private readonly inFlight = new Map<string, number>();
  private readonly perIpLimited: boolean;

  constructor(
    config: LoginRateConfig,
    now: () => number = Date.now,
    known: KnownLogins = new MemoryKnownLogins(),
  ) {
    const windowMs = config.windowSecs * 1000;
    this.ips = new TokenBuckets(config.perIp, windowMs, now);
    this.users = new TokenBuckets(config.perUser, windowMs, now);
    this.known = known;
    this.perIpLimited = config.perIp > 0;
  }

  /**
   * Counts an attempt from `ip` for `username`: refused, or admitted after `waitMs`. Every
   * admitted attempt must be settled once with `settle`.
   */
  async admit(ip: string, username: string): Promise<Admission> {
    const userKey = loginUserKey(username);
    const running = this.inFlight.get(ip) ?? 0;
    if (this.perIpLimited && (!this.ips.has(ip) || running >= MAX_IN_FLIGHT_PER_IP)) {
      return { refused: "ip" };
    }
    // Counted from now, so attempts arriving while the lookup runs see this one.
    this.inFlight.set(ip, running + 1);
    let known: boolean;
    try {
      known = await this.known.has(userKey, ip);
    } catch (err) {
      this.release(ip);
      throw err;
    }
    let waitMs = 0;
    if (!known) {
      const wait = this.users.take(userKey, MAX_WAIT_MS);
      if (wait === null) {
        this.release(ip);
        return { refused: "user" };
      }
      waitMs = wait;
    }
    return { refused: null, waitMs, ip, userKey, known };
  }

  private release(ip: string): void {
    const running = (this.inFlight.get(ip) ?? 1) - 1;
    if (running > 0) this.inFlight.set(ip, running);
    else this.inFlight.delete(ip);
  }

  /**
   * A failure costs the IP a token. A success makes the address known and forgives the
   * username's attempts. An undecided attempt (no provider could be asked) costs nothing.
   */
  async settle(admission: Admission, result: LoginResult): Promise<void> {
    if (admission.refused !== null) return;
    const { ip, userKey } = admission;
    this.release(ip);
    if (result === "failed") this.ips.take(ip);
    else if (result === "succeeded") {
      this.users.reset(userKey);
      await this.known.remember(userKey, ip);
    } else if (!admission.known) this.users.giveBack(userKey);
  }
}

/** Case and Unicode form do not make a new username for the limit (Cognito emails ignore case). */
export function loginUserKey(username: string): string {
  return username.normalize("NFC").trim().toLowerCase();
}

/** Known logins in memory (tests, and a fallback); bounded, least recently used dropped first. */
export class MemoryKnownLogins implements KnownLogins {
  private readonly pairs = new Set<string>();

  constructor(private readonly maxPairs = 100_000) {}

  has(userKey: string, ip: string): boolean {
    return this.pairs.has(`${userKey}\n${ip}`);
  }

  remember(userKey: string, ip: string): void {
    const pair = `${userKey}\n${ip}`;
    this.pairs.delete(pair);
    this.pairs.add(pair);
    for (const old of this.pairs) {
      if (this.pairs.size <= this.maxPairs) break;
      this.pairs.delete(old);
    }
  }
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

  /**
   * Takes one token. Returns 0 when one was there, the wait until it comes back when the bucket
   * may borrow it within `maxWaitMs`, else null (and nothing taken).
   */
  take(key: string, maxWaitMs = 0): number | null {
    if (this.limit === 0) return 0;
    const at = this.now();
    const left = this.level(key, at) - 1;
    const waitMs = left >= 0 ? 0 : Math.ceil((-left * this.windowMs) / this.limit);
    if (waitMs > maxWaitMs) return null;
    this.store(key, left, at);
    return waitMs;
  }

  /** Returns a token taken by `take` (never above the limit). */
  giveBack(key: string): void {
    if (this.limit === 0 || !this.buckets.has(key)) return;
    const at = this.now();
    const level = this.level(key, at) + 1;
    if (level >= this.limit) this.buckets.delete(key);
    else this.store(key, level, at);
  }

  reset(key: string): void {
    this.buckets.delete(key);
  }

  get size(): number {
    return this.buckets.size;
  }

  private store(key: string, tokens: number, at: number): void {
    this.buckets.delete(key); // re-insert: the map's order is then least recently used first
    this.buckets.set(key, { tokens, at });
    if (this.buckets.size > this.maxKeys) this.evict(at);
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
