/**
 * `/metrics`: where it is served and what it counts, checked with Prometheus' own tools: the
 * output passes `promtool check metrics`, and a real Prometheus (Debian's `prometheus`)
 * scrapes it. Both come with `bash scripts/setup/install.sh --test`; without them those two
 * checks are skipped, saying so.
 */
import { afterAll, beforeAll, describe, expect, setDefaultTimeout, test } from "bun:test";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { runCommand } from "../helpers/run.ts";
import { login, v11 } from "../helpers/syncClient.ts";
import { startTestServer, type TestServer } from "../helpers/testServer.ts";

setDefaultTimeout(120_000);
const TOKEN = "scrape-secret";
const PROMTOOL = Bun.which("promtool");
const PROMETHEUS = Bun.which("prometheus");
let server: TestServer;
let metricsUrl: string;

beforeAll(async () => {
  server = await startTestServer({
    ANKISYNCD_METRICS_PORT: "0",
    ANKISYNCD_METRICS_TOKEN: TOKEN,
    ANKISYNCD_LOGIN_RATE_PER_USER: "1",
  });
  metricsUrl = server.metricsUrl as string;
});
afterAll(async () => {
  await server.dispose();
});

const scrape = (token: string | null = TOKEN) =>
  fetch(metricsUrl, { headers: token ? { authorization: `Bearer ${token}` } : {} });

/** `name{labels} value` lines of the exposition, as a map. */
async function samples(): Promise<Map<string, number>> {
  const text = await (await scrape()).text();
  const out = new Map<string, number>();
  for (const line of text.split("\n")) {
    const m = /^([a-z_]+(?:\{[^}]*\})?) (\S+)$/.exec(line);
    if (m) out.set(m[1] as string, Number(m[2]));
  }
  return out;
}

describe("/metrics on its own port", () => {
  test("requires the token when one is set", async () => {
    expect((await scrape(null)).status).toBe(401);
    expect((await scrape("wrong")).status).toBe(401);
    const ok = await scrape();
    expect(ok.status).toBe(200);
    expect(ok.headers.get("content-type")).toContain("text/plain");
  });

  test("is not on the sync port when it has a port of its own", async () => {
    const res = await fetch(`${server.url}metrics`, {
      headers: { authorization: `Bearer ${TOKEN}` },
    });
    expect(res.status).toBe(404);
  });

  test("counts requests, logins by outcome, rate limits, bytes and open collections", async () => {
    const hkey = await login(server.url, "alice", "secret");
    expect((await v11(server.url, "hostKey", { u: "bob", p: "wrong" })).status).toBe(403);
    expect((await v11(server.url, "hostKey", { u: "bob", p: "wrong" })).status).toBe(429);
    expect(
      (await v11(server.url, "meta", { v: 11, cv: "anki,26.09.3 (x),linux" }, { hkey })).status,
    ).toBe(200);
    expect((await v11(server.url, "noSuchMethod", {}, { hkey })).status).toBe(404);

    const s = await samples();
    expect(s.get('ankisyncd_logins_total{outcome="success"}')).toBe(1);
    expect(s.get('ankisyncd_logins_total{outcome="denied"}')).toBe(1);
    expect(s.get('ankisyncd_logins_total{outcome="rate_limited"}')).toBe(1);
    expect(s.get('ankisyncd_rate_limited_requests_total{method="hostKey"}')).toBe(1);
    expect(s.get('ankisyncd_sync_requests_total{method="meta",status="200"}')).toBe(1);
    expect(s.get('ankisyncd_sync_requests_total{method="unknown",status="404"}')).toBe(1);
    expect(s.get('ankisyncd_sync_request_duration_seconds_count{method="meta"}')).toBe(1);
    expect(s.get('ankisyncd_sync_received_bytes_total{method="meta"}')).toBeGreaterThan(0);
    expect(s.get('ankisyncd_sync_sent_bytes_total{method="meta"}')).toBeGreaterThan(0);
    // meta opened alice's collection; it stays open until ANKISYNCD_IDLE_CLOSE_SECS
    expect(s.get("ankisyncd_open_collections")).toBe(1);
    expect(s.get('ankisyncd_worker_queue_depth{kind="job"}')).toBe(0);
    expect(s.get("ankisyncd_data_free_bytes")).toBeGreaterThan(0);
  });

  test.skipIf(!PROMTOOL)("passes `promtool check metrics` (needs promtool)", async () => {
    const text = await (await scrape()).text();
    const checked = await runCommand([PROMTOOL as string, "check", "metrics"], {
      cwd: tmpdir(),
      stdin: text,
    });
    expect(checked.err + checked.out).toBe("");
    expect(checked.code).toBe(0);
  });

  test.skipIf(!PROMETHEUS)("is scraped by a real Prometheus (needs prometheus)", async () => {
    const dir = mkdtempSync(join(tmpdir(), "ankisyncd-prometheus-"));
    const webPort = await freePort();
    const target = new URL(metricsUrl).host;
    writeFileSync(
      join(dir, "prometheus.yml"),
      [
        "global: { scrape_interval: 1s, evaluation_interval: 1s }",
        "scrape_configs:",
        "  - job_name: ankisyncd",
        `    authorization: { credentials: ${TOKEN} }`,
        `    static_configs: [{ targets: ["${target}"] }]`,
        "",
      ].join("\n"),
    );
    const proc = Bun.spawn(
      [
        PROMETHEUS as string,
        `--config.file=${join(dir, "prometheus.yml")}`,
        `--storage.tsdb.path=${join(dir, "tsdb")}`,
        `--web.listen-address=127.0.0.1:${webPort}`,
      ],
      { stdout: "ignore", stderr: "pipe" },
    );
    try {
      const api = `http://127.0.0.1:${webPort}/api/v1/query?query=`;
      const up = await poll(api + encodeURIComponent('up{job="ankisyncd"}'));
      expect(up).toBe("1");
      const logins = await poll(
        api + encodeURIComponent('ankisyncd_logins_total{outcome="success"}'),
      );
      expect(Number(logins)).toBeGreaterThanOrEqual(1);
    } finally {
      proc.kill();
      await proc.exited;
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe("/metrics on the sync port", () => {
  test("is served there behind the token when no port is set", async () => {
    const other = await startTestServer({ ANKISYNCD_METRICS_TOKEN: TOKEN });
    try {
      expect(other.metricsUrl).toBeNull();
      expect((await fetch(`${other.url}metrics`)).status).toBe(401);
      const ok = await fetch(`${other.url}metrics`, {
        headers: { authorization: `Bearer ${TOKEN}` },
      });
      expect(ok.status).toBe(200);
      expect(await ok.text()).toContain("ankisyncd_data_free_bytes");
    } finally {
      await other.dispose();
    }
  });

  test("does not exist without a port or a token", async () => {
    const other = await startTestServer();
    try {
      expect((await fetch(`${other.url}metrics`)).status).toBe(404);
    } finally {
      await other.dispose();
    }
  });
});

/** The first sample's value of an instant query, waiting for Prometheus to have one. */
async function poll(url: string): Promise<string> {
  let last = "";
  for (let i = 0; i < 120; i++) {
    try {
      const body = (await (await fetch(url)).json()) as {
        data?: { result?: { value: [number, string] }[] };
      };
      const value = body.data?.result?.[0]?.value[1];
      if (value !== undefined) return value;
      last = JSON.stringify(body);
    } catch (err) {
      last = String(err);
    }
    await new Promise((r) => setTimeout(r, 500));
  }
  throw new Error(`Prometheus gave no sample for ${url}: ${last}`);
}

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.once("error", reject);
    s.listen(0, "127.0.0.1", () => {
      const { port } = s.address() as { port: number };
      s.close(() => resolve(port));
    });
  });
}
