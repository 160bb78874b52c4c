/**
 * Lowering the CPU priority of the calling thread only, for threads doing long background work
 * (a 100 MB upload's check and conversion), so other users' requests get the CPU first.
 * Returns whether it took effect: a runtime or system without per-thread priorities does
 * nothing rather than slow the whole process.
 */
export { lowerThreadPriority } from "#platform/threadPriority.ts";
