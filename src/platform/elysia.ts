/**
 * The web framework, Elysia, as the runtime loads it best (#platform/elysia.ts): on Bun a
 * bundle of it made at install (fewer modules, less memory), on Deno the package.
 */
export { Elysia } from "#platform/elysia.ts";
