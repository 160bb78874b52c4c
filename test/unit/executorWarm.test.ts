import { afterEach, expect, test } from "bun:test";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { loadConfig } from "../../src/config.ts";
import { WorkerPoolExecutor } from "../../src/executor/executor.ts";
import { workerSettings } from "../../src/server.ts";

const dirs: string[] = [];
afterEach(() => {
  for (const dir of dirs.splice(0)) rmSync(dir, { recursive: true, force: true });
});

function executor(workers: number): WorkerPoolExecutor {
  const dir = mkdtempSync(join(tmpdir(), "ankisyncd-warm-"));
  dirs.push(dir);
  return new WorkerPoolExecutor(workerSettings(loadConfig({ SYNC_BASE: dir })), workers);
}

const alice = { uuid: "00000000-0000-4000-8000-00000000000a" };

test("warmUser starts the thread the user is pinned to, once, and its jobs run there", async () => {
  const exec = executor(2);
  try {
    expect(exec.threads().collection).toBe(0);
    exec.warmUser(alice);
    exec.warmUser(alice);
    expect(exec.threads().collection).toBe(1);
    const { usn } = await exec.run({ kind: "media", user: alice, op: { method: "begin" } });
    expect(usn).toBe(0);
    expect(exec.threads().collection).toBe(1);
  } finally {
    await exec.close();
  }
});

test("a warmed thread that gets no job is stopped by the idle sweep", async () => {
  const dir = mkdtempSync(join(tmpdir(), "ankisyncd-warm-"));
  dirs.push(dir);
  const settings = workerSettings(loadConfig({ SYNC_BASE: dir, ANKISYNCD_IDLE_CLOSE_SECS: "1" }));
  const exec = new WorkerPoolExecutor(settings, 1);
  try {
    exec.warmUser(alice);
    expect(exec.threads().collection).toBe(1);
    const deadline = Date.now() + 5000;
    while (exec.threads().collection > 0 && Date.now() < deadline) await Bun.sleep(50);
    expect(exec.threads().collection).toBe(0);
  } finally {
    await exec.close();
  }
});
