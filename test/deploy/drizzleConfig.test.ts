/**
 * `bun run db:studio` finds session.db the way an operator's checkout is set up: from .env
 * (Bun loads it, as for the server), including a Docker host where only compose's
 * DATA_VOLUME_SOURCE says where the data folder is.
 */
import { describe, expect, test } from "bun:test";
import { mkdirSync, mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { runCommand } from "../helpers/run.ts";

const CONFIG = resolve(import.meta.dir, "../../drizzle.config.ts");
const POSTGRES_CONFIG = resolve(import.meta.dir, "../../drizzle.postgres.config.ts");

/** The session.db URL drizzle.config.ts gives in a checkout at `cwd` with this .env. */
async function studioUrl(
  dotenv: string,
  prepare?: (cwd: string) => void,
  config = CONFIG,
): Promise<string> {
  const cwd = mkdtempSync(join(tmpdir(), "ankisyncd-drizzle-"));
  writeFileSync(join(cwd, ".env"), dotenv);
  prepare?.(cwd);
  const run = await runCommand(
    [
      "bun",
      "-e",
      `const c = (await import(${JSON.stringify(config)})).default; console.log(c.dbCredentials.url)`,
    ],
    { cwd, env: { PATH: process.env.PATH ?? "", HOME: process.env.HOME ?? "/tmp" } },
  );
  expect(run.code, run.err).toBe(0);
  return run.out.trim();
}

describe("drizzle.config.ts", () => {
  test("SYNC_BASE wins, then ANKISYNCD_SESSION_DB over it", async () => {
    expect(await studioUrl("SYNC_BASE=/srv/anki\n")).toBe("file:/srv/anki/session.db");
    expect(await studioUrl("SYNC_BASE=/srv/anki\nANKISYNCD_SESSION_DB=/x/s.db\n")).toBe(
      "file:/x/s.db",
    );
  });

  test("on a Docker host, the folder compose mounts (DATA_VOLUME_SOURCE)", async () => {
    expect(
      await studioUrl("DOMAIN_NAME=anki.example.com\nDATA_VOLUME_SOURCE=/mnt/efs/anki\n"),
    ).toBe("file:/mnt/efs/anki/session.db");
  });

  test("compose's default ./efs when that is where session.db is, else ./data", async () => {
    const withEfs = (cwd: string) => {
      mkdirSync(join(cwd, "efs"));
      writeFileSync(join(cwd, "efs", "session.db"), "");
    };
    expect(await studioUrl("DOMAIN_NAME=anki.example.com\n", withEfs)).toBe(
      "file:./efs/session.db",
    );
    expect(await studioUrl("")).toBe("file:./data/session.db");
  });
});

describe("drizzle.postgres.config.ts", () => {
  test("Studio opens the PostgreSQL database the server uses (ANKISYNCD_DATABASE_URL from .env)", async () => {
    const url = "postgres://anki:secret@db.example.org:5432/ankisyncd";
    expect(await studioUrl(`ANKISYNCD_DATABASE_URL=${url}\n`, undefined, POSTGRES_CONFIG)).toBe(
      url,
    );
  });
});
