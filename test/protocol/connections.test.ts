/**
 * Connections stay open between requests (a sync is several in a row), and stopping closes
 * every one of them, including one a client opened and never sent on: the listener accepts it
 * at once instead of leaving it to the kernel (TCP_DEFER_ACCEPT), where a restart would drop it
 * silently and the client's next request on it would fail (platform/bun/acceptAtOnce.ts).
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { connect, type Socket } from "node:net";
import { deferredAcceptSeconds } from "../../src/platform/bun/acceptAtOnce.ts";
import { startTestServer, type TestServer } from "../helpers/testServer.ts";

let server: TestServer;
beforeAll(async () => {
  server = await startTestServer();
});
afterAll(async () => {
  await server.dispose();
});

/** A raw connection that collects what the server sends and notes when it closes. */
function rawConnection(port: number) {
  const socket: Socket = connect({ host: "127.0.0.1", port });
  let received = "";
  socket.setEncoding("latin1");
  socket.on("data", (d: string) => {
    received += d;
  });
  socket.on("error", () => {}); // a reset counts as closed, like an end
  const closed = new Promise<void>((resolve) => socket.on("close", () => resolve()));
  const opened = new Promise<void>((resolve) => socket.on("connect", () => resolve()));
  return {
    socket,
    opened,
    closed,
    received: () => received,
    /** Waits until `count` complete responses (all with a content length) have arrived. */
    async responses(count: number): Promise<string[]> {
      for (let i = 0; i < 400; i++) {
        const found = completeResponses(received);
        if (found.length >= count) return found;
        await Bun.sleep(25);
      }
      throw new Error(`expected ${count} responses, got:\n${received}`);
    },
  };
}

function completeResponses(text: string): string[] {
  const found: string[] = [];
  let rest = text;
  for (;;) {
    const end = rest.indexOf("\r\n\r\n");
    if (end < 0) return found;
    const head = rest.slice(0, end);
    const length = Number(/content-length: *(\d+)/i.exec(head)?.[1] ?? 0);
    if (rest.length < end + 4 + length) return found;
    found.push(head);
    rest = rest.slice(end + 4 + length);
  }
}

function post(path: string, body: Uint8Array, headers: Record<string, string>): Buffer {
  const lines = [`POST ${path} HTTP/1.1`, "Host: test", `Content-Length: ${body.byteLength}`];
  for (const [name, value] of Object.entries(headers)) lines.push(`${name}: ${value}`);
  return Buffer.concat([Buffer.from(`${lines.join("\r\n")}\r\n\r\n`), body]);
}

const health = "GET /health HTTP/1.1\r\nHost: test\r\n\r\n";

describe("connections", () => {
  test.if(process.platform === "linux")("the listener accepts connections at once", () => {
    const seconds = deferredAcceptSeconds(server.port);
    expect(seconds.length).toBeGreaterThan(0);
    expect(seconds.every((s) => s === 0)).toBe(true);
  });

  test("one connection carries several requests, also after an answer that left the body unread", async () => {
    const conn = rawConnection(server.port);
    await conn.opened;
    conn.socket.write(health);
    await conn.responses(1);
    // An unknown host key is refused before the body is read (1 MiB of it here): the
    // connection must still be usable, its next request read from the right place.
    const header = JSON.stringify({ v: 11, k: "f".repeat(64), c: "test,1.0,linux", s: "s" });
    conn.socket.write(post("/sync/meta", new Uint8Array(1 << 20), { "anki-sync": header }));
    conn.socket.write(health);
    const heads = await conn.responses(3);
    expect(heads.map((h) => h.split(" ")[1])).toEqual(["200", "403", "200"]);
    for (const head of heads) expect(head.toLowerCase()).not.toContain("connection: close");
    conn.socket.destroy();
  });

  test("stopping closes idle connections, also one never sent on", async () => {
    const own = await startTestServer();
    const used = rawConnection(own.port);
    const spare = rawConnection(own.port);
    await Promise.all([used.opened, spare.opened]);
    used.socket.write(health);
    await used.responses(1);
    await own.dispose();
    await Promise.all([used.closed, spare.closed]);
    expect(spare.received()).toBe("");
  });
});
