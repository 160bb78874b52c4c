/**
 * `admin doctor [--fix]`: checks the data folder — every collection, media.db and session.db
 * (integrity, journal mode, leftover journals and WAL files), NFS `.nfs*` files, stale
 * temporaries, and that the container user can read and write everything — and with `--fix`
 * repairs what is safe:
 *
 * - A leftover rollback journal or WAL is replayed by opening the database with SQLite, which
 *   rolls back the interrupted transaction or recovers the committed WAL frames. They are never
 *   deleted by hand (a WAL holds committed data; deleting a hot journal corrupts the file).
 *   Collections are then put back in rollback-journal mode (checkpointing the WAL into them).
 * - `.nfs*` files in a user's folder and temporaries older than a day are removed.
 * - Run as root, files the container user cannot use are given to it (chown).
 *
 * A user's files are only touched while holding that user's lock (storage/userLock.ts), as the
 * server does, so the doctor is safe while the server runs: a user in the middle of a sync is
 * reported busy and skipped. session.db is shared with the running server, so it only gets
 * what SQLite's own locking makes safe (opening it, a checkpoint).
 */
import {
  chmodSync,
  chownSync,
  closeSync,
  existsSync,
  lstatSync,
  openSync,
  readdirSync,
  readSync,
  rmSync,
  type Stats,
  statSync,
} from "node:fs";
import { basename, dirname, join, relative } from "node:path";
import type { Config } from "../config.ts";
import { type Db, openDatabase, unicaseExtensionPath } from "../platform/sqlite.ts";
import { detectNetworkFs, type FsInfo } from "../storage/networkFs.ts";
import { userPaths } from "../storage/paths.ts";
import { UserLock } from "../storage/userLock.ts";
import { type CliContext, CliError, type CommandGroup, parseArgs, UsageError } from "./context.ts";

/** The container user of the Docker image (Dockerfile build args). */
export const DEFAULT_CONTAINER_UID = 1001;
export const DEFAULT_CONTAINER_GID = 65533;
/** Temporaries younger than this may belong to a request in flight. */
const STALE_TEMP_MS = 24 * 60 * 60 * 1000;
const DEFAULT_LOCK_WAIT_SECS = 10;
/** Permission problems listed one by one before they are only counted. */
const MAX_LISTED = 20;

export interface DoctorOptions {
  fix: boolean;
  /** quick_check instead of integrity_check (faster on large collections). */
  quick: boolean;
  /** Whose access to check: the user the server runs as. */
  uid: number;
  gid: number;
  /** How long to wait for each user's lock. */
  lockWaitMs: number;
  /** For tests: the current time. */
  now?: number;
}

export type Severity = "problem" | "warning" | "busy";

export interface Finding {
  /** Relative to the data folder. */
  path: string;
  severity: Severity;
  message: string;
  /** Set when --fix repaired it (the message then says what was done). */
  fixed?: boolean;
}

export interface DoctorReport {
  dataDir: string;
  fs: FsInfo;
  networkFs: boolean;
  users: number;
  databases: number;
  findings: Finding[];
}

/** What kind of database a file is, which decides its expected journal mode. */
interface DbSpec {
  path: string;
  /** Always a rollback journal (collections), else WAL unless on a network filesystem. */
  rollbackOnly: boolean;
  /** No other process can have it open (we hold the user's lock), so leftovers are leftovers. */
  exclusive: boolean;
}

const JOURNAL_MAGIC = Uint8Array.of(0xd9, 0xd5, 0x05, 0xf9, 0x20, 0xa1, 0x63, 0xd7);

export async function runDoctor(config: Config, options: DoctorOptions): Promise<DoctorReport> {
  const dataDir = config.dataDir;
  const fs = detectNetworkFs(dataDir);
  const networkFs = config.networkFs === "auto" ? fs.networkFs : config.networkFs;
  const report: DoctorReport = { dataDir, fs, networkFs, users: 0, databases: 0, findings: [] };
  const add = (path: string, severity: Severity, message: string, fixed?: boolean) =>
    report.findings.push({ path: relative(dataDir, path) || ".", severity, message, fixed });

  if (!existsSync(dataDir)) {
    add(dataDir, "problem", "data folder does not exist (the server creates it at start)");
    return report;
  }
  const ctx: CheckContext = { options, networkFs, add, report };

  // session.db: shared with a running server, so only what SQLite's locking makes safe.
  checkDatabase(ctx, { path: config.sessionDbPath, rollbackOnly: false, exclusive: false });
  checkNfsFiles(ctx, dirname(config.sessionDbPath), false);

  const collections = join(dataDir, "collections");
  const uuids = existsSync(collections)
    ? readdirSync(collections, { withFileTypes: true })
        .filter((e) => e.isDirectory())
        .map((e) => e.name)
        .sort()
    : [];
  for (const uuid of uuids) {
    let paths: ReturnType<typeof userPaths>;
    try {
      paths = userPaths(dataDir, uuid);
    } catch {
      add(join(collections, uuid), "warning", "folder name is not a user key; ignored");
      continue;
    }
    report.users++;
    const lockExisted = existsSync(join(paths.dir, ".lock"));
    const lock = await UserLock.acquire(paths.dir, options.lockWaitMs);
    if (!lock) {
      add(paths.dir, "busy", "in use by the server (a sync in progress?); skipped, run again");
      continue;
    }
    try {
      if (!lockExisted) giveToContainerUser(ctx, join(paths.dir, ".lock"));
      checkDatabase(ctx, { path: paths.collection, rollbackOnly: true, exclusive: true });
      checkDatabase(ctx, { path: paths.mediaDb, rollbackOnly: false, exclusive: true });
      checkNfsFiles(ctx, paths.dir, true);
      checkTemporaries(ctx, paths.dir);
      checkPermissions(ctx, paths.dir, true);
    } finally {
      lock.release();
    }
  }
  // Everything else (the data folder itself, session.db, collections/, old layouts).
  checkPermissions(ctx, dataDir, false, new Set([collections]));
  checkPermissions(ctx, collections, false, new Set(uuids.map((u) => join(collections, u))));
  return report;
}

interface CheckContext {
  options: DoctorOptions;
  networkFs: boolean;
  add: (path: string, severity: Severity, message: string, fixed?: boolean) => void;
  report: DoctorReport;
}

// ---------------------------------------------------------------------------------------------
// SQLite files

interface Header {
  sqlite: boolean;
  wal: boolean;
}

function readHeader(path: string, bytes = 100): Uint8Array {
  const fd = openSync(path, "r");
  try {
    const buf = new Uint8Array(bytes);
    const n = readSync(fd, buf, 0, bytes, 0);
    return buf.subarray(0, n);
  } finally {
    closeSync(fd);
  }
}

function sqliteHeader(path: string): Header {
  const h = readHeader(path);
  const magic = new TextDecoder().decode(h.subarray(0, 16));
  // Bytes 18 and 19: file format write/read version, 1 = rollback journal, 2 = WAL.
  return { sqlite: magic === "SQLite format 3\0", wal: h[18] === 2 || h[19] === 2 };
}

function sizeOf(path: string): number | undefined {
  try {
    return statSync(path).size;
  } catch {
    return undefined;
  }
}

/** A journal that still holds rollback data (SQLite treats it as hot if nobody has a lock). */
function journalHasData(path: string): boolean {
  const header = readHeader(path, 8);
  return header.length === 8 && header.every((b, i) => b === JOURNAL_MAGIC[i]);
}

function checkDatabase(ctx: CheckContext, spec: DbSpec): void {
  const { path } = spec;
  if (!existsSync(path)) return;
  const { add, options } = ctx;
  const name = basename(path);
  ctx.report.databases++;
  if ((sizeOf(path) ?? 0) === 0) {
    add(path, "problem", "empty file (not a database)");
    return;
  }
  const header = sqliteHeader(path);
  if (!header.sqlite) {
    add(path, "problem", "not an SQLite database");
    return;
  }
  const journal = `${path}-journal`;
  const wal = `${path}-wal`;
  const shm = `${path}-shm`;
  const journalSize = sizeOf(journal);
  const walSize = sizeOf(wal);
  const shmSize = sizeOf(shm);
  const wantRollback = spec.rollbackOnly || ctx.networkFs;
  // In WAL mode a shared database keeps its -wal and -shm while open: that is not a leftover.
  const walInUse = !spec.exclusive && header.wal;
  const leftovers: string[] = [];
  if (journalSize !== undefined) leftovers.push(`journal (${journalSize} bytes)`);
  if (walSize !== undefined && !walInUse) leftovers.push(`WAL (${walSize} bytes)`);
  if (shmSize !== undefined && !walInUse && walSize === undefined) leftovers.push("-shm");
  const wrongMode = header.wal && wantRollback;
  const modeMessage = spec.rollbackOnly
    ? "in WAL mode; collections use a rollback journal"
    : "in WAL mode on a network filesystem (unsafe there)";

  if (!options.fix) {
    if (leftovers.length > 0) {
      // Without the user's lock (session.db) a journal may also be a write in progress.
      add(
        path,
        spec.exclusive ? "problem" : "warning",
        `leftover ${leftovers.join(", ")} from an interrupted write${spec.exclusive ? "" : " (or a write in progress)"}: --fix replays it (not checked further until then)`,
      );
      return;
    }
    if (wrongMode) add(path, "problem", `${modeMessage}: --fix converts it`);
    integrity(ctx, spec, name);
    return;
  }

  // --fix: let SQLite replay what is left over, then restore the journal mode.
  let db: Db;
  try {
    db = openDatabase(path, { create: false, unicase: existsSync(unicaseExtensionPath()) });
  } catch (err) {
    add(path, "problem", `cannot open: ${(err as Error).message}`);
    return;
  }
  try {
    db.exec("PRAGMA busy_timeout = 5000");
    // The first read rolls back a hot journal or recovers the committed frames of a WAL.
    db.query("select count(*) from sqlite_master").get();
  } catch (err) {
    add(path, "problem", `replaying its leftovers failed: ${(err as Error).message}`);
    db.close();
    return;
  }
  try {
    const mode = (db.query("PRAGMA journal_mode").get() as { journal_mode: string }).journal_mode;
    if (mode === "wal" && wantRollback) {
      // Checkpoints every committed frame into the main file, then removes the WAL. Needs
      // the database to itself: fails (reported below) while a server has session.db open.
      db.exec("PRAGMA journal_mode = DELETE");
    } else if (mode === "wal" && spec.exclusive) {
      db.query("PRAGMA wal_checkpoint(TRUNCATE)").get();
    }
  } catch {
    // reported below from the file's header and what is left beside it
  } finally {
    db.close();
  }

  const after = sqliteHeader(path);
  const nowWal = after.wal;
  if (leftovers.length > 0) {
    const still: string[] = [];
    if (existsSync(journal)) {
      if (spec.exclusive && !journalHasData(journal)) {
        // SQLite found nothing to roll back in it (empty or already invalidated).
        rmSync(journal, { force: true });
      } else still.push("journal");
    }
    if (existsSync(wal) && (spec.exclusive || !nowWal)) still.push("WAL");
    if (existsSync(shm) && !existsSync(wal) && spec.exclusive) rmSync(shm, { force: true });
    if (still.length > 0) {
      add(path, "problem", `leftover ${still.join(" and ")} still there after opening it`);
    } else {
      add(path, "problem", `leftover ${leftovers.join(", ")} replayed by SQLite`, true);
    }
  }
  if (wrongMode) {
    if (nowWal) {
      add(
        path,
        "problem",
        `${modeMessage}; could not convert it (in use? the server converts session.db at start)`,
      );
    } else add(path, "problem", `${modeMessage}: converted to a rollback journal`, true);
  }
  integrity(ctx, spec, name);
}

function integrity(ctx: CheckContext, spec: DbSpec, name: string): void {
  let db: Db | undefined;
  try {
    db = openDatabase(spec.path, { create: false, unicase: existsSync(unicaseExtensionPath()) });
    db.exec("PRAGMA busy_timeout = 5000");
    const pragma = ctx.options.quick ? "quick_check" : "integrity_check";
    const rows = db.query(`PRAGMA ${pragma}(20)`).all() as Record<string, string>[];
    const messages = rows.map((r) => Object.values(r)[0] ?? "");
    if (!(messages.length === 1 && messages[0] === "ok")) {
      ctx.add(
        spec.path,
        "problem",
        `${name} fails the ${pragma}: ${messages.slice(0, 5).join("; ")}` +
          (spec.rollbackOnly
            ? " (restore it from backups/, or have the client upload its copy: Tools > Check Database, then force a full upload)"
            : ""),
      );
    }
  } catch (err) {
    ctx.add(spec.path, "problem", `cannot check integrity: ${(err as Error).message}`);
  } finally {
    db?.close();
  }
}

// ---------------------------------------------------------------------------------------------
// Other files

/** Walks `dir` (not following symlinks), skipping the folders in `skip`. */
function* walk(dir: string, skip: ReadonlySet<string> = new Set()): Generator<[string, Stats]> {
  let stats: Stats;
  try {
    stats = lstatSync(dir);
  } catch {
    return;
  }
  yield [dir, stats];
  if (!stats.isDirectory()) return;
  let entries: string[];
  try {
    entries = readdirSync(dir);
  } catch {
    return; // unreadable: reported by the permission check
  }
  for (const entry of entries.sort()) {
    const path = join(dir, entry);
    if (skip.has(path)) continue;
    let s: Stats;
    try {
      s = lstatSync(path);
    } catch {
      continue;
    }
    if (s.isDirectory()) yield* walk(path, skip);
    else yield [path, s];
  }
}

/**
 * `.nfsXXXX` files are NFS "silly renames": files deleted while still open. They vanish when the
 * last holder closes them; ones that stay belong to a crashed or hung client. In a user's folder,
 * under the user's lock, no server has them open, so --fix removes them.
 */
function checkNfsFiles(ctx: CheckContext, dir: string, underLock: boolean): void {
  const found = underLock
    ? [...walk(dir)].filter(([p, s]) => !s.isDirectory() && basename(p).startsWith(".nfs"))
    : safeList(dir)
        .filter((n) => n.startsWith(".nfs"))
        .map((n): [string, Stats | undefined] => [join(dir, n), undefined]);
  for (const [path] of found) {
    if (!underLock) {
      ctx.add(
        path,
        "warning",
        "NFS silly-rename file (deleted while open); it goes when its holder closes it",
      );
    } else if (ctx.options.fix) {
      try {
        rmSync(path);
        ctx.add(path, "problem", "NFS silly-rename file of a crashed client: removed", true);
      } catch (err) {
        ctx.add(
          path,
          "problem",
          `NFS silly-rename file still held open: ${(err as Error).message}`,
        );
      }
    } else {
      ctx.add(
        path,
        "problem",
        "NFS silly-rename file (deleted while open by a client that is gone): --fix removes it",
      );
    }
  }
}

function safeList(dir: string): string[] {
  try {
    return readdirSync(dir);
  } catch {
    return [];
  }
}

/** `<name>.tmp-<pid>-<random><suffix>` (storage/paths.ts) and `media.tmp-*` leftovers. */
function checkTemporaries(ctx: CheckContext, dir: string): void {
  const now = ctx.options.now ?? Date.now();
  for (const [path, stats] of walk(dir)) {
    const name = basename(path);
    if (!/\.tmp-/.test(name) && !name.startsWith("media.tmp-")) continue;
    if (now - stats.mtimeMs < STALE_TEMP_MS) continue;
    if (ctx.options.fix) {
      rmSync(path, { recursive: true, force: true });
      ctx.add(path, "warning", "temporary file left by an interrupted request: removed", true);
    } else {
      ctx.add(
        path,
        "warning",
        "temporary file left by an interrupted request (over a day old): --fix removes it",
      );
    }
  }
}

/**
 * Everything must be readable and writable (folders also searchable) by the user the server
 * runs as. Judged from owner, group and mode bits (supplementary groups and ACLs are not seen
 * unless we are that user). Run as root, --fix gives what it cannot use to that user.
 */
function checkPermissions(
  ctx: CheckContext,
  dir: string,
  recursive: boolean,
  skip: ReadonlySet<string> = new Set(),
): void {
  const { uid, gid } = ctx.options;
  const entries: [string, Stats][] = recursive
    ? [...walk(dir, skip)]
    : [dir, ...safeList(dir).map((n) => join(dir, n))]
        .filter((p) => !skip.has(p))
        .flatMap((p): [string, Stats][] => {
          try {
            return [[p, lstatSync(p)]];
          } catch {
            return [];
          }
        });
  let listed = 0;
  let unlisted = 0;
  for (const [path, stats] of entries) {
    // The lock's journal is ours (it exists while we hold the lock) and goes with the lock.
    if (stats.isSymbolicLink() || basename(path) === ".lock-journal") continue;
    if (canUse(stats, uid, gid)) continue;
    let fixed = false;
    if (ctx.options.fix && isRoot()) fixed = giveToContainerUser(ctx, path, stats);
    if (listed < MAX_LISTED || fixed) {
      listed++;
      const mode = (stats.mode & 0o7777).toString(8).padStart(4, "0");
      const what = `owner ${stats.uid}:${stats.gid} mode ${mode}: user ${uid}:${gid} cannot ${stats.isDirectory() ? "use this folder" : "read and write this file"}`;
      ctx.add(
        path,
        "problem",
        fixed
          ? `${what}: given to ${uid}:${gid}`
          : `${what}${isRoot() ? " (--fix chowns it)" : ` (as root: chown ${uid}:${gid})`}`,
        fixed || undefined,
      );
    } else unlisted++;
  }
  if (unlisted > 0) {
    ctx.add(dir, "problem", `${unlisted} more files or folders the server's user cannot use`);
  }
}

function canUse(stats: Stats, uid: number, gid: number): boolean {
  if (uid === 0) return true;
  const need = stats.isDirectory() ? 0o7 : 0o6;
  const bits =
    stats.uid === uid
      ? (stats.mode >> 6) & 0o7
      : stats.gid === gid
        ? (stats.mode >> 3) & 0o7
        : stats.mode & 0o7;
  return (bits & need) === need;
}

function isRoot(): boolean {
  return process.getuid?.() === 0;
}

/** chown to the container user (root only), plus owner read/write(/search) bits if missing. */
function giveToContainerUser(ctx: CheckContext, path: string, stats?: Stats): boolean {
  const { uid, gid } = ctx.options;
  if (!isRoot() || uid === 0) return false;
  try {
    const s = stats ?? lstatSync(path);
    chownSync(path, uid, gid);
    const need = s.isDirectory() ? 0o700 : 0o600;
    if ((s.mode & need) !== need) chmodSync(path, (s.mode & 0o7777) | need);
    return true;
  } catch {
    return false;
  }
}

// ---------------------------------------------------------------------------------------------
// Output and the command

export function formatReport(report: DoctorReport, options: DoctorOptions): string[] {
  const lines: string[] = [];
  const fs = report.fs.fsType ? `${report.fs.fsType} on ${report.fs.mountPoint}` : "unknown";
  lines.push(
    `data folder ${report.dataDir} (filesystem ${fs}; ${report.networkFs ? "network filesystem: rollback journals only" : "local"})`,
  );
  lines.push(
    `checked ${report.users} users, ${report.databases} databases, access for ${options.uid}:${options.gid}${options.fix ? " (fixing)" : ""}`,
  );
  for (const f of report.findings) {
    const tag = f.fixed ? "fixed" : f.severity;
    lines.push(`${tag.padEnd(7)} ${f.path}: ${f.message}`);
  }
  const s = summarize(report);
  lines.push(
    s.remaining === 0 && s.busy === 0
      ? `ok: ${s.fixed} fixed, ${s.warnings} warnings`
      : `${s.remaining} problems remain, ${s.busy} users busy, ${s.fixed} fixed, ${s.warnings} warnings` +
          (options.fix || s.remaining === 0 ? "" : " (run with --fix to repair what is safe)"),
  );
  return lines;
}

export function summarize(report: DoctorReport): {
  remaining: number;
  fixed: number;
  busy: number;
  warnings: number;
} {
  const f = report.findings;
  return {
    remaining: f.filter((x) => x.severity === "problem" && !x.fixed).length,
    fixed: f.filter((x) => x.fixed).length,
    busy: f.filter((x) => x.severity === "busy").length,
    warnings: f.filter((x) => x.severity === "warning" && !x.fixed).length,
  };
}

/** Options from the command line; the container user defaults to CONTAINER_USER_ID/GROUP_ID. */
export function doctorOptions(
  args: string[],
  env: Record<string, string | undefined> = process.env,
): DoctorOptions & { json: boolean } {
  const { positional, flags, options } = parseArgs(args, {
    flags: ["fix", "quick", "json"],
    options: ["uid", "gid", "wait"],
  });
  if (positional.length > 0) throw new UsageError(`unexpected argument ${positional[0]}`);
  const num = (name: string, raw: string | undefined, fallback: number): number => {
    if (raw === undefined || raw === "") return fallback;
    const n = Number(raw);
    if (!Number.isInteger(n) || n < 0) throw new UsageError(`${name}: expected a whole number`);
    return n;
  };
  // Inside the container the doctor runs as the container user itself; on the host (often as
  // root) the .env file names it.
  const selfUid = process.getuid?.() ?? DEFAULT_CONTAINER_UID;
  const selfGid = process.getgid?.() ?? DEFAULT_CONTAINER_GID;
  const defaultUid = selfUid === 0 ? DEFAULT_CONTAINER_UID : selfUid;
  const defaultGid = selfUid === 0 ? DEFAULT_CONTAINER_GID : selfGid;
  return {
    fix: flags.has("fix"),
    quick: flags.has("quick"),
    json: flags.has("json"),
    uid: num("--uid", options.get("uid") ?? env.CONTAINER_USER_ID, defaultUid),
    gid: num("--gid", options.get("gid") ?? env.CONTAINER_GROUP_ID, defaultGid),
    lockWaitMs: num("--wait", options.get("wait"), DEFAULT_LOCK_WAIT_SECS) * 1000,
  };
}

const group: CommandGroup = {
  summary: "check (and with --fix repair) the data folder; safe while the server runs",
  usage: [
    "doctor [--fix] [--quick] [--json] [--uid <n>] [--gid <n>] [--wait <secs>]",
    "  --fix    replay leftover journals/WAL, restore journal modes, remove stale .nfs*",
    "           and temporary files, chown what the server's user cannot use (as root)",
    "  --quick  quick_check instead of a full integrity_check",
    "  --uid/--gid  the server's user (default CONTAINER_USER_ID/CONTAINER_GROUP_ID,",
    "           else 1001:65533 as root, else yourself)",
    "  --wait   seconds to wait for a busy user's lock (default 10)",
  ],
  async run(args: string[], ctx: CliContext) {
    const options = doctorOptions(args);
    const report = await runDoctor(ctx.config, options);
    if (options.json) ctx.out(JSON.stringify({ ...report, summary: summarize(report) }));
    else for (const line of formatReport(report, options)) ctx.out(line);
    const s = summarize(report);
    if (s.remaining > 0) throw new CliError(`${s.remaining} problems remain`, 1);
    if (s.busy > 0) throw new CliError(`${s.busy} users were busy; run again`, 75);
  },
};
export default group;
