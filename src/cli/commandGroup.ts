/** What a command group of `bun run admin` is, and the `<group> <command> ...` dispatch. */
import { type CliContext, UsageError } from "./context.ts";

export interface CommandGroup {
  /** One line for `admin help`. */
  summary: string;
  /** Lines of `<group> <command> ...` usage. */
  usage: string[];
  run(args: string[], ctx: CliContext): Promise<void>;
}

/** One command of a group: gets the arguments after its name. */
export type Command = (ctx: CliContext, args: string[]) => void | Promise<void>;

/**
 * A group's `run` that hands `<command> [arguments]` to `commands[command]`; `group` is the
 * group's name for the error about an unknown command.
 */
export function subcommands(group: string, commands: Record<string, Command>): CommandGroup["run"] {
  return async (args, ctx) => {
    const [name, ...rest] = args;
    // Own keys only: `user toString` is an unknown command, not Object.prototype's method.
    const command = name && Object.hasOwn(commands, name) ? commands[name] : undefined;
    if (!command)
      throw new UsageError(name ? `unknown command ${group} ${name}` : "missing command");
    await command(ctx, rest);
  };
}
