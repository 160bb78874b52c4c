/**
 * Storage faults as typed errors with one sentence naming the path, so the client gets the
 * status Anki's own server gives (500 for I/O failures; 409, "try again later", while another
 * program holds the collection) and the log gets one line instead of a stack.
 */
import { storageFault } from "../storage/ioErrors.ts";
import { SyncError } from "./errors.ts";

/** The typed error for a storage fault at `path` (the error's own path if it has one). */
export function asStorageError(err: unknown, path: string): unknown {
  if (err instanceof SyncError) return err;
  const fault = storageFault(err);
  if (!fault) return err;
  const where = String((err as { path?: unknown }).path ?? path);
  const detail = (err as Error).message.split("\n")[0];
  switch (fault) {
    case "diskFull":
      return new SyncError("diskFull", `disk full: ${where} (${detail})`, { cause: err });
    case "readOnly":
      return new SyncError("serverError", `not writable: ${where} (${detail})`, { cause: err });
    case "busy":
      return new SyncError("conflict", `held by another program, try again: ${where} (${detail})`, {
        cause: err,
      });
  }
}
