/** Builders for media-sync zips in tests, including deliberately broken ones. */
import { strToU8, type Zippable, zipSync } from "fflate";
import { ZipFile } from "yazl";

export type UploadItem = [name: string, data: Uint8Array | string | null];

/** A zip as clients upload it: entries named by batch position, `_meta` listing [name, entry|null]. */
export function uploadZip(
  items: UploadItem[],
  options: { level?: 0 | 6; meta?: unknown } = {},
): Uint8Array<ArrayBuffer> {
  const entries: Zippable = {};
  const meta = items.map(([name, data], index) => {
    if (data === null) return [name, null];
    entries[String(index)] = typeof data === "string" ? strToU8(data) : data;
    return [name, String(index)];
  });
  entries._meta = strToU8(JSON.stringify(options.meta ?? meta));
  return zipSync(entries, { level: options.level ?? 0 }) as Uint8Array<ArrayBuffer>;
}

/** A zip of arbitrary entries (e.g. a `_meta` with any content). */
export function rawZip(
  entries: Record<string, Uint8Array | string>,
  level: 0 | 6 = 0,
): Uint8Array<ArrayBuffer> {
  const zippable: Zippable = {};
  for (const [name, data] of Object.entries(entries))
    zippable[name] = typeof data === "string" ? strToU8(data) : data;
  return zipSync(zippable, { level }) as Uint8Array<ArrayBuffer>;
}

export interface CentralPatch {
  crc?: number;
  compressedSize?: number;
  size?: number;
  method?: number;
  flags?: number;
}

/** A copy of `zip` whose central-directory record for `name` says something else. */
export function patchCentral(zip: Uint8Array, name: string, patch: CentralPatch): Uint8Array {
  const out = zip.slice();
  const view = new DataView(out.buffer);
  const eocd = out.byteLength - 22;
  if (view.getUint32(eocd, true) !== 0x06054b50) throw new Error("test zip has a comment");
  const count = view.getUint16(eocd + 10, true);
  let p = view.getUint32(eocd + 16, true);
  for (let i = 0; i < count; i++) {
    const nameLength = view.getUint16(p + 28, true);
    const entryName = new TextDecoder().decode(out.subarray(p + 46, p + 46 + nameLength));
    if (entryName === name) {
      if (patch.flags !== undefined) view.setUint16(p + 8, patch.flags, true);
      if (patch.method !== undefined) view.setUint16(p + 10, patch.method, true);
      if (patch.crc !== undefined) view.setUint32(p + 16, patch.crc, true);
      if (patch.compressedSize !== undefined) view.setUint32(p + 20, patch.compressedSize, true);
      if (patch.size !== undefined) view.setUint32(p + 24, patch.size, true);
      return out;
    }
    p += 46 + nameLength + view.getUint16(p + 30, true) + view.getUint16(p + 32, true);
  }
  throw new Error(`no entry ${name}`);
}

/** The central-directory records of `zip`, in order. */
export function centralEntries(zip: Uint8Array): (Required<CentralPatch> & { name: string })[] {
  const view = new DataView(zip.buffer, zip.byteOffset, zip.byteLength);
  const eocd = zip.byteLength - 22;
  const count = view.getUint16(eocd + 10, true);
  let p = view.getUint32(eocd + 16, true);
  const entries = [];
  for (let i = 0; i < count; i++) {
    const nameLength = view.getUint16(p + 28, true);
    entries.push({
      name: new TextDecoder().decode(zip.subarray(p + 46, p + 46 + nameLength)),
      flags: view.getUint16(p + 8, true),
      method: view.getUint16(p + 10, true),
      crc: view.getUint32(p + 16, true),
      compressedSize: view.getUint32(p + 20, true),
      size: view.getUint32(p + 24, true),
    });
    p += 46 + nameLength + view.getUint16(p + 30, true) + view.getUint16(p + 32, true);
  }
  return entries;
}

/** The central-directory values of `name`. */
export function centralOf(zip: Uint8Array, name: string): Required<CentralPatch> {
  const { name: _, ...entry } =
    centralEntries(zip).find((e) => e.name === name) ?? fail(`no entry ${name}`);
  return entry;
}

function fail(message: string): never {
  throw new Error(message);
}

/** A zip written by yazl, for layouts fflate does not write: zip64 records, repeated names. */
export async function yazlZip(
  entries: [name: string, data: string][],
  options: { zip64Entries?: boolean; zip64End?: boolean } = {},
): Promise<Uint8Array> {
  const zip = new ZipFile();
  for (const [name, data] of entries) {
    zip.addBuffer(Buffer.from(data), name, {
      compress: false,
      forceZip64Format: options.zip64Entries ?? false,
    });
  }
  zip.end({ forceZip64Format: options.zip64End ?? false, comment: "" });
  const chunks: Buffer[] = [];
  for await (const chunk of zip.outputStream) chunks.push(chunk as Buffer);
  return new Uint8Array(Buffer.concat(chunks));
}
