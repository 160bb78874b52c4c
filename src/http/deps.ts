/** What the HTTP layer is given; nothing in it opens databases or reads the environment. */
import type { Config } from "../config.ts";
import type { CollectionExecutor } from "../executor/executor.ts";
import type { ReadyDownloads } from "../executor/readyDownloads.ts";
import type { UploadSite } from "../executor/receiveUpload.ts";
import type { IdentityService } from "../identity/service.ts";
import type { StateDb } from "../identity/stateDb.ts";
import type { Logger } from "../log.ts";
import type { ServerMetrics } from "../metrics/serverMetrics.ts";
import type { NodePlacement } from "../placement/nodePlacement.ts";

export interface AppDeps {
  config: Config;
  identity: IdentityService;
  executor: CollectionExecutor;
  log: Logger;
  /** PostgreSQL holding the shared state, asked by /ready (session.db is checked as a file). */
  sharedDb?: Pick<StateDb, "ping" | "where">;
  /** Counts sync requests when /metrics is on. */
  metrics?: ServerMetrics;
  /** Full downloads made ahead after full uploads; without it every download is made on demand. */
  readyDownloads?: ReadyDownloads;
  /** Scale-out (ANKISYNCD_PUBLIC_URL): which node serves which user. */
  placement?: Pick<NodePlacement, "admit" | "admitMeta" | "leave" | "nodeId">;
}

/** Where uploads go and what bounds them (executor/receiveUpload.ts). */
export function uploadSite({ executor, config }: AppDeps): UploadSite {
  return {
    executor,
    dataDir: config.dataDir,
    limits: {
      maxUncompressedBytes: config.maxUncompressedBytes,
      maxTempBytes: config.maxTempBytes,
    },
  };
}
