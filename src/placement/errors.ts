/**
 * Placement outcomes that are not "serve here", mapped to HTTP in http/status.ts:
 * `redirect` 308 to another node's base (only `meta` of current clients), `elsewhere` 409
 * (another node serves the user: the client says to try again later), `unavailable` 503 (the
 * placement cannot be decided now, or the owner is unreachable: "try again in a few minutes").
 */
export type PlacementErrorKind = "redirect" | "elsewhere" | "unavailable";

export class PlacementError extends Error {
  constructor(
    readonly kind: PlacementErrorKind,
    message: string,
    /** The base URL to redirect to, for `redirect`. */
    readonly location?: string,
  ) {
    super(message);
  }
}
