/**
 * `admin doctor [--fix]`: checks the data folder — every collection, media.db and session.db
 * (integrity, journal mode, leftover journals and WAL files; databases.ts), NFS `.nfs*` files and
 * stale temporaries (leftovers.ts), and that the container user can read and write everything
 * (permissions.ts) — and with `--fix` repairs what is safe.
 *
 * A user's files are only touched while holding that user's lock (storage/userLock.ts), as the
 * server does, so the doctor is safe while the server runs: a user in the middle of a sync is
 * reported busy and skipped. session.db is shared with the running server, so it only gets
 * what SQLite's own locking makes safe (opening it, a checkpoint).
 */
import { existsSync, readdirSync } from "node:fs";
import { dirname, join, relative } from "node:path";
import type { Config } from "../../config.ts";
import { removeDeadLeases } from "../../storage/instance.ts";
import { detectNetworkFs } from "../../storage/networkFs.ts";
import { userPaths } from "../../storage/paths.ts";
import { UserLock } from "../../storage/userLock.ts";
import type { CommandGroup } from "../commandGroup.ts";
import { CliError } from "../context.ts";
import { checkDatabase } from "./databases.ts";
import {
  checkMediaJournal,
  checkSharedNfsFiles,
  checkTemporaries,
  checkUserNfsFiles,
} from "./leftovers.ts";
import { type DoctorOptions, doctorOptions } from "./options.ts";
import { checkPermissions, giveToContainerUser } from "./permissions.ts";
import { type CheckContext, type DoctorReport, formatReport, summarize } from "./report.ts";

export {
  DEFAULT_CONTAINER_GID,
  DEFAULT_CONTAINER_UID,
  type DoctorOptions,
  doctorOptions,
} from "./options.ts";
export {
  type DoctorReport,
  type Finding,
  formatReport,
  type Severity,
  summarize,
} from "./report.ts";

export async function runDoctor(config: Config, options: DoctorOptions): Promise<DoctorReport> {
  const dataDir = config.dataDir;
  const fs = detectNetworkFs(dataDir);
  const networkFs = config.networkFs === "auto" ? fs.networkFs : config.networkFs;
  const report: DoctorReport = { dataDir, fs, networkFs, users: 0, databases: 0, findings: [] };
  const add: CheckContext["add"] = (path, severity, message, fixed) =>
    report.findings.push({ path: relative(dataDir, path) || ".", severity, message, fixed });

  if (!existsSync(dataDir)) {
    add(dataDir, "problem", "data folder does not exist (the server creates it at start)");
    return report;
  }
  const ctx: CheckContext = { options, networkFs, add, report };

  // session.db: shared with a running server, so only what SQLite's locking makes safe.
  checkDatabase(ctx, { path: config.sessionDbPath, rollbackOnly: false, exclusive: false });
  checkSharedNfsFiles(ctx, dirname(config.sessionDbPath));
  if (options.fix) removeDeadLeases(dataDir);

  const collections = join(dataDir, "collections");
  const uuids = userFolders(collections);
  for (const uuid of uuids) await checkUser(ctx, uuid);
  // Everything else (the data folder itself, session.db, collections/, old layouts).
  checkPermissions(ctx, dataDir, false, new Set([collections]));
  checkPermissions(ctx, collections, false, new Set(uuids.map((u) => join(collections, u))));
  return report;
}

function userFolders(collections: string): string[] {
  if (!existsSync(collections)) return [];
  return readdirSync(collections, { withFileTypes: true })
    .filter((e) => e.isDirectory())
    .map((e) => e.name)
    .sort();
}

/** One user's folder, under the user's lock. */
async function checkUser(ctx: CheckContext, uuid: string): Promise<void> {
  let paths: ReturnType<typeof userPaths>;
  try {
    paths = userPaths(ctx.report.dataDir, uuid);
  } catch {
    const folder = join(ctx.report.dataDir, "collections", uuid);
    ctx.add(folder, "warning", "folder name is not a user key; ignored");
    return;
  }
  ctx.report.users++;
  const lockExisted = existsSync(join(paths.dir, ".lock"));
  const lock = await UserLock.acquire(paths.dir, ctx.options.lockWaitMs);
  if (!lock) {
    ctx.add(paths.dir, "busy", "in use by the server (a sync in progress?); skipped, run again");
    return;
  }
  try {
    // A .lock we just created is ours (root's, when run as root): the server must be able to use it.
    if (!lockExisted) giveToContainerUser(ctx, join(paths.dir, ".lock"));
    checkDatabase(ctx, { path: paths.collection, rollbackOnly: true, exclusive: true });
    checkDatabase(ctx, { path: paths.mediaDb, rollbackOnly: false, exclusive: true });
    checkUserNfsFiles(ctx, paths.dir);
    checkTemporaries(ctx, paths.dir);
    checkMediaJournal(ctx, paths);
    checkPermissions(ctx, paths.dir, true);
  } finally {
    lock.release();
  }
}

const group: CommandGroup = {
  summary: "check (and with --fix repair) the data folder; safe while the server runs",
  usage: [
    "doctor [--fix] [--quick] [--json] [--uid <n>] [--gid <n>] [--wait <secs>]",
    "  --fix    replay leftover journals/WAL and media journals, restore journal modes,",
    "           remove stale .nfs*",
    "           and the temporaries of dead server processes (whatever their age), chown",
    "           what the server's user cannot use (as root)",
    "  --quick  quick_check instead of a full integrity_check",
    "  --uid/--gid  the server's user (default CONTAINER_USER_ID/CONTAINER_GROUP_ID, as in",
    "           the image, else yourself, else as root the data folder's owner)",
    "  --wait   seconds to wait for a busy user's lock (default 10)",
  ],
  // One command, no subcommands: `admin doctor` itself runs the check.
  async run(args, ctx) {
    const options = doctorOptions(args, process.env, ctx.config.dataDir);
    const report = await runDoctor(ctx.config, options);
    if (options.json) ctx.out(JSON.stringify({ ...report, summary: summarize(report) }));
    else for (const line of formatReport(report, options)) ctx.out(line);
    const s = summarize(report);
    if (s.remaining > 0) throw new CliError(`${s.remaining} problems remain`, 1);
    if (s.busy > 0) throw new CliError(`${s.busy} users were busy; run again`, 75);
  },
};
export default group;
