/**
 * Worker threads, the same on Bun and Deno: module workers (Deno has no classic ones). A
 * worker's `onerror` must call `event.preventDefault()`, or Deno ends the whole process.
 */
export interface WorkerOptions {
  /**
   * A small JS heap (Bun's `smol`: JavaScriptCore's small-heap settings, so it collects
   * sooner and holds less memory, at some CPU cost); Deno has no such setting and ignores it.
   */
  small?: boolean;
}

export function spawnWorker(url: URL, options: WorkerOptions = {}): Worker {
  return new Worker(url.href, {
    type: "module",
    smol: options.small ?? false,
  } as globalThis.WorkerOptions);
}
