/**
 * Changes to profiles made in this process, announced per state database, so that what is kept
 * about a profile elsewhere (the session cache, sessionCache.ts) is dropped at once when the
 * profile is disabled or removed, whichever store object made the change.
 */
import type { StateDb } from "./stateDb.ts";

type Listener = (profileId: number) => void;

const listeners = new WeakMap<StateDb, Set<Listener>>();

export function onProfileChange(db: StateDb, listener: Listener): void {
  const set = listeners.get(db) ?? new Set();
  set.add(listener);
  listeners.set(db, set);
}

export function profileChanged(db: StateDb, profileId: number): void {
  for (const listener of listeners.get(db) ?? []) listener(profileId);
}
