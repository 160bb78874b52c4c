/** What the HTTP layer is given; nothing in it opens databases or reads the environment. */
import type { Config } from "../config.ts";
import type { CollectionExecutor } from "../executor/executor.ts";
import type { IdentityService } from "../identity/service.ts";
import type { Logger } from "../log.ts";
import type { ServerMetrics } from "../metrics/serverMetrics.ts";

export interface AppDeps {
  config: Config;
  identity: IdentityService;
  executor: CollectionExecutor;
  log: Logger;
  /** Counts sync requests when /metrics is on. */
  metrics?: ServerMetrics;
}
