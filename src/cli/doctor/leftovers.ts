/** Files that interrupted work leaves behind: NFS silly renames and stale temporaries. */
import { rmSync } from "node:fs";
import { basename, join } from "node:path";
import type { CheckContext } from "./report.ts";
import { namesIn, walk } from "./walk.ts";

/** Temporaries younger than this may belong to a request in flight. */
const STALE_TEMP_MS = 24 * 60 * 60 * 1000;

/**
 * `.nfsXXXX` files are NFS "silly renames": files deleted while still open. They vanish when the
 * last holder closes them; ones that stay belong to a crashed or hung client.
 */
const isNfsName = (name: string) => name.startsWith(".nfs");

/** Beside session.db a running server may hold them open, so they are only reported. */
export function checkSharedNfsFiles(ctx: CheckContext, dir: string): void {
  for (const name of namesIn(dir).filter(isNfsName)) {
    ctx.add(
      join(dir, name),
      "warning",
      "NFS silly-rename file (deleted while open); it goes when its holder closes it",
    );
  }
}

/** Under the user's lock no server has the user's files open, so --fix removes them. */
export function checkUserNfsFiles(ctx: CheckContext, userDir: string): void {
  const found = [...walk(userDir)].filter(([p, s]) => !s.isDirectory() && isNfsName(basename(p)));
  for (const [path] of found) {
    if (ctx.options.fix) removeNfsFile(ctx, path);
    else {
      ctx.add(
        path,
        "problem",
        "NFS silly-rename file (deleted while open by a client that is gone): --fix removes it",
      );
    }
  }
}

function removeNfsFile(ctx: CheckContext, path: string): void {
  try {
    rmSync(path);
    ctx.add(path, "problem", "NFS silly-rename file of a crashed client: removed", true);
  } catch (err) {
    ctx.add(path, "problem", `NFS silly-rename file still held open: ${(err as Error).message}`);
  }
}

/** `<name>.tmp-<pid>-<random><suffix>` (storage/paths.ts) and `media.tmp-*` leftovers. */
export function checkTemporaries(ctx: CheckContext, dir: string): void {
  const now = ctx.options.now ?? Date.now();
  for (const [path, stats] of walk(dir)) {
    const name = basename(path);
    if (!/\.tmp-/.test(name) && !name.startsWith("media.tmp-")) continue;
    if (now - stats.mtimeMs < STALE_TEMP_MS) continue;
    if (ctx.options.fix) {
      rmSync(path, { recursive: true, force: true });
      ctx.add(path, "warning", "temporary file left by an interrupted request: removed", true);
    } else {
      ctx.add(
        path,
        "warning",
        "temporary file left by an interrupted request (over a day old): --fix removes it",
      );
    }
  }
}
