/**
 * The zip files of media sync, through yauzl (reading) and yazl (writing). What they leave to
 * their caller is checked here, so that no size is trusted before it is checked and no file is
 * held in memory whole:
 * - upload zips (client → server) are read from a file on disk. The entry count is bounded
 *   before any entry is read; every entry of the central directory must be stored or deflated,
 *   unencrypted, without zip64 and uniquely named. Each entry is then streamed: yauzl
 *   (`validateEntrySizes`) stops it as soon as it passes its declared length and refuses it if it
 *   falls short; its CRC-32, which yauzl does not check, is computed here on the way.
 * - download zips (server → client) are written to a file, stored entries only, each file
 *   streamed in.
 */
import { once } from "node:events";
import { createWriteStream, type ReadStream, type WriteStream } from "node:fs";
import { open } from "node:fs/promises";
import { crc32 } from "node:zlib";
import { type Entry, fromBufferPromise, openPromise, type ZipFile as ZipArchive } from "yauzl";
import { ZipFile as ZipBuilder } from "yazl";

export class ZipError extends Error {}

export type ZipEntry = Entry;

const METHOD_STORED = 0;
const METHOD_DEFLATED = 8;
const ZIP64_EXTRA_FIELD = 0x0001;
const ZIP32_MAX = 0xffffffff;
const CENTRAL_HEADER_SIZE = 46;
/** Central directory bytes we are willing to read: names are short. */
const MAX_DIRECTORY_BYTES = 1024 * 1024;

/**
 * What the library says about the zip's content becomes a ZipError (a 400 for the caller);
 * failures of the disk (errors with a `syscall`) pass through as they are.
 */
function zipProblem(err: unknown, entry?: string): unknown {
  if (!(err instanceof Error) || err instanceof ZipError || "syscall" in err) return err;
  return new ZipError(entry === undefined ? err.message : `${entry}: ${err.message}`, {
    cause: err,
  });
}

const READ_OPTIONS = {
  lazyEntries: true,
  autoClose: false,
  validateEntrySizes: true,
  strictFileNames: true,
};

/** A zip on disk or in memory, its central directory read and checked. */
export class ZipReader {
  private constructor(
    private readonly zip: ZipArchive,
    readonly entries: ReadonlyMap<string, ZipEntry>,
    private readonly inMemory: boolean,
  ) {}

  static async open(path: string, maxEntries: number): Promise<ZipReader> {
    const zip = await openPromise(path, READ_OPTIONS).catch((err: unknown) =>
      Promise.reject(zipProblem(err)),
    );
    return ZipReader.checked(zip, maxEntries, false);
  }

  /** The same checks on a zip held in memory (a small upload). */
  static async fromBytes(bytes: Uint8Array, maxEntries: number): Promise<ZipReader> {
    const buffer = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
    const zip = await fromBufferPromise(buffer, READ_OPTIONS).catch((err: unknown) =>
      Promise.reject(zipProblem(err)),
    );
    return ZipReader.checked(zip, maxEntries, true);
  }

  private static async checked(
    zip: ZipArchive,
    maxEntries: number,
    inMemory: boolean,
  ): Promise<ZipReader> {
    // Errors reach us through the promises; this keeps a late one from being thrown unhandled.
    zip.on("error", () => {});
    try {
      if (zip.entryCount > maxEntries)
        throw new ZipError(`${zip.entryCount} zip entries, at most ${maxEntries} allowed`);
      const entries = new Map<string, ZipEntry>();
      let directoryBytes = 0;
      for await (const entry of zip.eachEntry()) {
        const name = entry.fileName;
        directoryBytes +=
          CENTRAL_HEADER_SIZE +
          entry.fileNameLength +
          entry.extraFieldLength +
          entry.fileCommentLength;
        if (directoryBytes > MAX_DIRECTORY_BYTES) throw new ZipError("central directory too large");
        // yauzl itself refuses strong encryption; traditional encryption is refused here.
        if (entry.isEncrypted()) throw new ZipError(`${name}: encrypted`);
        if (
          entry.extraFields.some((field) => field.id === ZIP64_EXTRA_FIELD) ||
          entry.compressedSize >= ZIP32_MAX ||
          entry.uncompressedSize >= ZIP32_MAX ||
          entry.relativeOffsetOfLocalHeader >= ZIP32_MAX
        ) {
          throw new ZipError(`${name}: zip64 not supported`);
        }
        const method = entry.compressionMethod;
        if (method !== METHOD_STORED && method !== METHOD_DEFLATED)
          throw new ZipError(`${name}: compression method ${method} not supported`);
        if (entries.has(name)) throw new ZipError(`duplicate zip entry ${name}`);
        entries.set(name, entry);
      }
      return new ZipReader(zip, entries, inMemory);
    } catch (err) {
      await closeArchive(zip, inMemory);
      throw zipProblem(err);
    }
  }

  /** Closes the file, once any stream of it has ended. */
  async close(): Promise<void> {
    await closeArchive(this.zip, this.inMemory);
  }

  /**
   * Streams the entry's content to `sink`. Throws ZipError if the content does not have exactly
   * the declared length and CRC; never passes on more than the declared length.
   */
  async extract(entry: ZipEntry, sink: (chunk: Uint8Array) => unknown): Promise<number> {
    const name = entry.fileName;
    const declared = entry.uncompressedSize;
    const stream = await this.openEntry(entry);
    const chunks: AsyncIterator<Buffer> = stream[Symbol.asyncIterator]();
    let length = 0;
    let crc = 0;
    try {
      for (;;) {
        let next: IteratorResult<Buffer>;
        try {
          next = await chunks.next();
        } catch (err) {
          // Broken deflate data, too many or too few bytes; errors of the sink pass as they are.
          throw zipProblem(err, name);
        }
        if (next.done) break;
        length += next.value.byteLength;
        // yauzl has refused this already; checked again so the sink can rely on it.
        if (length > declared)
          throw new ZipError(`${name}: more data than the declared ${declared} bytes`);
        crc = crc32(next.value, crc);
        await sink(next.value);
      }
    } catch (err) {
      stream.destroy();
      throw err;
    }
    if (length !== declared) throw new ZipError(`${name}: ${length} bytes, ${declared} declared`);
    if (crc >>> 0 !== entry.crc32) throw new ZipError(`${name}: CRC mismatch`);
    return length;
  }

  /** Reads a small entry whole; `maxBytes` bounds its declared size. */
  async readSmall(entry: ZipEntry, maxBytes: number): Promise<Uint8Array> {
    if (entry.uncompressedSize > maxBytes) {
      throw new ZipError(
        `${entry.fileName}: ${entry.uncompressedSize} bytes, at most ${maxBytes} allowed`,
      );
    }
    const out = new Uint8Array(entry.uncompressedSize);
    let offset = 0;
    await this.extract(entry, (chunk) => {
      out.set(chunk, offset);
      offset += chunk.byteLength;
    });
    return out;
  }

  private async openEntry(entry: ZipEntry) {
    try {
      // The local header must name the same entry as the central directory.
      const local = await this.zip.readLocalFileHeaderPromise(entry);
      if (!local.fileName.equals(entry.fileNameRaw))
        throw new ZipError(`${entry.fileName}: local name differs`);
      return await this.zip.openReadStreamPromise(entry);
    } catch (err) {
      throw zipProblem(err, entry.fileName);
    }
  }
}

async function closeArchive(zip: ZipArchive, inMemory: boolean): Promise<void> {
  if (!zip.isOpen) return;
  if (inMemory) {
    // No file to close: its reader never reports "close".
    zip.close();
    return;
  }
  const closed = once(zip, "close");
  zip.close();
  await closed;
}

/** Stored entries, 1980-01-01 00:00 in MS-DOS format and no other timestamp (none is kept). */
const STORED = { compress: false, mtime: new Date(1980, 0, 1), forceDosTimestamp: true };

/** Writes a zip of stored entries to a new file. */
export class StoredZipWriter {
  private readonly zip = new ZipBuilder();
  private readonly inputs: ReadStream[] = [];
  /** Settles when the file is written and closed, or on the first error of yazl or the file. */
  private readonly done: Promise<void>;

  private constructor(private readonly output: WriteStream) {
    this.done = new Promise<void>((resolve, reject) => {
      this.zip.on("error", reject);
      output.on("error", reject);
      output.on("close", resolve);
    });
    this.done.catch(() => {}); // awaited by finish() or abort()
    this.zip.outputStream.pipe(output);
  }

  static async create(path: string): Promise<StoredZipWriter> {
    const output = createWriteStream(path, { flags: "wx" });
    await once(output, "open");
    return new StoredZipWriter(output);
  }

  /** Appends the content of `source`, opened here, before anything is written (so ENOENT leaves no trace). */
  async addFile(name: string, source: string): Promise<void> {
    const input = (await open(source, "r")).createReadStream();
    this.inputs.push(input);
    this.zip.addReadStream(input, name, STORED);
  }

  addBytes(name: string, data: Uint8Array): void {
    this.zip.addBuffer(Buffer.from(data), name, STORED);
  }

  /** Writes the central directory and closes the file; returns the zip's size. */
  async finish(): Promise<number> {
    this.zip.end();
    await this.done;
    return this.output.bytesWritten;
  }

  /** Stops writing and closes every file; the caller removes the zip. */
  async abort(): Promise<void> {
    for (const input of this.inputs) input.destroy();
    this.zip.outputStream.unpipe(this.output);
    this.output.destroy();
    await this.done.catch(() => {});
  }
}

/** A zip of stored entries built in memory (a small download batch). */
export async function storedZipBytes(entries: [string, Uint8Array][]): Promise<Uint8Array> {
  const zip = new ZipBuilder();
  for (const [name, data] of entries)
    zip.addBuffer(Buffer.from(data.buffer, data.byteOffset, data.byteLength), name, STORED);
  zip.end();
  const chunks: Buffer[] = [];
  for await (const chunk of zip.outputStream as AsyncIterable<Buffer>) chunks.push(chunk);
  return Buffer.concat(chunks);
}
