/**
 * Micro-benchmark: one media upload batch (25 files of 8 kB, zstd-compressed as a v11 client
 * sends it) checked and stored, in place and the task-worker way. Not a test.
 *   bun bench/micro/mediaUpload.ts [batches]
 */
import { randomBytes } from "node:crypto";
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { zstdCompress } from "../../src/platform/zstd.ts";
import { MediaStore } from "../../src/storage/media/mediaStore.ts";
import { userPaths } from "../../src/storage/paths.ts";
import { uploadSmallChanges } from "../../src/sync/media/upload.ts";
import { uploadChanges } from "../../test/helpers/mediaUpload.ts";
import { uploadZip } from "../../test/helpers/mediaZip.ts";

const batches = Number(process.argv[2] ?? 40);
const dir = mkdtempSync(join(process.env.BENCH_TMP ?? tmpdir(), "media-micro-"));
const limits = { maxUncompressedBytes: 300 * 1024 * 1024 };
let n = 0;
const batch = () =>
  zstdCompress(
    uploadZip(
      Array.from({ length: 25 }, () => [`f${n++}.bin`, randomBytes(8000)] as [string, Uint8Array]),
    ),
  );

for (const way of ["inPlace", "staged", "inPlace", "staged"] as const) {
  const store = new MediaStore(userPaths(dir, `${way}-${n}`), { networkFs: false });
  mkdirSync(store.paths.dir, { recursive: true });
  const bodies = await Promise.all(Array.from({ length: batches }, batch));
  const started = performance.now();
  for (const body of bodies) {
    if (way === "inPlace") await uploadSmallChanges(store, body, "zstd", limits);
    else {
      const incomingPath = store.tempPath(".upload");
      writeFileSync(incomingPath, body);
      await uploadChanges(store, { incomingPath, compression: "zstd" }, limits);
    }
  }
  const ms = performance.now() - started;
  console.log(`${way}: ${(ms / batches).toFixed(2)} ms a batch of 25 x 8 kB`);
  store.close();
}
rmSync(dir, { recursive: true, force: true });
