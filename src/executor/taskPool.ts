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
  /** Heavy tasks waiting for one of the `max` slots: handed a worker once one frees. */
  private readonly waiting: ((worker: Worker) => void)[] = [];
  /** Threads alive: idle, running a heavy task, or receiving a body. */
  private alive = 0;
  private heavy = 0;
  private receiving = 0;
  private readonly sweeper: ReturnType<typeof setInterval>;

  /**
   * `max` heavy tasks run at once (more wait), and besides them at most `max` tasks receive an
   * upload's body (`tryReceive`): those take as long as the client takes to send, slow clients
   * minutes, so they must not hold up the heavy tasks of other uploads.
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
    return this.alive;
  }

  async run(task: Task): Promise<unknown> {
    return this.runOn(await this.acquireHeavy(), task, [], () => this.heavy--);
  }

  /**
   * A task that receives an upload's body through the port in `transfer`, on a thread of its own
   * outside the heavy tasks' slots; null when `max` such tasks run already (the caller then
   * receives the body itself).
   */
  tryReceive(task: Task, transfer: Transferable[]): Promise<unknown> | null {
    if (this.receiving >= this.max) return null;
    this.receiving++;
    // Not the most recent idle worker: that is the one `warm` got ready for the task that
    // follows the body, loading and running code meanwhile; on one thread the body would wait
    // for it. Done, the receiving worker goes idle as the least recently used, so that task
    // still finds the warm one.
    const spare = this.idle.length > 1 ? this.idle.shift() : undefined;
    return this.runOn(spare?.worker ?? this.spawn(), task, transfer, () => this.receiving--, true);
  }

  private async runOn(
    worker: Worker,
    task: Task,
    transfer: Transferable[],
    freeSlot: () => void,
    idleAsColdest = false,
  ): Promise<unknown> {
    let reply: JobReplyMessage;
    try {
      reply = await send(worker, task, this.nice, transfer);
    } catch (err) {
      this.release(worker, false, freeSlot);
      throw err;
    }
    // A task's own failure is a reply: the worker stays usable.
    this.release(worker, true, freeSlot, idleAsColdest);
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
      if (this.waiting.length > 0 || this.heavy >= this.max) return;
      ready = { worker: this.spawn(), since: now };
    }
    // Idle from now: the sweep would otherwise stop a worker idle for most of `idleMs` while
    // the body arrives, and the task would start a cold one after all.
    ready.since = now;
    this.idle.push(ready);
    ready.worker.postMessage({
      preload: kind,
      nice: this.nice,
      unicaseExtension: unicaseExtensionPath(),
    });
  }

  private async acquireHeavy(): Promise<Worker> {
    if (this.heavy < this.max) {
      this.heavy++;
      return this.idle.pop()?.worker ?? this.spawn();
    }
    return await new Promise<Worker>((resolve) => this.waiting.push(resolve));
  }

  private release(
    worker: Worker,
    healthy: boolean,
    freeSlot: () => void,
    idleAsColdest = false,
  ): void {
    freeSlot();
    if (healthy) {
      const idle = { worker, since: Date.now() };
      if (idleAsColdest) this.idle.unshift(idle);
      else this.idle.push(idle);
    } else {
      worker.terminate();
      this.alive--;
    }
    while (this.waiting.length > 0 && this.heavy < this.max) {
      this.heavy++;
      (this.waiting.shift() as (worker: Worker) => void)(this.idle.pop()?.worker ?? this.spawn());
    }
  }

  private spawn(): Worker {
    this.alive++;
    return spawn();
  }

  /** Not only from the front: a receiving worker goes idle there, newer than those behind it. */
  private stopIdle(now = Date.now()): void {
    for (let i = this.idle.length - 1; i >= 0; i--) {
      const { worker, since } = this.idle[i] as Idle;
      if (now - since < this.idleMs) continue;
      this.idle.splice(i, 1);
      worker.terminate();
      this.alive--;
    }
  }

  close(): void {
    clearInterval(this.sweeper);
    for (const { worker } of this.idle.splice(0)) worker.terminate();
    this.alive = 0;
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
function send(
  worker: Worker,
  task: Task,
  nice: number,
  transfer: Transferable[],
): Promise<JobReplyMessage> {
  return new Promise<JobReplyMessage>((resolve, reject) => {
    worker.onmessage = (event: MessageEvent<JobReplyMessage>) => resolve(event.data);
    worker.onerror = (event) => {
      event.preventDefault(); // Deno: otherwise a worker's error ends the whole process
      reject(new SyncError("serverError", `task worker: ${event.message}`));
    };
    worker.postMessage(
      { id: 0, task, nice, instance: instanceTag(), unicaseExtension: unicaseExtensionPath() },
      transfer,
    );
  });
}
