/**
 * `bun run admin` against the data folder of a running server: what an administrator does,
 * checked through real logins and syncs over HTTP. Commands run in this process through
 * `runAdmin` (environment and standard streams given as the process would have them); one
 * runs the entry point as a subprocess.
 */

import { afterAll, beforeAll, describe, expect, setDefaultTimeout, test } from "bun:test";
import { existsSync, readdirSync } from "node:fs";
import { join, resolve } from "node:path";
import { runAdmin } from "../../src/cli/admin.ts";
import { userPaths } from "../../src/storage/paths.ts";
import { UserLock } from "../../src/storage/userLock.ts";
import { type CommandResult, runCommand } from "../helpers/run.ts";
import { login, v11 } from "../helpers/syncClient.ts";
import { startTestServer, type TestServer } from "../helpers/testServer.ts";

const ROOT = resolve(import.meta.dir, "../..");
// Each case runs several commands and refused logins (answered after 500 ms).
setDefaultTimeout(30_000);
let server: TestServer;

beforeAll(async () => {
  server = await startTestServer({
    SYNC_USER1: "envuser:envpw",
    ANKISYNCD_IDLE_CLOSE_SECS: "1",
  });
});
afterAll(async () => {
  await server.dispose();
});

async function admin(args: string[], stdin = ""): Promise<CommandResult> {
  let out = "";
  let err = "";
  const io = {
    stdout: (text: string) => {
      out += text;
    },
    stderr: (text: string) => {
      err += text;
    },
    stdin: (async function* () {
      yield stdin;
    })(),
    stdinIsTty: false,
  };
  const env = { ...process.env, SYNC_BASE: server.dataDir, SYNC_USER1: "envuser:envpw" };
  const code = await runAdmin(args, io, env);
  return { code, out, err };
}

async function canLogIn(user: string, password: string): Promise<boolean> {
  const reply = await v11(server.url, "hostKey", { u: user, p: password });
  if (reply.status !== 200 && reply.status !== 403)
    throw new Error(`login answered ${reply.status}`);
  return reply.status === 200;
}

describe("admin user", () => {
  test("add, passwd, disable, enable, remove a local user", async () => {
    const added = await admin(["user", "add", "carol", "--password-stdin"], "first pass\n");
    expect(added).toMatchObject({ code: 0 });
    expect(added.out).toMatch(/added local user carol \(uuid [0-9a-f-]{36}\)/);
    expect(await canLogIn("carol", "first pass")).toBe(true);
    expect((await admin(["user", "add", "carol", "--generate"])).code).toBe(1);
    const firstKey = await login(server.url, "carol", "first pass");

    const short = await admin(["user", "passwd", "carol", "--password-stdin"], "x\n");
    expect(short.code).toBe(1);
    expect(short.err).toContain("at least 8 characters");
    expect((await admin(["user", "add", "tiny", "--password-stdin"], "1234567\n")).code).toBe(1);

    const changed = await admin(["user", "passwd", "carol", "--generate"]);
    expect(changed.code).toBe(0);
    expect(changed.out).toMatch(/revoked 2 session\(s\)/);
    const password = /password: (\S+)/.exec(changed.out)?.[1] ?? "";
    expect(password.length).toBeGreaterThanOrEqual(16);
    expect(await canLogIn("carol", "first pass")).toBe(false);
    expect((await v11(server.url, "meta", { v: 11 }, { hkey: firstKey })).status).toBe(403);
    const secondKey = await login(server.url, "carol", password);

    const kept = await admin(
      ["user", "passwd", "carol", "--password-stdin", "--keep-sessions"],
      `${password}\n`,
    );
    expect(kept.out).toContain("existing sessions stay valid");
    expect((await v11(server.url, "meta", { v: 11 }, { hkey: secondKey })).status).toBe(200);

    const disabled = await admin(["user", "disable", "carol"]);
    expect(disabled.out).toMatch(/disabled carol .* revoked 1 session\(s\)/);
    expect(await canLogIn("carol", password)).toBe(false);
    expect((await admin(["user", "enable", "carol"])).code).toBe(0);
    expect(await canLogIn("carol", password)).toBe(true);

    const unconfirmed = await admin(["user", "remove", "carol"]);
    expect(unconfirmed.code).toBe(1);
    expect(unconfirmed.err).toContain("--confirm");
    expect((await admin(["user", "remove", "carol", "--confirm"])).code).toBe(0);
    expect(await canLogIn("carol", password)).toBe(false);
  });

  test("env-managed users keep their password and existence in the environment", async () => {
    const passwd = await admin(["user", "passwd", "envuser", "--password-stdin"], "x\n");
    expect(passwd.code).toBe(1);
    expect(passwd.err).toContain("managed by SYNC_USER1");
    expect((await admin(["user", "remove", "envuser", "--confirm"])).code).toBe(1);
    expect(await canLogIn("envuser", "envpw")).toBe(true);
  });

  test("list shows every profile, as a table or JSON", async () => {
    const table = await admin(["user", "list"]);
    expect(table.code).toBe(0);
    expect(table.out.split("\n")[0]).toMatch(/^UUID\s+PROVIDER\s+LOGIN/);
    expect(table.out).toMatch(/envuser\s+env:SYNC_USER1\s+active/);
    const rows = JSON.parse((await admin(["user", "list", "--json"])).out) as { login: string }[];
    expect(rows.map((r) => r.login)).toContain("bob");
  });

  test("LAST SYNC: a completed sync is recorded", async () => {
    const hkey = await login(server.url, "bob", "hunter2");
    expect((await v11(server.url, "download", {}, { hkey })).status).toBe(200);
    const rows = JSON.parse((await admin(["user", "list", "--json"])).out) as {
      login: string;
      lastSync: string | null;
    }[];
    expect(rows.find((r) => r.login === "bob")?.lastSync).toBeTruthy();
  });

  test("the entry point: a wrong SYNC_BASE exits 2, and no session.db is created there", async () => {
    const wrong = join(server.dataDir, "not-the-data-folder");
    const result = await runCommand(["bun", "run", "src/cli/admin.ts", "user", "list"], {
      cwd: ROOT,
      env: { ...process.env, SYNC_BASE: wrong, SYNC_USER1: "" },
    });
    expect(result.code).toBe(2);
    expect(result.err).toContain(`no session.db at ${join(wrong, "session.db")}`);
    expect(existsSync(wrong)).toBe(false);
  });

  test("bad usage exits 2 with the group's usage", async () => {
    const result = await admin(["user", "frobnicate"]);
    expect(result.code).toBe(2);
    expect(result.err).toContain("user reset-collection <user> --confirm");
    expect((await admin(["nosuchgroup"])).code).toBe(2);
    expect((await admin(["user", "disable", "nobody-at-all"])).code).toBe(1);
  });

  test("reset-collection waits for the user's lock, then moves the collection to backups/", async () => {
    const hkey = await login(server.url, "bob", "hunter2");
    expect(
      (await v11(server.url, "meta", { v: 11, cv: "anki,26.09.3 (x),linux" }, { hkey })).status,
    ).toBe(200);
    const uuid = JSON.parse((await admin(["user", "list", "--json"])).out).find(
      (r: { login: string }) => r.login === "bob",
    ).uuid as string;
    const paths = userPaths(server.dataDir, uuid);
    expect(existsSync(paths.collection)).toBe(true);

    const busy = await admin(["user", "reset-collection", uuid, "--confirm", "--wait", "0"]);
    expect(busy.code).toBe(75);
    expect(busy.err).toContain("try again");

    const reset = await admin(["user", "reset-collection", "bob", "--confirm", "--wait", "10"]);
    expect(reset.code).toBe(0);
    expect(existsSync(paths.collection)).toBe(false);
    expect(readdirSync(paths.backups).filter((f) => f.startsWith("reset-"))).toHaveLength(1);

    // the next sync sees a fresh, empty collection
    const meta = await v11(server.url, "meta", { v: 11, cv: "anki,26.09.3 (x),linux" }, { hkey });
    expect(meta.status).toBe(200);
    expect((meta.json() as { empty: boolean }).empty).toBe(true);
  });

  test("reset-collection refuses while another holder keeps the lock", async () => {
    const uuid = JSON.parse((await admin(["user", "list", "--json"])).out).find(
      (r: { login: string }) => r.login === "envuser",
    ).uuid as string;
    const hkey = await login(server.url, "envuser", "envpw");
    await v11(server.url, "meta", { v: 11, cv: "anki,26.09.3 (x),linux" }, { hkey });
    const dir = userPaths(server.dataDir, uuid).dir;
    const lock = await UserLock.acquire(dir, 10_000); // once the server has let go
    expect(lock).not.toBeNull();
    try {
      const result = await admin(["user", "reset-collection", uuid, "--confirm", "--wait", "1"]);
      expect(result.code).toBe(75);
      expect(existsSync(join(dir, "collection.anki2"))).toBe(true);
    } finally {
      lock?.release();
    }
  });
});

describe("admin session", () => {
  test("list and revoke", async () => {
    const hkey = await login(server.url, "bob", "hunter2");
    const sessions = JSON.parse(
      (await admin(["session", "list", "--user", "bob", "--json"])).out,
    ) as {
      id: number;
    }[];
    expect(sessions.length).toBeGreaterThanOrEqual(1);
    const newest = Math.max(...sessions.map((s) => s.id));
    const revoked = await admin(["session", "revoke", String(newest)]);
    expect(revoked).toMatchObject({ code: 0, out: `revoked session ${newest}\n` });
    expect((await v11(server.url, "meta", { v: 11 }, { hkey })).status).toBe(403);
    expect((await admin(["session", "revoke", String(newest)])).code).toBe(1);

    const all = await admin(["session", "list", "--all"]);
    expect(all.out).toMatch(new RegExp(`^${newest}\\s.*revoked`, "m"));
    const byUser = await admin(["session", "revoke", "--user", "bob"]);
    expect(byUser.out).toMatch(/revoked \d+ session\(s\) of bob/);
  });
});
