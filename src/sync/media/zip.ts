/**
 * The zip files of media sync, read and written here rather than through a library so that no
 * size is trusted before it is checked and no file has to be held in memory whole:
 * - upload zips (client → server) are read from a file on disk: the central directory first,
 *   then each entry streamed (stored, or deflated by older clients) with its length and CRC
 *   checked against what the directory declares;
 * - download zips (server → client) are written to a file, stored entries only, each file
 *   streamed in and its header patched once the CRC is known.
 * Zip64, encryption and split archives are refused: no client produces them, and a media batch
 * never needs them.
 */
import { type FileHandle, open } from "node:fs/promises";
import { crc32 } from "node:zlib";

export class ZipError extends Error {}

export interface ZipEntry {
  name: string;
  method: number;
  flags: number;
  crc: number;
  compressedSize: number;
  size: number;
  localHeaderOffset: number;
}

const EOCD_SIGNATURE = 0x06054b50;
const CENTRAL_SIGNATURE = 0x02014b50;
const LOCAL_SIGNATURE = 0x04034b50;
const EOCD_SIZE = 22;
const CENTRAL_HEADER_SIZE = 46;
const LOCAL_HEADER_SIZE = 30;
const MAX_COMMENT = 0xffff;
const ZIP32_MAX = 0xffffffff;
const METHOD_STORED = 0;
const METHOD_DEFLATED = 8;
const FLAG_ENCRYPTED = 0x0001;
const FLAG_STRONG_ENCRYPTION = 0x0040;
const FLAG_UTF8 = 0x0800;
const CHUNK = 1024 * 1024;
/** Central directory bytes we are willing to read: names are short. */
const MAX_DIRECTORY_BYTES = 1024 * 1024;

const utf8 = new TextDecoder("utf-8", { fatal: true });
const latin1 = new TextDecoder("latin1");

/** A zip on disk, its central directory parsed and checked. */
export class ZipReader {
  private constructor(
    private readonly file: FileHandle,
    readonly entries: ReadonlyMap<string, ZipEntry>,
    private readonly directoryOffset: number,
  ) {}

  static async open(path: string, maxEntries: number): Promise<ZipReader> {
    const file = await open(path, "r");
    try {
      const { entries, directoryOffset } = await readDirectory(file, maxEntries);
      return new ZipReader(file, entries, directoryOffset);
    } catch (err) {
      await file.close();
      throw err;
    }
  }

  async close(): Promise<void> {
    await this.file.close();
  }

  /**
   * Streams the entry's content to `sink`. Throws ZipError if the content does not have exactly
   * the declared length and CRC; never produces more than the declared length.
   */
  async extract(entry: ZipEntry, sink: (chunk: Uint8Array) => unknown): Promise<number> {
    const dataStart = await this.dataStart(entry);
    if (entry.method === METHOD_STORED && entry.compressedSize !== entry.size) {
      throw new ZipError(`${entry.name}: stored entry with different sizes`);
    }
    if (entry.method !== METHOD_STORED && entry.method !== METHOD_DEFLATED) {
      throw new ZipError(`${entry.name}: compression method ${entry.method} not supported`);
    }
    let stream = rangeStream(this.file, dataStart, entry.compressedSize);
    if (entry.method === METHOD_DEFLATED) {
      stream = stream.pipeThrough(
        new DecompressionStream("deflate-raw") as unknown as TransformStream<
          Uint8Array,
          Uint8Array
        >,
      );
    }
    const reader = stream.getReader();
    let length = 0;
    let crc = 0;
    try {
      for (;;) {
        let chunk: Awaited<ReturnType<typeof reader.read>>;
        try {
          chunk = await reader.read();
        } catch (err) {
          // Broken deflate data or a truncated file; errors of the sink pass through as they are.
          throw err instanceof ZipError
            ? err
            : new ZipError(`${entry.name}: ${(err as Error).message}`);
        }
        if (chunk.done) break;
        length += chunk.value.byteLength;
        if (length > entry.size)
          throw new ZipError(`${entry.name}: more data than the declared ${entry.size} bytes`);
        crc = crc32(chunk.value, crc);
        await sink(chunk.value);
      }
    } catch (err) {
      await reader.cancel().catch(() => {});
      throw err;
    }
    if (length !== entry.size)
      throw new ZipError(`${entry.name}: ${length} bytes, ${entry.size} declared`);
    if (crc >>> 0 !== entry.crc) throw new ZipError(`${entry.name}: CRC mismatch`);
    return length;
  }

  /** Reads a small entry whole; `maxBytes` bounds its declared size. */
  async readSmall(entry: ZipEntry, maxBytes: number): Promise<Uint8Array> {
    if (entry.size > maxBytes)
      throw new ZipError(`${entry.name}: ${entry.size} bytes, at most ${maxBytes} allowed`);
    const out = new Uint8Array(entry.size);
    let offset = 0;
    await this.extract(entry, (chunk) => {
      out.set(chunk, offset);
      offset += chunk.byteLength;
    });
    return out;
  }

  private async dataStart(entry: ZipEntry): Promise<number> {
    const header = await readExactly(this.file, entry.localHeaderOffset, LOCAL_HEADER_SIZE);
    const view = viewOf(header);
    if (view.getUint32(0, true) !== LOCAL_SIGNATURE)
      throw new ZipError(`${entry.name}: bad local header`);
    const nameLength = view.getUint16(26, true);
    const extraLength = view.getUint16(28, true);
    const start = entry.localHeaderOffset + LOCAL_HEADER_SIZE + nameLength + extraLength;
    if (start + entry.compressedSize > this.directoryOffset) {
      throw new ZipError(`${entry.name}: data runs into the central directory`);
    }
    const localName = await readExactly(
      this.file,
      entry.localHeaderOffset + LOCAL_HEADER_SIZE,
      nameLength,
    );
    if (decodeName(localName, entry.flags) !== entry.name)
      throw new ZipError(`${entry.name}: local name differs`);
    return start;
  }
}

async function readDirectory(
  file: FileHandle,
  maxEntries: number,
): Promise<{ entries: Map<string, ZipEntry>; directoryOffset: number }> {
  const size = (await file.stat()).size;
  if (size < EOCD_SIZE) throw new ZipError("not a zip file");
  const tailLength = Math.min(size, EOCD_SIZE + MAX_COMMENT);
  const tailStart = size - tailLength;
  const tail = await readExactly(file, tailStart, tailLength);
  const view = viewOf(tail);
  let eocd = -1;
  for (let i = tailLength - EOCD_SIZE; i >= 0; i--) {
    if (
      view.getUint32(i, true) === EOCD_SIGNATURE &&
      i + EOCD_SIZE + view.getUint16(i + 20, true) === tailLength
    ) {
      eocd = i;
      break;
    }
  }
  if (eocd < 0) throw new ZipError("not a zip file (no end of central directory)");
  const disk = view.getUint16(eocd + 4, true);
  const directoryDisk = view.getUint16(eocd + 6, true);
  const entriesOnDisk = view.getUint16(eocd + 8, true);
  const count = view.getUint16(eocd + 10, true);
  const directorySize = view.getUint32(eocd + 12, true);
  const directoryOffset = view.getUint32(eocd + 16, true);
  if (disk !== 0 || directoryDisk !== 0 || entriesOnDisk !== count)
    throw new ZipError("split archives not supported");
  if (count === 0xffff || directorySize === ZIP32_MAX || directoryOffset === ZIP32_MAX) {
    throw new ZipError("zip64 not supported");
  }
  if (count > maxEntries) throw new ZipError(`${count} zip entries, at most ${maxEntries} allowed`);
  if (directorySize > MAX_DIRECTORY_BYTES) throw new ZipError("central directory too large");
  if (directoryOffset + directorySize > tailStart + eocd)
    throw new ZipError("central directory out of bounds");

  const directory = await readExactly(file, directoryOffset, directorySize);
  const dv = viewOf(directory);
  const entries = new Map<string, ZipEntry>();
  let p = 0;
  for (let n = 0; n < count; n++) {
    if (p + CENTRAL_HEADER_SIZE > directorySize || dv.getUint32(p, true) !== CENTRAL_SIGNATURE) {
      throw new ZipError("malformed central directory");
    }
    const flags = dv.getUint16(p + 8, true);
    const nameLength = dv.getUint16(p + 28, true);
    const extraLength = dv.getUint16(p + 30, true);
    const commentLength = dv.getUint16(p + 32, true);
    const next = p + CENTRAL_HEADER_SIZE + nameLength + extraLength + commentLength;
    if (next > directorySize) throw new ZipError("malformed central directory");
    const entry: ZipEntry = {
      name: decodeName(
        directory.subarray(p + CENTRAL_HEADER_SIZE, p + CENTRAL_HEADER_SIZE + nameLength),
        flags,
      ),
      flags,
      method: dv.getUint16(p + 10, true),
      crc: dv.getUint32(p + 16, true),
      compressedSize: dv.getUint32(p + 20, true),
      size: dv.getUint32(p + 24, true),
      localHeaderOffset: dv.getUint32(p + 42, true),
    };
    if (flags & (FLAG_ENCRYPTED | FLAG_STRONG_ENCRYPTION))
      throw new ZipError(`${entry.name}: encrypted`);
    if (
      entry.compressedSize === ZIP32_MAX ||
      entry.size === ZIP32_MAX ||
      entry.localHeaderOffset === ZIP32_MAX
    ) {
      throw new ZipError(`${entry.name}: zip64 not supported`);
    }
    if (entry.localHeaderOffset + LOCAL_HEADER_SIZE > directoryOffset) {
      throw new ZipError(`${entry.name}: local header out of bounds`);
    }
    if (entries.has(entry.name)) throw new ZipError(`duplicate zip entry ${entry.name}`);
    entries.set(entry.name, entry);
    p = next;
  }
  return { entries, directoryOffset };
}

function decodeName(bytes: Uint8Array, flags: number): string {
  try {
    return utf8.decode(bytes);
  } catch {
    if (flags & FLAG_UTF8) throw new ZipError("entry name is not UTF-8");
    return latin1.decode(bytes);
  }
}

function rangeStream(file: FileHandle, start: number, length: number): ReadableStream<Uint8Array> {
  let position = start;
  const end = start + length;
  return new ReadableStream<Uint8Array>({
    async pull(controller) {
      if (position >= end) {
        controller.close();
        return;
      }
      const buffer = new Uint8Array(Math.min(CHUNK, end - position));
      const { bytesRead } = await file.read(buffer, 0, buffer.byteLength, position);
      if (bytesRead === 0) {
        controller.error(new ZipError("zip file truncated"));
        return;
      }
      position += bytesRead;
      controller.enqueue(buffer.subarray(0, bytesRead));
    },
  });
}

async function readExactly(
  file: FileHandle,
  position: number,
  length: number,
): Promise<Uint8Array> {
  const buffer = new Uint8Array(length);
  let done = 0;
  while (done < length) {
    const { bytesRead } = await file.read(buffer, done, length - done, position + done);
    if (bytesRead === 0) throw new ZipError("zip file truncated");
    done += bytesRead;
  }
  return buffer;
}

function viewOf(bytes: Uint8Array): DataView {
  return new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
}

/** Writes a zip of stored entries to a new file. Entry names must be ASCII. */
export class StoredZipWriter {
  private offset = 0;
  private readonly directory: Uint8Array[] = [];
  private count = 0;

  private constructor(private readonly file: FileHandle) {}

  static async create(path: string): Promise<StoredZipWriter> {
    return new StoredZipWriter(await open(path, "wx"));
  }

  /** Appends the content of `source` (opened before anything is written, so ENOENT leaves no trace). */
  async addFile(name: string, source: string): Promise<number> {
    const input = await open(source, "r");
    try {
      const headerAt = this.offset;
      const header = localHeader(name, 0, 0);
      await this.write(header);
      let crc = 0;
      let size = 0;
      const buffer = new Uint8Array(CHUNK);
      for (;;) {
        const { bytesRead } = await input.read(buffer, 0, CHUNK, size);
        if (bytesRead === 0) break;
        const chunk = buffer.subarray(0, bytesRead);
        crc = crc32(chunk, crc);
        size += bytesRead;
        if (size >= ZIP32_MAX) throw new Error(`${source} is too large for a zip entry`);
        await this.write(chunk);
      }
      // Patch CRC and sizes into the local header now that they are known.
      const patch = new Uint8Array(12);
      const view = viewOf(patch);
      view.setUint32(0, crc >>> 0, true);
      view.setUint32(4, size, true);
      view.setUint32(8, size, true);
      await this.file.write(patch, 0, 12, headerAt + 14);
      this.directory.push(centralHeader(name, crc >>> 0, size, headerAt));
      this.count++;
      return size;
    } finally {
      await input.close();
    }
  }

  async addBytes(name: string, data: Uint8Array): Promise<void> {
    const crc = crc32(data) >>> 0;
    const headerAt = this.offset;
    await this.write(localHeader(name, crc, data.byteLength));
    await this.write(data);
    this.directory.push(centralHeader(name, crc, data.byteLength, headerAt));
    this.count++;
  }

  /** Writes the central directory and closes the file; returns the zip's size. */
  async finish(): Promise<number> {
    const directoryAt = this.offset;
    for (const header of this.directory) await this.write(header);
    const directorySize = this.offset - directoryAt;
    const end = new Uint8Array(EOCD_SIZE);
    const view = viewOf(end);
    view.setUint32(0, EOCD_SIGNATURE, true);
    view.setUint16(8, this.count, true);
    view.setUint16(10, this.count, true);
    view.setUint32(12, directorySize, true);
    view.setUint32(16, directoryAt, true);
    await this.write(end);
    await this.file.close();
    return this.offset;
  }

  async abort(): Promise<void> {
    await this.file.close().catch(() => {});
  }

  private async write(bytes: Uint8Array): Promise<void> {
    if (this.offset + bytes.byteLength >= ZIP32_MAX) throw new Error("zip would exceed 4 GiB");
    let done = 0;
    while (done < bytes.byteLength) {
      const { bytesWritten } = await this.file.write(
        bytes,
        done,
        bytes.byteLength - done,
        this.offset + done,
      );
      done += bytesWritten;
    }
    this.offset += bytes.byteLength;
  }
}

/** 1980-01-01 00:00 in MS-DOS date format (no timestamps are kept). */
const DOS_DATE = 0x21;
const VERSION_NEEDED = 20;

function asciiName(name: string): Uint8Array {
  if (!/^[\x20-\x7e]+$/.test(name)) throw new Error(`zip entry names must be ASCII: ${name}`);
  return new TextEncoder().encode(name);
}

function localHeader(name: string, crc: number, size: number): Uint8Array {
  const nameBytes = asciiName(name);
  const header = new Uint8Array(LOCAL_HEADER_SIZE + nameBytes.byteLength);
  const view = viewOf(header);
  view.setUint32(0, LOCAL_SIGNATURE, true);
  view.setUint16(4, VERSION_NEEDED, true);
  view.setUint16(8, METHOD_STORED, true);
  view.setUint16(12, DOS_DATE, true);
  view.setUint32(14, crc, true);
  view.setUint32(18, size, true);
  view.setUint32(22, size, true);
  view.setUint16(26, nameBytes.byteLength, true);
  header.set(nameBytes, LOCAL_HEADER_SIZE);
  return header;
}

function centralHeader(name: string, crc: number, size: number, localOffset: number): Uint8Array {
  const nameBytes = asciiName(name);
  const header = new Uint8Array(CENTRAL_HEADER_SIZE + nameBytes.byteLength);
  const view = viewOf(header);
  view.setUint32(0, CENTRAL_SIGNATURE, true);
  view.setUint16(4, VERSION_NEEDED, true);
  view.setUint16(6, VERSION_NEEDED, true);
  view.setUint16(10, METHOD_STORED, true);
  view.setUint16(14, DOS_DATE, true);
  view.setUint32(16, crc, true);
  view.setUint32(20, size, true);
  view.setUint32(24, size, true);
  view.setUint16(28, nameBytes.byteLength, true);
  view.setUint32(42, localOffset, true);
  header.set(nameBytes, CENTRAL_HEADER_SIZE);
  return header;
}
