/** Worker thread entry: owns the collections of the users pinned to it. */
import { useUnicaseExtension } from "../platform/sqlite.ts";
import { adoptInstanceTag } from "../storage/instance.ts";
import { UserHost } from "./host.ts";
import {
  type JobReplyMessage,
  type JobRequestMessage,
  type PackedMessage,
  packMessage,
  transferables,
  unpackMessage,
  type WorkerSettings,
} from "./jobs.ts";
import { replyTo } from "./replies.ts";

declare const self: Worker;

let host: UserHost | undefined;

self.onmessage = async (
  event: MessageEvent<{ init: WorkerSettings } | { shutdown: true } | PackedMessage>,
) => {
  const data = event.data;
  if ("init" in data) {
    adoptInstanceTag(data.init.instance);
    useUnicaseExtension(data.init.unicaseExtension);
    host = new UserHost(data.init);
    return;
  }
  if ("shutdown" in data) {
    await host?.checkpointAll();
    host?.shutdown();
    reply({ id: -1, ok: true, value: null });
    return;
  }
  const message = unpackMessage<JobRequestMessage | { id: number; retire: true }>(data);
  if ("retire" in message) {
    // Stops only when no user's files are open (an unfinished sync keeps the thread).
    const idle = !host || host.openUsers === 0;
    if (idle) host?.shutdown();
    reply({ id: message.id, ok: true, value: idle });
    return;
  }
  reply(await runJob(message));
};

/** A reply's bytes (an encoded normal-sync answer) are handed over, not copied. */
function reply(message: JobReplyMessage): void {
  self.postMessage(packMessage(message), message.ok ? transferables(message.value) : []);
}

function runJob({ id, job }: JobRequestMessage) {
  return replyTo(id, () => {
    if (!host) throw new Error("worker used before init");
    return host.handle(job);
  });
}
