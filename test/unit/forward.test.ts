/**
 * Scale-out forwarding (src/http/forward.ts): a request passed on to the user's node with the
 * protocol's headers and the loop guard, both bodies streamed through, the answer's status and
 * headers kept; an owner that cannot be reached or does not answer in time gives 503.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { forwardCall, forwardTarget } from "../../src/http/forward.ts";
import { FORWARDED_HEADER, type SyncRequest } from "../../src/http/syncRequest.ts";
import { createLogger } from "../../src/log.ts";
import { PlacementError } from "../../src/placement/errors.ts";

const log = createLogger("error", "text");

function request(body: Uint8Array, forwardedBy?: string): SyncRequest {
  const headers = new Headers({
    "anki-sync": '{"v":11,"k":"key","c":"test","s":"skey"}',
    "content-type": "application/octet-stream",
    "anki-original-size": String(body.byteLength),
    cookie: "not passed on",
  });
  return {
    version: 11,
    legacy: false,
    multipart: false,
    hostKey: "key",
    skey: "skey",
    clientVersion: "test",
    body: new Blob([body as Uint8Array<ArrayBuffer>]).stream(),
    compression: "zstd",
    forwardedBy,
    forwardable: { method: "POST", headers, path: "/msync/uploadChanges" },
  };
}

describe("forwarding to the user's node", () => {
  let owner: ReturnType<typeof Bun.serve>;
  let seen: { path: string; headers: Headers } | undefined;

  beforeAll(() => {
    owner = Bun.serve({
      port: 0,
      async fetch(req) {
        const path = new URL(req.url).pathname;
        if (path.endsWith("/never")) return new Promise<Response>(() => {});
        seen = { path, headers: req.headers };
        // Echo the body back, as a stream, with the protocol's headers.
        const body = new Uint8Array(await req.arrayBuffer());
        return new Response(body, {
          status: 200,
          headers: {
            "content-type": "application/octet-stream",
            "anki-original-size": String(body.byteLength),
            "set-cookie": "not passed back",
          },
        });
      },
    });
  });
  afterAll(() => owner.stop(true));

  const target = () => ({ nodeId: "n1", publicUrl: `http://127.0.0.1:${owner.port}/n1/` });

  test("passes the request on and streams the answer back", async () => {
    const big = new Uint8Array(5 * 1024 * 1024).map((_, i) => (i * 31 + (i >> 12)) & 255);
    const response = await forwardCall(request(big), target(), "n2", log);
    expect(response.status).toBe(200);
    expect(new Uint8Array(await response.arrayBuffer())).toEqual(big);
    expect(response.headers.get("anki-original-size")).toBe(String(big.byteLength));
    expect(response.headers.get("set-cookie")).toBeNull();
    expect(seen?.path).toBe("/n1/msync/uploadChanges");
    expect(seen?.headers.get(FORWARDED_HEADER)).toBe("n2");
    expect(seen?.headers.get("anki-sync")).toContain('"k":"key"');
    expect(seen?.headers.get("cookie")).toBeNull();
  });

  test("an owner that cannot be reached, or does not answer in time, gives 503", async () => {
    const closed = Bun.serve({ port: 0, fetch: () => new Response("") });
    const gone = { nodeId: "n3", publicUrl: `http://127.0.0.1:${closed.port}/` };
    closed.stop(true);
    expect((await forwardCall(request(new Uint8Array(3)), gone, "n2", log)).status).toBe(503);
    const slow = { nodeId: "n1", publicUrl: `http://127.0.0.1:${owner.port}/` };
    const req = request(new Uint8Array(3));
    if (req.forwardable) req.forwardable.path = "/never";
    expect((await forwardCall(req, slow, "n2", log, 200)).status).toBe(503);
  });

  test("only a request not forwarded yet, whose body is still a stream, is forwarded", () => {
    const err = new PlacementError("elsewhere", "at n1", undefined, target());
    expect(forwardTarget(err, request(new Uint8Array(1)))).toEqual(target());
    expect(forwardTarget(err, request(new Uint8Array(1), "n3"))).toBeNull();
    expect(
      forwardTarget(err, { ...request(new Uint8Array(1)), forwardable: undefined }),
    ).toBeNull();
    const started = request(new Uint8Array(1));
    started.body.getReader();
    expect(forwardTarget(err, started)).toBeNull();
    expect(
      forwardTarget(new PlacementError("elsewhere", "x"), request(new Uint8Array(1))),
    ).toBeNull();
  });
});
