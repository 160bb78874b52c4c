/**
 * `.env` loading for runtimes that do not do it themselves (Deno). Bun loads `.env` before
 * any code runs, so on Bun this finds every name already set and changes nothing. Values are
 * taken literally (node:util's parseEnv: no `$` expansion); variables already set win.
 */
import { readFileSync } from "node:fs";
import { parseEnv } from "node:util";

export function loadEnvFile(path = ".env"): void {
  let text: string;
  try {
    text = readFileSync(path, "utf8");
  } catch {
    return;
  }
  for (const [name, value] of Object.entries(parseEnv(text))) {
    if (process.env[name] === undefined && value !== undefined) process.env[name] = value;
  }
}
