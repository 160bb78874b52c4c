/**
 * A request body past the listener's cap on every body (`maxRequestBodySize`), met while it
 * arrives (sent chunked, so no length said so up front). The runtime, not the handler, answers
 * such a request 413 (Bun does itself; the Deno listener makes its body fail with this error),
 * so the status logged for it must be 413 too.
 */
export class ListenerCapExceeded extends Error {
  constructor(limit: number) {
    super(`request body exceeds the server's cap of ${limit} bytes`);
    this.name = "ListenerCapExceeded";
  }
}

/** Bun's own error for the same thing, as a body read rejects with it. */
const BUN_CAP_MESSAGE = /exceeded maxRequestBodySize/;

/** Whether `err`, or an error it was made from, is a body read stopped by the listener's cap. */
export function exceedsListenerCap(err: unknown): boolean {
  for (let e = err; e instanceof Error; e = e.cause) {
    if (e instanceof ListenerCapExceeded || BUN_CAP_MESSAGE.test(e.message)) return true;
  }
  return false;
}
