/**
 * A real small filesystem for fault tests: a tmpfs mounted on a temporary folder (needs root
 * or CAP_SYS_ADMIN; `mountable()` says whether it works here, so tests can skip with a reason).
 * `fill()` writes a filler file until the filesystem is full; `free()` removes it.
 */
import {
  closeSync,
  mkdtempSync,
  openSync,
  rmSync,
  statSync,
  truncateSync,
  writeSync,
} from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";

const run = (cmd: string[]) => Bun.spawnSync(cmd, { stdout: "pipe", stderr: "pipe" });

let probed: string | null | undefined;

/** null when a tmpfs can be mounted, else why not. */
export function cannotMount(): string | null {
  if (probed !== undefined) return probed;
  const dir = mkdtempSync(join(tmpdir(), "ankisyncd-mount-probe-"));
  const r = run(["mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", dir]);
  if (r.exitCode === 0) {
    run(["umount", dir]);
    probed = null;
  } else probed = `cannot mount a tmpfs here: ${r.stderr.toString().trim() || r.exitCode}`;
  rmSync(dir, { recursive: true, force: true });
  return probed;
}

export class SmallFs {
  readonly dir = mkdtempSync(join(tmpdir(), "ankisyncd-smallfs-"));
  private readonly filler = join(this.dir, "filler");
  private readonly binds: string[] = [];

  constructor(sizeMegs: number) {
    const r = run(["mount", "-t", "tmpfs", "-o", `size=${sizeMegs}m`, "tmpfs", this.dir]);
    if (r.exitCode !== 0) throw new Error(`mount failed: ${r.stderr.toString()}`);
  }

  /** Writes the filler until ENOSPC, leaving the filesystem with no free block. */
  fill(): void {
    const fd = openSync(this.filler, "a");
    try {
      for (const size of [1024 * 1024, 4096, 1]) {
        const chunk = new Uint8Array(size).fill(0x61);
        for (;;) {
          try {
            writeSync(fd, chunk);
          } catch (err) {
            if ((err as NodeJS.ErrnoException).code === "ENOSPC") break;
            throw err;
          }
        }
      }
    } finally {
      closeSync(fd);
    }
  }

  /** Gives back `bytes` of the filler: room for a small write, not a large one. */
  leave(bytes: number): void {
    truncateSync(this.filler, Math.max(0, statSync(this.filler).size - bytes));
  }

  free(): void {
    rmSync(this.filler, { force: true });
  }

  /** Makes the whole filesystem read-only (or writable again). */
  readOnly(on: boolean): void {
    const r = run(["mount", "-o", `remount,${on ? "ro" : "rw"}`, this.dir]);
    if (r.exitCode !== 0) throw new Error(`remount failed: ${r.stderr.toString()}`);
  }

  /** Makes one file read-only through a read-only bind mount over itself. */
  bindReadOnly(path: string): void {
    for (const cmd of [
      ["mount", "--bind", path, path],
      ["mount", "-o", "remount,bind,ro", path],
    ]) {
      const r = run(cmd);
      if (r.exitCode !== 0) throw new Error(`${cmd.join(" ")} failed: ${r.stderr.toString()}`);
    }
    this.binds.push(path);
  }

  dispose(): void {
    for (const path of this.binds.splice(0).reverse()) run(["umount", path]);
    const r = run(["umount", this.dir]);
    if (r.exitCode !== 0) run(["umount", "-l", this.dir]);
    rmSync(this.dir, { recursive: true, force: true });
  }
}
