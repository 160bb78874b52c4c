/** Task worker entry: runs stateless tasks (src/executor/tasks.ts) one at a time, for the task pool (taskPool.ts). */
import { collectSoon } from "../platform/memory.ts";
import { useUnicaseExtension } from "../platform/sqlite.ts";
import { lowerThreadPriority } from "../platform/threadPriority.ts";
import { adoptInstanceTag } from "../storage/instance.ts";
import { replyTo } from "./replies.ts";
import { preload, runTask, type Task } from "./tasks.ts";

declare const self: Worker;

/** Every message carries the pool's nice value (ANKISYNCD_TASK_NICE); applied once. */
type Message = { nice: number } & (
  | { id: number; task: Task; instance: string; unicaseExtension: string }
  /** A task of this kind is on its way (TaskPool.warm): no reply. */
  | { preload: Task["kind"]; unicaseExtension: string }
);

let prioritySet = false;

self.onmessage = async (event: MessageEvent<Message>) => {
  if (!prioritySet) {
    prioritySet = true;
    // Tasks are the long, heavy work (checking and converting a 100 MB upload): at a lower
    // priority this thread yields the CPU to the main thread and the collection workers, so
    // other users' small syncs are not slowed by someone's upload.
    lowerThreadPriority(event.data.nice);
  }
  if ("preload" in event.data) {
    // The warm-up opens a collection (in memory) too.
    useUnicaseExtension(event.data.unicaseExtension);
    // A failure here shows again, as the task's reply, when the task loads the same code.
    await preload(event.data.preload).catch(() => {});
    return;
  }
  const { id, task, instance, unicaseExtension } = event.data;
  adoptInstanceTag(instance);
  useUnicaseExtension(unicaseExtension);
  self.postMessage(await replyTo(id, () => runTask(task)));
  // A task's buffers (a zip, a collection's pages) are garbage once it is answered.
  collectSoon();
};
