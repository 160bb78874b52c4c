/**
 * What an operator meets at start and with `admin doctor`, run as subprocesses: configuration
 * errors are one sentence naming the variable (exit 2), SYNC_USERn after a gap are reported,
 * the start-up line shows the address bound, and outside the container the doctor judges
 * access for the data folder's owner rather than the image's 1001:65533.
 */
import { afterAll, describe, expect, setDefaultTimeout, test } from "bun:test";
import { chownSync, mkdtempSync, rmSync, statSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { openSessionDb } from "../../src/identity/sessionDb.ts";
import { runCommand } from "../helpers/run.ts";

const ROOT = resolve(import.meta.dir, "../..");
setDefaultTimeout(60_000);

/** The environment of a fresh shell: nothing of ours inherited. */
function cleanEnv(extra: Record<string, string>): Record<string, string> {
  return { PATH: process.env.PATH ?? "", HOME: process.env.HOME ?? "/root", ...extra };
}

describe("configuration errors", () => {
  const base = mkdtempSync(join(tmpdir(), "ankisyncd-cfg-"));
  const notAFolder = join(base, "a-file");
  writeFileSync(notAFolder, "");
  const cases: [string, Record<string, string>, string][] = [
    ["a port out of range", { SYNC_PORT: "70000" }, "SYNC_PORT=70000"],
    ["an impossible address", { SYNC_HOST: "256.1.1.1" }, "SYNC_HOST=256.1.1.1"],
    ["a data folder that is a file", { SYNC_BASE: notAFolder }, `SYNC_BASE=${notAFolder}`],
    ["an empty password", { SYNC_USER1: "bob:" }, "SYNC_USER1"],
  ];
  for (const [what, env, names] of cases) {
    test(`${what}: one line naming ${names}, exit 2`, async () => {
      const run = await runCommand(["bun", "run", "src/main.ts"], {
        cwd: ROOT,
        env: cleanEnv({ SYNC_BASE: join(base, "data"), SYNC_PORT: "0", ...env }),
      });
      expect(run.code).toBe(2);
      const lines = run.err.trim().split("\n");
      expect(lines).toHaveLength(1);
      expect(lines[0]).toContain(names);
      expect(lines[0]).toStartWith("invalid configuration: ");
    });
  }
  afterAll(() => rmSync(base, { recursive: true, force: true }));
});

describe("start-up", () => {
  test("warns about SYNC_USERn after a gap and shows the address actually bound", async () => {
    const data = mkdtempSync(join(tmpdir(), "ankisyncd-start-"));
    const proc = Bun.spawn(["bun", "run", "src/main.ts"], {
      cwd: ROOT,
      env: cleanEnv({
        SYNC_BASE: data,
        SYNC_HOST: "0.0.0.0",
        SYNC_PORT: "0",
        SYNC_USER1: "alice:secret",
        SYNC_USER3: "carol:secret",
        ANKISYNCD_LOG_FORMAT: "json",
      }),
      stdout: "pipe",
      stderr: "pipe",
    });
    try {
      const lines: { msg: string; [k: string]: unknown }[] = [];
      const decoder = new TextDecoder();
      let buffered = "";
      for await (const chunk of proc.stdout) {
        buffered += decoder.decode(chunk);
        // Stop once the listening line is complete: a chunk may end mid-line.
        const at = buffered.indexOf("ankisyncd listening");
        if (at >= 0 && buffered.indexOf("\n", at) >= 0) break;
      }
      for (const line of buffered.split("\n").filter(Boolean)) lines.push(JSON.parse(line));
      proc.kill();
      const stderr = await new Response(proc.stderr).text();
      const warning = stderr
        .split("\n")
        // Only the log's JSON lines: the killed process may add a line about its closed pipe.
        .filter((l) => l.startsWith("{"))
        .map((l) => JSON.parse(l))
        .find((l) => String(l.msg).includes("after a gap"));
      expect(warning).toMatchObject({ level: "warn", ignored: "SYNC_USER3" });
      const listening = lines.find((l) => l.msg === "ankisyncd listening");
      expect(String(listening?.url)).toMatch(/^http:\/\/0\.0\.0\.0:\d+\/$/);
    } finally {
      proc.kill();
      await proc.exited;
      rmSync(data, { recursive: true, force: true });
    }
  });
});

describe("admin doctor outside the container", () => {
  const isRoot = process.getuid?.() === 0;
  test.skipIf(!isRoot)(
    "as root, judges access for the data folder's owner and --fix gives files to it (needs root)",
    async () => {
      const data = mkdtempSync(join(tmpdir(), "ankisyncd-owner-"));
      try {
        const env = cleanEnv({ SYNC_BASE: data });
        // What the server's first start leaves (admin commands refuse a folder without it).
        await openSessionDb(join(data, "session.db")).close();
        const added = await runCommand(
          ["bun", "run", "src/cli/admin.ts", "user", "add", "dora", "--password-stdin"],
          { cwd: ROOT, env, stdin: "a good password\n" },
        );
        expect(added.code).toBe(0);
        // The server's user on this host owns the folder; session.db is root's (made by root).
        chownSync(data, 4242, 4343);
        const check = await runCommand(["bun", "run", "src/cli/admin.ts", "doctor"], {
          cwd: ROOT,
          env,
        });
        expect(check.out).toContain("access for 4242:4343");
        expect(check.out).not.toContain("1001");
        expect(check.out).toContain("user 4242:4343 cannot read and write");
        const fix = await runCommand(["bun", "run", "src/cli/admin.ts", "doctor", "--fix"], {
          cwd: ROOT,
          env,
        });
        expect(fix.code).toBe(0);
        expect(statSync(join(data, "session.db")).uid).toBe(4242);
      } finally {
        rmSync(data, { recursive: true, force: true });
      }
    },
  );
});
