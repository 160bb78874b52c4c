/**
 * Placement outcomes that are not "serve here", mapped to HTTP in http/status.ts:
 * `redirect` 308 to another node's base (only `meta` of current clients), `elsewhere` 409
 * (another node serves the user: the client says to try again later), `unavailable` 503 (the
 * placement cannot be decided now, or the owner is unreachable: "try again in a few minutes").
 * An `elsewhere` may name the live owner in `forwardTo`: the request may then be passed on to
 * it (http/forward.ts) instead of refused.
 */
export type PlacementErrorKind = "redirect" | "elsewhere" | "unavailable";

export class PlacementError extends Error {
  constructor(
    readonly kind: PlacementErrorKind,
    message: string,
    /** The base URL to redirect to, for `redirect`. */
    readonly location?: string,
    /** For `elsewhere`: the owner a request not yet forwarded may be passed on to. */
    readonly forwardTo?: ForwardTarget,
  ) {
    super(message);
  }
}

/** A live node serving the user, and the base its requests go to. */
export interface ForwardTarget {
  nodeId: string;
  publicUrl: string;
}
