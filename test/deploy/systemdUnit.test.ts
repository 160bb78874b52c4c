/**
 * deploy/ankisyncd.service, the sample unit for installs without Docker: `systemd-analyze
 * verify` accepts it (Debian's `systemd` package; skipped, saying so, without it), and its
 * command line and environment start the server.
 */
import { describe, expect, setDefaultTimeout, test } from "bun:test";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { runCommand } from "../helpers/run.ts";

setDefaultTimeout(60_000);
const ROOT = resolve(import.meta.dir, "../..");
const UNIT = readFileSync(join(ROOT, "deploy/ankisyncd.service"), "utf8");
const ANALYZE = Bun.which("systemd-analyze");
const BUN = Bun.which("bun") as string;

/** `Key=value` lines of the [Service] section (a key may repeat). */
function serviceLines(key: string): string[] {
  const service = UNIT.split(/^\[Service\]$/m)[1]?.split(/^\[/m)[0] ?? "";
  return [...service.matchAll(new RegExp(`^${key}=(.*)$`, "gm"))].map((m) => m[1] as string);
}

describe("deploy/ankisyncd.service", () => {
  test.skipIf(!ANALYZE)("passes systemd-analyze verify (needs systemd-analyze)", async () => {
    // Verify checks that ExecStart's binary exists: point it at this machine's Bun.
    const dir = mkdtempSync(join(tmpdir(), "ankisyncd-unit-"));
    try {
      const unit = join(dir, "ankisyncd.service");
      writeFileSync(unit, UNIT.replace("/usr/bin/bun", BUN));
      const run = await runCommand([ANALYZE as string, "verify", unit], { cwd: dir });
      expect(run.err + run.out).toBe("");
      expect(run.code).toBe(0);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  test("its ExecStart and Environment start the server", async () => {
    const env: Record<string, string> = { PATH: process.env.PATH ?? "", HOME: "/nonexistent" };
    for (const line of serviceLines("Environment")) {
      const [name, ...value] = line.split("=");
      env[name as string] = value.join("=");
    }
    const data = mkdtempSync(join(tmpdir(), "ankisyncd-unit-data-"));
    Object.assign(env, { SYNC_BASE: data, SYNC_PORT: "0", SYNC_USER1: "alice:a-password" });
    const [exec, ...args] = (serviceLines("ExecStart")[0] as string).split(" ");
    expect(exec).toBe("/usr/bin/bun");
    const proc = Bun.spawn([BUN, ...args], { cwd: ROOT, env, stdout: "pipe", stderr: "pipe" });
    try {
      let out = "";
      for await (const chunk of proc.stdout) {
        out += new TextDecoder().decode(chunk);
        if (out.includes("ankisyncd listening")) break;
      }
      expect(out).toMatch(/ankisyncd listening url=http:\/\/127\.0\.0\.1:\d+\//);
    } finally {
      proc.kill();
      await proc.exited;
      rmSync(data, { recursive: true, force: true });
    }
  });
});
