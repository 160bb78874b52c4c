/**
 * Bundles Elysia (with TypeBox and its other dependencies) into one file,
 * build/deps/elysia.js, which the server loads on Bun instead of the ~160 modules of the
 * package (src/platform/bun/elysia.ts). Each module a runtime loads costs memory of its own
 * (records, environments, loader state), about 2.3 MB of an idle server's RSS here: the same
 * code, one module. Run by `bun install` (postinstall) and the Docker build; without the file
 * the server loads the package itself.
 *
 *   bun scripts/bundle-deps.ts
 */
import { mkdirSync, renameSync, rmSync } from "node:fs";
import { join, resolve } from "node:path";

const ROOT = resolve(import.meta.dir, "..");
const OUT_DIR = join(ROOT, "build", "deps");

async function bundle(name: string, entry: string): Promise<void> {
  const tmpDir = join(OUT_DIR, `.${name}.tmp-${process.pid}`);
  const entryFile = join(tmpDir, "entry.ts");
  mkdirSync(tmpDir, { recursive: true });
  try {
    await Bun.write(entryFile, entry);
    const result = await Bun.build({
      entrypoints: [entryFile],
      outdir: tmpDir,
      target: "bun",
      naming: `${name}.js`,
      // Resolve the package from the repository, not from the temporary entry's folder.
      root: ROOT,
    });
    if (!result.success) {
      for (const message of result.logs) console.error(message);
      throw new Error(`bundle-deps: could not bundle ${name}`);
    }
    const built = result.outputs[0]?.path;
    if (!built) throw new Error(`bundle-deps: no output for ${name}`);
    // Renamed into place, so a server starting meanwhile never loads a partial file.
    renameSync(built, join(OUT_DIR, `${name}.js`));
    console.log(`bundle-deps: built build/deps/${name}.js`);
  } finally {
    rmSync(tmpDir, { recursive: true, force: true });
  }
}

await bundle("elysia", 'export { Elysia } from "elysia";\n');

/**
 * Drizzle's two faces (src/platform/drizzle/*.ts), `#drizzle/sqlite` and `#drizzle/postgres` on
 * Bun: split into a small module per face and one chunk they share, so the server loads 2-3
 * modules instead of ~125 and both faces use the same classes (identity/errors.ts).
 */
async function bundleDrizzle(): Promise<void> {
  const outDir = join(OUT_DIR, "drizzle");
  const tmpDir = join(OUT_DIR, `.drizzle.tmp-${process.pid}`);
  try {
    const result = await Bun.build({
      entrypoints: ["sqlite", "postgres"].map((face) =>
        join(ROOT, "src/platform/drizzle", `${face}.ts`),
      ),
      outdir: tmpDir,
      target: "bun",
      splitting: true,
      root: join(ROOT, "src/platform/drizzle"),
      // The PostgreSQL client is the application's, passed in; never part of the bundle.
      external: ["postgres"],
    });
    if (!result.success) {
      for (const message of result.logs) console.error(message);
      throw new Error("bundle-deps: could not bundle drizzle");
    }
    // The folder is swapped whole, so a server starting meanwhile never mixes two builds.
    rmSync(`${outDir}.old`, { recursive: true, force: true });
    try {
      renameSync(outDir, `${outDir}.old`);
    } catch {
      // First build: nothing to move away.
    }
    renameSync(tmpDir, outDir);
    rmSync(`${outDir}.old`, { recursive: true, force: true });
    console.log("bundle-deps: built build/deps/drizzle/");
  } finally {
    rmSync(tmpDir, { recursive: true, force: true });
  }
}

await bundleDrizzle();
