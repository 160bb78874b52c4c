/** Task worker entry: runs stateless tasks (src/executor/tasks.ts) one at a time, for the task pool (taskPool.ts). */
import { adoptInstanceTag } from "../storage/instance.ts";
import { replyTo } from "./replies.ts";
import { runTask, type Task } from "./tasks.ts";

declare const self: Worker;

self.onmessage = async (event: MessageEvent<{ id: number; task: Task; instance: string }>) => {
  const { id, task, instance } = event.data;
  adoptInstanceTag(instance);
  self.postMessage(await replyTo(id, () => runTask(task)));
};
