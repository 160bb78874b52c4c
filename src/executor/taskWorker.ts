/** Task worker entry: runs stateless tasks (src/executor/tasks.ts) one at a time, for the task pool (taskPool.ts). */
import { useUnicaseExtension } from "../platform/sqlite.ts";
import { adoptInstanceTag } from "../storage/instance.ts";
import { replyTo } from "./replies.ts";
import { runTask, type Task } from "./tasks.ts";

declare const self: Worker;

self.onmessage = async (
  event: MessageEvent<{ id: number; task: Task; instance: string; unicaseExtension: string }>,
) => {
  const { id, task, instance, unicaseExtension } = event.data;
  adoptInstanceTag(instance);
  useUnicaseExtension(unicaseExtension);
  self.postMessage(await replyTo(id, () => runTask(task)));
};
