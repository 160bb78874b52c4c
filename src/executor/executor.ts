/**
 * Where collection work runs. The server uses a pool of worker threads (users pinned to a
 * worker, one job at a time per user) plus short-lived task workers for heavy stateless work;
 * unit tests use the in-process executor.
 */
import { instanceTag } from "../storage/instance.ts";
import { SyncError } from "../sync/errors.ts";
import { CollectionHost } from "./host.ts";
import type { Job, JobReplyMessage, JobResult, WorkerSettings } from "./jobs.ts";
import { KeyedMutex } from "./keyedMutex.ts";
import { runTask, type Task, type TaskResult } from "./tasks.ts";

export interface CollectionExecutor {
  /** A job for one user: runs after that user's earlier jobs, on the worker they are pinned to. */
  run<J extends Job>(job: J): Promise<JobResult<J>>;
  /** Stateless heavy work: runs at once on a task worker of its own (bounded in number). */
  runTask<T extends Task>(task: T): Promise<TaskResult<T>>;
  close(): Promise<void>;
}

export class InProcessExecutor implements CollectionExecutor {
  private readonly host: CollectionHost;
  private readonly mutex = new KeyedMutex();

  constructor(settings: WorkerSettings) {
    this.host = new CollectionHost(settings);
  }

  run<J extends Job>(job: J): Promise<JobResult<J>> {
    return this.mutex.run(job.user.uuid, () => this.host.handle(job));
  }

  runTask<T extends Task>(task: T): Promise<TaskResult<T>> {
    return runTask(task) as Promise<TaskResult<T>>;
  }

  async close(): Promise<void> {
    this.host.shutdown();
  }
}

interface Pending {
  resolve: (value: unknown) => void;
  reject: (err: Error) => void;
}

class WorkerHandle {
  private worker: Worker;
  private readonly pending = new Map<number, Pending>();
  private nextId = 1;

  constructor(private readonly settings: WorkerSettings) {
    this.worker = this.spawn();
  }

  private spawn(): Worker {
    const worker = new Worker(new URL("./worker.ts", import.meta.url).href);
    worker.onmessage = (event: MessageEvent<JobReplyMessage>) => this.settle(event.data);
    worker.onerror = (event) => this.crashed(event.message);
    worker.postMessage({ init: this.settings });
    return worker;
  }

  call(job: Job): Promise<unknown> {
    const id = this.nextId++;
    return new Promise((resolve, reject) => {
      this.pending.set(id, { resolve, reject });
      this.worker.postMessage({ id, job });
    });
  }

  private settle(reply: JobReplyMessage): void {
    const waiter = this.pending.get(reply.id);
    if (!waiter) return;
    this.pending.delete(reply.id);
    if (reply.ok) waiter.resolve(reply.value);
    else waiter.reject(new SyncError(reply.error.kind, reply.error.message));
  }

  /** A crashed worker loses its open sessions (rolled back by SQLite); start a fresh one. */
  private crashed(message: string): void {
    for (const waiter of this.pending.values())
      waiter.reject(new SyncError("serverError", `worker crashed: ${message}`));
    this.pending.clear();
    this.worker.terminate();
    this.worker = this.spawn();
  }

  async shutdown(): Promise<void> {
    await new Promise<void>((resolve) => {
      this.pending.set(-1, { resolve: () => resolve(), reject: () => resolve() });
      this.worker.postMessage({ shutdown: true });
      setTimeout(resolve, 2000).unref?.();
    });
    this.worker.terminate();
  }
}

export class WorkerPoolExecutor implements CollectionExecutor {
  private readonly workers: WorkerHandle[];
  private readonly mutex = new KeyedMutex();
  private readonly taskSlots: Semaphore;

  constructor(settings: WorkerSettings, size: number) {
    this.workers = Array.from({ length: Math.max(1, size) }, () => new WorkerHandle(settings));
    this.taskSlots = new Semaphore(Math.max(2, size));
  }

  runTask<T extends Task>(task: T): Promise<TaskResult<T>> {
    return this.taskSlots.use(() => runOnTaskWorker(task)) as Promise<TaskResult<T>>;
  }

  run<J extends Job>(job: J): Promise<JobResult<J>> {
    const worker = this.workers[pin(job.user.uuid, this.workers.length)] as WorkerHandle;
    return this.mutex.run(job.user.uuid, () => worker.call(job) as Promise<JobResult<J>>);
  }

  async close(): Promise<void> {
    await Promise.all(this.workers.map((w) => w.shutdown()));
  }
}

/** A fresh thread per task: nothing lingers between users' uploads, and a crash stays contained. */
function runOnTaskWorker(task: Task): Promise<unknown> {
  const worker = new Worker(new URL("./taskWorker.ts", import.meta.url).href);
  return new Promise<unknown>((resolve, reject) => {
    worker.onmessage = (event: MessageEvent<JobReplyMessage>) => {
      const reply = event.data;
      if (reply.ok) resolve(reply.value);
      else reject(new SyncError(reply.error.kind, reply.error.message));
    };
    worker.onerror = (event) =>
      reject(new SyncError("serverError", `task worker: ${event.message}`));
    worker.postMessage({ id: 0, task, instance: instanceTag() });
  }).finally(() => worker.terminate());
}

/** At most `slots` tasks at once; the rest wait their turn. */
class Semaphore {
  private readonly waiting: (() => void)[] = [];

  constructor(private slots: number) {}

  async use<T>(work: () => Promise<T>): Promise<T> {
    if (this.slots > 0) this.slots--;
    else await new Promise<void>((resolve) => this.waiting.push(resolve));
    try {
      return await work();
    } finally {
      const next = this.waiting.shift();
      if (next) next();
      else this.slots++;
    }
  }
}

/** Stable user -> worker assignment (FNV-1a), so a user's open sync stays on one thread. */
function pin(key: string, buckets: number): number {
  let hash = 0x811c9dc5;
  for (let i = 0; i < key.length; i++) hash = Math.imul(hash ^ key.charCodeAt(i), 0x01000193) >>> 0;
  return hash % buckets;
}
