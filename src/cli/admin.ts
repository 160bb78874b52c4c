/**
 * `bun run admin <group> <command> ...`: user and session administration, safe while the
 * server runs. Each group is a module (or a folder) under src/cli/; adding one is one line in
 * GROUPS.
 * Exit codes: 0 done, 1 failed, 2 bad usage or configuration, 75 busy (try again).
 */
import { ConfigError, loadConfig } from "../config.ts";
import { loadEnvFile } from "../platform/env.ts";
import type { CommandGroup } from "./commandGroup.ts";
import { CliContext, CliError, UsageError } from "./context.ts";

const GROUPS: Record<string, () => Promise<{ default: CommandGroup }>> = {
  user: () => import("./userCommands.ts"),
  session: () => import("./sessionCommands.ts"),
  doctor: () => import("./doctor/index.ts"),
  backup: () => import("./backupCommands.ts").then((m) => ({ default: m.backup })),
  restore: () => import("./backupCommands.ts").then((m) => ({ default: m.restore })),
};

async function usage(): Promise<string> {
  const lines = ["usage: bun run admin <group> <command> [arguments]", ""];
  for (const [name, load] of Object.entries(GROUPS)) {
    const group = (await load()).default;
    lines.push(`${name}: ${group.summary}`, ...group.usage.map((u) => `  ${u}`), "");
  }
  return lines.join("\n");
}

export async function runAdmin(argv: string[], ctx?: CliContext): Promise<number> {
  const [groupName, ...rest] = argv;
  if (!groupName || groupName === "help" || groupName === "--help" || groupName === "-h") {
    process.stdout.write(await usage());
    return groupName ? 0 : 2;
  }
  const load = Object.hasOwn(GROUPS, groupName) ? GROUPS[groupName] : undefined;
  if (!load) {
    process.stderr.write(`unknown command group ${groupName}\n\n${await usage()}`);
    return 2;
  }
  const group = (await load()).default;
  let context = ctx;
  try {
    context ??= new CliContext(loadConfig());
    await group.run(rest, context);
    return 0;
  } catch (err) {
    if (err instanceof ConfigError) {
      process.stderr.write(`${err.message}\n`);
      return 2;
    }
    if (!(err instanceof CliError)) throw err;
    process.stderr.write(`error: ${err.message}\n`);
    if (err instanceof UsageError)
      process.stderr.write(`usage:\n${group.usage.map((u) => `  ${u}`).join("\n")}\n`);
    return err.exitCode;
  } finally {
    context?.close();
  }
}

if (import.meta.main) {
  loadEnvFile();
  process.exit(await runAdmin(process.argv.slice(2)));
}
