/**
 * `/health` is liveness, `/ready` readiness; the container's health check
 * (scripts/healthcheck.ts, run as the image runs it) follows `/ready`.
 */
import { afterEach, expect, test } from "bun:test";
import { join } from "node:path";
import { startTestServer, type TestServer } from "../helpers/testServer.ts";

const servers: TestServer[] = [];
afterEach(async () => {
  for (const s of servers.splice(0)) await s.dispose();
});

/** Asynchronous: the server answering it runs in this process. */
async function healthcheck(port: number): Promise<{ code: number | null; output: string }> {
  const child = Bun.spawn(["bun", join(import.meta.dir, "../../scripts/healthcheck.ts")], {
    env: { PATH: process.env.PATH ?? "", SYNC_PORT: String(port) },
    stdout: "ignore",
    stderr: "pipe",
  });
  const output = await new Response(child.stderr).text();
  return { code: await child.exited, output };
}

test("ready with room to write: 200, and the health check passes", async () => {
  const server = await startTestServer();
  servers.push(server);
  expect((await fetch(`${server.url}ready`)).status).toBe(200);
  expect((await healthcheck(server.port)).code).toBe(0);
}, 60_000);

test("under the free-space floor: /ready 503 saying why, /health 200, the check fails", async () => {
  // A floor no disk here meets: the same answer as a nearly full one.
  const server = await startTestServer({ ANKISYNCD_MIN_FREE_MEGS: String(1024 * 1024 * 1024) });
  servers.push(server);
  const ready = await fetch(`${server.url}ready`);
  expect(ready.status).toBe(503);
  expect(await ready.text()).toContain("ANKISYNCD_MIN_FREE_MEGS");
  expect((await fetch(`${server.url}health`)).status).toBe(200);
  const check = await healthcheck(server.port);
  expect(check.code).toBe(1);
  expect(check.output).toContain("503");
}, 60_000);
