/**
 * The task pool's warm-up (executor/taskPool.ts): a worker started (and its code loaded) ahead
 * of an announced task is the one the task then runs on; none is started when one is idle or
 * the pool is full.
 */
import { afterEach, expect, test } from "bun:test";
import { mkdtempSync, readdirSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { TaskPool } from "../../src/executor/taskPool.ts";
import type { PreparedUpload } from "../../src/sync/collection/upload.ts";

const pools: TaskPool[] = [];
const dirs: string[] = [];
afterEach(() => {
  for (const pool of pools.splice(0)) pool.close();
  for (const dir of dirs.splice(0)) rmSync(dir, { recursive: true, force: true });
});

function pool(max: number, nice = 0): TaskPool {
  const p = new TaskPool(max, 60_000, nice);
  pools.push(p);
  return p;
}

/** A task that runs the real code: a prepared file that is not a collection is refused. */
function notACollection() {
  const dir = mkdtempSync(join(tmpdir(), "ankisyncd-taskpool-"));
  dirs.push(dir);
  const preparedPath = join(dir, "missing.anki2");
  return { kind: "prepareUpload" as const, input: { preparedPath } };
}

test("a warmed worker runs the task that follows; no second one is started", async () => {
  const tasks = pool(2);
  tasks.warm("prepareUpload");
  expect(tasks.size).toBe(1);
  tasks.warm("prepareUpload");
  expect(tasks.size).toBe(1);
  const reply = (await tasks.run(notACollection())) as PreparedUpload;
  expect(reply.ready).toBe(false);
  expect(tasks.size).toBe(1);
});

test("a warmed idle worker counts as idle from the warning on, so the sweep keeps it for the task", async () => {
  const tasks = pool(2);
  expect(((await tasks.run(notACollection())) as PreparedUpload).ready).toBe(false);
  const releasedBy = Date.now();
  // The upload's body arrives 50 s into the worker's 60 s of idleness.
  tasks.warm("prepareUpload", releasedBy + 50_000);
  const sweep = (now: number) =>
    (tasks as unknown as { stopIdle(now: number): void }).stopIdle(now);
  sweep(releasedBy + 60_001);
  expect(tasks.size).toBe(1);
  sweep(releasedBy + 110_001);
  expect(tasks.size).toBe(0);
});

test("warming a full pool starts nothing, and its tasks still run", async () => {
  const tasks = pool(1);
  const first = tasks.run(notACollection());
  tasks.warm("stageMediaUpload");
  expect(tasks.size).toBe(1);
  expect(((await first) as PreparedUpload).ready).toBe(false);
  tasks.warm("prepareUpload");
  expect(tasks.size).toBe(1);
  expect(((await tasks.run(notACollection())) as PreparedUpload).ready).toBe(false);
});

test("a body received on a task thread holds no slot of the heavy tasks; past `max` at once, none is taken", async () => {
  const tasks = pool(1);
  const dir = mkdtempSync(join(tmpdir(), "ankisyncd-taskpool-"));
  dirs.push(dir);
  const receive = (port: MessagePort, name: string) =>
    tasks.tryReceive(
      {
        kind: "unpackUpload",
        input: {
          port,
          compression: "none",
          path: join(dir, name),
          limits: { maxBodyBytes: 100, maxBytes: 100 },
        },
      },
      [port],
    );
  const channel = new MessageChannel();
  const receiving = receive(channel.port2, "body");
  expect(receiving).not.toBeNull();
  expect(receive(new MessageChannel().port2, "other")).toBeNull();
  // The client is still sending; a heavy task runs meanwhile.
  expect(((await tasks.run(notACollection())) as PreparedUpload).ready).toBe(false);
  channel.port1.postMessage(new Uint8Array([1, 2, 3]));
  channel.port1.postMessage("end");
  expect(await receiving).toEqual({ ok: true });
  expect([...readFileSync(join(dir, "body"))]).toEqual([1, 2, 3]);
  channel.port1.close();
});

test("a body is received beside the worker warmed for the task that follows it, which then finds that one", async () => {
  const tasks = pool(2);
  const dir = mkdtempSync(join(tmpdir(), "ankisyncd-taskpool-"));
  dirs.push(dir);
  const idle = () => (tasks as unknown as { idle: { worker: Worker }[] }).idle;
  tasks.warm("prepareUpload");
  const warmed = idle().at(-1)?.worker;
  const channel = new MessageChannel();
  const receiving = tasks.tryReceive(
    {
      kind: "unpackUpload",
      input: {
        port: channel.port2,
        compression: "none",
        path: join(dir, "body"),
        limits: { maxBodyBytes: 100, maxBytes: 100 },
      },
    },
    [channel.port2],
  );
  expect(tasks.size).toBe(2);
  channel.port1.postMessage("end");
  expect(await receiving).toEqual({ ok: true });
  channel.port1.close();
  expect(idle().length).toBe(2);
  expect(idle().at(-1)?.worker).toBe(warmed as Worker);
});

/** Nice values of this process's threads (Linux), by thread id. */
function threadNices(): Map<string, number> {
  const nices = new Map<string, number>();
  for (const tid of readdirSync("/proc/self/task")) {
    try {
      const stat = readFileSync(`/proc/self/task/${tid}/stat`, "utf8");
      nices.set(tid, Number(stat.slice(stat.lastIndexOf(")") + 2).split(" ")[16]));
    } catch {
      // The thread ended meanwhile.
    }
  }
  return nices;
}

test.if(process.platform === "linux")(
  "the pool's nice value lowers its task threads, not the thread that runs the pool",
  async () => {
    const before = threadNices();
    const tasks = pool(1, 6);
    expect(((await tasks.run(notACollection())) as PreparedUpload).ready).toBe(false);
    const after = threadNices();
    const lowered = [...after].filter(([tid, nice]) => nice === 6 && !before.has(tid));
    expect(lowered.length).toBeGreaterThanOrEqual(1);
    expect(after.get(String(process.pid))).toBe(before.get(String(process.pid)));
  },
);
