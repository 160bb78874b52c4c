/** What `admin doctor` checks and fixes, and whose access it judges, from the command line. */
import { statSync } from "node:fs";
import { DEFAULT_LOCK_WAIT_SECS, parseArgs, UsageError } from "../context.ts";

/** The container user of the Docker image (Dockerfile build args). */
export const DEFAULT_CONTAINER_UID = 1001;
export const DEFAULT_CONTAINER_GID = 65533;

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

/**
 * Options from the command line. The server's user: --uid/--gid, else CONTAINER_USER_ID/GROUP_ID
 * (set in the image, or in a Docker host's .env), else see `defaultServerUser`.
 */
export function doctorOptions(
  args: string[],
  env: Record<string, string | undefined> = process.env,
  dataDir?: string,
): DoctorOptions & { json: boolean } {
  const { positional, flags, options } = parseArgs(args, {
    flags: ["fix", "quick", "json"],
    options: ["uid", "gid", "wait"],
  });
  if (positional.length > 0) throw new UsageError(`unexpected argument ${positional[0]}`);
  const server = defaultServerUser(dataDir);
  return {
    fix: flags.has("fix"),
    quick: flags.has("quick"),
    json: flags.has("json"),
    uid: wholeNumber("--uid", options.get("uid") ?? env.CONTAINER_USER_ID, server.uid),
    gid: wholeNumber("--gid", options.get("gid") ?? env.CONTAINER_GROUP_ID, server.gid),
    lockWaitMs: wholeNumber("--wait", options.get("wait"), DEFAULT_LOCK_WAIT_SECS) * 1000,
  };
}

function wholeNumber(name: string, raw: string | undefined, fallback: number): number {
  if (raw === undefined || raw === "") return fallback;
  const n = Number(raw);
  if (!Number.isInteger(n) || n < 0) throw new UsageError(`${name}: expected a whole number`);
  return n;
}

/**
 * Without a container setting, the doctor is run either as the server's own user (so that one),
 * or as root on a host without Docker, where the server's user is whoever owns the data folder
 * (a uid like the image's 1001 may not even exist there).
 */
function defaultServerUser(dataDir?: string): { uid: number; gid: number } {
  const uid = process.getuid?.() ?? DEFAULT_CONTAINER_UID;
  const gid = process.getgid?.() ?? DEFAULT_CONTAINER_GID;
  if (uid !== 0) return { uid, gid };
  try {
    if (dataDir) {
      const owner = statSync(dataDir);
      return { uid: owner.uid, gid: owner.gid };
    }
  } catch {
    // No data folder: nothing to judge access on anyway.
  }
  return { uid, gid };
}
