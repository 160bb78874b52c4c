/** File streaming through Bun.file, kept here so the rest of the code sees only web streams. */
import { rmSync } from "node:fs";
import { type FileHandle, open } from "node:fs/promises";

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
 * Writes a stream to a new file, failing with StreamTooLarge past `maxBytes`; on any failure
 * the partial file is removed and the error names the path. Returns the number of bytes
 * written. Plain file handles rather than Bun's FileSink, which drops write errors such as a
 * full disk (the file just comes out short).
 */
export async function writeStreamToFile(
  stream: ReadableStream<Uint8Array>,
  path: string,
  maxBytes = Number.POSITIVE_INFINITY,
): Promise<number> {
  let file: FileHandle | undefined;
  let total = 0;
  try {
    file = await open(path, "wx");
    for await (const chunk of stream) {
      total += chunk.byteLength;
      if (total > maxBytes) throw new StreamTooLarge(maxBytes);
      let done = 0;
      while (done < chunk.byteLength)
        done += (await file.write(chunk, done, chunk.byteLength - done)).bytesWritten;
    }
    await file.close();
    file = undefined;
    return total;
  } catch (err) {
    await file?.close().catch(() => {});
    rmSync(path, { force: true });
    if (err instanceof Error && !(err instanceof StreamTooLarge))
      (err as NodeJS.ErrnoException).path ??= path;
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
