/** Memory on Deno: V8 collects and returns memory on its own; no call is exposed without flags. */
export function releaseMemory(): void {}
