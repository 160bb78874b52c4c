import { IdentityError } from "../../src/identity/errors.ts";

/** "ok", or the kind of IdentityError the login or authentication was refused with. */
export async function loginOutcome(promise: Promise<unknown>): Promise<string> {
  try {
    await promise;
    return "ok";
  } catch (err) {
    if (err instanceof IdentityError) return err.kind;
    throw err;
  }
}
