/** Collection work on the calling thread, one job at a time per user (tests). */
import type { CollectionExecutor } from "./executor.ts";
import { CollectionHost } from "./host.ts";
import type { Job, JobResult, WorkerSettings } from "./jobs.ts";
import { KeyedMutex } from "./keyedMutex.ts";
import { runTask, type Task, type TaskResult } from "./tasks.ts";

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
