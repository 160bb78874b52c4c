/** Builders for media-sync zips in tests, including deliberately broken ones. */
import { strToU8, type Zippable, zipSync } from "fflate";

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

/** The central-directory values of `name`. */
export function centralOf(zip: Uint8Array, name: string): Required<CentralPatch> {
  const view = new DataView(zip.buffer, zip.byteOffset, zip.byteLength);
  const eocd = zip.byteLength - 22;
  const count = view.getUint16(eocd + 10, true);
  let p = view.getUint32(eocd + 16, true);
  for (let i = 0; i < count; i++) {
    const nameLength = view.getUint16(p + 28, true);
    if (new TextDecoder().decode(zip.subarray(p + 46, p + 46 + nameLength)) === name) {
      return {
        flags: view.getUint16(p + 8, true),
        method: view.getUint16(p + 10, true),
        crc: view.getUint32(p + 16, true),
        compressedSize: view.getUint32(p + 20, true),
        size: view.getUint32(p + 24, true),
      };
    }
    p += 46 + nameLength + view.getUint16(p + 30, true) + view.getUint16(p + 32, true);
  }
  throw new Error(`no entry ${name}`);
}
