/**
 * The executor as a node of several sees it: a user's job runs only while this node serves the
 * user. The check is made as the job is queued, so a job cannot reopen files that a release
 * (a move, a lost lease) has just closed for the next node.
 */
import type { CollectionExecutor } from "../executor/executor.ts";
import type { EncodedReply, Job, JobResult, NormalSyncJob, UserRef } from "../executor/jobs.ts";
import type { Task, TaskResult } from "../executor/tasks.ts";
import { PlacementError } from "./errors.ts";
import type { NodePlacement } from "./nodePlacement.ts";

export class PlacedExecutor implements CollectionExecutor {
  constructor(
    private readonly inner: CollectionExecutor,
    private readonly placement: NodePlacement,
  ) {}

  run<J extends Job>(job: J): Promise<JobResult<J>> {
    if (job.kind !== "release" && !this.placement.serving(job.user.uuid)) {
      return Promise.reject(
        new PlacementError("elsewhere", "user is no longer served by this node"),
      );
    }
    return this.inner.run(job);
  }

  answerAhead(job: NormalSyncJob): EncodedReply | undefined {
    return this.placement.serving(job.user.uuid) ? this.inner.answerAhead(job) : undefined;
  }

  runTask<T extends Task>(task: T): Promise<TaskResult<T>> {
    return this.inner.runTask(task);
  }

  warmTasks(kind: Task["kind"]): void {
    this.inner.warmTasks(kind);
  }

  /** Only for a user this node serves: another node runs the jobs of the others. */
  warmUser(user: UserRef): void {
    if (this.placement.serving(user.uuid)) this.inner.warmUser(user);
  }

  tryReceiveOnTask<T extends Task>(
    task: T,
    transfer: Transferable[],
  ): Promise<TaskResult<T>> | null {
    return this.inner.tryReceiveOnTask(task, transfer);
  }

  close(): Promise<void> {
    return this.inner.close();
  }
}
