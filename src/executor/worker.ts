/** Worker thread entry: owns the collections of the users pinned to it. */
import { useUnicaseExtension } from "../platform/sqlite.ts";
import { adoptInstanceTag } from "../storage/instance.ts";
import { UserHost } from "./host.ts";
import { type JobRequestMessage, transferables, type WorkerSettings } from "./jobs.ts";
import { replyTo } from "./replies.ts";

declare const self: Worker;

let host: UserHost | undefined;

self.onmessage = async (
  event: MessageEvent<
    { init: WorkerSettings } | JobRequestMessage | { id: number; retire: true } | { shutdown: true }
  >,
) => {
  const message = event.data;
  if ("init" in message) {
    adoptInstanceTag(message.init.instance);
    useUnicaseExtension(message.init.unicaseExtension);
    host = new UserHost(message.init, (ahead) => self.postMessage({ ahead }));
    return;
  }
  if ("shutdown" in message) {
    await host?.checkpointAll();
    host?.shutdown();
    self.postMessage({ id: -1, ok: true, value: null });
    return;
  }
  if ("retire" in message) {
    // Stops only when no user's files are open (an unfinished sync keeps the thread).
    const idle = !host || host.openUsers === 0;
    if (idle) host?.shutdown();
    self.postMessage({ id: message.id, ok: true, value: idle });
    return;
  }
  const reply = await runJob(message);
  // A reply's bytes (an encoded normal-sync answer) are handed over, not copied.
  self.postMessage(reply, reply.ok ? transferables(reply.value) : []);
  // Before this thread takes another message: the client is reading the reply meanwhile.
  host?.afterReplies();
};

function runJob({ id, job }: JobRequestMessage) {
  return replyTo(id, () => {
    if (!host) throw new Error("worker used before init");
    return host.handle(job, id);
  });
}
