import { describe, expect, test } from "bun:test";
import { mkdtempSync, realpathSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import {
  detectNetworkFs,
  isNetworkFs,
  mountOf,
  parseMounts,
  resolveNetworkFs,
} from "../../src/storage/networkFs.ts";

const MOUNTS = [
  "overlay / overlay rw,relatime,lowerdir=/x 0 0",
  "proc /proc proc rw,nosuid 0 0",
  "/dev/nvme0n1p1 /srv ext4 rw,relatime 0 0",
  "fs-0123.efs.eu-west-1.amazonaws.com:/ /srv/efs nfs4 rw,vers=4.1,hard 0 0",
  "//nas/share /mnt/my\\040share cifs rw 0 0",
  "user@host:/x /mnt/ssh fuse.sshfs rw 0 0",
  "tmpfs /srv/efs/cache tmpfs rw 0 0",
].join("\n");

describe("network filesystem detection", () => {
  test("parses /proc/mounts, decoding octal escapes", () => {
    const mounts = parseMounts(MOUNTS);
    expect(mounts).toHaveLength(7);
    expect(mounts[4]).toEqual({ mountPoint: "/mnt/my share", fsType: "cifs" });
  });

  test("picks the deepest mount holding the path", () => {
    const mounts = parseMounts(MOUNTS);
    expect(mountOf("/srv/efs/data/collections", mounts)?.fsType).toBe("nfs4");
    expect(mountOf("/srv/efs", mounts)?.fsType).toBe("nfs4");
    expect(mountOf("/srv/efsx", mounts)?.fsType).toBe("ext4");
    expect(mountOf("/srv/efs/cache/x", mounts)?.fsType).toBe("tmpfs");
    expect(mountOf("/home/x", mounts)?.fsType).toBe("overlay");
  });

  test("classifies NFS/EFS, SMB and sshfs as network filesystems", () => {
    expect(detectNetworkFs("/srv/efs/data", MOUNTS)).toEqual({
      networkFs: true,
      fsType: "nfs4",
      mountPoint: "/srv/efs",
    });
    expect(detectNetworkFs("/mnt/my share/anki", MOUNTS).networkFs).toBe(true);
    expect(detectNetworkFs("/mnt/ssh/anki", MOUNTS).networkFs).toBe(true);
    expect(detectNetworkFs("/srv/anki", MOUNTS).networkFs).toBe(false);
    expect(detectNetworkFs("/srv/efs/cache", MOUNTS).networkFs).toBe(false);
  });

  test("a folder that does not exist yet is judged by its nearest existing ancestor", () => {
    const base = realpathSync(mkdtempSync(join(tmpdir(), "nfs-")));
    const mounts = `overlay / overlay rw 0 0\nserver:/e ${base} nfs rw 0 0`;
    expect(detectNetworkFs(join(base, "not", "yet"), mounts).networkFs).toBe(true);
    expect(detectNetworkFs(`${base}-sibling/x`, mounts).networkFs).toBe(false);
  });

  test("an explicit setting wins over detection", () => {
    expect(resolveNetworkFs(true, "/nonexistent")).toBe(true);
    expect(resolveNetworkFs(false, "/nonexistent")).toBe(false);
    expect(isNetworkFs({ networkFs: true, dataDir: "/x" })).toBe(true);
  });

  test("auto detects this machine's data folder (the test folder is local)", () => {
    const dir = mkdtempSync(join(tmpdir(), "nfs-auto-"));
    expect(typeof isNetworkFs({ networkFs: "auto", dataDir: dir })).toBe("boolean");
    expect(isNetworkFs({ networkFs: "auto", dataDir: dir })).toBe(detectNetworkFs(dir).networkFs);
  });
});
