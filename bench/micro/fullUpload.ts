/**
 * Micro-benchmark: the server's share of a full upload, phase by phase, without HTTP or
 * threads. COLLECTION is a schema 18 file as the client sends it (e.g. `generated/small.anki2`
 * that `bench/run.sh --workdir` leaves); it is zstd-compressed once, then each round unpacks
 * it as a body (all of it at once, where a real body arrives over a while), prepares it (check,
 * convert, sync) and installs it, in a temporary folder. Wall milliseconds per phase (fsyncs
 * included). Not a test.
 *   bun bench/micro/fullUpload.ts COLLECTION [rounds=5]
 */
import { copyFileSync, mkdirSync, mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { writeUnpacked } from "../../src/executor/unpackBody.ts";
import { UserState } from "../../src/executor/userState.ts";
import { userPaths } from "../../src/storage/paths.ts";
import { prepareUpload } from "../../src/sync/collection/prepareUpload.ts";
import { installUpload } from "../../src/sync/collection/upload.ts";

const [source, roundsArg] = process.argv.slice(2);
if (!source) throw new Error("usage: fullUpload.ts COLLECTION [rounds]");
const rounds = Number(roundsArg ?? 5);
const dir = mkdtempSync(join(process.env.BENCH_TMP ?? tmpdir(), "fullup-micro-"));
const paths = userPaths(dir, "u1");
mkdirSync(paths.dir, { recursive: true });
copyFileSync(source, paths.collection);
const body = new Uint8Array(Bun.zstdCompressSync(readFileSync(source), { level: 3 }));
const user = new UserState(paths, { networkFs: false });

for (let r = 0; r < rounds; r++) {
  const preparedPath = join(paths.dir, "collection.upload");
  const t0 = performance.now();
  const limits = { maxBodyBytes: 1 << 30, maxBytes: 1 << 30 };
  await writeUnpacked(new Blob([body]).stream(), "zstd", preparedPath, limits);
  const t1 = performance.now();
  const prepared = prepareUpload({ preparedPath });
  const t2 = performance.now();
  if (!prepared.ready) throw new Error(prepared.detail);
  const out = installUpload(user, preparedPath, 5);
  const t3 = performance.now();
  const ms = (a: number, b: number) => (b - a).toFixed(1);
  console.log(
    `round ${r}: unpack ${ms(t0, t1)} ms, prepare ${ms(t1, t2)} ms, install ${ms(t2, t3)} ms: ${out.reply}`,
  );
}
rmSync(dir, { recursive: true, force: true });
