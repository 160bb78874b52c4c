/**
 * The Docker image's build, without Docker: scripts/docker-build-steps.sh interprets the
 * Dockerfile (COPY from the .dockerignore-filtered context, RUN steps, ENV, USER), runs the
 * result as the container user, waits for the HEALTHCHECK command, logs in, and checks the
 * server wrote only to /data.
 */

import { expect, test } from "bun:test";
import { resolve } from "node:path";
import { runCommand } from "../helpers/run.ts";

const ROOT = resolve(import.meta.dir, "../..");
const canBuild = Boolean(Bun.which("gcc") && Bun.which("python3"));

test.skipIf(!canBuild)(
  "the Dockerfile's steps build an app that runs as the container user",
  async () => {
    const { code, out, err } = await runCommand(["bash", "scripts/docker-build-steps.sh"], {
      cwd: ROOT,
    });
    expect(code, `${out}\n${err}`).toBe(0);
    expect(out).toContain("healthy: bun scripts/healthcheck.ts passed");
    expect(out).toContain("writing only to /data");
  },
  180_000,
);
