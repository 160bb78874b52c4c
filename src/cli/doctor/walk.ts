/** Listing folders for the checks; what cannot be read is skipped (the permission check reports it). */
import { lstatSync, readdirSync, type Stats } from "node:fs";
import { join } from "node:path";

/** `path` and, for a folder, everything below it (not following symlinks), minus `skip`. */
export function* walk(
  path: string,
  skip: ReadonlySet<string> = new Set(),
): Generator<[string, Stats]> {
  const stats = lstatOrUndefined(path);
  if (!stats) return;
  yield [path, stats];
  if (!stats.isDirectory()) return;
  for (const name of namesIn(path).sort()) {
    const child = join(path, name);
    if (!skip.has(child)) yield* walk(child, skip);
  }
}

/** `dir` and what is directly in it, minus `skip`. */
export function dirAndChildren(dir: string, skip: ReadonlySet<string>): [string, Stats][] {
  return [dir, ...namesIn(dir).map((n) => join(dir, n))]
    .filter((p) => !skip.has(p))
    .flatMap((p): [string, Stats][] => {
      const stats = lstatOrUndefined(p);
      return stats ? [[p, stats]] : [];
    });
}

export function namesIn(dir: string): string[] {
  try {
    return readdirSync(dir);
  } catch {
    return [];
  }
}

function lstatOrUndefined(path: string): Stats | undefined {
  try {
    return lstatSync(path);
  } catch {
    return undefined;
  }
}
