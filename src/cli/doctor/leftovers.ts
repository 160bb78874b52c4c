/**
 * Files that interrupted work leaves behind: NFS silly renames, stale temporaries, and a media
 * journal not emptied.
 */
import { rmSync, statSync } from "node:fs";
import { basename, join } from "node:path";
import { journalPath, MediaStore } from "../../storage/media/mediaStore.ts";
import type { UserPaths } from "../../storage/paths.ts";
import { deadTemporaries } from "../../storage/temporaries.ts";
import type { CheckContext } from "./report.ts";
import { namesIn, walk } from "./walk.ts";

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

/**
 * `<name>.tmp-<process tag>-<random><suffix>` (storage/paths.ts): under the user's lock, those of
 * processes that are gone are leftovers of interrupted requests, whatever their age; those of
 * a running server belong to a request in flight (storage/temporaries.ts).
 */
export function checkTemporaries(ctx: CheckContext, userDir: string): void {
  for (const temp of deadTemporaries(ctx.report.dataDir, userDir, ctx.options.now)) {
    if (ctx.options.fix) {
      rmSync(temp.path, { recursive: true, force: true });
      ctx.add(
        temp.path,
        "warning",
        `temporary file left by an interrupted request (${temp.bytes} bytes): removed`,
        true,
      );
    } else {
      ctx.add(
        temp.path,
        "warning",
        `temporary file left by an interrupted request (${temp.bytes} bytes): --fix removes it`,
      );
    }
  }
}

/**
 * Under the user's lock no server has the user open, so a media journal that is not empty was
 * left by a crash (or a stop or checkpoint that did not finish): the server replays it when it
 * next opens the user; --fix replays it now (docs/media.md#durability).
 */
export function checkMediaJournal(ctx: CheckContext, paths: UserPaths): void {
  const path = journalPath(paths);
  let size = 0;
  try {
    size = statSync(path).size;
  } catch {
    return;
  }
  if (size === 0) return;
  if (!ctx.options.fix) {
    ctx.add(
      path,
      "warning",
      "media journal of an interrupted run: replayed when the server next opens the user, or by --fix",
    );
    return;
  }
  const store = new MediaStore(paths, { networkFs: ctx.networkFs });
  try {
    store.db();
    ctx.add(path, "warning", "media journal of an interrupted run: replayed", true);
  } catch (err) {
    ctx.add(path, "problem", `media journal not replayed: ${(err as Error).message}`);
  } finally {
    store.close();
  }
}
