/**
 * .env.example is the admin's checklist: it must list every app setting (src/config.ts
 * SETTINGS), every variable compose.yaml reads and the deployment variables, each with its
 * default and a line of explanation, so none of them can drift apart.
 */
import { describe, expect, test } from "bun:test";
import { readFileSync } from "node:fs";
import { resolve } from "node:path";
import { loadConfig, SETTINGS } from "../../src/config.ts";

const ROOT = resolve(import.meta.dir, "../..");
const read = (name: string) => readFileSync(resolve(ROOT, name), "utf8");

/** Named in the deployment brief: they must be in .env.example whatever else changes. */
const DEPLOYMENT_VARIABLES = [
  "AWS_ACCESS_KEY_ID",
  "AWS_SECRET_ACCESS_KEY",
  "AWS_DEFAULT_REGION",
  "ANKISYNCD_COGNITO_USER_POOL_ID",
  "ANKISYNCD_COGNITO_CLIENT_ID",
  "ANKISYNCD_COGNITO_CLIENT_SECRET",
  "ANKISYNCD_COGNITO_REGION",
  "DOMAIN_NAME",
  "EMAIL",
  "SSL_MODE",
  "DEV_MODE",
  "DATA_VOLUME_SOURCE",
  "CONTAINER_USER_ID",
  "CONTAINER_GROUP_ID",
  "MEMORY_LIMIT",
  "CPU_LIMIT",
];
/** Read by the app or the AWS SDK though not declared in SETTINGS. */
const OTHER_KNOWN = ["AWS_DEFAULT_REGION", "AWS_SESSION_TOKEN"];

interface EnvEntry {
  name: string;
  value: string;
  /** `NAME=value` (set) rather than `#NAME=value` (a default shown). */
  active: boolean;
  /** The comment lines right above it. */
  comment: string[];
  line: number;
}

function parseEnvExample(text: string): EnvEntry[] {
  const entries: EnvEntry[] = [];
  let comment: string[] = [];
  text.split("\n").forEach((raw, i) => {
    const line = raw.trimEnd();
    const variable = /^(#?)([A-Z][A-Z0-9_]*)=(.*)$/.exec(line);
    if (variable) {
      const [, hash, name, value] = variable as unknown as [string, string, string, string];
      entries.push({ name, value, active: hash === "", comment, line: i + 1 });
      comment = [];
    } else if (line.startsWith("#")) {
      comment.push(line.replace(/^#\s?/, ""));
    } else comment = [];
  });
  return entries;
}

/** `${NAME}`, `${NAME:-default}`, `${NAME:?message}` in compose.yaml (`$${...}` is a literal). */
function composeVariables(text: string): Map<string, { default?: string; required: boolean }> {
  const vars = new Map<string, { default?: string; required: boolean }>();
  for (const m of text.matchAll(
    /(?<!\$)\$\{([A-Z_][A-Z0-9_]*)(?:(:?-)([^}]*)|(:?\?)([^}]*))?\}/g,
  )) {
    const [, name, dash, def, question] = m as unknown as [
      string,
      string,
      string?,
      string?,
      string?,
    ];
    const prev = vars.get(name);
    const entry = { default: dash ? def : undefined, required: Boolean(question) };
    if (prev && prev.default !== entry.default) {
      throw new Error(
        `compose.yaml gives ${name} two defaults: ${prev.default} and ${entry.default}`,
      );
    }
    vars.set(name, entry);
  }
  return vars;
}

/** `{$NAME}` and `{$NAME:default}` in the Caddyfile. */
function caddyVariables(text: string): Map<string, string | undefined> {
  const vars = new Map<string, string | undefined>();
  for (const m of text.matchAll(/\{\$([A-Z_][A-Z0-9_]*)(?::([^}]*))?\}/g)) {
    const [, name, def] = m as unknown as [string, string, string?];
    if (!vars.has(name) || def !== undefined) vars.set(name, def);
  }
  return vars;
}

const entries = parseEnvExample(read(".env.example"));
const byName = new Map(entries.map((e) => [e.name, e]));
const compose = composeVariables(read("compose.yaml"));
/** Scale-out (docs/scaling.md): its own variables are documented too, optional ones commented. */
const composeScale = composeVariables(read("compose.scale.yaml"));

describe(".env.example", () => {
  test("lists each variable once, each with a line of explanation above it", () => {
    const names = entries.map((e) => e.name);
    expect(names.filter((n, i) => names.indexOf(n) !== i)).toEqual([]);
    const undocumented = entries.filter((e) => e.comment.join("").trim() === "").map((e) => e.name);
    expect(undocumented).toEqual([]);
  });

  test("has every app setting from src/config.ts with its default", () => {
    for (const setting of SETTINGS) {
      const entry = byName.get(setting.name);
      expect(entry, `${setting.name} missing from .env.example`).toBeDefined();
      if (!entry) continue;
      if (setting.default.startsWith("<")) {
        // A computed default: left empty, and the comment says what it is.
        expect(entry.value, setting.name).toBe("");
        expect(entry.comment.join(" "), setting.name).toContain(setting.default);
      } else if (entry.active) {
        // Set for the admin to fill in; an empty value means the default to the app.
        expect(["", setting.default], setting.name).toContain(entry.value);
      } else {
        expect(entry.value, `${setting.name} (line ${entry.line})`).toBe(setting.default);
      }
    }
  });

  test("has every deployment variable", () => {
    expect(DEPLOYMENT_VARIABLES.filter((name) => !byName.has(name))).toEqual([]);
  });

  test("has every variable compose.yaml reads, with compose's default", () => {
    for (const [name, spec] of compose) {
      const entry = byName.get(name);
      expect(entry, `${name} (read by compose.yaml) missing from .env.example`).toBeDefined();
      if (!entry) continue;
      if (spec.required) {
        expect(
          entry.active && entry.value === "",
          `${name} is required: an empty active line`,
        ).toBe(true);
      } else if (spec.default !== undefined && !(entry.active && entry.value === "")) {
        expect(entry.value, `${name}: .env.example and compose.yaml defaults differ`).toBe(
          spec.default,
        );
      }
    }
  });

  test("has every variable compose.scale.yaml reads, with its default", () => {
    for (const [name, spec] of composeScale) {
      const entry = byName.get(name);
      expect(entry, `${name} (read by compose.scale.yaml) missing from .env.example`).toBeDefined();
      if (entry && !spec.required && spec.default !== undefined && !entry.active)
        expect(entry.value, `${name}: defaults differ`).toBe(spec.default);
    }
  });

  test("lists nothing that nobody reads", () => {
    const known = new Set([
      ...SETTINGS.map((s) => s.name),
      ...compose.keys(),
      ...composeScale.keys(),
      ...OTHER_KNOWN,
    ]);
    expect(entries.map((e) => e.name).filter((n) => !known.has(n))).toEqual([]);
  });

  test("as copied (and with every default uncommented) it is a valid configuration", () => {
    const active = Object.fromEntries(
      entries.filter((e) => e.active).map((e) => [e.name, e.value]),
    );
    expect(() => loadConfig(active)).not.toThrow();
    const all = Object.fromEntries(entries.map((e) => [e.name, e.value]));
    expect(() => loadConfig(all)).not.toThrow();
  });
});

describe("Caddyfile, compose.yaml and Dockerfile agree", () => {
  const caddy = caddyVariables(read("Caddyfile").replace(/^\s*#.*$/gm, ""));
  const composeText = read("compose.yaml");
  const docs = read("docs/deployment.md");

  test("every Caddyfile variable is passed by compose or documented as a knob for running Caddy alone", () => {
    for (const name of caddy.keys()) {
      const passed = new RegExp(`^\\s+${name}:`, "m").test(composeText);
      expect(passed || docs.includes(`\`${name}\``), `${name} in the Caddyfile`).toBe(true);
    }
  });

  test("where both give a default, compose passes the Caddyfile's", () => {
    for (const [name, caddyDefault] of caddy) {
      const composeDefault = compose.get(name)?.default;
      if (caddyDefault === undefined || composeDefault === undefined) continue;
      expect(composeDefault, name).toBe(caddyDefault);
    }
  });

  test("the container user defaults are the same in the Dockerfile and compose.yaml", () => {
    const dockerfile = read("Dockerfile");
    for (const name of ["CONTAINER_USER_ID", "CONTAINER_GROUP_ID"]) {
      const arg = new RegExp(`^ARG ${name}=(\\S+)$`, "m").exec(dockerfile)?.[1];
      expect(arg, name).toBe(compose.get(name)?.default);
    }
  });
});
