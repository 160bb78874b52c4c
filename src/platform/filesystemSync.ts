/**
 * Everything written to one filesystem made durable with a single call: syncfs(2), through
 * `sync -f` (coreutils' `--file-system`; BusyBox has `-f` too) in a child process, so the
 * calling thread is not held while the disk works. Thousands of small files then cost one
 * filesystem commit instead of one `fdatasync` each, which the runtime's file thread pool
 * (about one thread per CPU) runs a few at a time: 2,000 files of 8 kB took ~80 ms this way
 * against ~800-950 ms file by file on a 2-CPU host. Linux only. Resolves false whenever it
 * cannot vouch for the sync (no such command, another system, a runtime not allowed to start
 * it, or the command failed): the caller then syncs file by file, which also reports an I/O
 * error for what it is.
 */
import { execFile } from "node:child_process";
import { mayRunCommand } from "#platform/permissions.ts";

const COMMAND = "sync";
/** Set once the command cannot be started at all: not tried again by this process. */
let unavailable = process.platform !== "linux";

export function syncFilesystem(dir: string): Promise<boolean> {
  if (unavailable || !mayRunCommand(COMMAND)) return Promise.resolve(false);
  return new Promise((resolve) => {
    execFile(COMMAND, ["-f", dir], (err) => {
      // A string code is a failure to start it (ENOENT, EACCES); a number is its exit status.
      if (err && typeof (err as NodeJS.ErrnoException).code === "string") unavailable = true;
      resolve(err === null);
    });
  });
}
