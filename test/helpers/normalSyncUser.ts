/**
 * A user with a fresh collection in a temporary folder (usn 10), for normal-sync steps run
 * without HTTP or workers, and what those tests share.
 */
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { UserState } from "../../src/executor/userState.ts";
import type { Db } from "../../src/platform/sqlite.ts";
import { userPaths } from "../../src/storage/paths.ts";
import { SyncError } from "../../src/sync/errors.ts";

/** A body with nothing the step reads. */
export const PAD = '{"_pad":null}';

export interface SyncUser {
  dir: string;
  user: UserState;
  db: Db;
}

export function openSyncUser(prefix: string): SyncUser {
  const dir = mkdtempSync(join(tmpdir(), prefix));
  const user = new UserState(userPaths(dir, "u1"));
  const db = user.collection.open();
  db.query("update col set usn = 10").run();
  return { dir, user, db };
}

export function closeSyncUser({ dir, user }: SyncUser): void {
  user.close();
  rmSync(dir, { recursive: true, force: true });
}

/** The SyncError `fn` throws (anything else fails the test). */
export function syncFailure(fn: () => unknown): SyncError {
  try {
    fn();
  } catch (err) {
    if (err instanceof SyncError) return err;
    throw err;
  }
  throw new Error("expected a SyncError");
}
