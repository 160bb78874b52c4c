/**
 * Where collection work runs. The server uses a pool of worker threads (users pinned to a
 * worker, one job at a time per user) plus warm task workers for heavy stateless work
 * (taskPool.ts); threads start when needed and stop when idle. The main thread never loads
 * the collection code.
 */
import { IdleRelease } from "../platform/memory.ts";
import { spawnWorker } from "../platform/workers.ts";
import { SyncError } from "../sync/errors.ts";
import { isEmptyArgsBody } from "../sync/requestBody.ts";
import {
  type AheadReply,
  type EncodedReply,
  type Job,
  type JobReplyMessage,
  type JobResult,
  type NormalSyncJob,
  transferables,
  type UserRef,
  type WorkerMessage,
  type WorkerSettings,
} from "./jobs.ts";
import { KeyedMutex } from "./keyedMutex.ts";
import { TaskPool } from "./taskPool.ts";
import type { Task, TaskResult } from "./tasks.ts";

export interface CollectionExecutor {
  /** A job for one user: runs after that user's earlier jobs, on the worker they are pinned to. */
  run<J extends Job>(job: J): Promise<JobResult<J>>;
  /** Stateless heavy work: runs on a task worker of its own (bounded in number), not the user's. */
  runTask<T extends Task>(task: T): Promise<TaskResult<T>>;
  /**
   * A task of `kind` will follow shortly (an upload's body is arriving): get a task thread
   * ready for it now (started if none is idle, its code loaded).
   */
  warmTasks(kind: Task["kind"]): void;
  /**
   * A job of this user will follow shortly (the user has just logged in): start the thread the
   * user is pinned to now, if it is not running, so its start and module loading are not paid by
   * the first request of the sync.
   */
  warmUser(user: UserRef): void;
  /**
   * The reply to a normal-sync `chunk`, now, when the user's worker has already made it and
   * nothing else of the user's is under way; the worker's session then moves on as if it had
   * answered. Undefined otherwise: the request is a job as any other (`run`).
   */
  answerAhead(job: NormalSyncJob): EncodedReply | undefined;
  /**
   * A task that receives a body through the port in `transfer` (as long as the client takes to
   * send it), on a task thread outside the slots of `runTask`; null when none may start now.
   */
  tryReceiveOnTask<T extends Task>(
    task: T,
    transfer: Transferable[],
  ): Promise<TaskResult<T>> | null;
  close(): Promise<void>;
}

interface Pending {
  resolve: (value: unknown) => void;
  reject: (err: Error) => void;
}

/**
 * One collection worker thread, started on its first job. Once it has had no job for
 * `idleMs` and has closed every user's files (the host's idle sweep), it is stopped, so an
 * idle server keeps no worker heap; the next job starts it again.
 */
class CollectionWorker {
  private worker: Worker | null = null;
  private readonly pending = new Map<number, Pending>();
  private nextId = 1;
  private lastUsed = 0;
  private retiring: Promise<void> | null = null;
  /** Per user: the last job sent, and when. */
  private readonly lastJobs = new Map<string, { id: number; at: number }>();
  /** Per user: the reply to their next `chunk`, offered by the thread after their last job. */
  private readonly aheads = new Map<string, AheadReply>();

  constructor(
    private readonly settings: WorkerSettings,
    private readonly idleMs: number,
  ) {}

  get running(): boolean {
    return this.worker !== null;
  }

  private spawn(): Worker {
    const worker = spawnWorker(new URL("./worker.ts", import.meta.url));
    worker.onmessage = (event: MessageEvent<WorkerMessage>) => {
      const message = event.data;
      if ("ahead" in message) this.offered(message.ahead);
      else this.settle(message);
    };
    worker.onerror = (event) => {
      event.preventDefault(); // Deno: otherwise a worker's error ends the whole process
      this.crashed(worker, event.message);
    };
    worker.postMessage({ init: this.settings });
    this.worker = worker;
    return worker;
  }

  /** Starts the thread ahead of a job; it counts as used now, so the idle sweep leaves it a while. */
  warm(): void {
    if (this.worker || this.retiring) return;
    this.spawn();
    this.lastUsed = Date.now();
  }

  async call(job: Job): Promise<unknown> {
    while (this.retiring) await this.retiring;
    return this.send({ job });
  }

  private send(message: { job: Job } | { retire: true }): Promise<unknown> {
    const worker = this.worker ?? this.spawn();
    const id = this.nextId++;
    this.lastUsed = Date.now();
    if ("job" in message) {
      // Whatever the thread offered this user before this job no longer stands.
      this.aheads.delete(message.job.user.uuid);
      this.lastJobs.set(message.job.user.uuid, { id, at: this.lastUsed });
    }
    return new Promise((resolve, reject) => {
      this.pending.set(id, { resolve, reject });
      // A normal-sync request's body is handed over, not copied: the main thread is done with it.
      const handed =
        "job" in message && message.job.kind === "normalSync" ? message.job.body : null;
      worker.postMessage({ id, ...message }, transferables(handed));
    });
  }

  /** Kept only if it follows the user's last job: a later job has moved the session on. */
  private offered(ahead: AheadReply): void {
    if (this.lastJobs.get(ahead.uuid)?.id === ahead.afterJob) this.aheads.set(ahead.uuid, ahead);
  }

  /**
   * The reply offered for this request's session and encoding, taken. `maxAgeMs`: no older
   * than that since the user's last job, well inside the time after which the thread rolls an
   * idle session back, so the offer cannot outlive its session.
   */
  takeAhead(job: NormalSyncJob, maxAgeMs: number): EncodedReply | undefined {
    const uuid = job.user.uuid;
    const ahead = this.aheads.get(uuid);
    const last = this.lastJobs.get(uuid);
    if (!ahead || !last || Date.now() - last.at > maxAgeMs) return undefined;
    if (job.skey === "" || ahead.skey !== job.skey || ahead.format !== job.reply) return undefined;
    this.aheads.delete(uuid);
    return ahead.reply;
  }

  private settle(reply: JobReplyMessage): void {
    const waiter = this.pending.get(reply.id);
    if (!waiter) return;
    this.pending.delete(reply.id);
    this.lastUsed = Date.now();
    if (reply.ok) waiter.resolve(reply.value);
    else waiter.reject(new SyncError(reply.error.kind, reply.error.message));
  }

  /** A crashed worker loses its open sessions (rolled back by SQLite); the next job starts a fresh one. */
  private crashed(worker: Worker, message: string): void {
    if (worker !== this.worker) return;
    for (const waiter of this.pending.values())
      waiter.reject(new SyncError("serverError", `worker crashed: ${message}`));
    this.pending.clear();
    this.forget();
    worker.terminate();
    this.worker = null;
  }

  /** The thread's sessions are gone: nothing it offered stands. */
  private forget(): void {
    this.aheads.clear();
    this.lastJobs.clear();
  }

  /** Stops the thread if it has been idle long enough and holds no user's files open. */
  retireIfIdle(now = Date.now()): void {
    const worker = this.worker;
    if (!worker || this.retiring || this.pending.size > 0 || now - this.lastUsed < this.idleMs)
      return;
    this.retiring = this.send({ retire: true })
      .then((stopped) => {
        if (stopped === true && this.worker === worker) {
          this.forget();
          worker.terminate();
          this.worker = null;
        }
      })
      .catch(() => {})
      .finally(() => {
        this.retiring = null;
      });
  }

  async shutdown(): Promise<void> {
    while (this.retiring) await this.retiring;
    const worker = this.worker;
    if (!worker) return;
    await new Promise<void>((resolve) => {
      this.pending.set(-1, { resolve: () => resolve(), reject: () => resolve() });
      worker.postMessage({ shutdown: true });
      setTimeout(resolve, 2000).unref?.();
    });
    this.forget();
    worker.terminate();
    this.worker = null;
  }
}

/**
 * A task worker holds a JS heap of its own (~20 MB) for work that comes in bursts (the batches
 * of one large media sync, one full upload): kept warm between the requests of a burst, stopped
 * soon after it rather than after the users' idle time, so it does not add to a later peak.
 */
const TASK_IDLE_MS = 1000;

export class WorkerPoolExecutor implements CollectionExecutor {
  private readonly workers: CollectionWorker[];
  private readonly mutex = new KeyedMutex();
  private readonly tasks: TaskPool;
  private readonly idle = new IdleRelease(1000);
  private readonly sweeper: ReturnType<typeof setInterval>;
  /** How old an offered reply may be (`takeAhead`): half the idle session's timeout. */
  private readonly aheadMaxAgeMs: number;

  constructor(settings: WorkerSettings, size: number) {
    this.aheadMaxAgeMs = settings.syncSessionTimeoutSecs * 500;
    const idleMs = settings.idleCloseSecs * 1000;
    this.workers = Array.from(
      { length: Math.max(1, size) },
      () => new CollectionWorker(settings, idleMs),
    );
    this.tasks = new TaskPool(Math.max(2, size), Math.min(idleMs, TASK_IDLE_MS), settings.taskNice);
    this.sweeper = setInterval(
      () => {
        for (const worker of this.workers) worker.retireIfIdle();
      },
      Math.max(250, idleMs / 2),
    );
    this.sweeper.unref?.();
  }

  runTask<T extends Task>(task: T): Promise<TaskResult<T>> {
    return this.tracked(() => this.tasks.run(task) as Promise<TaskResult<T>>);
  }

  warmTasks(kind: Task["kind"]): void {
    this.tasks.warm(kind);
  }

  tryReceiveOnTask<T extends Task>(
    task: T,
    transfer: Transferable[],
  ): Promise<TaskResult<T>> | null {
    const receiving = this.tasks.tryReceive(task, transfer);
    return receiving && this.tracked(() => receiving as Promise<TaskResult<T>>);
  }

  warmUser(user: UserRef): void {
    this.workerOf(user).warm();
  }

  private workerOf(user: UserRef): CollectionWorker {
    return this.workers[pin(user.uuid, this.workers.length)] as CollectionWorker;
  }

  /**
   * Still checked here, as the worker would: the session key and encoding (`takeAhead`) and the
   * body (empty arguments); anything else, or a job of the user under way, takes the job's path.
   */
  answerAhead(job: NormalSyncJob): EncodedReply | undefined {
    if (job.method !== "chunk" || !this.mutex.idle(job.user.uuid)) return undefined;
    if (!isEmptyArgsBody(job.body)) return undefined;
    const reply = this.workerOf(job.user).takeAhead(job, this.aheadMaxAgeMs);
    if (!reply) return undefined;
    // Queued before any later job of the user: the thread's session takes this chunk first.
    // A failure there is the thread's to log; the session's next request meets it.
    this.run({ ...job, answered: true }).catch(() => {});
    return reply;
  }

  run<J extends Job>(job: J): Promise<JobResult<J>> {
    const worker = this.workerOf(job.user);
    return this.tracked(() =>
      this.mutex.run(job.user.uuid, () => worker.call(job) as Promise<JobResult<J>>),
    );
  }

  /** The main thread's memory too (request bodies, replies) goes back once no job has run for a second. */
  private async tracked<R>(work: () => Promise<R>): Promise<R> {
    this.idle.started();
    try {
      return await work();
    } finally {
      this.idle.finished();
    }
  }

  /** Threads alive now: collection workers and task workers (for tests and metrics). */
  threads(): { collection: number; task: number } {
    return { collection: this.workers.filter((w) => w.running).length, task: this.tasks.size };
  }

  async close(): Promise<void> {
    clearInterval(this.sweeper);
    this.tasks.close();
    await Promise.all(this.workers.map((w) => w.shutdown()));
  }
}

/** Stable user -> worker assignment (FNV-1a), so a user's open sync stays on one thread. */
function pin(key: string, buckets: number): number {
  let hash = 0x811c9dc5;
  for (let i = 0; i < key.length; i++) hash = Math.imul(hash ^ key.charCodeAt(i), 0x01000193) >>> 0;
  return hash % buckets;
}
