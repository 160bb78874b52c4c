/**
 * Warm task workers for stateless heavy work (executor/tasks.ts). Starting a worker costs
 * tens of milliseconds (it loads the whole task module graph), so workers are kept between
 * tasks: each runs one task at a time, at most `max` run at once, more are started only when
 * all are busy, and one left idle for `idleMs` is stopped so an idle server holds none.
 */
import { unicaseExtensionPath } from "../platform/sqlite.ts";
import { spawnWorker } from "../platform/workers.ts";
import { instanceTag } from "../storage/instance.ts";
import { SyncError } from "../sync/errors.ts";
import type { JobReplyMessage } from "./jobs.ts";
import type { Task } from "./tasks.ts";

interface Idle {
  worker: Worker;
  since: number;
}

export class TaskPool {
  /** Most recently used last: tasks go to the warmest worker, the others can go idle. */
  private readonly idle: Idle[] = [];
  /** Waiting for a worker: handed a free one, or null to start one in a freed slot. */
  private readonly waiting: ((worker: Worker | null) => void)[] = [];
  private started = 0;
  private readonly sweeper: ReturnType<typeof setInterval>;

  /**
   * `nice`: the threads' nice value (ANKISYNCD_TASK_NICE, 0: not lowered). Only the task's own
   * thread is lowered and it holds no lock another user waits for (its files are its own
   * temporaries; the installing job runs on the user's collection worker at normal priority), so
   * a starved task delays only the upload it prepares, and the task slots it holds.
   */
  constructor(
    private readonly max: number,
    private readonly idleMs: number,
    private readonly nice = 0,
  ) {
    this.sweeper = setInterval(() => this.stopIdle(), Math.max(250, Math.min(idleMs, 30_000)));
    this.sweeper.unref?.();
  }

  /** Workers alive now (busy or idle). */
  get size(): number {
    return this.started;
  }

  async run(task: Task): Promise<unknown> {
    const worker = await this.acquire();
    let reply: JobReplyMessage;
    try {
      reply = await send(worker, task, this.nice);
    } catch (err) {
      this.release(worker, false);
      throw err;
    }
    // A task's own failure is a reply: the worker stays usable.
    this.release(worker, true);
    if (reply.ok) return reply.value;
    throw new SyncError(reply.error.kind, reply.error.message);
  }

  /**
   * Gets a worker ready for a task of `kind` that is on its way: the most recent idle one loads
   * that kind's code, or, if none is idle (and one may start), a new one starts and loads it.
   * A start and the code's loading cost ~100 ms of CPU, which then pass while an upload's body
   * arrives. Left unused, the worker is stopped as any idle one.
   */
  warm(kind: Task["kind"], now = Date.now()): void {
    let ready = this.idle.pop();
    if (!ready) {
      if (this.waiting.length > 0 || this.started >= this.max) return;
      this.started++;
      ready = { worker: spawn(), since: now };
    }
    // Idle from now: the sweep would otherwise stop a worker idle for most of `idleMs` while
    // the body arrives, and the task would start a cold one after all.
    ready.since = now;
    this.idle.push(ready);
    ready.worker.postMessage({ preload: kind, nice: this.nice });
  }

  private async acquire(): Promise<Worker> {
    const idle = this.idle.pop();
    if (idle) return idle.worker;
    if (this.started < this.max) {
      this.started++;
      return spawn();
    }
    return (await new Promise<Worker | null>((resolve) => this.waiting.push(resolve))) ?? spawn();
  }

  private release(worker: Worker, healthy: boolean): void {
    if (!healthy) worker.terminate();
    const next = this.waiting.shift();
    if (next) next(healthy ? worker : null);
    else if (healthy) this.idle.push({ worker, since: Date.now() });
    else this.started--;
  }

  private stopIdle(now = Date.now()): void {
    while (this.idle.length > 0 && now - (this.idle[0] as Idle).since >= this.idleMs) {
      (this.idle.shift() as Idle).worker.terminate();
      this.started--;
    }
  }

  close(): void {
    clearInterval(this.sweeper);
    for (const { worker } of this.idle.splice(0)) worker.terminate();
    this.started = 0;
  }
}

/**
 * Small heaps: a task streams large files in small chunks and keeps nothing between tasks, so
 * it needs little heap, and its CPU is the lowest-priority work of the server anyway.
 */
function spawn(): Worker {
  return spawnWorker(new URL("./taskWorker.ts", import.meta.url), { small: true });
}

/** The task's reply; rejects only when the worker itself failed. */
function send(worker: Worker, task: Task, nice: number): Promise<JobReplyMessage> {
  return new Promise<JobReplyMessage>((resolve, reject) => {
    worker.onmessage = (event: MessageEvent<JobReplyMessage>) => resolve(event.data);
    worker.onerror = (event) => {
      event.preventDefault(); // Deno: otherwise a worker's error ends the whole process
      reject(new SyncError("serverError", `task worker: ${event.message}`));
    };
    worker.postMessage({
      id: 0,
      task,
      nice,
      instance: instanceTag(),
      unicaseExtension: unicaseExtensionPath(),
    });
  });
}
