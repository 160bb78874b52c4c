/**
 * Every setting is declared once here, with its default and a line of documentation.
 * README's configuration table and .env.example are checked against this table by a test.
 * Nothing reads the environment at import time: `loadConfig(env)` is called by the entry point.
 */
import { readFileSync, statSync } from "node:fs";
import { isIP } from "node:net";
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
  /** PostgreSQL holding the shared state instead of session.db (several nodes); null: session.db. */
  databaseUrl: string | null;
  maxPayloadMegs: number;
  /** Cap on decompressed request bodies and uploaded collections (3 x the payload limit). */
  maxUncompressedBytes: number;
  passwordsHashed: boolean;
  syncUsers: SyncUserSpec[];
  ipHeader: string | null;
  logLevel: LogLevel;
  logFormat: LogFormat;
  workers: number;
  /** Nice value of task threads (Linux); 0: they run at the server's own priority. */
  taskNice: number;
  idleCloseSecs: number;
  backupsKept: number;
  syncSessionTimeoutSecs: number;
  networkFs: "auto" | boolean;
  collectionWal: boolean;
  readyDownloads: boolean;
  /** Free space (bytes) under which /ready fails. */
  minFreeBytes: number;
  /** A user's temporaries past this (bytes) make new uploads wait (409). */
  maxTempBytes: number;
  /** The compiled `unicase` SQLite extension, handed to the platform (platform/sqlite.ts). */
  unicaseExtension: string;
  /** Identity providers tried at login, in order. */
  authProviders: AuthProviderName[];
  /** Set when a Cognito user pool is configured. */
  cognito: CognitoConfig | null;
  loginRate: LoginRateConfig;
  /** Sessions unused this many days stop working and are deleted (0: never). */
  sessionIdleDays: number;
  metrics: MetricsConfig;
  /** Set when this process is one node of several (ANKISYNCD_PUBLIC_URL); null: single node. */
  cluster: ClusterConfig | null;
}

/** Scale-out: this node's public base, its id, and how long its leases last. */
export interface ClusterConfig {
  /** Absolute http(s) URL ending in `/`: where clients reach this node (the 308 `Location`). */
  publicUrl: string;
  nodeId: string;
  leaseSecs: number;
}

/** Where `/metrics` is served: its own listener (port set), the sync port (token set), or not. */
export interface MetricsConfig {
  port: number | null;
  host: string;
  /** Required as `Authorization: Bearer <token>` wherever /metrics is served. */
  token: string | null;
}

export type AuthProviderName = "local" | "cognito";

export interface CognitoConfig {
  userPoolId: string;
  clientId: string;
  clientSecret: string | null;
  region: string;
  /** Explicit credentials; null means the AWS SDK's default chain. */
  credentials: { accessKeyId: string; secretAccessKey: string; sessionToken?: string } | null;
  /** Base URL replacing AWS for the API and the JWKS (tests against an emulator). */
  endpoint: string | null;
  recheckSecs: number;
}

export interface LoginRateConfig {
  /** Failed logins per client IP per window; successful ones are free (0: no limit). */
  perIp: number;
  /** Attempts per username per window from addresses it never logged in from (0: no limit). */
  perUser: number;
  windowSecs: number;
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
    doc: "Trust this header for the client IP (e.g. `X-Forwarded-For`, `X-Real-IP`, or Anki's names such as `RightmostXForwardedFor`); off when empty. Only set it behind a proxy that overwrites it.",
  },
  {
    name: "ANKISYNCD_SESSION_DB",
    default: "<SYNC_BASE>/session.db",
    doc: "Profiles and sessions database.",
  },
  {
    name: "ANKISYNCD_DATABASE_URL",
    default: "",
    doc: "`postgres://user:password@host:5432/db`: profiles, local users, sessions and known logins live in this PostgreSQL database instead of session.db, so several nodes can share them. See docs/identity.md.",
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
    doc: "Worker threads doing collection work; each user is pinned to one. Uploaded collections and large media batches are checked on task threads (at most this many, and at least 2, at once). Threads start when needed and stop when idle: a collection thread after `ANKISYNCD_IDLE_CLOSE_SECS`, a task thread after 1 s.",
  },
  {
    name: "ANKISYNCD_TASK_NICE",
    default: "10",
    doc: "Nice value (1-19) of the task threads on Linux, so a large upload's check and conversion yield the CPU to other users' syncs; `0`: they run at the server's own priority.",
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
    name: "ANKISYNCD_READY_DOWNLOADS",
    default: "1",
    doc: "`1`: after a full upload, the file a current client's download gets is made and compressed ahead on a task thread, so the user's other devices download a file read instead of a conversion and compression each. From a current client's upload it is made from the file as received while the upload is checked (a download arriving before it is ready waits for it); from an older client's, 3 s after the upload from a copy of the collection. Kept beside the collection (about a third of its size) until a download or sync uses or replaces it. `0`: every download converts and compresses on demand, and an upload costs no such CPU and disk writes.",
  },
  {
    name: "ANKISYNCD_COLLECTION_WAL",
    default: "1",
    doc: "`1`: a collection is in WAL mode while a worker has it open (fewer syncs to disk per commit; back to a rollback journal when closed; never on a network filesystem). Meanwhile (a sync, and 3 s after the user's last request) Anki's library cannot open it: `0` if a web app must get in even then (see docs/deployment.md).",
  },
  {
    name: "ANKISYNCD_MIN_FREE_MEGS",
    default: "64",
    doc: "`/ready` fails while the data folder's filesystem has less free space than this (MiB).",
  },
  {
    name: "ANKISYNCD_MAX_TEMP_MEGS",
    default: "2048",
    doc: "Uploads of a user that would be written to disk are refused with 409 (the client retries later) while that user's temporary files take this much (MiB); a small media batch, kept in memory, is not refused.",
  },
  {
    name: "ANKISYNCD_UNICASE_EXTENSION",
    default: "build/unicase.so",
    doc: "Path of the compiled `unicase` SQLite extension; the default is relative to the install folder.",
  },
  {
    name: "ANKISYNCD_AUTH_PROVIDERS",
    default: "local,cognito",
    doc: "Identity providers tried at login, in order (`local`, `cognito`); `cognito` is skipped while no user pool is configured.",
  },
  {
    name: "ANKISYNCD_COGNITO_USER_POOL_ID",
    default: "",
    doc: "Cognito user pool (e.g. `eu-west-1_AbCdEf123`); setting it enables Cognito logins.",
  },
  {
    name: "ANKISYNCD_COGNITO_CLIENT_ID",
    default: "",
    doc: "App client id of the pool; it must allow `ALLOW_USER_PASSWORD_AUTH`.",
  },
  {
    name: "ANKISYNCD_COGNITO_CLIENT_SECRET",
    default: "",
    doc: "App client secret, if the client has one (sent as `SECRET_HASH`).",
  },
  {
    name: "ANKISYNCD_COGNITO_REGION",
    default: "<AWS_DEFAULT_REGION>",
    doc: "AWS region of the pool; falls back to `AWS_DEFAULT_REGION`, then the pool id's prefix.",
  },
  {
    name: "ANKISYNCD_COGNITO_ENDPOINT",
    default: "",
    doc: "Base URL replacing AWS for the Cognito API and the pool's JWKS (tests against an emulator).",
  },
  {
    name: "ANKISYNCD_COGNITO_RECHECK_SECS",
    default: "300",
    doc: "Sessions of Cognito users are re-checked with AdminGetUser at most this often; disabled or deleted users are revoked.",
  },
  {
    name: "AWS_ACCESS_KEY_ID",
    default: "",
    doc: "With `AWS_SECRET_ACCESS_KEY` (and optional `AWS_SESSION_TOKEN`): credentials for the rechecks (`cognito-idp:AdminGetUser`); the SDK's default chain (instance role, ~/.aws) otherwise.",
  },
  {
    name: "AWS_SECRET_ACCESS_KEY",
    default: "",
    doc: "See `AWS_ACCESS_KEY_ID`.",
  },
  {
    name: "ANKISYNCD_LOGIN_RATE_PER_IP",
    default: "30",
    doc: "Failed logins allowed per client IP per window, then 429; successful logins do not count (0: no limit).",
  },
  {
    name: "ANKISYNCD_LOGIN_RATE_PER_USER",
    default: "10",
    doc: "Login attempts per username per window from addresses that never logged in as that user; past it they are slowed, then 429. Known addresses are never refused by it (0: no limit).",
  },
  {
    name: "ANKISYNCD_LOGIN_RATE_WINDOW_SECS",
    default: "300",
    doc: "Window of the login rate limits; spent attempts come back gradually over it.",
  },
  {
    name: "ANKISYNCD_SESSION_IDLE_DAYS",
    default: "180",
    doc: "A session (host key) unused for this many days stops working and is deleted; Anki then asks for the password (0: never).",
  },
  {
    name: "ANKISYNCD_METRICS_PORT",
    default: "",
    doc: "Serve Prometheus metrics at `/metrics` on this port (its own listener); off when empty. See docs/deployment.md.",
  },
  {
    name: "ANKISYNCD_METRICS_HOST",
    default: "127.0.0.1",
    doc: "Address of the metrics listener (`0.0.0.0` to let another container scrape it).",
  },
  {
    name: "ANKISYNCD_METRICS_TOKEN",
    default: "",
    doc: "If set, `/metrics` requires `Authorization: Bearer <token>`, and without a metrics port it is served on the sync port.",
  },
  {
    name: "ANKISYNCD_PUBLIC_URL",
    default: "",
    doc: "Scale-out: this node's public base URL (e.g. `https://sync.example.org/n2/`); setting it makes the node one of several sharing the data folder and session.db, each user served by one node at a time. See docs/scaling.md.",
  },
  {
    name: "ANKISYNCD_NODE_ID",
    default: "<from ANKISYNCD_PUBLIC_URL>",
    doc: "Scale-out: this node's name, unique among the nodes; by default the public URL's last path segment (`n2`), else its host and port.",
  },
  {
    name: "ANKISYNCD_PLACEMENT_LEASE_SECONDS",
    default: "30",
    doc: "Scale-out: a node's claim on itself and on its users lasts this long unless renewed; a node that dies hands its users over within about this time.",
  },
];

/** Each problem is one sentence that names its variable; one problem makes a one-line message. */
export class ConfigError extends Error {
  constructor(readonly problems: string[]) {
    super(
      problems.length === 1
        ? `invalid configuration: ${problems[0]}`
        : `invalid configuration:\n  ${problems.join("\n  ")}`,
    );
  }
}

type Env = Record<string, string | undefined>;

/** Where ankisyncd is installed (the repository root): defaults of bundled files are relative to it. */
const INSTALL_DIR = resolve(import.meta.dirname, "..");

export function loadConfig(env: Env = process.env): Config {
  const problems: string[] = [];
  const get = (name: string): string => envValue(env, name, problems) ?? defaultOf(name);
  const int = (name: string, min: number, max = Number.MAX_SAFE_INTEGER): number => {
    const raw = get(name);
    const value = Number(raw);
    if (!Number.isInteger(value) || value < min || value > max) {
      const range = max === Number.MAX_SAFE_INTEGER ? `>= ${min}` : `from ${min} to ${max}`;
      problems.push(`${name}=${raw}: expected a whole number ${range}`);
      return Number(defaultOf(name));
    }
    return value;
  };

  const dataDir = resolve(get("SYNC_BASE"));
  checkDataDir(dataDir, problems);
  const maxPayloadMegs = int("MAX_SYNC_PAYLOAD_MEGS", 1);
  const config: Config = {
    host: checkHost("SYNC_HOST", get("SYNC_HOST"), problems),
    port: int("SYNC_PORT", 0, 65535),
    dataDir,
    sessionDbPath: resolve(
      envValue(env, "ANKISYNCD_SESSION_DB", problems) ?? `${dataDir}/session.db`,
    ),
    databaseUrl: checkDatabaseUrl(get("ANKISYNCD_DATABASE_URL"), problems),
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
    taskNice: int("ANKISYNCD_TASK_NICE", 0, 19),
    idleCloseSecs: int("ANKISYNCD_IDLE_CLOSE_SECS", 1),
    backupsKept: int("ANKISYNCD_BACKUPS", 0),
    syncSessionTimeoutSecs: int("ANKISYNCD_SYNC_SESSION_TIMEOUT_SECS", 1),
    networkFs: parseNetworkFs(get("ANKISYNCD_NETWORK_FS"), problems),
    collectionWal: flag("ANKISYNCD_COLLECTION_WAL", get("ANKISYNCD_COLLECTION_WAL"), problems),
    readyDownloads: flag("ANKISYNCD_READY_DOWNLOADS", get("ANKISYNCD_READY_DOWNLOADS"), problems),
    minFreeBytes: int("ANKISYNCD_MIN_FREE_MEGS", 0) * 1024 * 1024,
    maxTempBytes: int("ANKISYNCD_MAX_TEMP_MEGS", 1) * 1024 * 1024,
    unicaseExtension:
      envValue(env, "ANKISYNCD_UNICASE_EXTENSION", problems) ??
      resolve(INSTALL_DIR, defaultOf("ANKISYNCD_UNICASE_EXTENSION")),
    ...readIdentity(env, get, int, problems),
    metrics: {
      port: get("ANKISYNCD_METRICS_PORT") === "" ? null : int("ANKISYNCD_METRICS_PORT", 0, 65535),
      host: checkHost("ANKISYNCD_METRICS_HOST", get("ANKISYNCD_METRICS_HOST"), problems),
      token: get("ANKISYNCD_METRICS_TOKEN") || null,
    },
    cluster: readCluster(get, int, problems),
  };
  if (problems.length > 0) throw new ConfigError(problems);
  return config;
}

/** Settings that look like ours but match none: probably typos worth a warning. */
export function unknownSettings(env: Env = process.env): string[] {
  const known = new Set(SETTINGS.map((s) => s.name));
  return Object.keys(env).filter(
    (name) =>
      name.startsWith("ANKISYNCD_") && !known.has(name) && !known.has(name.replace(/_FILE$/, "")),
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
    if (colon === value.length - 1) {
      problems.push(`${source}: the password of ${value.slice(0, colon)} is empty`);
      continue;
    }
    users.push({ source, username: value.slice(0, colon), secret: value.slice(colon + 1) });
  }
  return users;
}

/**
 * SYNC_USERn variables past the first gap, which are not read (`SYNC_USER1`, `SYNC_USER3`: 3 is
 * ignored), for a warning at start.
 */
export function ignoredSyncUsers(env: Env = process.env): string[] {
  const numbers = Object.keys(env)
    .map((name) => /^SYNC_USER(\d+)(?:_FILE)?$/.exec(name))
    .filter((m): m is RegExpExecArray => m !== null && env[m[0]] !== "" && env[m[0]] !== undefined)
    .map((m) => Number(m[1]));
  const present = new Set(numbers);
  let gap = 1;
  while (present.has(gap)) gap++;
  return [...present]
    .filter((n) => n > gap)
    .sort((a, b) => a - b)
    .map((n) => `SYNC_USER${n}`);
}

/** An address to listen on: an IP literal, or a host name (resolved when listening). */
function checkHost(name: string, value: string, problems: string[]): string {
  const looksNumeric = /^[\d.]+$/.test(value);
  const hostName =
    /^(?=.{1,253}$)[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?)*$/;
  if (isIP(value) !== 0 || (!looksNumeric && hostName.test(value))) return value;
  problems.push(`${name}=${value}: not an IP address or host name to listen on`);
  return value;
}

/** The data folder may not exist yet (created at start), but it cannot be something else. */
function checkDataDir(dataDir: string, problems: string[]): void {
  try {
    if (!statSync(dataDir).isDirectory()) {
      problems.push(`SYNC_BASE=${dataDir}: exists but is not a folder`);
    }
  } catch {
    // Missing: the server creates it.
  }
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

function flag(name: string, value: string, problems: string[]): boolean {
  if (value === "1" || value === "true") return true;
  if (value === "0" || value === "false") return false;
  problems.push(`${name}=${value}: expected 1 or 0`);
  return true;
}

function parseNetworkFs(value: string, problems: string[]): "auto" | boolean {
  if (value === "auto") return "auto";
  if (value === "1" || value === "true") return true;
  if (value === "0" || value === "false") return false;
  problems.push(`ANKISYNCD_NETWORK_FS=${value}: expected auto, 1 or 0`);
  return "auto";
}

function readIdentity(
  env: Env,
  get: (name: string) => string,
  int: (name: string, min: number) => number,
  problems: string[],
): Pick<Config, "authProviders" | "cognito" | "loginRate" | "sessionIdleDays"> {
  const poolId = get("ANKISYNCD_COGNITO_USER_POOL_ID");
  let cognito: CognitoConfig | null = null;
  if (poolId) {
    const clientId = get("ANKISYNCD_COGNITO_CLIENT_ID");
    if (!clientId) problems.push("ANKISYNCD_COGNITO_CLIENT_ID: required with a user pool");
    const region =
      envValue(env, "ANKISYNCD_COGNITO_REGION", problems) ??
      envValue(env, "AWS_DEFAULT_REGION", problems) ??
      /^([a-z]{2}(?:-[a-z]+)+-\d+)_/.exec(poolId)?.[1];
    if (!region) problems.push("ANKISYNCD_COGNITO_REGION: not set and not part of the pool id");
    const accessKeyId = get("AWS_ACCESS_KEY_ID");
    const secretAccessKey = get("AWS_SECRET_ACCESS_KEY");
    if (Boolean(accessKeyId) !== Boolean(secretAccessKey)) {
      problems.push("AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY: set both or neither");
    }
    const sessionToken = envValue(env, "AWS_SESSION_TOKEN", problems);
    const endpoint = get("ANKISYNCD_COGNITO_ENDPOINT").replace(/\/+$/, "") || null;
    if (endpoint && !/^https?:\/\/[^/]/.test(endpoint)) {
      problems.push(`ANKISYNCD_COGNITO_ENDPOINT=${endpoint}: expected an http(s) URL`);
    }
    cognito = {
      userPoolId: poolId,
      clientId,
      clientSecret: get("ANKISYNCD_COGNITO_CLIENT_SECRET") || null,
      region: region ?? "",
      credentials:
        accessKeyId && secretAccessKey
          ? { accessKeyId, secretAccessKey, ...(sessionToken ? { sessionToken } : {}) }
          : null,
      endpoint,
      recheckSecs: int("ANKISYNCD_COGNITO_RECHECK_SECS", 1),
    };
  }
  const names = get("ANKISYNCD_AUTH_PROVIDERS")
    .split(",")
    .map((p) => p.trim())
    .filter(Boolean);
  const authProviders: AuthProviderName[] = [];
  for (const name of names) {
    if (name !== "local" && name !== "cognito") {
      problems.push(`ANKISYNCD_AUTH_PROVIDERS: unknown provider ${name} (expected local, cognito)`);
    } else if (authProviders.includes(name)) {
      problems.push(`ANKISYNCD_AUTH_PROVIDERS: ${name} listed twice`);
    } else if (name === "local" || cognito) {
      authProviders.push(name);
    }
  }
  if (authProviders.length === 0 && problems.length === 0) {
    problems.push("ANKISYNCD_AUTH_PROVIDERS: no usable provider (cognito needs a user pool)");
  }
  return {
    authProviders,
    cognito,
    loginRate: {
      perIp: int("ANKISYNCD_LOGIN_RATE_PER_IP", 0),
      perUser: int("ANKISYNCD_LOGIN_RATE_PER_USER", 0),
      windowSecs: int("ANKISYNCD_LOGIN_RATE_WINDOW_SECS", 1),
    },
    sessionIdleDays: int("ANKISYNCD_SESSION_IDLE_DAYS", 0),
  };
}

function checkDatabaseUrl(raw: string, problems: string[]): string | null {
  if (raw === "") return null;
  if (!/^postgres(ql)?:\/\//.test(raw)) {
    problems.push("ANKISYNCD_DATABASE_URL: expected a postgres:// or postgresql:// URL");
    return null;
  }
  return raw;
}

function readCluster(
  get: (name: string) => string,
  int: (name: string, min: number, max?: number) => number,
  problems: string[],
): ClusterConfig | null {
  const raw = get("ANKISYNCD_PUBLIC_URL");
  if (raw === "") return null;
  let url: URL;
  try {
    url = new URL(raw);
  } catch {
    problems.push(`ANKISYNCD_PUBLIC_URL=${raw}: expected an absolute http(s) URL`);
    return null;
  }
  if (!/^https?:$/.test(url.protocol) || url.search || url.hash) {
    problems.push(`ANKISYNCD_PUBLIC_URL=${raw}: expected an http(s) URL without query`);
    return null;
  }
  // Anki joins `sync/meta` to the base it is redirected to: without the slash the last
  // segment would be replaced.
  if (!url.pathname.endsWith("/")) url.pathname += "/";
  const explicitId = get("ANKISYNCD_NODE_ID");
  const nodeId = explicitId === "<from ANKISYNCD_PUBLIC_URL>" ? "" : explicitId;
  const segments = url.pathname.split("/").filter(Boolean);
  const id = nodeId || segments.at(-1) || url.host;
  if (!/^[A-Za-z0-9._:-]{1,64}$/.test(id)) {
    problems.push(`ANKISYNCD_NODE_ID=${id}: letters, digits, '.', '_', ':' and '-' only`);
  }
  return {
    publicUrl: url.href,
    nodeId: id,
    leaseSecs: int("ANKISYNCD_PLACEMENT_LEASE_SECONDS", 3),
  };
}
