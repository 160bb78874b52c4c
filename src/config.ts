/**
 * Every setting is declared once here, with its default and a line of documentation.
 * README's configuration table and .env.example are checked against this table by a test.
 * Nothing reads the environment at import time: `loadConfig(env)` is called by the entry point.
 */
import { readFileSync } from "node:fs";
import { resolve } from "node:path";

export type LogFormat = "text" | "json";
export type LogLevel = "debug" | "info" | "warn" | "error";

export interface SyncUserSpec {
  /** Name of the variable it came from, e.g. SYNC_USER1. */
  source: string;
  username: string;
  /** Plain password, or a PHC string when PASSWORDS_HASHED is set. */
  secret: string;
}

export interface Config {
  host: string;
  port: number;
  dataDir: string;
  sessionDbPath: string;
  maxPayloadMegs: number;
  /** Cap on decompressed request bodies and uploaded collections (3 x the payload limit). */
  maxUncompressedBytes: number;
  passwordsHashed: boolean;
  syncUsers: SyncUserSpec[];
  ipHeader: string | null;
  logLevel: LogLevel;
  logFormat: LogFormat;
  workers: number;
  idleCloseSecs: number;
  backupsKept: number;
  syncSessionTimeoutSecs: number;
  networkFs: "auto" | boolean;
}

interface SettingSpec {
  name: string;
  default: string;
  doc: string;
}

/** The documented settings (SYNC_USERn is a family, documented as SYNC_USER1). */
export const SETTINGS: readonly SettingSpec[] = [
  {
    name: "SYNC_USER1",
    default: "",
    doc: "A local user as `username:password`; SYNC_USER2, SYNC_USER3, ... add more (read until the first gap).",
  },
  {
    name: "PASSWORDS_HASHED",
    default: "",
    doc: "If set, the passwords in SYNC_USERn are PHC strings (`$pbkdf2-sha256$...` as Anki's server uses, or `$argon2id$...`).",
  },
  { name: "SYNC_HOST", default: "0.0.0.0", doc: "Address to listen on." },
  { name: "SYNC_PORT", default: "8080", doc: "Port to listen on." },
  {
    name: "SYNC_BASE",
    default: "./data",
    doc: "Data folder: `collections/<uuid>/` per user, `session.db`.",
  },
  {
    name: "MAX_SYNC_PAYLOAD_MEGS",
    default: "100",
    doc: "Request body limit in MiB; decompressed bodies and collections may be 3x this.",
  },
  {
    name: "SYNC_IP_HEADER",
    default: "",
    doc: "Trust this header for the client IP (e.g. `X-Forwarded-For`, `X-Real-IP`); off when empty. Only set it behind a proxy that overwrites it.",
  },
  {
    name: "ANKISYNCD_SESSION_DB",
    default: "<SYNC_BASE>/session.db",
    doc: "Profiles and sessions database.",
  },
  { name: "ANKISYNCD_LOG_LEVEL", default: "info", doc: "debug, info, warn or error." },
  {
    name: "ANKISYNCD_LOG_FORMAT",
    default: "text",
    doc: "`text` or `json` (one JSON object per line).",
  },
  {
    name: "ANKISYNCD_WORKERS",
    default: "2",
    doc: "Worker threads doing collection work; each user is pinned to one.",
  },
  {
    name: "ANKISYNCD_IDLE_CLOSE_SECS",
    default: "60",
    doc: "Close a user's collection after this many idle seconds.",
  },
  {
    name: "ANKISYNCD_BACKUPS",
    default: "3",
    doc: "Replaced collections kept in `backups/` after each full upload.",
  },
  {
    name: "ANKISYNCD_SYNC_SESSION_TIMEOUT_SECS",
    default: "300",
    doc: "An unfinished normal sync idle this long is rolled back.",
  },
  {
    name: "ANKISYNCD_NETWORK_FS",
    default: "auto",
    doc: "`1` if the data folder is on NFS/EFS (rollback journal instead of WAL), `0` if not, `auto` to detect.",
  },
  {
    name: "ANKISYNCD_UNICASE_EXTENSION",
    default: "build/unicase.so",
    doc: "Path of the compiled `unicase` SQLite extension (read by src/platform/sqlite.ts).",
  },
];

export class ConfigError extends Error {
  constructor(readonly problems: string[]) {
    super(`invalid configuration:\n  ${problems.join("\n  ")}`);
  }
}

type Env = Record<string, string | undefined>;

export function loadConfig(env: Env = process.env): Config {
  const problems: string[] = [];
  const get = (name: string): string => envValue(env, name, problems) ?? defaultOf(name);
  const int = (name: string, min: number): number => {
    const raw = get(name);
    const value = Number(raw);
    if (!Number.isInteger(value) || value < min) {
      problems.push(`${name}=${raw}: expected a whole number >= ${min}`);
      return Number(defaultOf(name));
    }
    return value;
  };

  const dataDir = resolve(get("SYNC_BASE"));
  const maxPayloadMegs = int("MAX_SYNC_PAYLOAD_MEGS", 1);
  const config: Config = {
    host: get("SYNC_HOST"),
    port: int("SYNC_PORT", 0),
    dataDir,
    sessionDbPath: resolve(
      envValue(env, "ANKISYNCD_SESSION_DB", problems) ?? `${dataDir}/session.db`,
    ),
    maxPayloadMegs,
    maxUncompressedBytes: 3 * maxPayloadMegs * 1024 * 1024,
    passwordsHashed: (env.PASSWORDS_HASHED ?? "") !== "",
    syncUsers: readSyncUsers(env, problems),
    ipHeader: get("SYNC_IP_HEADER") || null,
    logLevel: oneOf(
      get("ANKISYNCD_LOG_LEVEL"),
      ["debug", "info", "warn", "error"],
      "ANKISYNCD_LOG_LEVEL",
      problems,
    ),
    logFormat: oneOf(
      get("ANKISYNCD_LOG_FORMAT"),
      ["text", "json"],
      "ANKISYNCD_LOG_FORMAT",
      problems,
    ),
    workers: int("ANKISYNCD_WORKERS", 1),
    idleCloseSecs: int("ANKISYNCD_IDLE_CLOSE_SECS", 1),
    backupsKept: int("ANKISYNCD_BACKUPS", 0),
    syncSessionTimeoutSecs: int("ANKISYNCD_SYNC_SESSION_TIMEOUT_SECS", 1),
    networkFs: parseNetworkFs(get("ANKISYNCD_NETWORK_FS"), problems),
  };
  if (problems.length > 0) throw new ConfigError(problems);
  return config;
}

/** Settings that look like ours but match none: probably typos worth a warning. */
export function unknownSettings(env: Env = process.env): string[] {
  const known = new Set(SETTINGS.map((s) => s.name));
  return Object.keys(env).filter(
    (name) =>
      name.startsWith("ANKISYNCD_") &&
      !known.has(name) &&
      !known.has(name.replace(/_FILE$/, "")) &&
      !name.startsWith("ANKISYNCD_COGNITO_"),
  );
}

function defaultOf(name: string): string {
  return SETTINGS.find((s) => s.name === name)?.default ?? "";
}

/** `NAME` or, for Docker secrets, the contents of the file named by `NAME_FILE`. */
function envValue(env: Env, name: string, problems: string[]): string | undefined {
  const fileName = env[`${name}_FILE`];
  if (fileName) {
    try {
      return readFileSync(fileName, "utf8").trim();
    } catch (err) {
      problems.push(`${name}_FILE=${fileName}: cannot read (${(err as Error).message})`);
    }
  }
  const value = env[name];
  return value === undefined || value === "" ? undefined : value;
}

function readSyncUsers(env: Env, problems: string[]): SyncUserSpec[] {
  const users: SyncUserSpec[] = [];
  for (let i = 1; ; i++) {
    const source = `SYNC_USER${i}`;
    const value = envValue(env, source, problems);
    if (value === undefined) break;
    const colon = value.indexOf(":");
    if (colon <= 0) {
      problems.push(`${source}: expected username:password`);
      continue;
    }
    users.push({ source, username: value.slice(0, colon), secret: value.slice(colon + 1) });
  }
  return users;
}

function oneOf<T extends string>(
  value: string,
  allowed: readonly T[],
  name: string,
  problems: string[],
): T {
  if ((allowed as readonly string[]).includes(value)) return value as T;
  problems.push(`${name}=${value}: expected one of ${allowed.join(", ")}`);
  return allowed[0] as T;
}

function parseNetworkFs(value: string, problems: string[]): "auto" | boolean {
  if (value === "auto") return "auto";
  if (value === "1" || value === "true") return true;
  if (value === "0" || value === "false") return false;
  problems.push(`ANKISYNCD_NETWORK_FS=${value}: expected auto, 1 or 0`);
  return "auto";
}
