/**
 * The client address for logs and rate limits. A forwarding header is trusted only when
 * SYNC_IP_HEADER names it (i.e. a proxy we control sets it); otherwise the socket peer.
 */
export function clientIp(
  request: Request,
  socketIp: string | undefined,
  ipHeader: string | null,
): string {
  if (ipHeader) {
    const value = request.headers.get(ipHeader);
    if (value) {
      // X-Forwarded-For: the rightmost entry is the one our own proxy appended.
      const parts = value
        .split(",")
        .map((p) => p.trim())
        .filter(Boolean);
      const last = parts[parts.length - 1];
      if (last) return last;
    }
  }
  return socketIp ?? "unknown";
}
