/**
 * Comments in src/ cite the protocol notes as `docs/<file>.md#<anchor>`: every such citation
 * must name a file and an anchor that exist. There is no spec file in the repository, so a
 * citation of a "spec §" section would lead nowhere.
 */
import { describe, expect, test } from "bun:test";
import { existsSync, readdirSync, readFileSync } from "node:fs";
import { join, resolve } from "node:path";

const ROOT = resolve(import.meta.dir, "../..");

function sourceFiles(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((entry) => {
    const path = join(dir, entry.name);
    if (entry.isDirectory()) return sourceFiles(path);
    return entry.name.endsWith(".ts") ? [path] : [];
  });
}

/** Explicit `<a id>` anchors and the ids GitHub gives headings. */
function anchorsOf(markdown: string): Set<string> {
  const ids = [...markdown.matchAll(/<a id="([^"]+)"><\/a>/g)].map((m) => m[1] ?? "");
  const headings = [...markdown.matchAll(/^#+ (.+)$/gm)].map((m) =>
    (m[1] ?? "")
      .toLowerCase()
      .replace(/[^\p{L}\p{N} _-]/gu, "")
      .replaceAll(" ", "-"),
  );
  return new Set([...ids, ...headings]);
}

describe("citations in src/", () => {
  const files = sourceFiles(join(ROOT, "src"));

  test("every docs/*.md#anchor cited exists", () => {
    const broken: string[] = [];
    for (const file of files) {
      for (const m of readFileSync(file, "utf8").matchAll(/docs\/([\w.-]+\.md)#([\w-]+)/g)) {
        const doc = join(ROOT, "docs", m[1] ?? "");
        if (!existsSync(doc) || !anchorsOf(readFileSync(doc, "utf8")).has(m[2] ?? ""))
          broken.push(`${file.slice(ROOT.length + 1)}: ${m[0]}`);
      }
    }
    expect(broken).toEqual([]);
  });

  test("no comment cites a spec section the repository does not hold", () => {
    const cited = files.filter((file) => /spec §/.test(readFileSync(file, "utf8")));
    expect(cited.map((file) => file.slice(ROOT.length + 1))).toEqual([]);
  });
});
