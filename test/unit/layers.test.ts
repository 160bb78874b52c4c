/**
 * The layer rule of docs/architecture.md, checked on every relative import under src/: a
 * layer imports only the layers it lists, so nothing reaches one above it.
 */

import { describe, expect, test } from "bun:test";
import { readdirSync, readFileSync } from "node:fs";
import { dirname, join, relative, resolve } from "node:path";

const SRC = resolve(import.meta.dir, "../../src");

/** What each layer (a folder of src/, or a single top-level module) may import; keep equal to docs/architecture.md. */
const MAY_IMPORT: Record<string, readonly string[]> = {
  config: [],
  log: ["config"],
  platform: ["log"],
  compression: ["platform"],
  legacyJson: [],
  storage: ["legacyJson", "platform", "config", "log"],
  identity: ["platform", "config", "log"],
  sync: ["storage", "legacyJson", "compression", "platform", "config", "log"],
  executor: ["sync", "storage", "compression", "platform", "config", "log"],
  metrics: ["executor", "config", "log"],
  placement: ["executor", "identity", "config", "log"],
  http: [
    "placement",
    "identity",
    "executor",
    "metrics",
    "sync",
    "storage",
    "compression",
    "platform",
    "config",
    "log",
  ],
  backup: ["storage", "platform", "config", "log"],
  adoption: ["identity", "storage", "platform", "config", "log"],
  cli: ["backup", "adoption", "placement", "identity", "storage", "platform", "config", "log"],
  server: [
    "http",
    "placement",
    "executor",
    "metrics",
    "adoption",
    "identity",
    "storage",
    "platform",
    "config",
    "log",
  ],
  main: ["server", "storage", "platform", "config", "log"],
};

/**
 * Known breaches, `from -> to` file pairs, each with a comment saying why; none today. New
 * ones fail the test; an entry that no longer occurs fails it too, so the list only shrinks.
 */
const ALLOWED_BREACHES: readonly string[] = [];

function sourceFiles(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((entry) => {
    const path = join(dir, entry.name);
    if (entry.isDirectory()) return sourceFiles(path);
    return entry.name.endsWith(".ts") ? [path] : [];
  });
}

function layerOf(file: string): string {
  const parts = relative(SRC, file).split("/");
  return parts.length === 1 ? (parts[0] ?? "").replace(/\.ts$/, "") : (parts[0] ?? "");
}

/** Relative specifiers of static imports, re-exports and dynamic imports; `#platform/*` is platform. */
function importsOf(file: string): string[] {
  const text = readFileSync(file, "utf8");
  const found: string[] = [];
  for (const match of text.matchAll(
    /(?:\bfrom\s*|\bimport\s*\(\s*|^import\s+)["']([^"']+)["']/gm,
  )) {
    const spec = match[1] ?? "";
    if (spec.startsWith(".")) found.push(resolve(dirname(file), spec));
    else if (spec.startsWith("#platform/"))
      found.push(join(SRC, "platform", spec.slice("#platform/".length)));
  }
  return found;
}

function breaches(): string[] {
  const out: string[] = [];
  for (const file of sourceFiles(SRC)) {
    const from = layerOf(file);
    for (const target of importsOf(file)) {
      const to = layerOf(target);
      if (to === from) continue;
      if (!MAY_IMPORT[from]?.includes(to))
        out.push(`${relative(SRC, file)} -> ${relative(SRC, target)}`);
    }
  }
  return out.sort();
}

describe("layers", () => {
  test("every layer of src/ is in the table", () => {
    const layers = new Set(sourceFiles(SRC).map(layerOf));
    expect([...layers].filter((layer) => !(layer in MAY_IMPORT))).toEqual([]);
  });

  test("no layer imports one it does not list", () => {
    const found = breaches();
    expect(found.filter((b) => !ALLOWED_BREACHES.includes(b))).toEqual([]);
    expect(ALLOWED_BREACHES.filter((b) => !found.includes(b))).toEqual([]);
  });
});
