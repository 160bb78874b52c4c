/**
 * Moving a user to another node (`admin user move`). A live owner is asked to hand the user
 * over (the placement's `moving_to`): it does so at its next renewal once the user's sync has
 * ended (or at its next `meta`, or after a lease's time at most), closing the user's files
 * first; clients are then redirected. An owner that is gone is simply replaced.
 */
import type { PlacementStore } from "./store.ts";

export type MoveOutcome =
  /** The owner handed the user over. */
  | "moved"
  /** Nobody served the user (or the owner is gone): placed on the node directly. */
  | "placed"
  | "already-there"
  /** Asked, not yet done: the owner hands over when the user's sync ends. */
  | "requested";

export interface MoveOptions {
  leaseMs: number;
  /** How long to wait for the owner's hand-over. */
  waitMs: number;
  now?: () => number;
  sleep?: (ms: number) => Promise<void>;
}

export async function moveUser(
  store: PlacementStore,
  userUuid: string,
  to: string,
  options: MoveOptions,
): Promise<MoveOutcome> {
  const now = options.now ?? Date.now;
  const sleep = options.sleep ?? ((ms: number) => new Promise((r) => setTimeout(r, ms)));
  const target = await store.getNode(to);
  if (!target || target.leaseExpiresAt <= now()) throw new MoveError(`node ${to} is not running`);
  const placement = await store.find(userUuid);
  if (placement?.nodeId === to) return "already-there";
  const owner = placement ? await store.getNode(placement.nodeId) : null;
  const ownerLive =
    placement !== null &&
    placement.leaseExpiresAt > now() &&
    owner !== null &&
    owner.leaseExpiresAt > now();
  if (!ownerLive) {
    await store.place(userUuid, to, now() + options.leaseMs);
    return "placed";
  }
  await store.requestMove(userUuid, to);
  const deadline = now() + options.waitMs;
  while (now() < deadline) {
    await sleep(250);
    const current = await store.find(userUuid);
    if (current?.nodeId === to) return "moved";
    if (!current || current.nodeId !== placement.nodeId) break;
  }
  const current = await store.find(userUuid);
  return current?.nodeId === to ? "moved" : "requested";
}

export class MoveError extends Error {}
