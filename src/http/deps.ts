/** What the HTTP layer is given; nothing in it opens databases or reads the environment. */
import type { Config } from "../config.ts";
import type { CollectionExecutor } from "../executor/executor.ts";
import type { IdentityService } from "../identity/service.ts";
import type { Logger } from "../log.ts";

export interface AppDeps {
  config: Config;
  identity: IdentityService;
  executor: CollectionExecutor;
  log: Logger;
}
