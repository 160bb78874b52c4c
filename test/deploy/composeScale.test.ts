// biome-ignore-all lint/suspicious/noTemplateCurlyInString: these are compose interpolations
/**
 * compose.scale.yaml and Caddyfile.scale (docs/scaling.md), checked without Docker: three nodes
 * on one data volume and one PostgreSQL, each with its own public base; Caddy routing each
 * prefix to its node (stripped, named in X-Forwarded-Prefix) with the others as fallbacks. The
 * real-client scenarios behind Caddy are test/e2e/test_scale_out.py.
 */
import { describe, expect, test } from "bun:test";
import { join, resolve } from "node:path";

const ROOT = resolve(import.meta.dir, "../..");
type Service = {
  environment?: Record<string, string>;
  volumes?: string[];
  depends_on?: Record<string, unknown>;
};
const compose = Bun.YAML.parse(await Bun.file(join(ROOT, "compose.scale.yaml")).text()) as {
  services: Record<string, Service>;
};

describe("compose.scale.yaml", () => {
  const nodes = ["n1", "n2", "n3"].map((id) => [id, compose.services[id] as Service] as const);

  test("three nodes: own public base and id, one data volume, one PostgreSQL", () => {
    for (const [id, node] of nodes) {
      expect(node.environment?.ANKISYNCD_PUBLIC_URL).toBe(
        `https://\${DOMAIN_NAME:?set DOMAIN_NAME in .env}/${id}/`,
      );
      expect(node.environment?.ANKISYNCD_NODE_ID).toBe(id);
      expect(node.environment?.ANKISYNCD_DATABASE_URL).toContain("@postgres:5432/ankisyncd");
      expect(node.volumes).toEqual(["${DATA_VOLUME_SOURCE:-./efs}:/data"]);
    }
    expect(compose.services.postgres).toBeDefined();
  });

  test("Caddy gets Caddyfile.scale and every node's address", () => {
    const caddy = compose.services.caddy as Service;
    expect(caddy.volumes).toContain("./Caddyfile.scale:/etc/caddy/Caddyfile:ro");
    expect(caddy.environment).toMatchObject({
      NODE1_UPSTREAM: "n1:8080",
      NODE2_UPSTREAM: "n2:8080",
      NODE3_UPSTREAM: "n3:8080",
    });
  });
});

describe.skipIf(!Bun.which("caddy"))("Caddyfile.scale", () => {
  test("each prefix goes to its node first, stripped and named; first contact is spread", () => {
    const adapted = Bun.spawnSync(
      ["caddy", "adapt", "--config", join(ROOT, "Caddyfile.scale"), "--adapter", "caddyfile"],
      {
        env: {
          ...process.env,
          SCALE_SITE: "http://",
          NODE1_UPSTREAM: "a:1",
          NODE2_UPSTREAM: "b:2",
          NODE3_UPSTREAM: "c:3",
        },
        stderr: "pipe",
      },
    );
    expect(adapted.exitCode).toBe(0);
    const text = adapted.stdout.toString();
    for (const [prefix, first] of [
      ["/n1", "a:1"],
      ["/n2", "b:2"],
      ["/n3", "c:3"],
    ]) {
      expect(text).toContain(`"strip_path_prefix":"${prefix}"`);
      expect(text).toContain(`"X-Forwarded-Prefix":["${prefix}"]`);
      const route = text.slice(text.indexOf(`"strip_path_prefix":"${prefix}"`));
      expect(route.indexOf(`"dial":"${first}"`)).toBeLessThan(
        route.indexOf('"dial"', route.indexOf(`"dial":"${first}"`) + 1),
      );
    }
    expect(text).toContain('"policy":"ip_hash"');
    expect(text).toContain('"delete":["X-Forwarded-Prefix"]');
  });
});
