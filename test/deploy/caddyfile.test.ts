/**
 * The Caddyfile in each SSL_MODE, as Caddy itself adapts it to its JSON config (`caddy adapt`,
 * no server started). The e2e test test/e2e/test_https_caddy.py runs it for real.
 */
import { describe, expect, test } from "bun:test";
import { resolve } from "node:path";

const ROOT = resolve(import.meta.dir, "../..");
const CADDY = Bun.which("caddy");

type Json = Record<string, unknown>;

function adapt(env: Record<string, string>): { ok: boolean; config: Json; stderr: string } {
  const proc = Bun.spawnSync(
    ["caddy", "adapt", "--config", "Caddyfile", "--adapter", "caddyfile"],
    {
      cwd: ROOT,
      env: { PATH: process.env.PATH ?? "", HOME: process.env.HOME ?? "/tmp", ...env },
    },
  );
  const stdout = proc.stdout.toString();
  return {
    ok: proc.exitCode === 0,
    config: proc.exitCode === 0 ? (JSON.parse(stdout) as Json) : {},
    stderr: proc.stderr.toString(),
  };
}

const get = (obj: unknown, ...path: (string | number)[]): unknown =>
  path.reduce<unknown>((o, k) => (o as Record<string | number, unknown> | undefined)?.[k], obj);

const BASE = { DOMAIN_NAME: "anki.example.com", EMAIL: "admin@example.com" };

function server(config: Json): Json {
  return get(config, "apps", "http", "servers", "srv0") as Json;
}

/** The handlers of the site route, whatever the nesting (subroute) is. */
function handlers(config: Json): Json[] {
  const found: Json[] = [];
  const visit = (node: unknown) => {
    if (Array.isArray(node)) node.forEach(visit);
    else if (node && typeof node === "object") {
      const obj = node as Json;
      if (typeof obj.handler === "string") found.push(obj);
      Object.values(obj).forEach(visit);
    }
  };
  visit(server(config).routes);
  return found;
}

function expectProxy(config: Json, upstream = "ankisyncd:8080"): void {
  const hs = handlers(config);
  const proxy = hs.find((h) => h.handler === "reverse_proxy");
  expect(get(proxy, "upstreams", 0, "dial")).toBe(upstream);
  expect(proxy?.flush_interval).toBe(-1);
  expect(get(proxy, "transport", "response_header_timeout")).toBeUndefined();
  const body = hs.find((h) => h.handler === "request_body");
  // 1GB: above the app's default limit of 3 x 100 MiB
  expect(body?.max_size as number).toBeGreaterThan(3 * 100 * 1024 * 1024);
  const srv = server(config);
  expect(srv.read_header_timeout).toBe(30e9);
  expect(srv.read_timeout).toBeUndefined();
  expect(srv.write_timeout).toBeUndefined();
}

function expectTls12(config: Json): void {
  const policies = server(config).tls_connection_policies as Json[];
  const site = policies.find((p) => get(p, "match", "sni", 0) === BASE.DOMAIN_NAME);
  expect(site?.protocol_min).toBe("tls1.2");
  expect(site?.protocol_max).toBe("tls1.3");
}

describe.skipIf(!CADDY)("Caddyfile (caddy adapt)", () => {
  test("letsencrypt: ACME issuer with the email, HTTPS on 443, TLS 1.2 allowed", () => {
    const { ok, config, stderr } = adapt({ ...BASE, SSL_MODE: "letsencrypt" });
    expect(ok, stderr).toBe(true);
    expect(server(config).listen).toEqual([":443"]);
    const policy = get(config, "apps", "tls", "automation", "policies", 0) as Json;
    expect(policy.subjects).toEqual([BASE.DOMAIN_NAME]);
    expect(get(policy, "issuers", 0)).toMatchObject({
      module: "acme",
      ca: "https://acme-v02.api.letsencrypt.org/directory",
      email: BASE.EMAIL,
    });
    expect(get(config, "apps", "tls", "automation", "policies", 0, "issuers", 1)).toBeUndefined();
    expectTls12(config);
    expectProxy(config);
    expect(get(config, "logging")).toBeUndefined();
  });

  test("letsencrypt with an empty EMAIL: an ACME account without contact, no parse error", () => {
    const { ok, config, stderr } = adapt({ ...BASE, EMAIL: "", SSL_MODE: "letsencrypt" });
    expect(ok, stderr).toBe(true);
    const issuer = get(config, "apps", "tls", "automation", "policies", 0, "issuers", 0) as Json;
    expect(issuer).toMatchObject({ module: "acme" });
    expect(issuer.email).toBeUndefined();
  });

  test("letsencrypt with DEV_MODE=true: Let's Encrypt staging and debug logs", () => {
    const { ok, config, stderr } = adapt({
      ...BASE,
      SSL_MODE: "letsencrypt",
      DEV_MODE: "true",
      ACME_CA: "https://acme-v02.api.letsencrypt.org/directory",
    });
    expect(ok, stderr).toBe(true);
    expect(get(config, "apps", "tls", "automation", "policies", 0, "issuers", 0, "ca")).toBe(
      "https://acme-staging-v02.api.letsencrypt.org/directory",
    );
    expect(JSON.stringify(get(config, "logging"))).toContain("DEBUG");
  });

  test("letsencrypt against another ACME CA (ACME_CA)", () => {
    const { config } = adapt({ ...BASE, SSL_MODE: "letsencrypt", ACME_CA: "https://ca.test/dir" });
    expect(get(config, "apps", "tls", "automation", "policies", 0, "issuers", 0, "ca")).toBe(
      "https://ca.test/dir",
    );
  });

  test("self-signed: Caddy's internal CA, never installed into the system trust store", () => {
    const { ok, config, stderr } = adapt({ ...BASE, SSL_MODE: "self-signed" });
    expect(ok, stderr).toBe(true);
    expect(get(config, "apps", "tls", "automation", "policies", 0, "issuers", 0, "module")).toBe(
      "internal",
    );
    expect(get(config, "apps", "pki", "certificate_authorities", "local", "install_trust")).toBe(
      false,
    );
    expectTls12(config);
    expectProxy(config);
  });

  test("existing: the certificate and key files", () => {
    const { ok, config, stderr } = adapt({
      ...BASE,
      SSL_MODE: "existing",
      TLS_CERT_FILE: "/certs/a.pem",
      TLS_KEY_FILE: "/certs/a.key",
    });
    expect(ok, stderr).toBe(true);
    expect(get(config, "apps", "tls", "certificates", "load_files", 0)).toMatchObject({
      certificate: "/certs/a.pem",
      key: "/certs/a.key",
    });
    expectTls12(config);
    expectProxy(config);
  });

  test("off: plain HTTP on the HTTP port for any host, no TLS", () => {
    const { ok, config, stderr } = adapt({ SSL_MODE: "off", CADDY_UPSTREAM: "127.0.0.1:9" });
    expect(ok, stderr).toBe(true);
    expect(server(config).listen).toEqual([":80"]);
    expect(get(config, "apps", "tls")).toBeUndefined();
    expectProxy(config, "127.0.0.1:9");
  });

  test("knobs for running Caddy alone: ports, loopback only, no admin API", () => {
    const { config } = adapt({
      SSL_MODE: "off",
      CADDY_HTTP_PORT: "18080",
      CADDY_BIND: "loopback",
      CADDY_ADMIN: "off",
    });
    expect(server(config).listen).toEqual(["127.0.0.1:18080"]);
    expect(get(config, "admin", "disabled")).toBe(true);
  });

  test("an unknown SSL_MODE stops Caddy with the mode in the message", () => {
    const { ok, stderr } = adapt({ ...BASE, SSL_MODE: "letsencrpyt" });
    expect(ok).toBe(false);
    expect(stderr).toContain("site-letsencrpyt");
  });
});
