/**
 * Worker threads, the same on Bun and Deno: module workers (Deno has no classic ones). A
 * worker's `onerror` must call `event.preventDefault()`, or Deno ends the whole process.
 */
export function spawnWorker(url: URL): Worker {
  return new Worker(url.href, { type: "module" });
}
