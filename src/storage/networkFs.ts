/**
 * Is a path on a network filesystem (NFS, EFS, SMB, sshfs, ...)? There, SQLite's WAL mode is
 * unsafe (its shared-memory index does not work across hosts, and mmap over NFS is unreliable),
 * so session.db and media.db use a rollback journal instead. Collections always do.
 *
 * `ANKISYNCD_NETWORK_FS=auto` (the default) looks up the mount holding the folder in
 * /proc/mounts; `1`/`0` force the answer (e.g. for a filesystem type not listed here, or where
 * /proc is not available).
 */
import { existsSync, readFileSync, realpathSync } from "node:fs";
import { dirname, resolve, sep } from "node:path";
import type { Config } from "../config.ts";

/** Filesystem types (as /proc/mounts names them) that are shared over a network. */
export const NETWORK_FS_TYPES: ReadonlySet<string> = new Set([
  "nfs",
  "nfs4",
  "efs", // amazon-efs-utils (usually listed as nfs4)
  "cifs",
  "smb3",
  "smbfs",
  "ncpfs",
  "afs",
  "9p",
  "ceph",
  "glusterfs",
  "lustre",
  "gpfs",
  "beegfs",
  "fuse.sshfs",
  "fuse.s3fs",
  "fuse.rclone",
  "fuse.gcsfuse",
  "fuse.goofys",
  "fuse.juicefs",
  "fuse.glusterfs",
  "fuse.ceph",
  "fuse.ceph-fuse",
  "fuse.mountpoint-s3",
  "fuse.grpcfuse", // Docker Desktop file sharing
]);

export interface MountEntry {
  mountPoint: string;
  fsType: string;
}

export interface FsInfo {
  networkFs: boolean;
  /** The mount the path lives on, when /proc/mounts could be read. */
  fsType?: string;
  mountPoint?: string;
}

/** Parses /proc/mounts (or /proc/self/mounts) text. Octal escapes (`\040` = space) are decoded. */
export function parseMounts(text: string): MountEntry[] {
  const entries: MountEntry[] = [];
  for (const line of text.split("\n")) {
    const fields = line.trim().split(/\s+/);
    const [, mountPoint, fsType] = fields;
    if (!mountPoint || !fsType) continue;
    entries.push({ mountPoint: unescapeMountField(mountPoint), fsType });
  }
  return entries;
}

function unescapeMountField(value: string): string {
  return value.replace(/\\([0-7]{3})/g, (_, octal: string) =>
    String.fromCharCode(Number.parseInt(octal, 8)),
  );
}

/** The mount holding `path` (the last, i.e. topmost, of the longest matching mount points). */
export function mountOf(path: string, mounts: readonly MountEntry[]): MountEntry | undefined {
  let best: MountEntry | undefined;
  for (const entry of mounts) {
    const point = entry.mountPoint;
    const inside =
      point === "/" || path === point || path.startsWith(point.endsWith(sep) ? point : point + sep);
    if (inside && (!best || point.length >= best.mountPoint.length)) best = entry;
  }
  return best;
}

/** Classifies `path` against the given mount table text (default: this machine's). */
export function detectNetworkFs(path: string, mountsText?: string): FsInfo {
  const text = mountsText ?? readMountTable();
  if (text === undefined) return { networkFs: false };
  const mount = mountOf(existingRealPath(path), parseMounts(text));
  if (!mount) return { networkFs: false };
  return {
    networkFs: NETWORK_FS_TYPES.has(mount.fsType),
    fsType: mount.fsType,
    mountPoint: mount.mountPoint,
  };
}

function readMountTable(): string | undefined {
  for (const file of ["/proc/self/mounts", "/proc/mounts"]) {
    try {
      return readFileSync(file, "utf8");
    } catch {
      // not Linux, or /proc not mounted: try the next, then give up
    }
  }
  return undefined;
}

/** The real path of `path`, or of its nearest existing ancestor (the folder may not exist yet). */
function existingRealPath(path: string): string {
  let current = resolve(path);
  const missing: string[] = [];
  while (!existsSync(current)) {
    const parent = dirname(current);
    if (parent === current) break;
    missing.unshift(current.slice(parent.length).replace(/^[/\\]/, ""));
    current = parent;
  }
  try {
    return resolve(realpathSync(current), ...missing);
  } catch {
    return resolve(path);
  }
}

const cache = new Map<string, boolean>();

/**
 * The resolved ANKISYNCD_NETWORK_FS for a folder (default: the data folder): the setting when it
 * is `1`/`0`, else detection (cached per folder for the life of the process). This is what
 * session.db and media.db use to choose between WAL and a rollback journal.
 */
export function isNetworkFs(
  config: Pick<Config, "networkFs" | "dataDir">,
  path: string = config.dataDir,
): boolean {
  return resolveNetworkFs(config.networkFs, path);
}

/** Same as isNetworkFs, from the raw setting (for code that has no Config, e.g. in workers). */
export function resolveNetworkFs(setting: "auto" | boolean, path: string): boolean {
  if (setting !== "auto") return setting;
  const key = resolve(path);
  let value = cache.get(key);
  if (value === undefined) {
    value = detectNetworkFs(key).networkFs;
    cache.set(key, value);
  }
  return value;
}
