/**
 * Caches account checks against an external provider: each key is checked at most once per
 * interval, concurrent requests share one check, and a request waits at most `timeoutMs` for it
 * (then the last known status is used and the check finishes in the background). A check that
 * fails (provider unreachable) keeps the account usable until the next interval.
 */
import type { AccountStatus } from "./provider.ts";

const OK: AccountStatus = { ok: true };

interface Entry {
  at: number;
  status: AccountStatus;
}

export interface RecheckOptions<K> {
  intervalMs: number;
  timeoutMs: number;
  check(key: K): Promise<AccountStatus>;
  /** The check threw or was too slow; the account keeps its last known status. */
  onUnknown(key: K, why: string): void;
  now?: () => number;
}

export class RecheckCache<K> {
  private readonly entries = new Map<K, Entry>();
  private readonly inflight = new Map<K, Promise<AccountStatus>>();
  private readonly now: () => number;

  constructor(private readonly options: RecheckOptions<K>) {
    this.now = options.now ?? Date.now;
  }

  /** Records a status learnt elsewhere (a successful login proves the account is fine). */
  set(key: K, status: AccountStatus = OK): void {
    this.entries.set(key, { at: this.now(), status });
  }

  forget(key: K): void {
    this.entries.delete(key);
  }

  async get(key: K): Promise<AccountStatus> {
    const entry = this.entries.get(key);
    if (entry && this.now() - entry.at < this.options.intervalMs) return entry.status;
    const last = entry?.status ?? OK;
    let pending = this.inflight.get(key);
    if (!pending) {
      pending = this.options
        .check(key)
        .catch((err: unknown) => {
          this.options.onUnknown(key, err instanceof Error ? err.message : String(err));
          return last;
        })
        .then((status) => {
          this.entries.set(key, { at: this.now(), status });
          return status;
        })
        .finally(() => this.inflight.delete(key));
      this.inflight.set(key, pending);
    }
    return withTimeout(pending, this.options.timeoutMs, () => {
      this.options.onUnknown(key, `no answer within ${this.options.timeoutMs} ms`);
      return last;
    });
  }
}

function withTimeout<T>(promise: Promise<T>, ms: number, onTimeout: () => T): Promise<T> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const timeout = new Promise<T>((resolve) => {
    timer = setTimeout(() => resolve(onTimeout()), ms);
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}
