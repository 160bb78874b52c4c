// biome-ignore-all lint/suspicious/noTemplateCurlyInString: these are compose.yaml interpolations
/**
 * compose.yaml: its structure, and — with `docker compose` (v2) or `docker-compose` (v1, the
 * Debian package the suite installs), which resolve a project without a Docker engine — that
 * `cp .env.example .env` plus the required values gives the documented resolved configuration.
 */
import { afterAll, describe, expect, test } from "bun:test";
import { copyFileSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { openSessionDb } from "../../src/identity/sessionDb.ts";

const ROOT = resolve(import.meta.dir, "../..");
type Json = Record<string, unknown>;
type Service = Json & {
  environment?: Record<string, string>;
  volumes?: unknown[];
  deploy?: Json;
  ports?: unknown[];
};

const compose = Bun.YAML.parse(await Bun.file(join(ROOT, "compose.yaml")).text()) as {
  services: Record<string, Service>;
  volumes: Record<string, unknown>;
};

function composeCommand(): string[] | null {
  const v2 = Bun.which("docker")
    ? Bun.spawnSync(["docker", "compose", "version"], { stderr: "pipe" })
    : null;
  if (v2?.exitCode === 0) return ["docker", "compose"];
  if (Bun.which("docker-compose")) return ["docker-compose"];
  return null;
}
const COMPOSE = composeCommand();

describe("compose.yaml structure", () => {
  const { ankisyncd, caddy } = compose.services as Record<string, Service>;

  test("the app: built here, runs as the container user, data in one volume, limits", () => {
    expect(ankisyncd?.build).toMatchObject({
      context: ".",
      args: {
        CONTAINER_USER_ID: "${CONTAINER_USER_ID:-1001}",
        CONTAINER_GROUP_ID: "${CONTAINER_GROUP_ID:-65533}",
      },
    });
    expect(ankisyncd?.user).toBe("${CONTAINER_USER_ID:-1001}:${CONTAINER_GROUP_ID:-65533}");
    expect(ankisyncd?.restart).toBe("unless-stopped");
    expect(ankisyncd?.env_file).toBe(".env");
    expect(ankisyncd?.environment).toMatchObject({
      SYNC_BASE: "/data",
      SYNC_PORT: "8080",
      SYNC_IP_HEADER: "X-Forwarded-For",
    });
    expect(ankisyncd?.volumes).toEqual(["${DATA_VOLUME_SOURCE:-./efs}:/data"]);
    expect(ankisyncd?.deploy).toEqual({
      resources: { limits: { memory: "${MEMORY_LIMIT:-512M}", cpus: "${CPU_LIMIT:-1.0}" } },
    });
    expect(ankisyncd?.ports).toBeUndefined(); // only Caddy is published
  });

  test("backup: only on demand, as the server's user, data and a backup folder mounted", () => {
    const backup = compose.services.backup;
    expect(backup?.profiles).toEqual(["backup"]);
    expect(backup?.image).toBe(ankisyncd?.image as string);
    expect(backup?.user).toBe(ankisyncd?.user as string);
    expect(backup?.environment).toMatchObject({ SYNC_BASE: "/data" });
    expect(backup?.volumes).toEqual([
      "${DATA_VOLUME_SOURCE:-./efs}:/data",
      "${BACKUP_VOLUME_SOURCE:-./backups}:/backups",
    ]);
    expect(backup?.network_mode).toBe("none");
    expect(backup?.restart).toBe("no");
  });

  test("backup: its command writes a dated backup of a data folder", async () => {
    const backup = compose.services.backup as Service & { entrypoint: string[]; command: string[] };
    const dir = mkdtempSync(join(tmpdir(), "ankisyncd-compose-backup-"));
    try {
      const env = { PATH: process.env.PATH ?? "", HOME: dir, SYNC_BASE: join(dir, "data") };
      await openSessionDb(join(dir, "data", "session.db")).close(); // as the server's first start
      const add = Bun.spawnSync(
        ["bun", "run", "admin", "user", "add", "erin", "--password-stdin"],
        { cwd: ROOT, env, stdin: new TextEncoder().encode("a good password\n") },
      );
      expect(add.exitCode, add.stderr.toString()).toBe(0);
      // compose turns $$ into $; the container's /backups is a folder here.
      const script = (backup.command[0] as string)
        .replaceAll("$$", "$")
        .replaceAll("/backups/", `${join(dir, "backups")}/`);
      const run = Bun.spawnSync([...backup.entrypoint, script], { cwd: ROOT, env });
      expect(run.exitCode, run.stderr.toString()).toBe(0);
      expect(run.stdout.toString()).toMatch(
        /backup written to .*\/backups\/\d{8}-\d{6}: session\.db/,
      );
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  test("Caddy: our Caddyfile, certificates in a volume, starts once the app is healthy", () => {
    expect(caddy?.restart).toBe("unless-stopped");
    expect(caddy?.volumes).toContain("./Caddyfile:/etc/caddy/Caddyfile:ro");
    expect(caddy?.volumes).toContain("caddy_data:/data");
    expect(compose.volumes).toHaveProperty("caddy_data");
    expect(caddy?.depends_on).toEqual({ ankisyncd: { condition: "service_healthy" } });
    expect(caddy?.environment?.CADDY_UPSTREAM).toBe("ankisyncd:8080");
    for (const name of ["SSL_MODE", "DOMAIN_NAME", "EMAIL", "DEV_MODE"]) {
      expect(caddy?.environment?.[name], name).toStartWith(`\${${name}`);
    }
  });
});

describe.skipIf(!COMPOSE)(`${COMPOSE?.join(" ") ?? "docker compose"} config`, () => {
  const dir = mkdtempSync(join(tmpdir(), "ankisyncd-compose-"));
  for (const file of ["compose.yaml", "Caddyfile", "Dockerfile"]) {
    copyFileSync(join(ROOT, file), join(dir, file));
  }
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  function config(env: Record<string, string>, envFile: string) {
    writeFileSync(join(dir, ".env"), envFile);
    const proc = Bun.spawnSync([...(COMPOSE as string[]), "config"], {
      cwd: dir,
      env: { PATH: process.env.PATH ?? "", HOME: dir, ...env },
    });
    const stdout = proc.stdout.toString();
    return {
      code: proc.exitCode,
      stderr: proc.stderr.toString(),
      resolved: proc.exitCode === 0 ? (Bun.YAML.parse(stdout) as typeof compose) : undefined,
    };
  }

  const example = Bun.file(join(ROOT, ".env.example")).text();
  const filled = async () =>
    (await example)
      .replace(/^DOMAIN_NAME=$/m, "DOMAIN_NAME=anki.example.com")
      .replace(/^EMAIL=$/m, "EMAIL=admin@example.com");

  /** `- src:dst[:mode]` (v1) or `{type: bind, source, target}` (v2). */
  const binds = (service: Service | undefined) =>
    (service?.volumes ?? []).map((v) =>
      typeof v === "string"
        ? v.split(":").slice(0, 2).join(":")
        : `${(v as Json).source}:${(v as Json).target}`,
    );
  const bytes = (v: unknown) =>
    typeof v === "string" && /^\d+[MG]$/.test(v)
      ? Number(v.slice(0, -1)) * 1024 ** (v.endsWith("G") ? 3 : 2)
      : Number(v);

  test("cp .env.example .env with DOMAIN_NAME and EMAIL filled in resolves to the defaults", async () => {
    const { code, stderr, resolved } = config({}, await filled());
    expect(code, stderr).toBe(0);
    const app = resolved?.services.ankisyncd;
    const caddy = resolved?.services.caddy;
    expect(app?.user).toBe("1001:65533");
    expect(binds(app)).toEqual([`${dir}/efs:/data`]);
    expect(bytes(get(app, "deploy", "resources", "limits", "memory"))).toBe(512 * 1024 ** 2);
    expect(Number(get(app, "deploy", "resources", "limits", "cpus"))).toBe(1);
    expect(get(app, "build", "args")).toEqual({
      CONTAINER_USER_ID: "1001",
      CONTAINER_GROUP_ID: "65533",
    });
    expect(app?.environment).toMatchObject({
      SYNC_BASE: "/data",
      SYNC_IP_HEADER: "X-Forwarded-For",
    });
    expect(caddy?.environment).toMatchObject({
      SSL_MODE: "letsencrypt",
      DOMAIN_NAME: "anki.example.com",
      EMAIL: "admin@example.com",
      DEV_MODE: "false",
      CADDY_UPSTREAM: "ankisyncd:8080",
    });
    expect(binds(caddy)).toContain(`${dir}/Caddyfile:/etc/caddy/Caddyfile`);
  });

  test("the documented variables change what they say", async () => {
    const { code, stderr, resolved } = config(
      {
        DATA_VOLUME_SOURCE: "/mnt/efs/ankisyncd",
        CONTAINER_USER_ID: "2000",
        CONTAINER_GROUP_ID: "2001",
        MEMORY_LIMIT: "1G",
        CPU_LIMIT: "0.5",
        SSL_MODE: "self-signed",
        HTTPS_PORT: "8443",
      },
      await filled(),
    );
    expect(code, stderr).toBe(0);
    const app = resolved?.services.ankisyncd;
    expect(app?.user).toBe("2000:2001");
    expect(binds(app)).toEqual(["/mnt/efs/ankisyncd:/data"]);
    expect(bytes(get(app, "deploy", "resources", "limits", "memory"))).toBe(1024 ** 3);
    expect(Number(get(app, "deploy", "resources", "limits", "cpus"))).toBe(0.5);
    expect(resolved?.services.caddy?.environment?.SSL_MODE).toBe("self-signed");
    expect(JSON.stringify(resolved?.services.caddy?.ports)).toContain("8443");
  });

  test("without DOMAIN_NAME compose refuses, saying so", async () => {
    const { code, stderr } = config({}, await example);
    expect(code).not.toBe(0);
    expect(stderr).toContain("DOMAIN_NAME");
  });
});

function get(obj: unknown, ...path: string[]): unknown {
  return path.reduce<unknown>((o, k) => (o as Json | undefined)?.[k], obj);
}
