/** A `.env` beside the project's bunfig.toml reaches the server literally, `$` and all. */
import { expect, test } from "bun:test";
import { copyFileSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { runCommand } from "../helpers/run.ts";

const ROOT = resolve(import.meta.dir, "../..");

test("a PHC hash in SYNC_USERn keeps its $ signs (Bun's own .env expansion is off)", async () => {
  const dir = mkdtempSync(join(tmpdir(), "ankisyncd-env-"));
  try {
    copyFileSync(join(ROOT, "bunfig.toml"), join(dir, "bunfig.toml"));
    const hash = "$argon2id$v=19$m=65536,t=2,p=1$c2FsdA$aGFzaA";
    writeFileSync(join(dir, ".env"), `SYNC_USER1='alice:${hash}'\n`);
    const script = `import { loadEnvFile } from ${JSON.stringify(join(ROOT, "src/platform/env.ts"))};
loadEnvFile(); console.log(process.env.SYNC_USER1);`;
    writeFileSync(join(dir, "print.ts"), script);
    const run = await runCommand(["bun", "run", "print.ts"], {
      cwd: dir,
      env: { PATH: process.env.PATH ?? "" },
    });
    expect(run.err).toBe("");
    expect(run.out.trim()).toBe(`alice:${hash}`);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
