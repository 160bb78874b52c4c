/**
 * The zip files of media sync: read through yauzl, written here. What yauzl leaves to its
 * caller is checked here, so that no size is trusted before it is checked and no file is
 * held in memory whole:
 * - upload zips (client → server) are read from a file on disk. The entry count is bounded
 *   before any entry is read; every entry of the central directory must be stored or deflated,
 *   unencrypted, without zip64 and uniquely named. Each entry is then streamed: yauzl
 *   (`validateEntrySizes`) stops it as soon as it passes its declared length and refuses it if it
 *   falls short; its CRC-32, which yauzl does not check, is computed here on the way.
 * - download zips (server → client): stored entries only, laid out here (StoredZipLayout).
 */
import { once } from "node:events";
import { crc32, inflateRawSync } from "node:zlib";
import { type Entry, fromBufferPromise, openPromise, type ZipFile as ZipArchive } from "yauzl";

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
    /** The whole zip, when it is held in memory. */
    private readonly bytes: Uint8Array | null,
  ) {}

  static async open(path: string, maxEntries: number): Promise<ZipReader> {
    const zip = await openPromise(path, READ_OPTIONS).catch((err: unknown) =>
      Promise.reject(zipProblem(err)),
    );
    return ZipReader.checked(zip, maxEntries, null);
  }

  /** The same checks on a zip held in memory (a small upload). */
  static async fromBytes(bytes: Uint8Array, maxEntries: number): Promise<ZipReader> {
    const buffer = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
    const zip = await fromBufferPromise(buffer, READ_OPTIONS).catch((err: unknown) =>
      Promise.reject(zipProblem(err)),
    );
    return ZipReader.checked(zip, maxEntries, bytes);
  }

  private static async checked(
    zip: ZipArchive,
    maxEntries: number,
    bytes: Uint8Array | null,
  ): Promise<ZipReader> {
    const inMemory = bytes !== null;
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
      return new ZipReader(zip, entries, bytes);
    } catch (err) {
      await closeArchive(zip, inMemory);
      throw zipProblem(err);
    }
  }

  /** Closes the file, once any stream of it has ended. */
  async close(): Promise<void> {
    await closeArchive(this.zip, this.bytes !== null);
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
    if (this.bytes) return this.readInMemory(entry, this.bytes);
    const out = new Uint8Array(entry.uncompressedSize);
    let offset = 0;
    await this.extract(entry, (chunk) => {
      out.set(chunk, offset);
      offset += chunk.byteLength;
    });
    return out;
  }

  /**
   * `readSmall` of a zip held in memory: the entry's data is sliced out (or inflated, bounded
   * by its declared length) rather than streamed, which cost about 0.1 ms an entry. The same
   * checks: exactly the declared length and CRC.
   */
  private async readInMemory(entry: ZipEntry, zip: Uint8Array): Promise<Uint8Array> {
    const name = entry.fileName;
    const declared = entry.uncompressedSize;
    let data: Uint8Array;
    try {
      // yauzl's header check bounds the data by the zip's size; a stored entry's two sizes are equal.
      const start = (await this.localHeader(entry)).fileDataStart;
      const raw = zip.subarray(start, start + entry.compressedSize);
      data =
        entry.compressionMethod === METHOD_STORED
          ? raw
          : inflateRawSync(raw, { maxOutputLength: Math.max(1, declared) });
    } catch (err) {
      if (err instanceof RangeError)
        throw new ZipError(`${name}: more data than the declared ${declared} bytes`);
      throw zipProblem(err, name);
    }
    if (data.byteLength !== declared)
      throw new ZipError(`${name}: ${data.byteLength} bytes, ${declared} declared`);
    if (crc32(data) >>> 0 !== entry.crc32) throw new ZipError(`${name}: CRC mismatch`);
    return data;
  }

  /** The entry's local header, which must name the same entry as the central directory. */
  private async localHeader(entry: ZipEntry) {
    const local = await this.zip.readLocalFileHeaderPromise(entry);
    if (!local.fileName.equals(entry.fileNameRaw))
      throw new ZipError(`${entry.fileName}: local name differs`);
    return local;
  }

  private async openEntry(entry: ZipEntry) {
    try {
      await this.localHeader(entry);
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

/**
 * Download zips (server → client) are written here rather than through yazl: every entry is
 * stored and its size is known before it is read, so the layout is fixed up front and each file
 * is read straight into its place (yazl's streams cost 2-3 ms a batch of 25 small files, and a
 * second pass over a large one; fflate's zipSync with stored entries, whose CRC-32 is computed
 * in JS, took 1.3 ms for 25 x 8 kB and 15.6 ms for one 5 MB file, against 0.3 and 1.8 ms here
 * with node:zlib's native crc32). The format is that of APPNOTE.TXT, zip32 only: a download
 * batch is 2.5 MiB of files plus at most one file of up to 100 MiB.
 */
const LOCAL_HEADER_SIZE = 30;
const END_RECORD_SIZE = 22;
/** Version 2.0: what an entry without zip64 needs. */
const VERSION_NEEDED = 20;
/** Bit 11: names are UTF-8 (as yazl wrote them). */
const UTF8_NAMES = 0x0800;
/** 1980-01-01 00:00 in MS-DOS format: no timestamp is kept. */
const DOS_DATE = (1 << 5) | 1;

export interface StoredEntrySpec {
  name: string;
  size: number;
}

/** Where each entry's header and data go in a zip of stored entries. */
export class StoredZipLayout {
  readonly names: Uint8Array[];
  /** Offset of each entry's local header. */
  readonly offsets: number[] = [];
  /** Where the central directory starts (the end of the last entry's data). */
  readonly directoryOffset: number;
  readonly size: number;

  constructor(readonly entries: readonly StoredEntrySpec[]) {
    const encoder = new TextEncoder();
    this.names = entries.map((entry) => encoder.encode(entry.name));
    let offset = 0;
    let directory = 0;
    entries.forEach((entry, i) => {
      const nameLength = (this.names[i] as Uint8Array).byteLength;
      this.offsets.push(offset);
      offset += LOCAL_HEADER_SIZE + nameLength + entry.size;
      directory += CENTRAL_HEADER_SIZE + nameLength;
    });
    this.directoryOffset = offset;
    this.size = offset + directory + END_RECORD_SIZE;
    if (this.size >= ZIP32_MAX || entries.length > 0xffff)
      throw new RangeError(`a download zip of ${this.size} bytes needs zip64`);
  }

  /** Where entry `i`'s data starts. */
  dataOffset(i: number): number {
    return (
      (this.offsets[i] as number) + LOCAL_HEADER_SIZE + (this.names[i] as Uint8Array).byteLength
    );
  }

  /** Entry `i`'s local header, once its CRC-32 is known. */
  localHeader(i: number, crc: number): Uint8Array {
    const name = this.names[i] as Uint8Array;
    const header = new Uint8Array(LOCAL_HEADER_SIZE + name.byteLength);
    const view = new DataView(header.buffer);
    view.setUint32(0, 0x04034b50, true);
    this.commonFields(view, 4, i, crc);
    header.set(name, LOCAL_HEADER_SIZE);
    return header;
  }

  /** The central directory and the end record, given every entry's CRC-32. */
  directory(crcs: readonly number[]): Uint8Array {
    const out = new Uint8Array(this.size - this.directoryOffset);
    const view = new DataView(out.buffer);
    let at = 0;
    this.entries.forEach((_, i) => {
      const name = this.names[i] as Uint8Array;
      view.setUint32(at, 0x02014b50, true);
      view.setUint16(at + 4, VERSION_NEEDED, true); // made by: MS-DOS, 2.0
      this.commonFields(view, at + 6, i, crcs[i] as number);
      // comment length, disk number, internal and external attributes: all 0
      view.setUint32(at + 42, this.offsets[i] as number, true);
      out.set(name, at + CENTRAL_HEADER_SIZE);
      at += CENTRAL_HEADER_SIZE + name.byteLength;
    });
    view.setUint32(at, 0x06054b50, true);
    view.setUint16(at + 8, this.entries.length, true);
    view.setUint16(at + 10, this.entries.length, true);
    view.setUint32(at + 12, at, true);
    view.setUint32(at + 16, this.directoryOffset, true);
    return out;
  }

  /** The fields local and central headers share, from "version needed" to "extra length". */
  private commonFields(view: DataView, at: number, i: number, crc: number): void {
    const size = (this.entries[i] as StoredEntrySpec).size;
    view.setUint16(at, VERSION_NEEDED, true);
    view.setUint16(at + 2, UTF8_NAMES, true);
    view.setUint16(at + 4, METHOD_STORED, true);
    view.setUint16(at + 6, 0, true); // time 00:00
    view.setUint16(at + 8, DOS_DATE, true);
    view.setUint32(at + 10, crc >>> 0, true);
    view.setUint32(at + 14, size, true);
    view.setUint32(at + 18, size, true);
    view.setUint16(at + 22, (this.names[i] as Uint8Array).byteLength, true);
  }
}
