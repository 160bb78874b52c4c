import { describe, expect, test } from "bun:test";
import { mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { ConfigError, loadConfig, SETTINGS, unknownSettings } from "../../src/config.ts";

describe("loadConfig", () => {
  test("defaults match Anki's server where it has the same setting", () => {
    const config = loadConfig({});
    expect(config.host).toBe("0.0.0.0");
    expect(config.port).toBe(8080);
    expect(config.maxPayloadMegs).toBe(100);
    expect(config.maxUncompressedBytes).toBe(300 * 1024 * 1024);
    expect(config.sessionDbPath).toBe(resolve("data/session.db"));
    expect(config.ipHeader).toBeNull();
  });

  test("downloads are made ahead after an upload unless ANKISYNCD_READY_DOWNLOADS=0", () => {
    expect(loadConfig({}).readyDownloads).toBe(true);
    expect(loadConfig({ ANKISYNCD_READY_DOWNLOADS: "0" }).readyDownloads).toBe(false);
  });

  test("reads SYNC_USERn until the first gap, splitting at the first colon", () => {
    const config = loadConfig({ SYNC_USER1: "a:p:w", SYNC_USER2: "b:x", SYNC_USER4: "d:y" });
    expect(config.syncUsers.map((u) => [u.username, u.secret])).toEqual([
      ["a", "p:w"],
      ["b", "x"],
    ]);
  });

  test("takes secrets from *_FILE variables", () => {
    const file = join(mkdtempSync(join(tmpdir(), "cfg-")), "user");
    writeFileSync(file, "carol:from-file\n");
    expect(loadConfig({ SYNC_USER1_FILE: file }).syncUsers[0]?.secret).toBe("from-file");
  });

  test("the unicase extension: in the install folder by default, else as given or from its _FILE", () => {
    const root = resolve(import.meta.dir, "../..");
    expect(loadConfig({}).unicaseExtension).toBe(join(root, "build/unicase.so"));
    expect(loadConfig({ ANKISYNCD_UNICASE_EXTENSION: "/opt/u.so" }).unicaseExtension).toBe(
      "/opt/u.so",
    );
    const file = join(mkdtempSync(join(tmpdir(), "cfg-")), "path");
    writeFileSync(file, "/srv/unicase.so\n");
    expect(loadConfig({ ANKISYNCD_UNICASE_EXTENSION_FILE: file }).unicaseExtension).toBe(
      "/srv/unicase.so",
    );
  });

  test("lists every bad value at once", () => {
    try {
      loadConfig({ SYNC_PORT: "http", ANKISYNCD_LOG_FORMAT: "xml", SYNC_USER1: "nocolon" });
      throw new Error("expected a ConfigError");
    } catch (err) {
      expect(err).toBeInstanceOf(ConfigError);
      expect((err as ConfigError).problems).toHaveLength(3);
    }
  });

  test("warns about ANKISYNCD_* names that match no setting", () => {
    expect(unknownSettings({ ANKISYNCD_LOG_LEVLE: "debug", ANKISYNCD_LOG_LEVEL: "debug" })).toEqual(
      ["ANKISYNCD_LOG_LEVLE"],
    );
  });
});

test("README documents every setting", () => {
  const readme = readFileSync(resolve(import.meta.dir, "../../README.md"), "utf8");
  const missing = SETTINGS.map((s) => s.name).filter((name) => !readme.includes(`\`${name}\``));
  expect(missing).toEqual([]);
});
