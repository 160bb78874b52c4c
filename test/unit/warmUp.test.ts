/**
 * The conversion's warm-up (storage/collection/convert/warmUp.ts), which a task thread runs
 * ahead of an upload's check and whose failures the preload swallows: it must work on its own,
 * on a new empty collection in memory.
 */
import { expect, test } from "bun:test";
import { warmUpConversion } from "../../src/storage/collection/convert/warmUp.ts";

test("the warm-up converts an empty collection to schema 18 and back without error", () => {
  expect(() => warmUpConversion()).not.toThrow();
  // Once per thread: the second call has nothing to do.
  expect(() => warmUpConversion()).not.toThrow();
});
