/**
 * Scale-out over real HTTP: two nodes in this process on one data folder and session.db, behind
 * a small stand-in for Caddy (routes `/n1/`, `/n2/`, strips the prefix and names it). `meta` at
 * the wrong node is `308` with the user's node's base as `Location`; other requests there, and
 * a legacy client's `meta`, are forwarded to the user's node (`409` once already forwarded);
 * `/metrics` carries the node. The real client behind Caddy: test/e2e/test_scale_out.py.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { gzipJson, legacy, login } from "../helpers/syncClient.ts";
import { startTestServer, type TestServer } from "../helpers/testServer.ts";

let PUBLIC: string;
let proxy: ReturnType<typeof Bun.serve>;
const TOKEN = "metrics-token";
let dir: string;
let n1: TestServer;
let n2: TestServer;
let hkey: string;

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), "ankisyncd-placement-"));
  // What Caddyfile.scale does, enough for forwarding between the nodes: the node prefix is
  // stripped and named, the host passed on, bodies streamed.
  proxy = Bun.serve({
    port: 0,
    fetch(req) {
      const url = new URL(req.url);
      const match = url.pathname.match(/^\/(n[12])(\/.*)$/);
      const node = match?.[1] === "n2" ? n2 : n1;
      const headers = new Headers(req.headers);
      headers.set("x-forwarded-host", url.host);
      if (match) headers.set("x-forwarded-prefix", `/${match[1]}`);
      const path = match?.[2] ?? url.pathname;
      return fetch(`${node.url}${path.slice(1)}${url.search}`, {
        method: req.method,
        headers,
        body: req.body,
        duplex: "half",
        redirect: "manual",
      } as RequestInit);
    },
  });
  PUBLIC = `http://127.0.0.1:${proxy.port}/`;
  const node = (id: string) => ({
    ANKISYNCD_PUBLIC_URL: `${PUBLIC}${id}/`,
    ANKISYNCD_PLACEMENT_LEASE_SECONDS: "3",
    ANKISYNCD_METRICS_TOKEN: TOKEN,
  });
  n1 = await startTestServer(node("n1"), dir);
  n2 = await startTestServer(node("n2"), dir);
  hkey = await login(n1.url, "alice", "secret");
});

afterAll(async () => {
  proxy.stop(true);
  await n1.stop();
  await n2.stop();
  rmSync(dir, { recursive: true, force: true });
});

/** A v11 request as Caddy passes it on: the public host, and the node prefix it stripped. */
async function call(
  node: TestServer,
  method: string,
  body: object,
  prefix?: string,
  extra: Record<string, string> = {},
) {
  const headers: Record<string, string> = {
    "anki-sync": JSON.stringify({ v: 11, k: hkey, c: "test,1.0,linux", s: "s1" }),
    "x-forwarded-host": new URL(PUBLIC).host,
    ...extra,
  };
  if (prefix) headers["x-forwarded-prefix"] = prefix;
  return fetch(`${node.url}sync/${method}`, {
    method: "POST",
    headers,
    body: Bun.zstdCompressSync(
      new TextEncoder().encode(JSON.stringify(body)),
    ) as Uint8Array<ArrayBuffer>,
    redirect: "manual",
  });
}

const meta = (node: TestServer, prefix?: string) =>
  call(node, "meta", { v: 11, cv: "test,1.0,linux" }, prefix);

describe("placement", () => {
  test("first contact through the shared address is sent to the node's own base", async () => {
    const res = await meta(n1);
    expect(res.status).toBe(308);
    expect(res.headers.get("location")).toBe(`${PUBLIC}n1/`);
    expect((await meta(n1, "/n1")).status).toBe(200);
  });

  test("meta at the other node: 308 to the user's node; other requests there: forwarded", async () => {
    const res = await meta(n2, "/n2");
    expect(res.status).toBe(308);
    expect(res.headers.get("location")).toBe(`${PUBLIC}n1/`);
    const abort = () => call(n2, "abort", {}, "/n2");
    expect((await abort()).status).toBe(200);
    // Forwarded once already (n1 disagreeing with the database, say): not forwarded again.
    const again = await call(n2, "abort", {}, "/n2", { "x-ankisyncd-forwarded": "n3" });
    expect(again.status).toBe(409);
    // Meant for n1 but brought to n2: n1 does not answer the proxy, so no redirect to it.
    expect((await meta(n2, "/n1")).status).toBe(503);
  });

  test("/metrics names the node and counts its users", async () => {
    const text = await (
      await fetch(`${n1.url}metrics`, { headers: { authorization: `Bearer ${TOKEN}` } })
    ).text();
    expect(text).toContain('ankisyncd_placed_users{node="n1"} 1');
    expect(text).toMatch(/ankisyncd_sync_requests_total\{[^}]*node="n1"/);
  });

  test("a legacy client's meta at the other node is forwarded; the user stays", async () => {
    const reply = await legacy(n2.url, "meta", {
      k: hkey,
      c: "1",
      data: gzipJson({ v: 10, cv: "ankidesktop,2.1.54,lin" }),
    });
    expect(reply.status).toBe(200);
    expect(JSON.parse(reply.text)).toMatchObject({ cont: true });
    // n1 still serves the user: current clients there are not redirected.
    expect((await meta(n1, "/n1")).status).toBe(200);
  });
});
