/**
 * Bun's listener asks Linux to defer accepting a connection until its first bytes arrive
 * (TCP_DEFER_ACCEPT). A connection opened but not yet sent on then lives in the kernel only,
 * and when the listener closes it is dropped without FIN or RST. HTTP clients keep such
 * connections: Anki's (hyper's pool) opens one when a request's new connection races a pooled
 * one coming free, and keeps the loser for later. After a server restart that pooled
 * connection looks alive to the client, its next request is answered by a reset, and hyper
 * does not retry a request it has written: the sync fails. With deferral off, the connection
 * is accepted like any other, and stopping (or the process dying) closes it with a FIN, which
 * takes it out of the client's pool before its next request.
 *
 * Bun has no option for it and does not expose the socket, so the listening socket is found
 * among the process's descriptors (a listening socket bound to the port) and changed with
 * setsockopt through bun:ffi. Linux only; elsewhere Bun does not defer.
 */

import { dlopen, FFIType } from "bun:ffi";
import { readdirSync } from "node:fs";

const SOL_SOCKET = 1;
const SO_ACCEPTCONN = 30;
const IPPROTO_TCP = 6;
const TCP_DEFER_ACCEPT = 9;
const AF_INET = 2;
const AF_INET6 = 10;

type Libc = ReturnType<typeof loadLibc>;

let libcSymbols: Libc | undefined;

function openLibc(): Libc {
  libcSymbols ??= loadLibc();
  return libcSymbols;
}

function loadLibc() {
  const socketCall = { returns: FFIType.i32 } as const;
  return dlopen("libc.so.6", {
    getsockopt: {
      ...socketCall,
      args: [FFIType.i32, FFIType.i32, FFIType.i32, FFIType.ptr, FFIType.ptr],
    },
    setsockopt: {
      ...socketCall,
      args: [FFIType.i32, FFIType.i32, FFIType.i32, FFIType.ptr, FFIType.u32],
    },
    getsockname: { ...socketCall, args: [FFIType.i32, FFIType.ptr, FFIType.ptr] },
  }).symbols;
}

/** An int socket option, or null when `fd` is not a socket or lacks the option. */
function intOption(libc: Libc, fd: number, level: number, name: number): number | null {
  const value = new Int32Array(1);
  const length = new Uint32Array([4]);
  return libc.getsockopt(fd, level, name, value, length) === 0 ? (value[0] as number) : null;
}

/** The local port of an IPv4 or IPv6 socket. */
function localPort(libc: Libc, fd: number): number | null {
  const address = new Uint8Array(128);
  const length = new Uint32Array([address.byteLength]);
  if (libc.getsockname(fd, address, length) !== 0) return null;
  const view = new DataView(address.buffer);
  const family = view.getUint16(0, true);
  if (family !== AF_INET && family !== AF_INET6) return null;
  return view.getUint16(2, false); // network byte order
}

function listeningSocketsOn(libc: Libc, port: number): number[] {
  return readdirSync("/proc/self/fd")
    .map(Number)
    .filter(
      (fd) =>
        Number.isInteger(fd) &&
        intOption(libc, fd, SOL_SOCKET, SO_ACCEPTCONN) === 1 &&
        localPort(libc, fd) === port,
    );
}

/**
 * Turns deferred accepting off on this process's listening sockets bound to `port`. Returns
 * whether every such socket now accepts at once: true where nothing defers (not Linux), false
 * if a socket could not be found or changed.
 */
export function acceptConnectionsAtOnce(port: number): boolean {
  if (process.platform !== "linux") return true;
  let libc: Libc;
  try {
    libc = openLibc();
  } catch {
    return false;
  }
  const sockets = listeningSocketsOn(libc, port);
  const off = new Int32Array([0]);
  return (
    sockets.length > 0 &&
    sockets.every(
      (fd) =>
        libc.setsockopt(fd, IPPROTO_TCP, TCP_DEFER_ACCEPT, off, 4) === 0 &&
        deferredAccept(libc, fd) === 0,
    )
  );
}

function deferredAccept(libc: Libc, fd: number): number | null {
  return intOption(libc, fd, IPPROTO_TCP, TCP_DEFER_ACCEPT);
}

/** Seconds of deferral on the listening sockets bound to `port` (for tests); [] if none. */
export function deferredAcceptSeconds(port: number): (number | null)[] {
  if (process.platform !== "linux") return [];
  const libc = openLibc();
  return listeningSocketsOn(libc, port).map((fd) => deferredAccept(libc, fd));
}
