/**
 * What every admin command group gets: the configuration, session.db and its stores (opened on
 * first use), and output helpers. session.db is in WAL mode with a busy timeout, so commands are
 * safe while the server runs.
 */
import { existsSync } from "node:fs";
import { dirname } from "node:path";
import { adoptedProfileNamed, pythonServerSessionDb } from "../adoption/pythonServerSessionDb.ts";
import type { Config } from "../config.ts";
import { LocalUserStore } from "../identity/localUsers.ts";
import { ProfileStore } from "../identity/profiles.ts";
import type { Profile } from "../identity/schema.ts";
import { SessionStore } from "../identity/sessions.ts";
import { openStateDb, type StateDb } from "../identity/stateDb.ts";
import { useUnicaseExtension } from "../platform/sqlite.ts";
import { isNetworkFs } from "../storage/networkFs.ts";

/** An error to print (without a stack) before exiting with `exitCode`. */
export class CliError extends Error {
  constructor(
    message: string,
    readonly exitCode = 1,
    options?: ErrorOptions,
  ) {
    super(message, options);
  }
}

/** Wrong arguments: the message plus the group's usage, exit code 2. */
export class UsageError extends CliError {
  constructor(message: string) {
    super(message, 2);
  }
}

/**
 * How long a command waits for a user's lock by default: the server holds it during a sync and
 * until it closes the user's idle collection.
 */
export const DEFAULT_LOCK_WAIT_SECS = 10;

export interface Stores {
  db: StateDb;
  profiles: ProfileStore;
  sessions: SessionStore;
  localUsers: LocalUserStore;
}

/** A command's standard streams: the process's, or a test's. */
export interface CliIo {
  stdout(text: string): void;
  stderr(text: string): void;
  /** Read whole by `--password-stdin`. */
  stdin: AsyncIterable<Uint8Array | string>;
  stdinIsTty: boolean;
}

export function processIo(): CliIo {
  return {
    stdout: (text) => process.stdout.write(text),
    stderr: (text) => process.stderr.write(text),
    stdin: process.stdin,
    stdinIsTty: Boolean(process.stdin.isTTY),
  };
}

export class CliContext {
  private opened: Stores | undefined;
  readonly stdinIsTty: boolean;

  constructor(
    readonly config: Config,
    readonly io: CliIo = processIo(),
  ) {
    this.stdinIsTty = io.stdinIsTty;
    useUnicaseExtension(config.unicaseExtension); // `doctor` opens collections
  }

  /** A line of output. */
  out(line: string): void {
    this.io.stdout(`${line}\n`);
  }

  /** The shared database's stores: session.db, or PostgreSQL with ANKISYNCD_DATABASE_URL. */
  async stores(): Promise<Stores> {
    if (!this.opened) {
      const { databaseUrl, sessionDbPath } = this.config;
      // A mistyped SYNC_BASE would otherwise get a new, empty session.db and "no users".
      if (!databaseUrl && !existsSync(sessionDbPath)) {
        throw new CliError(
          `no session.db at ${this.config.sessionDbPath}: is SYNC_BASE (${this.config.dataDir}) the server's data folder? The server creates session.db at its first start`,
          2,
        );
      }
      const db = await this.openDb();
      const profiles = new ProfileStore(db);
      this.opened = {
        db,
        profiles,
        sessions: new SessionStore(db, { idleDays: this.config.sessionIdleDays }),
        localUsers: new LocalUserStore(db, profiles, adoptedProfileNamed),
      };
    }
    return this.opened;
  }

  private async openDb(): Promise<StateDb> {
    const { databaseUrl, sessionDbPath } = this.config;
    try {
      // The journal mode the server chooses, or opening would switch it under the server.
      return await openStateDb({
        databaseUrl,
        sessionDbPath,
        networkFs: isNetworkFs(this.config, dirname(sessionDbPath)),
        adopt: pythonServerSessionDb(),
      });
    } catch (err) {
      // PostgreSQL away is an operator's problem to read, not a stack trace.
      if (databaseUrl) throw new CliError((err as Error).message, 1, { cause: err });
      throw err;
    }
  }

  async close(): Promise<void> {
    const opened = this.opened;
    this.opened = undefined;
    await opened?.db.close();
  }

  /**
   * A profile named by its uuid, a local username, or an email/name that matches exactly one
   * profile (case-insensitive).
   */
  async findProfile(who: string): Promise<Profile> {
    const { profiles, localUsers } = await this.stores();
    const byUuid = await profiles.byUuid(who);
    if (byUuid) return byUuid;
    const local = await localUsers.byUsername(who);
    if (local) {
      const profile = await profiles.byId(local.profileId);
      if (profile) return profile;
    }
    const wanted = who.toLowerCase();
    const matches = (await profiles.list()).filter(
      (p) => p.email?.toLowerCase() === wanted || p.name.toLowerCase() === wanted,
    );
    if (matches.length === 1 && matches[0]) return matches[0];
    if (matches.length > 1) {
      throw new CliError(
        `${who} matches ${matches.length} users (${matches.map((p) => p.uuid).join(", ")}): give the uuid`,
      );
    }
    throw new CliError(
      `no user ${who} (give a uuid, a local username or an email; see 'user list')`,
    );
  }
}

/** Left-aligned columns; the first row is the header. */
export function table(rows: string[][]): string[] {
  const widths: number[] = [];
  for (const row of rows) {
    for (const [i, cell] of row.entries()) widths[i] = Math.max(widths[i] ?? 0, cell.length);
  }
  return rows.map((row) =>
    row
      .map((cell, i) => (i === row.length - 1 ? cell : cell.padEnd(widths[i] ?? 0)))
      .join("  ")
      .trimEnd(),
  );
}

/** A listing: JSON with `--json`, else `empty` when there are no rows, else a table. */
export function printListing<Row>(
  ctx: CliContext,
  rows: Row[],
  listing: { json: boolean; empty: string; header: string[]; cells: (row: Row) => string[] },
): void {
  if (listing.json) ctx.out(JSON.stringify(rows, null, 2));
  else if (rows.length === 0) ctx.out(listing.empty);
  else for (const line of table([listing.header, ...rows.map(listing.cells)])) ctx.out(line);
}

export function when(date: Date | null | undefined): string {
  return date ? date.toISOString().replace(/\.\d{3}Z$/, "Z") : "-";
}

/** `--flag` and `--flag value` options; everything else is positional. */
export function parseArgs(
  args: string[],
  spec: { flags?: string[]; options?: string[] },
): { positional: string[]; flags: Set<string>; options: Map<string, string> } {
  const positional: string[] = [];
  const flags = new Set<string>();
  const options = new Map<string, string>();
  for (let i = 0; i < args.length; i++) {
    const arg = args[i] as string;
    if (!arg.startsWith("--")) {
      positional.push(arg);
      continue;
    }
    const [name, inline] = arg.slice(2).split(/=(.*)/s, 2) as [string, string | undefined];
    if (spec.flags?.includes(name) && inline === undefined) flags.add(name);
    else if (spec.options?.includes(name)) {
      const value = inline ?? args[++i];
      if (value === undefined) throw new UsageError(`--${name} needs a value`);
      options.set(name, value);
    } else throw new UsageError(`unknown option ${arg}`);
  }
  return { positional, flags, options };
}
