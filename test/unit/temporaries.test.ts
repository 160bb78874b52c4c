/**
 * Temporaries of dead processes go, whatever their age, when a user's lock is taken and at
 * start; those of live processes (this one, or another holding its lease) stay; a user whose
 * temporaries already fill ANKISYNCD_MAX_TEMP_MEGS gets 409 for new uploads.
 */
import { afterEach, describe, expect, test } from "bun:test";
import {
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  rmSync,
  utimesSync,
  writeFileSync,
} from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { UserState } from "../../src/executor/userState.ts";
import { openDatabase } from "../../src/platform/sqlite.ts";
import { instanceTag } from "../../src/storage/instance.ts";
import { tempPathBeside, userPaths } from "../../src/storage/paths.ts";
import { removeDeadTemporaries, temporaryBytes } from "../../src/storage/temporaries.ts";
import { login, v11 } from "../helpers/syncClient.ts";
import { startTestServer } from "../helpers/testServer.ts";

const dirs: string[] = [];
afterEach(() => {
  for (const dir of dirs.splice(0)) rmSync(dir, { recursive: true, force: true });
});

function dataDir(): string {
  const dir = mkdtempSync(join(tmpdir(), "ankisyncd-temps-"));
  dirs.push(dir);
  return dir;
}

const leases = (data: string) =>
  readdirSync(join(data, ".instances")).filter((n) => n.endsWith(".lock"));

/** Temporaries of every kind of owner in one user's folder. */
function plant(data: string) {
  const paths = userPaths(data, "user-1");
  mkdirSync(paths.dir, { recursive: true });
  const at = (name: string) => join(paths.dir, name);
  const files = {
    oldForm: at("collection.anki2.tmp-12-345.incoming"),
    deadDownload: at("collection.anki2.tmp-77xbeef-1.download"),
    deadStaging: at("media.tmp-77xbeef-2.staging"),
    liveOther: at("collection.anki2.tmp-88xcafe-3.incoming"),
    ownFresh: tempPathBeside(paths.collection, ".upload"),
    ownAncient: tempPathBeside(paths.media, ".download.zst"),
  };
  for (const [key, path] of Object.entries(files)) {
    if (key === "deadStaging") {
      mkdirSync(path);
      writeFileSync(join(path, "0"), "staged");
    } else writeFileSync(path, key);
  }
  const threeDaysAgo = (Date.now() - 3 * 86400_000) / 1000;
  utimesSync(files.ownAncient, threeDaysAgo, threeDaysAgo);
  mkdirSync(join(data, ".instances"), { recursive: true });
  const otherLease = openDatabase(join(data, ".instances", "88xcafe.lock"));
  otherLease.exec("BEGIN EXCLUSIVE");
  return { paths, files, release: () => otherLease.close() };
}

describe("temporaries", () => {
  test("dead ones go whatever their age; live ones stay", () => {
    const data = dataDir();
    const { paths, files, release } = plant(data);
    try {
      const removed = removeDeadTemporaries(data, paths.dir).map((t) => t.path);
      expect(removed.sort()).toEqual(
        [files.oldForm, files.deadDownload, files.deadStaging, files.ownAncient].sort(),
      );
      expect(existsSync(files.liveOther)).toBe(true);
      expect(existsSync(files.ownFresh)).toBe(true);
      expect(tempPathBeside(paths.collection, ".x")).toContain(`.tmp-${instanceTag()}-`);
    } finally {
      release();
    }
  });

  test("taking the user's lock sweeps them", () => {
    const data = dataDir();
    const { paths, files, release } = plant(data);
    const user = new UserState(paths, { networkFs: false });
    try {
      user.acquire();
      expect(existsSync(files.deadDownload)).toBe(false);
      expect(existsSync(files.liveOther)).toBe(true);
    } finally {
      user.close();
      release();
    }
  });

  test("a server sweeps them at start, and its own lease goes with a clean stop", async () => {
    const data = dataDir();
    mkdirSync(join(data, "collections"), { recursive: true });
    const { files, release } = plant(join(data));
    // plant() used collections/user-1 through userPaths, so the server sees it as a user.
    const server = await startTestServer({}, data);
    try {
      expect(existsSync(files.deadStaging)).toBe(false);
      expect(existsSync(files.oldForm)).toBe(false);
      expect(existsSync(files.liveOther)).toBe(true);
      expect(leases(data).sort()).toEqual(["88xcafe.lock", `${instanceTag()}.lock`].sort());
    } finally {
      await server.stop();
      release();
    }
    expect(leases(data)).toEqual(["88xcafe.lock"]);
  });

  test("uploads wait (409) while the user's temporaries fill ANKISYNCD_MAX_TEMP_MEGS", async () => {
    const server = await startTestServer({ ANKISYNCD_MAX_TEMP_MEGS: "1" });
    try {
      const hkey = await login(server.url, "alice", "secret");
      await v11(server.url, "meta", { v: 11, cv: "anki,26.09.3 (x),linux" }, { hkey });
      const root = join(server.dataDir, "collections");
      const dir = join(root, readdirSync(root)[0] as string);
      const inFlight = tempPathBeside(join(dir, "collection.anki2"), ".incoming");
      writeFileSync(inFlight, new Uint8Array(1024 * 1024));
      expect(temporaryBytes(dir)).toBe(1024 * 1024);
      const body = new Uint8Array(10);
      expect((await v11(server.url, "upload", body, { hkey })).status).toBe(409);
      // A media batch too large to be done in memory would be a temporary too.
      const batch = new Uint8Array(2 * 1024 * 1024);
      expect((await v11(server.url, "uploadChanges", batch, { hkey, path: "msync" })).status).toBe(
        409,
      );
      // A small one is not: it is refused for what it is (not a zip), not for room.
      const small = await v11(server.url, "uploadChanges", body, { hkey, path: "msync" });
      expect(small.status).not.toBe(409);
      rmSync(inFlight);
      // Past the cap check now: refused for what it is (not a collection), not for room.
      const after = await v11(server.url, "upload", body, { hkey });
      expect(after.status).not.toBe(409);
    } finally {
      await server.dispose();
    }
  });
});
