/** Elysia on Deno: the package (the bundle scripts/bundle-deps.ts makes is built for Bun). */
export { Elysia } from "elysia";
