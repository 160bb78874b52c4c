/** Runs a command to completion and collects its output. */
export interface CommandResult {
  code: number;
  out: string;
  err: string;
}

export async function runCommand(
  cmd: string[],
  options: { cwd: string; env?: Record<string, string | undefined>; stdin?: string },
): Promise<CommandResult> {
  const proc = Bun.spawn(cmd, {
    cwd: options.cwd,
    env: options.env ?? process.env,
    stdin: new TextEncoder().encode(options.stdin ?? ""),
    stdout: "pipe",
    stderr: "pipe",
  });
  const [out, err, code] = await Promise.all([
    new Response(proc.stdout).text(),
    new Response(proc.stderr).text(),
    proc.exited,
  ]);
  return { code, out, err };
}
