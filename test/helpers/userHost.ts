/** A worker's `UserHost` over a scratch data folder, as the unit tests drive it without threads. */
import { UserHost } from "../../src/executor/host.ts";
import type { WorkerSettings } from "../../src/executor/jobs.ts";
import { unicaseExtensionPath } from "../../src/platform/sqlite.ts";
import type { NormalSyncMethod } from "../../src/sync/collection/normalSync.ts";

export function testUserHost(dataDir: string, settings: Partial<WorkerSettings> = {}): UserHost {
  return new UserHost({
    dataDir,
    maxUncompressedBytes: 1e9,
    backupsKept: 1,
    idleCloseSecs: 3600,
    syncSessionTimeoutSecs: 3600,
    networkFs: false,
    collectionWal: true,
    taskNice: 0,
    logLevel: "error",
    logFormat: "text",
    instance: "1x1",
    unicaseExtension: unicaseExtensionPath(),
    ...settings,
  });
}

/** Normal-sync steps of one user and session sent to `host` as the main thread sends them. */
export function normalSyncJobs(host: UserHost, uuid: string, skey: string) {
  return (method: NormalSyncMethod, payload: unknown) =>
    host.handle({
      kind: "normalSync",
      user: { uuid },
      method,
      skey,
      body: {
        bytes: new TextEncoder().encode(JSON.stringify(payload)),
        compression: "none",
        maxBytes: 1e6,
      },
      reply: "none",
    });
}
