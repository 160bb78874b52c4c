/**
 * A per-user lock file that dies with its process. Two ankisyncd processes sharing one data
 * folder (or an admin command) never open the same user's files at once. It is an exclusive
 * SQLite transaction on `<user>/.lock`: SQLite's fcntl locks are released by the OS when the
 * holder exits, and work over NFS (lockd), so no stale lock can remain after a crash.
 */
import { mkdirSync } from "node:fs";
import { join } from "node:path";
import { type Db, openDatabase } from "../platform/sqlite.ts";

export class UserLock {
  private constructor(private db: Db | undefined) {}

  /** The lock, or null if another process (or connection) holds it. */
  static tryAcquire(userDir: string): UserLock | null {
    mkdirSync(userDir, { recursive: true });
    const db = openDatabase(join(userDir, ".lock"));
    try {
      db.exec("PRAGMA busy_timeout = 0");
      db.exec("PRAGMA journal_mode = DELETE");
      db.exec("BEGIN EXCLUSIVE");
      return new UserLock(db);
    } catch {
      db.close();
      return null;
    }
  }

  /** Waits up to `timeoutMs` for the lock (for admin commands while the server runs). */
  static async acquire(userDir: string, timeoutMs: number): Promise<UserLock | null> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const lock = UserLock.tryAcquire(userDir);
      if (lock || Date.now() >= deadline) return lock;
      await new Promise((r) => setTimeout(r, 200));
    }
  }

  release(): void {
    if (!this.db) return;
    this.db.exec("ROLLBACK");
    this.db.close();
    this.db = undefined;
  }
}
