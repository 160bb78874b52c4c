/**
 * `.env` loading, the same on every runtime. Bun's own loader is switched off in bunfig.toml
 * because it expands `$` even inside single quotes, which mangles PHC hashes such as
 * `SYNC_USER1='alice:$argon2id$...'`. Values are taken literally (node:util's parseEnv: no `$`
 * expansion); variables already set win.
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
