/**
 * A CollectionExecutor that counts what passes through it, for the metrics gauges, without the
 * executor or its workers knowing: jobs and tasks queued or running, and which users' files the
 * workers hold open. A user counts as open from their first job until a release, or until
 * ANKISYNCD_IDLE_CLOSE_SECS after their last job (when the worker's sweep closes them).
 */
import type { CollectionExecutor } from "../executor/executor.ts";
import type { EncodedReply, Job, JobResult, NormalSyncJob, UserRef } from "../executor/jobs.ts";
import type { Task, TaskResult } from "../executor/tasks.ts";

export class CountingExecutor implements CollectionExecutor {
  private jobs = 0;
  private tasks = 0;
  /** uuid -> jobs in flight, and when the last one ended. */
  private readonly users = new Map<string, { running: number; lastEnded: number }>();

  constructor(
    private readonly inner: CollectionExecutor,
    private readonly idleCloseMs: number,
    private readonly now: () => number = Date.now,
  ) {}

  async run<J extends Job>(job: J): Promise<JobResult<J>> {
    const uuid = job.user.uuid;
    const user = this.users.get(uuid) ?? { running: 0, lastEnded: 0 };
    this.users.set(uuid, user);
    user.running++;
    this.jobs++;
    try {
      return await this.inner.run(job);
    } finally {
      this.jobs--;
      user.running--;
      user.lastEnded = this.now();
      if (job.kind === "release" && user.running === 0) this.users.delete(uuid);
    }
  }

  /** Not counted as a job: it is answered now; the step it queues runs inside the executor. */
  answerAhead(job: NormalSyncJob): EncodedReply | undefined {
    const reply = this.inner.answerAhead(job);
    const user = this.users.get(job.user.uuid);
    if (reply && user) user.lastEnded = this.now();
    return reply;
  }

  async runTask<T extends Task>(task: T): Promise<TaskResult<T>> {
    this.tasks++;
    try {
      return await this.inner.runTask(task);
    } finally {
      this.tasks--;
    }
  }

  warmTasks(kind: Task["kind"]): void {
    this.inner.warmTasks(kind);
  }

  warmUser(user: UserRef): void {
    this.inner.warmUser(user);
  }

  tryReceiveOnTask<T extends Task>(
    task: T,
    transfer: Transferable[],
  ): Promise<TaskResult<T>> | null {
    const receiving = this.inner.tryReceiveOnTask(task, transfer);
    if (!receiving) return null;
    this.tasks++;
    return receiving.finally(() => {
      this.tasks--;
    });
  }

  close(): Promise<void> {
    return this.inner.close();
  }

  queueDepth(): { jobs: number; tasks: number } {
    return { jobs: this.jobs, tasks: this.tasks };
  }

  openCollections(): number {
    const cutoff = this.now() - this.idleCloseMs;
    let open = 0;
    for (const [uuid, user] of this.users) {
      if (user.running > 0 || user.lastEnded > cutoff) open++;
      else this.users.delete(uuid);
    }
    return open;
  }
}
