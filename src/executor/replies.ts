/** Turns the outcome of work done on a worker thread into a reply message. */
import { IdleRelease } from "../platform/memory.ts";
import { isSyncError } from "../sync/errors.ts";
import type { JobReplyMessage } from "./jobs.ts";

/** This thread's memory goes back to the system once it has had no job for a second. */
const idle = new IdleRelease(1000);

export async function replyTo(id: number, work: () => unknown): Promise<JobReplyMessage> {
  idle.started();
  try {
    return { id, ok: true, value: await work() };
  } catch (err) {
    if (isSyncError(err)) return { id, ok: false, error: { kind: err.kind, message: err.message } };
    const detail = err instanceof Error ? (err.stack ?? err.message) : String(err);
    return { id, ok: false, error: { kind: "serverError", message: detail } };
  } finally {
    idle.finished();
  }
}
