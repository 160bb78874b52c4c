/** File streaming through Bun.file, kept here so the rest of the code sees only web streams. */
import { rmSync } from "node:fs";

export function fileStream(path: string): ReadableStream<Uint8Array> {
  return Bun.file(path).stream();
}

export async function fileSize(path: string): Promise<number> {
  return Bun.file(path).size;
}

export class StreamTooLarge extends Error {
  constructor(readonly limit: number) {
    super(`stream exceeds ${limit} bytes`);
  }
}

/**
 * Writes a stream to a new file, failing with StreamTooLarge past `maxBytes` (the partial file
 * is removed). Returns the number of bytes written.
 */
export async function writeStreamToFile(
  stream: ReadableStream<Uint8Array>,
  path: string,
  maxBytes = Number.POSITIVE_INFINITY,
): Promise<number> {
  const writer = Bun.file(path).writer();
  let total = 0;
  try {
    for await (const chunk of stream) {
      total += chunk.byteLength;
      if (total > maxBytes) throw new StreamTooLarge(maxBytes);
      writer.write(chunk);
      await writer.flush();
    }
    await writer.end();
    return total;
  } catch (err) {
    await Promise.resolve(writer.end()).catch(() => {});
    rmSync(path, { force: true });
    throw err;
  }
}

/** A stream over a file that deletes the file once the stream is finished or cancelled. */
export function consumeTempFile(path: string): ReadableStream<Uint8Array> {
  const reader = fileStream(path).getReader();
  const cleanup = () => rmSync(path, { force: true });
  return new ReadableStream<Uint8Array>({
    async pull(controller) {
      const { done, value } = await reader.read();
      if (done) {
        cleanup();
        controller.close();
      } else controller.enqueue(value);
    },
    async cancel(reason) {
      await reader.cancel(reason);
      cleanup();
    },
  });
}
