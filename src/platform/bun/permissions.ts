/** What this process may do, on Bun: it has no permission model, so anything the system allows. */
export function mayRunCommand(_name: string): boolean {
  return true;
}
