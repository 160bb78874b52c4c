/**
 * At start: every user's temporaries that no running process owns are removed (the user's
 * lock says nobody syncs that user meanwhile; a busy user is swept when next locked), then the
 * lease files of dead processes.
 */
import { readdirSync } from "node:fs";
import { join } from "node:path";
import type { Logger } from "../log.ts";
import { removeDeadLeases } from "./instance.ts";
import { removeDeadTemporaries } from "./temporaries.ts";
import { UserLock } from "./userLock.ts";

export function sweepDeadTemporaries(dataDir: string, log: Logger): void {
  let files = 0;
  let bytes = 0;
  for (const dir of userDirs(dataDir)) {
    const lock = UserLock.tryAcquire(dir);
    if (!lock) continue;
    try {
      for (const temp of removeDeadTemporaries(dataDir, dir)) {
        files++;
        bytes += temp.bytes;
      }
    } finally {
      lock.release();
    }
  }
  removeDeadLeases(dataDir);
  if (files > 0) log.info("removed temporaries of interrupted requests", { files, bytes });
}

function userDirs(dataDir: string): string[] {
  const root = join(dataDir, "collections");
  try {
    return readdirSync(root, { withFileTypes: true })
      .filter((e) => e.isDirectory())
      .map((e) => join(root, e.name));
  } catch {
    return [];
  }
}
