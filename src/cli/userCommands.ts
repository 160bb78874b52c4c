/** `admin user ...`: local users and every profile (local and Cognito). */
import { existsSync, mkdirSync, renameSync } from "node:fs";
import { join } from "node:path";
import { ADMIN_SOURCE, isEnvManaged, type LocalCredential } from "../identity/localUsers.ts";
import { hashPassword } from "../identity/passwords.ts";
import type { Profile } from "../identity/schema.ts";
import { openDatabase } from "../platform/sqlite.ts";
import { userPaths } from "../storage/paths.ts";
import { UserLock } from "../storage/userLock.ts";
import { type CommandGroup, subcommands } from "./commandGroup.ts";
import {
  type CliContext,
  CliError,
  DEFAULT_LOCK_WAIT_SECS,
  parseArgs,
  printListing,
  UsageError,
  when,
} from "./context.ts";
import { moveCommand } from "./nodeCommands.ts";
import { passwordSource, readNewPassword } from "./password.ts";

const group: CommandGroup = {
  summary: "local users and profiles (a <user> is a uuid, a local username or an email)",
  usage: [
    "user list [--json]",
    "user add <username> [--password-stdin | --generate]",
    "user passwd <username> [--password-stdin | --generate] [--keep-sessions]",
    "                              (revokes the user's sessions unless --keep-sessions)",
    "user disable <user>           (also revokes the user's sessions)",
    "user enable <user>",
    "user remove <user> --confirm  (profile and sessions; the data folder is kept)",
    "user reset-collection <user> --confirm [--wait <secs>]",
    "user move <user> <node> [--wait <secs>]  (scale-out: drains the user's sync, then moves them)",
  ],
  run: subcommands("user", {
    list,
    add,
    passwd,
    disable: (ctx, args) => setActive(ctx, args, false),
    enable: (ctx, args) => setActive(ctx, args, true),
    remove,
    "reset-collection": resetCollection,
    move: moveCommand,
  }),
};
export default group;

function one(positional: string[], what: string): string {
  if (positional.length !== 1) throw new UsageError(`expected one ${what}`);
  return positional[0] as string;
}

async function list(ctx: CliContext, args: string[]): Promise<void> {
  const { flags } = parseArgs(args, { flags: ["json"] });
  printListing(ctx, await userRows(ctx), {
    json: flags.has("json"),
    empty: "no users",
    header: [
      "UUID",
      "PROVIDER",
      "LOGIN",
      "MANAGED BY",
      "STATE",
      "SESSIONS",
      "LAST LOGIN",
      "LAST SYNC",
    ],
    cells: (r) => [
      r.uuid,
      r.provider,
      r.login,
      r.source,
      r.active ? "active" : "disabled",
      String(r.sessions),
      when(r.lastLogin),
      when(r.lastSync),
    ],
  });
}

/** Every profile with its local login, state and number of active sessions. */
async function userRows(ctx: CliContext) {
  const { profiles, localUsers, sessions } = await ctx.stores();
  const credentials = new Map((await localUsers.list()).map((c) => [c.profileId, c]));
  const active = new Map<number, number>();
  for (const s of await sessions.list())
    if (!s.revokedAt) active.set(s.profileId, (active.get(s.profileId) ?? 0) + 1);
  return (await profiles.list()).map((p) => ({
    uuid: p.uuid,
    provider: p.provider,
    login: credentials.get(p.profileId)?.username ?? p.email ?? p.name,
    source: credentials.get(p.profileId)?.source ?? p.provider,
    active: p.isActive,
    sessions: active.get(p.profileId) ?? 0,
    lastLogin: p.lastLoginAt,
    lastSync: p.lastSyncAt,
  }));
}

async function add(ctx: CliContext, args: string[]): Promise<void> {
  const { positional, flags } = parseArgs(args, { flags: ["password-stdin", "generate"] });
  const username = one(positional, "username");
  if (username.includes(":"))
    throw new CliError("a username cannot contain ':' (SYNC_USERn splits on it)");
  if (username.trim() !== username || username === "")
    throw new CliError("a username cannot start or end with spaces");
  const { localUsers } = await ctx.stores();
  if (await localUsers.byUsername(username))
    throw new CliError(`local user ${username} already exists`);
  const source = passwordSource(flags, ctx.stdinIsTty);
  const { password, generated } = await readNewPassword(source, ctx.io.stdin);
  const profile = await localUsers.create(username, await hashPassword(password), ADMIN_SOURCE);
  ctx.out(`added local user ${username} (uuid ${profile.uuid})`);
  if (generated) ctx.out(`password: ${password}`);
}

async function localUser(ctx: CliContext, username: string): Promise<LocalCredential> {
  const credential = await (await ctx.stores()).localUsers.byUsername(username);
  if (!credential)
    throw new CliError(`no local user ${username} (Cognito users change passwords in Cognito)`);
  return credential;
}

async function passwd(ctx: CliContext, args: string[]): Promise<void> {
  const { positional, flags } = parseArgs(args, {
    flags: ["password-stdin", "generate", "keep-sessions"],
  });
  const credential = await localUser(ctx, one(positional, "username"));
  const { localUsers, sessions } = await ctx.stores();
  if (isEnvManaged(credential)) {
    throw new CliError(
      `${credential.username} is managed by ${credential.source.slice(4)}: change the password there (it is applied at every start)`,
    );
  }
  const { password, generated } = await readNewPassword(
    passwordSource(flags, ctx.stdinIsTty),
    ctx.io.stdin,
  );
  await localUsers.setPassword(credential.profileId, await hashPassword(password));
  if (flags.has("keep-sessions")) {
    ctx.out(
      `password of ${credential.username} changed; existing sessions stay valid (--keep-sessions)`,
    );
  } else {
    // As with Anki's own server, whose host keys derive from the password: every device logs in again.
    const revoked = await sessions.revokeAllFor(credential.profileId);
    ctx.out(
      `password of ${credential.username} changed; revoked ${revoked} session(s): each device asks for the new password`,
    );
  }
  if (generated) ctx.out(`password: ${password}`);
}

async function setActive(ctx: CliContext, args: string[], active: boolean): Promise<void> {
  const { positional } = parseArgs(args, {});
  const profile = await ctx.findProfile(one(positional, "user"));
  const label = await describe(ctx, profile);
  const { profiles, sessions } = await ctx.stores();
  if (profile.isActive === active) {
    ctx.out(`${label} is already ${active ? "enabled" : "disabled"}`);
    return;
  }
  await profiles.update(profile.profileId, { isActive: active });
  if (active) {
    ctx.out(`enabled ${label}; they log in again to sync`);
    return;
  }
  const revoked = await sessions.revokeAllFor(profile.profileId);
  ctx.out(`disabled ${label}; revoked ${revoked} session(s)`);
}

async function remove(ctx: CliContext, args: string[]): Promise<void> {
  const { positional, flags } = parseArgs(args, { flags: ["confirm"] });
  const profile = await ctx.findProfile(one(positional, "user"));
  const label = await describe(ctx, profile);
  const credential = await credentialOf(ctx, profile);
  if (credential && isEnvManaged(credential)) {
    throw new CliError(
      `${label} is managed by ${credential.source.slice(4)}: remove it from the environment first (it is re-created at every start)`,
    );
  }
  if (!flags.has("confirm")) {
    throw new CliError(`this removes ${label} and their sessions (data is kept); add --confirm`);
  }
  // Sessions and local credentials go with the profile (ON DELETE CASCADE).
  await (await ctx.stores()).profiles.remove(profile.profileId);
  const dir = userPaths(ctx.config.dataDir, profile.uuid).dir;
  ctx.out(`removed ${label}`);
  if (existsSync(dir)) {
    ctx.out(
      profile.provider === "cognito"
        ? `their data stays in ${dir}; it is theirs again if they log in with Cognito`
        : `their data stays in ${dir} (delete it yourself if it is not needed)`,
    );
  }
}

async function resetCollection(ctx: CliContext, args: string[]): Promise<void> {
  const { positional, flags, options } = parseArgs(args, { flags: ["confirm"], options: ["wait"] });
  const profile = await ctx.findProfile(one(positional, "user"));
  const label = await describe(ctx, profile);
  const waitSecs = Number(options.get("wait") ?? DEFAULT_LOCK_WAIT_SECS);
  if (!Number.isFinite(waitSecs) || waitSecs < 0)
    throw new UsageError("--wait takes a number of seconds");
  const paths = userPaths(ctx.config.dataDir, profile.uuid);
  if (!existsSync(paths.collection)) throw new CliError(`${label} has no collection on the server`);
  if (!flags.has("confirm")) {
    throw new CliError(
      `this moves the server's collection of ${label} to backups/ so the next sync starts fresh (media are kept); add --confirm`,
    );
  }
  const lock = await UserLock.acquire(paths.dir, waitSecs * 1000);
  if (!lock) {
    throw new CliError(
      `the server has ${label}'s collection open (a sync is running, or it closes after ${ctx.config.idleCloseSecs} s idle): try again in a minute`,
      75,
    );
  }
  try {
    const stamp = new Date().toISOString().replace(/[:.]/g, "-");
    const backup = join(paths.backups, `reset-${stamp}.anki2`);
    moveCollection(paths.collection, backup, paths.backups);
    ctx.out(`reset the collection of ${label}`);
    ctx.out(`the old one is kept as ${backup} (reset-* backups are never pruned automatically)`);
    ctx.out(
      "at the next sync, Anki offers to upload the local collection (or to download an empty one)",
    );
  } finally {
    lock.release();
  }
}

/**
 * Moves the collection aside. A journal left by a crash belongs to its file and would corrupt
 * a new collection created at the same path, so the file is opened and closed first: SQLite
 * rolls back a hot journal (or checkpoints a WAL) and removes it.
 */
function moveCollection(collection: string, backup: string, backupsDir: string): void {
  const db = openDatabase(collection, { create: false });
  try {
    db.query("PRAGMA user_version").get();
  } finally {
    db.close();
  }
  mkdirSync(backupsDir, { recursive: true });
  renameSync(collection, backup);
  for (const suffix of ["-journal", "-wal", "-shm"]) {
    if (existsSync(collection + suffix)) renameSync(collection + suffix, backup + suffix);
  }
}

/** The local login of a profile, if it has one. */
async function credentialOf(
  ctx: CliContext,
  profile: Profile,
): Promise<LocalCredential | undefined> {
  const credentials = await (await ctx.stores()).localUsers.list();
  return credentials.find((c) => c.profileId === profile.profileId);
}

async function describe(ctx: CliContext, profile: Profile): Promise<string> {
  const credential = await credentialOf(ctx, profile);
  const login = credential?.username ?? profile.email ?? profile.name;
  return `${login} (${profile.provider}, ${profile.uuid})`;
}
