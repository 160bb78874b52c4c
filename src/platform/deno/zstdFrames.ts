/**
 * node:zlib's zstd decompressor (Deno 2.9.6 and Bun 1.4.5 alike) ends without error on a
 * truncated frame, where Bun's DecompressionStream("zstd") fails. This pass-through walks the
 * frame layout (header, block sizes, checksum) and fails the stream if it ends mid-frame.
 *
 * It also cuts its output where a block or the checksum ends, so that no chunk holds more than
 * one of them. Deno 2.9.6's zlib raises an error found while it goes on with a write whose
 * output overflowed its buffer as an uncaught exception (the process ends) instead of an
 * 'error' event. With one block per write, the decompressor has consumed the write's input by
 * the time its output overflows, so what remains is only flushing, which cannot fail; a bad
 * checksum arrives as its own write, which has no output before the error.
 */
const MAGIC = 0xfd2fb528;

export function zstdFrameCheck(): TransformStream<Uint8Array, Uint8Array> {
  // need: bytes still to skip (block bodies, checksums) before the next structure to parse
  let skip = 0;
  let state: "magic" | "fhd" | "header" | "block" | "skippable" = "magic";
  let pending = new Uint8Array(0); // bytes of a structure not yet complete
  let want = 4;
  let checksum = 0;
  let trailer = 0; // the checksum after the last block's body: skipped after a cut
  let frames = 0;

  const parse = (buf: Uint8Array): void => {
    switch (state) {
      case "magic": {
        const magic =
          ((buf[0] as number) |
            ((buf[1] as number) << 8) |
            ((buf[2] as number) << 16) |
            ((buf[3] as number) << 24)) >>>
          0;
        if (magic === MAGIC) {
          state = "fhd";
          want = 1;
        } else if ((magic & 0xfffffff0) === 0x184d2a50) {
          state = "skippable";
          want = 4;
        } else throw new Error("zstd: unknown frame magic");
        return;
      }
      case "skippable":
        skip =
          ((buf[0] as number) |
            ((buf[1] as number) << 8) |
            ((buf[2] as number) << 16) |
            ((buf[3] as number) << 24)) >>>
          0;
        state = "magic";
        want = 4;
        return;
      case "fhd": {
        const fhd = buf[0] as number;
        const fcsFlag = fhd >> 6;
        const single = (fhd >> 5) & 1;
        if ((fhd >> 3) & 1) throw new Error("zstd: reserved bit set");
        checksum = (fhd >> 2) & 1 ? 4 : 0;
        const dict = [0, 1, 2, 4][fhd & 3] as number;
        const fcs = [single ? 1 : 0, 2, 4, 8][fcsFlag] as number;
        skip = (single ? 0 : 1) + dict + fcs;
        state = "block";
        want = 3;
        return;
      }
      case "block": {
        const h = (buf[0] as number) | ((buf[1] as number) << 8) | ((buf[2] as number) << 16);
        const last = h & 1;
        const type = (h >> 1) & 3;
        const size = h >>> 3;
        if (type === 3) throw new Error("zstd: reserved block type");
        skip = type === 1 ? 1 : size;
        if (last) {
          trailer = checksum;
          frames++;
          state = "magic";
          want = 4;
        }
        return;
      }
      default:
        return;
    }
  };

  return new TransformStream({
    transform(chunk, controller) {
      let i = 0;
      let from = 0; // start of the part not yet passed on
      while (i < chunk.length) {
        if (skip > 0) {
          const n = Math.min(skip, chunk.length - i);
          skip -= n;
          i += n;
          if (skip === 0) {
            if (i > from) controller.enqueue(chunk.subarray(from, i));
            from = i;
            skip = trailer;
            trailer = 0;
          }
          continue;
        }
        const n = Math.min(want - pending.length, chunk.length - i);
        const next = new Uint8Array(pending.length + n);
        next.set(pending);
        next.set(chunk.subarray(i, i + n), pending.length);
        pending = next;
        i += n;
        if (pending.length === want) {
          const buf = pending;
          pending = new Uint8Array(0);
          parse(buf);
          if (skip === 0 && trailer > 0) {
            // An empty last block: the checksum follows at once, still as its own write.
            if (i > from) controller.enqueue(chunk.subarray(from, i));
            from = i;
            skip = trailer;
            trailer = 0;
          }
        }
      }
      if (chunk.length > from) controller.enqueue(chunk.subarray(from));
    },
    flush() {
      if (frames === 0 || state !== "magic" || skip > 0 || trailer > 0 || pending.length > 0)
        throw new Error("zstd: unexpected end of input");
    },
  });
}
