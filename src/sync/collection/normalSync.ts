import type { UserState } from "../../executor/userState.ts";
import { SyncError } from "../errors.ts";

export function runNormalSyncStep(_user: UserState, method: string, _skey: string, _payload: string): { json: string } {
  throw new SyncError("notFound", `normal sync method ${method} not implemented yet`);
}
