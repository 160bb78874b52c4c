/** Jobs and replies cross to and from collection workers as JSON plus their byte arrays. */
import { expect, test } from "bun:test";
import { packMessage, unpackMessage } from "../../src/executor/jobs.ts";

test("a job and a reply come back as they were, byte arrays and Buffers included", () => {
  const job = {
    id: 7,
    job: {
      kind: "normalSync",
      user: { uuid: "u-1" },
      method: "applyChunk",
      skey: "k",
      body: { bytes: new Uint8Array([1, 2, 3]), compression: "zstd", maxBytes: 10 },
      reply: "zstd",
    },
  };
  const reply = { id: 7, ok: true, value: { body: Buffer.from([9, 8]), originalSize: 2 } };
  const packedJob = packMessage(job);
  expect(packedJob.bytes).toHaveLength(1);
  expect(unpackMessage(packedJob)).toEqual(job);
  const back = unpackMessage<typeof reply>(packMessage(reply));
  expect(back.value.body).toBeInstanceOf(Uint8Array);
  expect([...back.value.body]).toEqual([9, 8]);
  expect(back.value.originalSize).toBe(2);
});

test("an undefined result arrives as null; arrays and strings untouched", () => {
  expect(unpackMessage(packMessage(undefined))).toBeNull();
  const changes = [
    ["a.png", 3, "ab"],
    ["\u0000bytes", 4, ""],
  ];
  expect(unpackMessage(packMessage({ id: 1, ok: true, value: changes }))).toEqual({
    id: 1,
    ok: true,
    value: changes,
  });
});
