/** Worker thread entry: owns the collections of the users pinned to it. */
import { isSyncError } from "../sync/errors.ts";
import { CollectionHost } from "./host.ts";
import type { JobReplyMessage, JobRequestMessage, WorkerSettings } from "./jobs.ts";

declare const self: Worker;

let host: CollectionHost | undefined;

self.onmessage = async (
  event: MessageEvent<{ init: WorkerSettings } | JobRequestMessage | { shutdown: true }>,
) => {
  const message = event.data;
  if ("init" in message) {
    host = new CollectionHost(message.init);
    return;
  }
  if ("shutdown" in message) {
    host?.shutdown();
    self.postMessage({ id: -1, ok: true, value: null });
    return;
  }
  self.postMessage(await runJob(message));
};

async function runJob({ id, job }: JobRequestMessage): Promise<JobReplyMessage> {
  try {
    if (!host) throw new Error("worker used before init");
    return { id, ok: true, value: await host.handle(job) };
  } catch (err) {
    if (isSyncError(err)) return { id, ok: false, error: { kind: err.kind, message: err.message } };
    const detail = err instanceof Error ? (err.stack ?? err.message) : String(err);
    return { id, ok: false, error: { kind: "serverError", message: detail } };
  }
}
