/** zstd frames holding small replies uncompressed decode like any other frame. */
import { expect, test } from "bun:test";
import { zstdStoredFrame } from "../../src/compression.ts";

test("a stored frame decodes to its payload, at every content-size field width", () => {
  for (const size of [0, 1, 255, 256, 257, 1024, 65791]) {
    const payload = new Uint8Array(size).map((_, i) => (i * 7) & 0xff);
    expect(new Uint8Array(Bun.zstdDecompressSync(zstdStoredFrame(payload)))).toEqual(payload);
  }
});

test("a payload too large for one stored frame is refused", () => {
  expect(() => zstdStoredFrame(new Uint8Array(65792))).toThrow(RangeError);
});
