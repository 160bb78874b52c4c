/** zstd frames holding small replies uncompressed decode like any other frame. */
import { expect, test } from "bun:test";
import {
  compressStream,
  decompressSmall,
  zstdOutputBound,
  zstdStoredFrame,
} from "../../src/compression.ts";

test("a stored frame decodes to its payload, at every content-size field width", () => {
  for (const size of [0, 1, 255, 256, 257, 1024, 65791]) {
    const payload = new Uint8Array(size).map((_, i) => (i * 7) & 0xff);
    expect(new Uint8Array(Bun.zstdDecompressSync(zstdStoredFrame(payload)))).toEqual(payload);
  }
});

test("a payload too large for one stored frame is refused", () => {
  expect(() => zstdStoredFrame(new Uint8Array(65792))).toThrow(RangeError);
});

const bytesOf = (size: number) => new Uint8Array(size).map((_, i) => (i * 31 + (i >> 7)) & 0xff);

test("a small zstd body is decoded in one call, bounded by its frames' layout", () => {
  for (const size of [0, 10, 5000, 300_000]) {
    const payload = bytesOf(size);
    const frame = Bun.zstdCompressSync(payload);
    const bound = zstdOutputBound(frame);
    expect(bound).not.toBeNull();
    expect(bound as number).toBeGreaterThanOrEqual(size);
    expect(decompressSmall(frame, "zstd", 1024 * 1024)).toEqual(payload);
  }
  // Two frames one after the other, and a skippable frame, as a stream would take them.
  const two = Buffer.concat([
    Bun.zstdCompressSync(bytesOf(100)),
    Bun.zstdCompressSync(bytesOf(50)),
  ]);
  expect(decompressSmall(two, "zstd", 1024)?.byteLength).toBe(150);
  const skippable = Buffer.concat([
    new Uint8Array([0x50, 0x2a, 0x4d, 0x18, 2, 0, 0, 0, 9, 9]),
    zstdStoredFrame(bytesOf(20)),
  ]);
  expect(decompressSmall(skippable, "zstd", 1024)).toEqual(bytesOf(20));
});

test("a body that may decompress past the limit, or is not whole zstd, is left to the stream", () => {
  const frame = Bun.zstdCompressSync(bytesOf(5000));
  expect(decompressSmall(frame, "zstd", 100)).toBeNull();
  for (let cut = 1; cut < frame.byteLength; cut += 7) {
    expect(zstdOutputBound(frame.subarray(0, cut))).toBeNull();
  }
  expect(zstdOutputBound(Buffer.concat([frame, new Uint8Array([1])]))).toBeNull();
  expect(zstdOutputBound(new TextEncoder().encode("{}"))).toBeNull();
  expect(zstdOutputBound(new Uint8Array())).toBeNull();
  expect(decompressSmall(frame, "gzip", 1 << 20)).toBeNull();
  // A bomb: RLE blocks of 128 KiB each from 4 bytes apiece.
  const rle = (last: number) => {
    const h = ((128 * 1024) << 3) | (1 << 1) | last;
    return [h & 0xff, (h >> 8) & 0xff, h >> 16, 0x61];
  };
  const bomb = new Uint8Array([
    0x28,
    0xb5,
    0x2f,
    0xfd,
    0x00,
    0x58,
    ...rle(0),
    ...rle(0),
    ...rle(1),
  ]);
  expect(zstdOutputBound(bomb)).toBe(3 * 128 * 1024);
  expect(decompressSmall(bomb, "zstd", 256 * 1024)).toBeNull();
});

test("corrupt content in a well-formed frame throws", () => {
  const broken = Bun.zstdCompressSync(bytesOf(5000)).slice();
  broken[broken.byteLength - 10] = (broken[broken.byteLength - 10] as number) ^ 0xff;
  expect(zstdOutputBound(broken)).not.toBeNull();
  expect(() => decompressSmall(broken, "zstd", 1 << 20)).toThrow();
});

test("a stream compressed fast or small decodes the same; small is smaller on text", async () => {
  // Word-like text from a fixed pseudo-random sequence (compresses like a collection's notes).
  let seed = 20261207;
  const next = () => {
    seed = (seed * 1103515245 + 12345) % 2 ** 31;
    return seed;
  };
  const letters = "etaoinshrdlucmfwypvbgkjqxz";
  const vocabulary = Array.from({ length: 3000 }, () =>
    Array.from({ length: 2 + (next() % 9) }, () => letters[next() % 13]).join(""),
  );
  const text = new TextEncoder().encode(
    Array.from({ length: 150_000 }, () => vocabulary[next() % vocabulary.length]).join(" "),
  );
  const sizes: Record<string, number> = {};
  for (const effort of ["fast", "small"] as const) {
    const body = await new Response(
      compressStream(new Blob([text]).stream(), "zstd", effort),
    ).bytes();
    expect(new Uint8Array(Bun.zstdDecompressSync(body))).toEqual(text);
    sizes[effort] = body.byteLength;
  }
  expect(sizes.small as number).toBeLessThan(sizes.fast as number);
});
