/**
 * The client address for logs, rate limits and the choice of a download's compression. A
 * forwarding header is trusted only when
 * SYNC_IP_HEADER names it (i.e. a proxy we control sets it); otherwise the socket peer.
 * SYNC_IP_HEADER takes a header name, or one of the names Anki's own server uses for the same
 * setting, so an existing .env keeps working.
 */
import { BlockList, isIP } from "node:net";
import type { ZstdEffort } from "../platform/zstd.ts";

const ANKI_SERVER_NAMES: Record<string, string | null> = {
  ConnectInfo: null,
  RightmostXForwardedFor: "x-forwarded-for",
  XRealIp: "x-real-ip",
  CfConnectingIp: "cf-connecting-ip",
  TrueClientIp: "true-client-ip",
  FlyClientIp: "fly-client-ip",
  CloudFrontViewerAddress: "cloudfront-viewer-address",
  RightmostForwarded: "forwarded",
};

/** The header to read, from SYNC_IP_HEADER; null means the socket peer. */
export function ipHeaderName(setting: string | null): string | null {
  if (!setting) return null;
  return Object.hasOwn(ANKI_SERVER_NAMES, setting)
    ? (ANKI_SERVER_NAMES[setting] ?? null)
    : setting.toLowerCase();
}

/**
 * `socketIp` may be a function: asking the socket for its peer is a system call per request,
 * not needed when a trusted header names the client (behind the proxy, every request).
 */
export function clientIp(
  request: Request,
  socketIp: string | undefined | (() => string | undefined),
  ipHeader: string | null,
): string {
  const name = ipHeaderName(ipHeader);
  const value = name ? request.headers.get(name) : null;
  const fromHeader = value && rightmostAddress(name as string, value);
  if (fromHeader) return fromHeader;
  return (typeof socketIp === "function" ? socketIp() : socketIp) || "unknown";
}

/** In a list, the rightmost entry is the one our own proxy appended. */
function rightmostAddress(header: string, value: string): string | undefined {
  const last = value
    .split(",")
    .map((p) => p.trim())
    .filter(Boolean)
    .pop();
  if (header !== "forwarded" || !last) return last;
  // Forwarded: for=192.0.2.60;proto=http, for="[2001:db8::1]:4711"
  const forPart = /(?:^|;)\s*for=("?)([^;"]+)\1/i.exec(last)?.[2];
  return forPart?.replace(/^\[(.*)\](:\d+)?$/, "$1").replace(/^([\d.]+):\d+$/, "$1");
}

/** Loopback, private (RFC 1918, IPv6 unique-local) and link-local addresses. */
const LOCAL_NETWORKS = new BlockList();
for (const [net, prefix] of [
  ["127.0.0.0", 8],
  ["10.0.0.0", 8],
  ["172.16.0.0", 12],
  ["192.168.0.0", 16],
  ["169.254.0.0", 16],
] as const) {
  LOCAL_NETWORKS.addSubnet(net, prefix, "ipv4");
}
for (const [net, prefix] of [
  ["::1", 128],
  ["fc00::", 7],
  ["fe80::", 10],
] as const) {
  LOCAL_NETWORKS.addSubnet(net, prefix, "ipv6");
}

/**
 * Whether the client is on this machine or its local network, where the link is usually faster
 * than compression (a full download is then compressed for speed, not size). Anything that is
 * not an address (`unknown`) counts as remote.
 */
export function onLocalNetwork(ip: string): boolean {
  const version = isIP(ip);
  if (version === 0) return false;
  return LOCAL_NETWORKS.check(ip, version === 4 ? "ipv4" : "ipv6");
}

/** How hard a full download for a client at `ip` is compressed: for speed on the local network. */
export function zstdEffortFor(ip: string): ZstdEffort {
  return onLocalNetwork(ip) ? "fast" : "small";
}
