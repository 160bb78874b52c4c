/**
 * What this process may do, on Deno: asked without prompting (a prompt would hold the calling
 * thread until someone answers it at a terminal). Granted by `--allow-run` (deno.json).
 */
declare const Deno: {
  permissions: {
    querySync(desc: { name: "run"; command: string }): { state: "granted" | "denied" | "prompt" };
  };
};

export function mayRunCommand(name: string): boolean {
  return Deno.permissions.querySync({ name: "run", command: name }).state === "granted";
}
