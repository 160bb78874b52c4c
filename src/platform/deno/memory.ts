/** Memory on Deno: V8 collects and returns memory on its own; no call is exposed without flags. */
export function releaseMemory(): void {}

/** Nothing to do: V8 schedules its own collections. */
export function collectSoon(): void {}

/** Nothing to do: V8 drops unused compiled code and shrinks its heap on its own. */
export function releaseStartupMemory(): void {}
