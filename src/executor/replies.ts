/** Turns the outcome of work done on a worker thread into a reply message. */
import { isSyncError } from "../sync/errors.ts";
import type { JobReplyMessage } from "./jobs.ts";

export async function replyTo(id: number, work: () => unknown): Promise<JobReplyMessage> {
  try {
    return { id, ok: true, value: await work() };
  } catch (err) {
    if (isSyncError(err)) return { id, ok: false, error: { kind: err.kind, message: err.message } };
    const detail = err instanceof Error ? (err.stack ?? err.message) : String(err);
    return { id, ok: false, error: { kind: "serverError", message: detail } };
  }
}
