/**
 * `bun run admin <group> <command> ...`: user and session administration, safe while the
 * server runs. Each group is a module (or a folder) under src/cli/; adding one is one line in
 * GROUPS.
 * Exit codes: 0 done, 1 failed, 2 bad usage or configuration, 75 busy (try again).
 */
import { ConfigError, loadConfig } from "../config.ts";
import { loadEnvFile } from "../platform/env.ts";
import type { CommandGroup } from "./commandGroup.ts";
import { CliContext, CliError, type CliIo, processIo, UsageError } from "./context.ts";

const GROUPS: Record<string, () => Promise<{ default: CommandGroup }>> = {
  user: () => import("./userCommands.ts"),
  session: () => import("./sessionCommands.ts"),
  node: () => import("./nodeCommands.ts"),
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

/** One command, as the process runs it (environment, standard streams); returns the exit code. */
export async function runAdmin(
  argv: string[],
  io: CliIo = processIo(),
  env: Record<string, string | undefined> = process.env,
): Promise<number> {
  const [groupName, ...rest] = argv;
  if (!groupName || groupName === "help" || groupName === "--help" || groupName === "-h") {
    io.stdout(await usage());
    return groupName ? 0 : 2;
  }
  const load = Object.hasOwn(GROUPS, groupName) ? GROUPS[groupName] : undefined;
  if (!load) {
    io.stderr(`unknown command group ${groupName}\n\n${await usage()}`);
    return 2;
  }
  const group = (await load()).default;
  let context: CliContext | undefined;
  try {
    context = new CliContext(loadConfig(env), io);
    await group.run(rest, context);
    return 0;
  } catch (err) {
    if (err instanceof ConfigError) {
      io.stderr(`${err.message}\n`);
      return 2;
    }
    if (!(err instanceof CliError)) throw err;
    io.stderr(`error: ${err.message}\n`);
    if (err instanceof UsageError)
      io.stderr(`usage:\n${group.usage.map((u) => `  ${u}`).join("\n")}\n`);
    return err.exitCode;
  } finally {
    await context?.close();
  }
}

if (import.meta.main) {
  loadEnvFile();
  process.exit(await runAdmin(process.argv.slice(2)));
}
