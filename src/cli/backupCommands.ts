/**
 * `admin backup <dir>` and `admin restore <dir>` (src/backup/): a consistent copy of the whole
 * data folder taken while the server runs, and putting it back into an empty data folder.
 */
import { statSync } from "node:fs";
import { BackupError, type Manifest } from "../backup/manifest.ts";
import { createLogger } from "../log.ts";
import type { CommandGroup } from "./commandGroup.ts";
import { CliError, UsageError } from "./context.ts";

export const backup: CommandGroup = {
  summary: "copy session.db, every collection and all media to a new folder (server may run)",
  usage: ["backup <dir>   (a new or empty folder; manifest.json is written last)"],
  async run(args, ctx) {
    const dir = oneFolder(args);
    const { backupDataFolder } = await import("../backup/backup.ts");
    const started = performance.now();
    const log = createLogger(ctx.config.logLevel, ctx.config.logFormat);
    warnIfNotOwner(ctx.config.dataDir, log);
    const manifest = await failAsCliError(() => backupDataFolder(ctx.config, dir, { log }));
    ctx.out(`backup written to ${dir}: ${describe(manifest)} in ${seconds(started)}`);
    const problems = manifest.users.reduce((n, u) => n + u.problems.length, 0);
    if (problems > 0) ctx.out(`${problems} problem(s) found on the server: see the warnings above`);
  },
};

export const restore: CommandGroup = {
  summary: "put a backup into an empty data folder (SYNC_BASE); start the server afterwards",
  usage: ["restore <dir>   (a folder written by `admin backup`)"],
  async run(args, ctx) {
    const dir = oneFolder(args);
    const { restoreDataFolder } = await import("../backup/restore.ts");
    const started = performance.now();
    const manifest = await failAsCliError(() => restoreDataFolder(ctx.config, dir));
    ctx.out(
      `restored ${dir} (taken ${manifest.startedAt}) into ${ctx.config.dataDir}: ${describe(manifest)} in ${seconds(started)}`,
    );
  },
};

/**
 * Reading a WAL database nobody else has open creates its -wal/-shm; made by root, a server
 * opening the database at that moment could not use them.
 */
function warnIfNotOwner(dataDir: string, log: ReturnType<typeof createLogger>): void {
  if (process.getuid?.() !== 0) return;
  try {
    const owner = statSync(dataDir).uid;
    if (owner !== 0) {
      log.warn("running as root: run backups as the server's user (the data folder's owner)", {
        owner,
      });
    }
  } catch {
    // No data folder: the backup itself says so.
  }
}

function oneFolder(args: string[]): string {
  const [dir, ...rest] = args;
  if (!dir || dir.startsWith("-")) throw new UsageError("missing folder");
  if (rest.length > 0) throw new UsageError(`unexpected ${rest.join(" ")}`);
  return dir;
}

async function failAsCliError<T>(fn: () => T | Promise<T>): Promise<T> {
  try {
    return await fn();
  } catch (err) {
    if (err instanceof BackupError) throw new CliError(err.message, 1, { cause: err });
    throw err;
  }
}

function describe(manifest: Manifest): string {
  const collections = manifest.users.filter((u) => u.collection).length;
  const files = manifest.users.reduce((n, u) => n + u.mediaFiles.length, 0);
  const bytes =
    manifest.sessionDb.bytes +
    manifest.users.reduce(
      (n, u) =>
        n +
        (u.collection?.bytes ?? 0) +
        (u.mediaDb?.bytes ?? 0) +
        u.mediaFiles.reduce((m, f) => m + f[1], 0),
      0,
    );
  return `session.db, ${collections} collection(s), ${files} media file(s), ${(bytes / 1048576).toFixed(1)} MiB`;
}

function seconds(started: number): string {
  return `${((performance.now() - started) / 1000).toFixed(1)} s`;
}
