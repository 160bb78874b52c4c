/**
 * Elysia on Bun: the one-file bundle scripts/bundle-deps.ts makes at install, when it is
 * there, since Bun holds memory for every module it loads (the package and TypeBox are ~160
 * of them, ~2.3 MB of an idle server); otherwise the package itself, the same code.
 */
import { existsSync } from "node:fs";

const bundle = new URL("../../../build/deps/elysia.js", import.meta.url);

const elysia: typeof import("elysia") = existsSync(bundle)
  ? await import(bundle.href)
  : await import("elysia");

export const Elysia = elysia.Elysia;
