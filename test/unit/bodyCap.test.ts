/** A body stopped by the listener's cap is logged with the 413 the runtime answered. */
import { expect, test } from "bun:test";
import { statusFor } from "../../src/http/status.ts";
import { exceedsListenerCap, ListenerCapExceeded } from "../../src/platform/bodyCap.ts";
import { badRequest } from "../../src/sync/errors.ts";

test("the cap's error is found however it was wrapped, on Bun and on Deno", () => {
  const bun = new Error("Request body exceeded maxRequestBodySize");
  const deno = new ListenerCapExceeded(1000);
  for (const cause of [bun, deno]) {
    expect(exceedsListenerCap(cause)).toBe(true);
    const wrapped = badRequest(`cannot read body: ${cause.message}`, { cause });
    expect(statusFor(wrapped)).toBe(413);
  }
});

test("any other body error keeps its own status", () => {
  expect(statusFor(badRequest("cannot decompress body"))).toBe(400);
  expect(exceedsListenerCap(new Error("connection reset"))).toBe(false);
  expect(statusFor(new Error("boom"))).toBe(500);
});
