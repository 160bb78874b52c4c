/** Media-sync steps against a real store on disk, without HTTP: usn rules, hostile uploads, downloads. */
import { afterEach, beforeEach, describe, expect, test } from "bun:test";
import { createHash } from "node:crypto";
import {
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  statSync,
  writeFileSync,
} from "node:fs";
import { tmpdir } from "node:os";
import { join, relative } from "node:path";
import { unzipSync } from "fflate";
import { MediaStore } from "../../src/storage/media/mediaStore.ts";
import { userPaths } from "../../src/storage/paths.ts";
import { SyncError } from "../../src/sync/errors.ts";
import { mediaChanges } from "../../src/sync/media/changes.ts";
import { downloadFiles } from "../../src/sync/media/download.ts";
import { MAX_MEDIA_FILE_BYTES } from "../../src/sync/media/limits.ts";
import { mediaSanity } from "../../src/sync/media/sanity.ts";
import { type MediaUploadResult, uploadSmallChanges } from "../../src/sync/media/upload.ts";
import { ZipReader } from "../../src/sync/media/zip.ts";
import { uploadChanges } from "../helpers/mediaUpload.ts";
import {
  centralEntries,
  centralOf,
  patchCentral,
  rawZip,
  type UploadItem,
  uploadZip,
  yazlZip,
} from "../helpers/mediaZip.ts";

let dataDir: string;
let store: MediaStore;
/** How `upload` stores a batch (the suites below run both ways). */
let uploadWay: "staged" | "in place" = "staged";
const LIMITS = { maxUncompressedBytes: 300 * 1024 * 1024 };

beforeEach(() => {
  uploadWay = "staged";
  dataDir = mkdtempSync(join(tmpdir(), "ankisyncd-media-"));
  store = new MediaStore(userPaths(dataDir, "user-1"), { networkFs: false });
  mkdirSync(store.paths.dir, { recursive: true });
});
afterEach(() => {
  store.close();
  rmSync(dataDir, { recursive: true, force: true });
});

const bytes = (text: string) => new TextEncoder().encode(text);
const sha1 = (data: Uint8Array | string) => createHash("sha1").update(data).digest("hex");

async function upload(
  zip: Uint8Array,
  options: { compression?: "none" | "zstd"; limits?: typeof LIMITS; asIs?: boolean } = {},
): Promise<MediaUploadResult> {
  const incomingPath = store.tempPath(".upload");
  const compress = options.compression === "zstd" && !options.asIs;
  writeFileSync(incomingPath, compress ? Bun.zstdCompressSync(zip) : zip);
  const compression = options.compression ?? "none";
  const limits = options.limits ?? LIMITS;
  if (uploadWay === "in place") {
    const body = readFileSync(incomingPath);
    const small = await uploadSmallChanges(store, body, compression, limits).finally(() =>
      rmSync(incomingPath, { force: true }),
    );
    if (small) {
      await store.settled();
      return small;
    }
    writeFileSync(incomingPath, body);
  }
  return uploadChanges(store, { incomingPath, compression }, limits);
}

const put = (items: UploadItem[]) => upload(uploadZip(items));

/** Everything observable: database rows and totals, the media folder, every path under the data folder. */
function snapshot() {
  const db = store.db();
  const files = Object.fromEntries(
    readdirSync(store.folder)
      .sort()
      .map((name) => [name, sha1(readFileSync(join(store.folder, name)))]),
  );
  const tree: string[] = [];
  const walk = (dir: string) => {
    for (const name of readdirSync(dir)) {
      const path = join(dir, name);
      tree.push(relative(dataDir, path));
      if (statSync(path).isDirectory()) walk(path);
    }
  };
  walk(dataDir);
  return { meta: db.meta(), rows: db.changesAfter(-1, 1_000_000), files, tree: tree.sort() };
}

async function expectRefused(
  zip: Uint8Array,
  why: RegExp,
  options: Parameters<typeof upload>[1] = {},
) {
  const before = snapshot();
  const error = await upload(zip, options).then(
    () => null,
    (err: unknown) => err,
  );
  expect(error).toBeInstanceOf(SyncError);
  expect((error as SyncError).kind).toBe("badRequest");
  expect((error as SyncError).message).toMatch(why);
  expect(snapshot()).toEqual(before);
}

// Both ways a batch is stored: in place (small, journaled; a body that turns out larger goes
// on to staging, as the server does) and staged on a task worker.
for (const way of ["staged", "in place"] as const) {
  describe(`uploadChanges ${way}: usn and totals (docs/protocol.md#media-usn)`, () => {
    beforeEach(() => {
      uploadWay = way;
    });
    test("additions, identical re-uploads, changes and deletions", async () => {
      expect(
        await put([
          ["a.jpg", "aaa"],
          ["naïve café.jpg", "café"],
        ]),
      ).toEqual([2, 2]);
      expect(store.db().meta()).toEqual({ lastUsn: 2, totalBytes: 3 + 5, totalNonemptyFiles: 2 });
      expect(readFileSync(join(store.folder, "naïve café.jpg"), "utf8")).toBe("café");

      // identical content: processed, but nothing changes
      expect(await put([["a.jpg", "aaa"]])).toEqual([1, 2]);
      // changed content: new usn, totals follow
      expect(await put([["a.jpg", "longer"]])).toEqual([1, 3]);
      expect(store.db().meta()).toEqual({ lastUsn: 3, totalBytes: 6 + 5, totalNonemptyFiles: 2 });
      expect(store.db().entry("a.jpg")).toMatchObject({ size: 6, usn: 3 });

      // deletion: a tombstone keeps the checksum, the file goes
      expect(await put([["a.jpg", null]])).toEqual([1, 4]);
      const tomb = store.db().entry("a.jpg");
      expect(tomb).toMatchObject({ size: 0, usn: 4 });
      expect(Buffer.from(tomb?.csum ?? []).toString("hex")).toBe(sha1("longer"));
      expect(existsSync(join(store.folder, "a.jpg"))).toBe(false);
      expect(store.db().meta()).toEqual({ lastUsn: 4, totalBytes: 5, totalNonemptyFiles: 1 });

      // deleting what is already deleted or never existed changes nothing
      expect(
        await put([
          ["a.jpg", null],
          ["never.png", null],
        ]),
      ).toEqual([2, 4]);
      // older clients mark deletions with ""
      expect(await upload(uploadZip([], { meta: [["naïve café.jpg", ""]] }))).toEqual([1, 5]);
      expect(store.db().meta()).toEqual({ lastUsn: 5, totalBytes: 0, totalNonemptyFiles: 0 });

      // a deleted name comes back
      expect(await put([["a.jpg", "back"]])).toEqual([1, 6]);
      expect(store.db().meta()).toEqual({ lastUsn: 6, totalBytes: 4, totalNonemptyFiles: 1 });
      expect(readdirSync(store.folder)).toEqual(["a.jpg"]);
    });

    test("changes in one batch apply in order", async () => {
      await put([
        ["x.png", "one"],
        ["x.png", null],
        ["y.png", "y"],
      ]);
      expect(existsSync(join(store.folder, "x.png"))).toBe(false);
      expect(store.db().entry("x.png")).toMatchObject({ size: 0, usn: 2 });
      await put([
        ["y.png", null],
        ["y.png", "again"],
      ]);
      expect(readFileSync(join(store.folder, "y.png"), "utf8")).toBe("again");
      expect(store.db().meta()).toEqual({ lastUsn: 5, totalBytes: 5, totalNonemptyFiles: 1 });
    });

    test("an identical re-upload puts back a file missing from disk, without a new usn", async () => {
      await put([["lost.mp3", "sound"]]);
      rmSync(join(store.folder, "lost.mp3"));
      expect(await put([["lost.mp3", "sound"]])).toEqual([1, 1]);
      expect(readFileSync(join(store.folder, "lost.mp3"), "utf8")).toBe("sound");
    });

    test("deflated entries (older clients) and a zstd body are accepted", async () => {
      const text = "compressible ".repeat(10_000);
      expect(await upload(uploadZip([["deflated.txt", text]], { level: 6 }))).toEqual([1, 1]);
      expect(centralOf(uploadZip([["deflated.txt", text]], { level: 6 }), "0").method).toBe(8);
      expect(readFileSync(join(store.folder, "deflated.txt"), "utf8")).toBe(text);
      expect(await upload(uploadZip([["z.txt", "zstd"]]), { compression: "zstd" })).toEqual([1, 2]);
    });

    test("a file of exactly 100 MiB is accepted", async () => {
      const big = new Uint8Array(MAX_MEDIA_FILE_BYTES).fill(7);
      expect(await put([["big.bin", big]])).toEqual([1, 1]);
      expect(statSync(join(store.folder, "big.bin")).size).toBe(MAX_MEDIA_FILE_BYTES);
    });

    test("nothing is left behind in the user folder", async () => {
      await put([["a.jpg", "aaa"]]);
      await expectRefused(uploadZip([["b/c.jpg", "x"]]), /separator/);
      expect(readdirSync(store.paths.dir).filter((n) => n.includes(".tmp-"))).toEqual([]);
    });
  });

  describe(`uploadChanges ${way} refuses hostile input with 400 and changes nothing`, () => {
    beforeEach(() => {
      uploadWay = way;
    });
    beforeEach(async () => {
      await put([
        ["existing.jpg", "keep me"],
        ["gone.jpg", "x"],
      ]);
      await put([["gone.jpg", null]]);
    });

    const badNames: [string, string, RegExp][] = [
      ["slash", "a/b.jpg", /separator/],
      ["parent via slash", "../escape.jpg", /separator/],
      ["backslash", "..\\escape.jpg", /separator/],
      ["dot", ".", /\. or \.\./],
      ["dot-dot", "..", /\. or \.\./],
      ["NUL", "nul\0byte.jpg", /NUL/],
      ["empty", "", /empty/],
      ["reserved device name", "CON.jpg", /reserved/],
      ["reserved device name, bare", "lpt1", /reserved/],
      ["over 255 bytes", `${"é".repeat(126)}.jpg`, /longer than 255/],
      ["not NFC", "cafe\u0301.jpg", /NFC/],
      ["lone surrogate", "bad\ud800.jpg", /Unicode/],
    ];
    for (const [label, name, why] of badNames) {
      test(`name: ${label}`, async () => {
        await expectRefused(
          uploadZip([
            ["fine.jpg", "ok"],
            [name, "data"],
          ]),
          why,
        );
        // a deletion under a bad name is refused too
        await expectRefused(uploadZip([[name, null]]), why);
      });
    }

    test("a name of exactly 255 bytes is fine", async () => {
      expect(await put([[`${"é".repeat(125)}.jpg`, "ok"]])).toEqual([1, 4]);
    });

    test("declared sizes and CRC must match the content", async () => {
      const zip = uploadZip([["a.jpg", "twelve bytes"]]);
      const { crc, size } = centralOf(zip, "0");
      await expectRefused(
        patchCentral(zip, "0", { size: size + 1, compressedSize: size + 1 }),
        /CRC|declared|bytes/,
      );
      await expectRefused(
        patchCentral(zip, "0", { size: size - 1, compressedSize: size - 1 }),
        /CRC|declared|bytes/,
      );
      // refused by yauzl (validateEntrySizes) while reading the central directory
      await expectRefused(
        patchCentral(zip, "0", { size: size - 1 }),
        /size mismatch for stored file: 12 != 11/,
      );
      // yauzl does not check CRCs; we do
      await expectRefused(patchCentral(zip, "0", { crc: (crc ^ 1) >>> 0 }), /0: CRC mismatch/);
      // deflated entries: the stream (yauzl), or the inflation in memory (bounded by the
      // declared size), stops past the declared size; a short one is refused
      const deflated = uploadZip([["a.txt", "x".repeat(5000)]], { level: 6 });
      await expectRefused(
        patchCentral(deflated, "0", { size: 4999 }),
        /0: (too many bytes in the stream\. expected 4999\.|more data than the declared 4999 bytes)/,
      );
      await expectRefused(
        patchCentral(deflated, "0", { size: 5001 }),
        /0: (not enough bytes in the stream\. expected 5001\. got only 5000|5000 bytes, 5001 declared)/,
      );
      const { crc: deflatedCrc } = centralOf(deflated, "0");
      await expectRefused(
        patchCentral(deflated, "0", { crc: (deflatedCrc ^ 1) >>> 0 }),
        /0: CRC mismatch/,
      );
    });

    test("zip bombs: inflating past the declared size, oversized files, oversized batches", async () => {
      // 64 MiB of zeros deflate to ~64 KiB; the entry claims 1 KiB and is cut off at the first
      // inflated chunk (16 KiB) by yauzl's size check, or at 1 KiB when inflated in memory
      const bomb = uploadZip([["bomb.bin", new Uint8Array(64 * 1024 * 1024)]], { level: 6 });
      expect(bomb.byteLength).toBeLessThan(1024 * 1024);
      await expectRefused(
        patchCentral(bomb, "0", { size: 1024 }),
        /0: (too many bytes in the stream\. expected 1024\. got at least 16384|more data than the declared 1024 bytes)$/,
      );
      await expectRefused(patchCentral(bomb, "0", { size: MAX_MEDIA_FILE_BYTES + 1 }), /exceeds/);
      // each file fine, together more than the decompression limit
      const pair = uploadZip(
        [
          ["one.bin", new Uint8Array(600 * 1024)],
          ["two.bin", new Uint8Array(600 * 1024)],
        ],
        { level: 6 },
      );
      await expectRefused(pair, /exceed 1048576/, {
        limits: { maxUncompressedBytes: 1024 * 1024 },
      });
      // the decompressed body itself beyond the limit
      await expectRefused(
        uploadZip([["big.bin", new Uint8Array(2 * 1024 * 1024)]]),
        /larger than 1048576/,
        {
          compression: "zstd",
          limits: { maxUncompressedBytes: 1024 * 1024 },
        },
      );
    });

    test("more than 25 files, or too many zip entries", async () => {
      const items: UploadItem[] = Array.from({ length: 26 }, (_, i) => [`f${i}.jpg`, null]);
      await expectRefused(uploadZip(items), /26 files, at most 25/);
      const many: Record<string, string> = { _meta: "[]" };
      for (let i = 0; i < 60; i++) many[String(i)] = "x";
      await expectRefused(rawZip(many), /61 zip entries, at most 51/);
    });

    test("_meta: missing, over 50 KiB, not JSON, wrong shape", async () => {
      await expectRefused(rawZip({ "0": "data" }), /no _meta/);
      const padded = `[["a.jpg", null]${" ".repeat(51 * 1024)}]`;
      await expectRefused(rawZip({ _meta: padded }), /_meta: .* at most 51200/);
      await expectRefused(rawZip({ _meta: "{not json" }), /unreadable _meta/);
      await expectRefused(
        rawZip({ _meta: new Uint8Array([0x5b, 0xff, 0x5d]) }),
        /unreadable _meta/,
      );
      await expectRefused(rawZip({ _meta: '{"0": "a.jpg"}' }), /not a list/);
      await expectRefused(rawZip({ _meta: '[["a.jpg"]]' }), /\[name, entry or null\]/);
      await expectRefused(rawZip({ _meta: '[["a.jpg", 0]]' }), /\[name, entry or null\]/);
      await expectRefused(rawZip({ _meta: '[["a.jpg", null, 1]]' }), /\[name, entry or null\]/);
      await expectRefused(rawZip({ _meta: "[[1, null]]" }), /\[name, entry or null\]/);
    });

    test("a missing or empty entry", async () => {
      await expectRefused(uploadZip([], { meta: [["a.jpg", "7"]] }), /no zip entry "7"/);
      await expectRefused(uploadZip([["empty.jpg", ""]]), /empty/);
    });

    test("not a zip, truncated, encrypted, unknown compression", async () => {
      const zip = uploadZip([["a.jpg", "content"]]);
      await expectRefused(bytes("definitely not a zip file at all"), /not a zip/);
      await expectRefused(zip.slice(0, zip.byteLength - 10), /not a zip/);
      await expectRefused(zip.slice(40), /invalid central directory file header signature/);
      // traditional encryption: a stored entry carries a 12-byte header before its data
      const { size } = centralOf(zip, "0");
      await expectRefused(
        patchCentral(zip, "0", { flags: 1, compressedSize: size + 12 }),
        /0: encrypted/,
      );
      const deflated = uploadZip([["a.txt", "x".repeat(5000)]], { level: 6 });
      await expectRefused(patchCentral(deflated, "0", { flags: 1 }), /0: encrypted/);
      // strong encryption: refused by yauzl itself
      await expectRefused(patchCentral(deflated, "0", { flags: 0x41 }), /strong encryption/);
      await expectRefused(
        patchCentral(zip, "0", { method: 12 }),
        /0: compression method 12 not supported/,
      );
      // A compressed zip: whether the zstd frame still holds the end record verbatim (found
      // misplaced) depends on the entries' timestamps, so either refusal is right.
      await expectRefused(Bun.zstdCompressSync(zip), /Invalid comment length|not a zip/);
    });

    test("zip64 entries, repeated names, a local header naming another entry, broken deflate data", async () => {
      const meta = JSON.stringify([["a.jpg", "0"]]);
      await expectRefused(
        await yazlZip(
          [
            ["0", "content"],
            ["_meta", meta],
          ],
          { zip64Entries: true },
        ),
        /0: zip64 not supported/,
      );
      // a zip64 end record is read by yauzl; its entry count is bounded like any other
      const many: [string, string][] = Array.from({ length: 60 }, (_, i) => [String(i), "x"]);
      await expectRefused(
        await yazlZip([...many, ["_meta", "[]"]], { zip64End: true }),
        /61 zip entries, at most 51/,
      );
      await expectRefused(
        await yazlZip([
          ["0", "one"],
          ["0", "two"],
          ["_meta", meta],
        ]),
        /duplicate zip entry 0/,
      );
      const local = uploadZip([["a.jpg", "content"]]);
      expect(String.fromCharCode(local[30] ?? 0)).toBe("0"); // the first local header names "0"
      local[30] = "9".charCodeAt(0);
      await expectRefused(local, /0: local name differs/);
      const random = new Uint8Array(64 * 1024).map((_, i) => (i * 2654435761) >>> 24);
      const broken = uploadZip([["r.bin", random]], { level: 6 });
      const middle = Math.floor(broken.byteLength / 3);
      for (let i = middle; i < middle + 64; i++) broken[i] = 0xff;
      await expectRefused(broken, /^media upload: 0: (?!CRC)/);
    });

    test("a broken compressed body", async () => {
      await expectRefused(bytes("not zstd"), /cannot decompress/, {
        compression: "zstd",
        asIs: true,
      });
    });

    test("one bad entry after good ones stores none of them", async () => {
      const zip = uploadZip([
        ["new.jpg", "new"],
        ["existing.jpg", "changed"],
        ["gone.jpg", "revived"],
        ["x/../y", "bad"],
      ]);
      await expectRefused(zip, /separator/);
    });
  });
}

describe("mediaChanges", () => {
  test("ascending usn, 1000 per batch, empty checksum for deletions", async () => {
    const db = store.db();
    db.transaction(() => {
      for (let usn = 1; usn <= 1005; usn++) {
        db.putEntry({
          fname: `f${usn}`,
          csum: new Uint8Array(20).fill(usn % 256),
          size: usn % 3,
          usn,
          mtime: 0,
        });
      }
      db.writeMeta({ lastUsn: 1005, totalBytes: 0, totalNonemptyFiles: 0 });
    });
    const first = mediaChanges(store, 0);
    expect(first).toHaveLength(1000);
    expect(first.map((r) => r[1])).toEqual(Array.from({ length: 1000 }, (_, i) => i + 1));
    expect(first[0]).toEqual(["f1", 1, "01".repeat(20)]);
    expect(first[2]).toEqual(["f3", 3, ""]);
    expect(mediaChanges(store, 1000).map((r) => r[1])).toEqual([1001, 1002, 1003, 1004, 1005]);
    expect(mediaChanges(store, 1005)).toEqual([]);
  });
});

describe("mediaSanity", () => {
  test("compares the count of present files", async () => {
    await put([
      ["a", "1"],
      ["b", "2"],
      ["c", "3"],
    ]);
    await put([["b", null]]);
    expect(mediaSanity(store, 2)).toBe("OK");
    expect(mediaSanity(store, 3)).toBe("mediaSanity");
  });
});

/** Our own reader checks what fflate does not: each CRC-32, and local headers against the directory. */
async function expectCrcsAndHeadersRight(zip: Uint8Array, entries: Record<string, Uint8Array>) {
  const reader = await ZipReader.fromBytes(zip, 100);
  try {
    for (const [name, entry] of reader.entries)
      expect(await reader.readSmall(entry, zip.byteLength)).toEqual(entries[name] as Uint8Array);
  } finally {
    await reader.close();
  }
}

describe("downloadFiles", () => {
  async function download(files: string[], compress = false) {
    const outcome = await downloadFiles(store, files, compress);
    let zip: Uint8Array;
    if ("bytes" in outcome) zip = compress ? Bun.zstdDecompressSync(outcome.bytes) : outcome.bytes;
    else {
      // A zip in a file is compressed by the caller, while it streams.
      zip = new Uint8Array(readFileSync(outcome.path));
      rmSync(outcome.path);
    }
    expect(zip.byteLength).toBe(outcome.originalSize);
    const entries = unzipSync(zip);
    const meta = JSON.parse(new TextDecoder().decode(entries._meta)) as Record<string, string>;
    await expectCrcsAndHeadersRight(zip, entries);
    return { entries, meta, zip };
  }

  test("entries 0, 1, … in request order, stored, with a _meta object", async () => {
    await put([
      ["b.png", "bee"],
      ["naïve café.jpg", "café"],
      ["a.png", "ay"],
    ]);
    const { entries, meta, zip } = await download(["naïve café.jpg", "a.png", "b.png"]);
    expect(meta).toEqual({ "0": "naïve café.jpg", "1": "a.png", "2": "b.png" });
    expect(new TextDecoder().decode(entries["0"])).toBe("café");
    expect(Object.keys(entries).sort()).toEqual(["0", "1", "2", "_meta"]);
    // stored entries in request order, then _meta
    expect(centralEntries(zip).map(({ name, method }) => [name, method])).toEqual([
      ["0", 0],
      ["1", 0],
      ["2", 0],
      ["_meta", 0],
    ]);
    // zstd-framed for v11 clients
    const compressed = await download(["a.png"], true);
    expect(compressed.meta).toEqual({ "0": "a.png" });
  });

  test("stops once 2.5 MiB is passed, the crossing file included", async () => {
    const mib = (n: number) => new Uint8Array(n * 1024 * 1024).fill(n);
    await put([
      ["one", mib(1)],
      ["two", mib(1)],
      ["three", mib(1)],
      ["four", mib(1)],
    ]);
    expect((await download(["one", "two", "three", "four"])).meta).toEqual({
      "0": "one",
      "1": "two",
      "2": "three",
    });
    expect((await download(["four", "three"])).meta).toEqual({ "0": "four", "1": "three" });
    await put([["huge", mib(3)]]);
    expect((await download(["huge", "one"])).meta).toEqual({ "0": "huge" });
    expect(Object.keys((await download([])).meta)).toEqual([]);
  });

  test("a batch of a few MiB is zipped in memory; a larger one goes through a file", async () => {
    const three = new Uint8Array(3 * 1024 * 1024).fill(3);
    const big = new Uint8Array(5 * 1024 * 1024).fill(7);
    await put([
      ["small", "s"],
      ["three", three],
      ["big", big],
    ]);
    for (const compress of [false, true]) {
      const inMemory = await downloadFiles(store, ["small", "three"], compress);
      expect("bytes" in inMemory).toBe(true);
      const outcome = await downloadFiles(store, ["small", "big"], compress);
      expect("path" in outcome).toBe(true);
      if ("path" in outcome) rmSync(outcome.path);
      for (const [name, data] of [
        ["three", three],
        ["big", big],
      ] as const) {
        const { entries, meta, zip } = await download(["small", name], compress);
        expect(meta).toEqual({ "0": "small", "1": name });
        expect(entries["1"]).toEqual(data);
        expect(centralEntries(zip).map((e) => e.method)).toEqual([0, 0, 0]);
      }
    }
    // nothing left beside the media folder
    expect(readdirSync(store.paths.dir).filter((n) => n.includes(".tmp-"))).toEqual([]);
  });

  test("more than 25 names is a 400; unknown, deleted or unsafe names are a 409", async () => {
    await put([
      ["here", "1"],
      ["deleted", "2"],
    ]);
    await put([["deleted", null]]);
    const kindOf = (files: string[]) =>
      downloadFiles(store, files, false).then(
        () => "ok",
        (err: SyncError) => err.kind,
      );
    expect(await kindOf(Array.from({ length: 26 }, () => "here"))).toBe("badRequest");
    expect(await kindOf(["here", "unknown"])).toBe("conflict");
    expect(await kindOf(["deleted"])).toBe("conflict");
    expect(await kindOf(["../media.db"])).toBe("conflict");
    expect(readdirSync(store.paths.dir).filter((n) => n.includes(".tmp-"))).toEqual([]);
  });

  test("a file missing on disk is forgotten (no usn, no deletion) and answered with 409", async () => {
    await put([
      ["kept", "kept"],
      ["vanished", "vanished!"],
    ]);
    rmSync(join(store.folder, "vanished"));
    const error = await downloadFiles(store, ["kept", "vanished"], false).catch(
      (e: SyncError) => e,
    );
    expect((error as SyncError).kind).toBe("conflict");
    expect(store.db().entry("vanished")).toBeNull();
    expect(store.db().meta()).toEqual({ lastUsn: 2, totalBytes: 4, totalNonemptyFiles: 1 });
    expect(mediaChanges(store, 0).map((r) => r[0])).toEqual(["kept"]);
    expect(readdirSync(store.paths.dir).filter((n) => n.includes(".tmp-"))).toEqual([]);
  });
});
