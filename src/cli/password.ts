/** Where a new password comes from: stdin (scripts), a hidden prompt (terminals), or generated. */
import { randomBytes } from "node:crypto";
import { weakPasswordReason } from "../identity/passwords.ts";
import { CliError, UsageError } from "./context.ts";

export type PasswordSource = "stdin" | "generate" | "prompt";

export function passwordSource(flags: Set<string>, stdinIsTty: boolean): PasswordSource {
  if (flags.has("password-stdin") && flags.has("generate")) {
    throw new UsageError("give --password-stdin or --generate, not both");
  }
  if (flags.has("password-stdin")) return "stdin";
  if (flags.has("generate")) return "generate";
  if (!stdinIsTty)
    throw new UsageError("no terminal to ask for the password: use --password-stdin or --generate");
  return "prompt";
}

export async function readNewPassword(
  source: PasswordSource,
  stdin: AsyncIterable<Uint8Array | string>,
): Promise<{ password: string; generated: boolean }> {
  if (source === "generate")
    return { password: randomBytes(15).toString("base64url"), generated: true };
  if (source === "stdin") {
    const chunks: Buffer[] = [];
    for await (const chunk of stdin) chunks.push(Buffer.from(chunk));
    const password = Buffer.concat(chunks)
      .toString("utf8")
      .replace(/\r?\n$/, "");
    if (!password) throw new CliError("empty password on stdin");
    return { password: strongEnough(password), generated: false };
  }
  const password = await promptHidden("New password: ");
  if (!password) throw new CliError("empty password");
  strongEnough(password);
  if ((await promptHidden("Repeat it: ")) !== password) throw new CliError("the passwords differ");
  return { password, generated: false };
}

function strongEnough(password: string): string {
  const weak = weakPasswordReason(password);
  if (weak) throw new CliError(weak);
  return password;
}

/** Reads a line from the terminal without echoing it. */
function promptHidden(question: string): Promise<string> {
  const stdin = process.stdin;
  process.stderr.write(question);
  stdin.setRawMode(true);
  stdin.resume();
  return new Promise((resolve, reject) => {
    let value = "";
    const done = (err?: Error) => {
      stdin.off("data", onData);
      stdin.setRawMode(false);
      stdin.pause();
      process.stderr.write("\n");
      if (err) reject(err);
      else resolve(value);
    };
    const onData = (data: Buffer) => {
      for (const char of data.toString("utf8")) {
        if (char === "\r" || char === "\n") return done();
        if (char === "\u0003" || char === "\u0004") return done(new CliError("cancelled"));
        if (char === "\u007f" || char === "\b") value = value.slice(0, -1);
        else value += char;
      }
    };
    stdin.on("data", onData);
  });
}
