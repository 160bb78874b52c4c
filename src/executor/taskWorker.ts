/** Task worker entry: runs stateless tasks (src/executor/tasks.ts) one at a time, for the task pool (taskPool.ts). */
import { setPriority } from "node:os";
import { collectSoon } from "../platform/memory.ts";
import { useUnicaseExtension } from "../platform/sqlite.ts";
import { adoptInstanceTag } from "../storage/instance.ts";
import { replyTo } from "./replies.ts";
import { preload, runTask, type Task } from "./tasks.ts";

declare const self: Worker;

/**
 * Tasks are the long, heavy work (checking and converting a 100 MB upload); on Linux a
 * thread's nice value is its own, so this thread yields the CPU to the main thread and the
 * collection workers, and other users' small syncs are not slowed by someone's upload.
 */
const TASK_NICE = 10;
try {
  setPriority(TASK_NICE);
} catch {
  // Not permitted or not supported here: tasks run at normal priority.
}

type Message =
  | { id: number; task: Task; instance: string; unicaseExtension: string }
  /** A task of this kind is on its way (TaskPool.warm): no reply. */
  | { preload: Task["kind"] };

self.onmessage = async (event: MessageEvent<Message>) => {
  if ("preload" in event.data) {
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
