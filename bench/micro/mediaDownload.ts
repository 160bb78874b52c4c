/**
 * Micro-benchmark: `msync/downloadFiles` on the worker's side (selecting, reading, zipping and
 * zstd-compressing a batch), for 40 batches of 25 x 8 kB and 20 batches of one 5 MB file, as the
 * `mediasmall` and `medialarge` workloads ask. Not a test.
 *   bun bench/micro/mediaDownload.ts [rounds]
 */
import { randomBytes } from "node:crypto";
import { mkdirSync, mkdtempSync, rmSync, statSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { zstdCompress } from "../../src/platform/zstd.ts";
import { MediaStore } from "../../src/storage/media/mediaStore.ts";
import { userPaths } from "../../src/storage/paths.ts";
import { downloadFiles } from "../../src/sync/media/download.ts";
import { uploadChanges } from "../../test/helpers/mediaUpload.ts";
import { uploadZip } from "../../test/helpers/mediaZip.ts";

const rounds = Number(process.argv[2] ?? 3);
const dir = mkdtempSync(join(process.env.BENCH_TMP ?? tmpdir(), "media-down-micro-"));
const limits = { maxUncompressedBytes: 300 * 1024 * 1024 };

async function fill(store: MediaStore, files: [string, Uint8Array][]): Promise<void> {
  for (let i = 0; i < files.length; i += 25) {
    const body = await zstdCompress(uploadZip(files.slice(i, i + 25)));
    const incomingPath = store.tempPath(".upload");
    writeFileSync(incomingPath, body);
    await uploadChanges(store, { incomingPath, compression: "zstd" }, limits);
  }
}

const small = new MediaStore(userPaths(dir, "small"), { networkFs: false });
const large = new MediaStore(userPaths(dir, "large"), { networkFs: false });
for (const store of [small, large]) mkdirSync(store.paths.dir, { recursive: true });
const smallNames = Array.from({ length: 1000 }, (_, i) => `s${i}.bin`);
const largeNames = Array.from({ length: 20 }, (_, i) => `l${i}.bin`);
await fill(
  small,
  smallNames.map((n) => [n, randomBytes(8000)]),
);
await fill(
  large,
  largeNames.map((n) => [n, randomBytes(5_000_000)]),
);

for (let round = 0; round < rounds; round++) {
  for (const [label, store, names, per] of [
    ["1000 x 8 kB", small, smallNames, 25],
    ["20 x 5 MB", large, largeNames, 1],
  ] as const) {
    const started = performance.now();
    let bytes = 0;
    for (let i = 0; i < names.length; i += per) {
      const outcome = await downloadFiles(store, names.slice(i, i + per), true);
      if ("bytes" in outcome) bytes += outcome.bytes.byteLength;
      else {
        bytes += statSync(outcome.path).size;
        rmSync(outcome.path);
      }
    }
    const ms = performance.now() - started;
    const batches = names.length / per;
    console.log(
      `${label}: ${(ms / batches).toFixed(2)} ms a batch (${batches}), ${bytes} bytes out`,
    );
  }
}
small.close();
large.close();
rmSync(dir, { recursive: true, force: true });
