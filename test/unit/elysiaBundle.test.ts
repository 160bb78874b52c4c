/**
 * The server loads Elysia from build/deps/elysia.js (scripts/bundle-deps.ts) when that file
 * exists, for the memory of ~160 modules; without it, from the package.
 */
import { expect, test } from "bun:test";
import { existsSync } from "node:fs";
import { resolve } from "node:path";

test("the server's Elysia is the bundle's when it was built, else the package's", async () => {
  const built = existsSync(resolve(import.meta.dir, "../../build/deps/elysia.js"));
  const { Elysia } = await import("../../src/platform/elysia.ts");
  const fromPackage = (await import("elysia")).Elysia;
  expect(Elysia === fromPackage).toBe(!built);
  expect(typeof new Elysia().handle).toBe("function");
});
