/**
 * Lowering the CPU priority of the calling thread only, for threads doing long background work
 * (a 100 MB upload's check and conversion), so other users' requests get the CPU first.
 * `lowerThreadPriority` returns whether it took effect: a runtime or system without per-thread
 * priorities does nothing rather than slow the whole process. `startSharedThreads`, awaited on
 * the main thread before any thread is lowered, keeps the runtime's shared threads from
 * inheriting a lowered priority.
 */
export { lowerThreadPriority, startSharedThreads } from "#platform/threadPriority.ts";
