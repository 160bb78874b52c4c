/**
 * Wires configuration, identity, storage and the HTTP app together. `startServer` is what the
 * entry point and the tests call; it returns the bound address and a `stop()`.
 */
import { mkdirSync } from "node:fs";
import { dirname } from "node:path";
import { adoptAnkiServerFolders } from "./adoption/ankiServerLayout.ts";
import { adoptPythonServerMedia } from "./adoption/pythonServerLayout.ts";
import { adoptedProfileNamed, pythonServerSessionDb } from "./adoption/pythonServerSessionDb.ts";
import type { Config } from "./config.ts";
import { type CollectionExecutor, WorkerPoolExecutor } from "./executor/executor.ts";
import type { WorkerSettings } from "./executor/jobs.ts";
import { ReadyDownloads } from "./executor/readyDownloads.ts";
import { createApp } from "./http/app.ts";
import { startMetricsListener } from "./http/routes/metrics.ts";
import { startPruning } from "./identity/housekeeping.ts";
import { KnownLoginStore } from "./identity/knownLogins.ts";
import { LocalUserStore } from "./identity/localUsers.ts";
import { ProfileStore } from "./identity/profiles.ts";
import type { IdentityService } from "./identity/service.ts";
import { SessionStore } from "./identity/sessions.ts";
import { createIdentity } from "./identity/setup.ts";
import { openStateDb, type StateDb } from "./identity/stateDb.ts";
import { createLogger, type Logger } from "./log.ts";
import type { ServerMetrics } from "./metrics/serverMetrics.ts";
import type { NodePlacement } from "./placement/nodePlacement.ts";
import { releaseStartupMemory } from "./platform/memory.ts";
import { releaseHashingMemory } from "./platform/password.ts";
import { type Listener, listen } from "./platform/serve.ts";
import { checkUnicaseExtension, useUnicaseExtension } from "./platform/sqlite.ts";
import { startSharedThreads } from "./platform/threadPriority.ts";
import { InstanceLease, instanceAlive, instanceTag } from "./storage/instance.ts";
import { isNetworkFs } from "./storage/networkFs.ts";
import { sweepDeadTemporaries } from "./storage/startupSweep.ts";
import { checkWritableAtStart } from "./storage/writable.ts";

export interface RunningServer {
  url: string;
  port: number;
  /** `http://host:port/metrics` when metrics have a listener of their own. */
  metricsUrl: string | null;
  /**
   * Stops taking requests, lets those in flight finish (at most `DRAIN_MS`, then their
   * connections are closed), then closes the workers, which rolls back unfinished normal syncs.
   * Idempotent: every call returns the same promise (a signal to a process group often arrives
   * twice, once directly and once forwarded by `bun run`).
   */
  stop(): Promise<void>;
}

/** Under the 10 s a supervisor (`docker stop`, systemd) usually waits before SIGKILL. */
const DRAIN_MS = 5000;

export interface StartOptions {
  log?: Logger;
}

export interface Services {
  /** session.db, or PostgreSQL with ANKISYNCD_DATABASE_URL. */
  stateDb: StateDb;
  profiles: ProfileStore;
  sessions: SessionStore;
  knownLogins: KnownLoginStore;
  localUsers: LocalUserStore;
  identity: IdentityService;
}

export async function openServices(config: Config, log: Logger): Promise<Services> {
  mkdirSync(config.dataDir, { recursive: true });
  const stateDb = await openStateDb({
    databaseUrl: config.databaseUrl,
    sessionDbPath: config.sessionDbPath,
    networkFs: isNetworkFs(config, dirname(config.sessionDbPath)),
    adopt: pythonServerSessionDb(log),
    log,
  });
  const profiles = new ProfileStore(stateDb);
  const sessions = new SessionStore(stateDb, { idleDays: config.sessionIdleDays });
  const knownLogins = new KnownLoginStore(stateDb);
  const localUsers = new LocalUserStore(stateDb, profiles, adoptedProfileNamed);
  const identity = await createIdentity(
    config,
    { profiles, sessions, localUsers, knownLogins },
    log,
  );
  return { stateDb, profiles, sessions, knownLogins, localUsers, identity };
}

export function workerSettings(config: Config): WorkerSettings {
  return {
    dataDir: config.dataDir,
    maxUncompressedBytes: config.maxUncompressedBytes,
    backupsKept: config.backupsKept,
    idleCloseSecs: config.idleCloseSecs,
    syncSessionTimeoutSecs: config.syncSessionTimeoutSecs,
    networkFs: config.networkFs,
    collectionWal: config.collectionWal,
    taskNice: config.taskNice,
    logLevel: config.logLevel,
    logFormat: config.logFormat,
    instance: instanceTag(),
    unicaseExtension: config.unicaseExtension,
  };
}

export async function startServer(
  config: Config,
  options: StartOptions = {},
): Promise<RunningServer> {
  const log = options.log ?? createLogger(config.logLevel, config.logFormat);
  useUnicaseExtension(config.unicaseExtension);
  // Without it every upload from a current client would be refused as corrupt: fail now.
  checkUnicaseExtension();
  checkWritableAtStart(config.dataDir, config.databaseUrl ? null : config.sessionDbPath);
  // Held for the server's life: it marks this process's temporaries as in use.
  const lease = InstanceLease.acquire(config.dataDir);
  await sweepDeadTemporaries(config.dataDir, log, { networkFs: config.networkFs });
  const services = await openServices(config, log);
  await services.localUsers.syncFromEnv(
    config.syncUsers,
    config.passwordsHashed,
    log,
    services.sessions,
  );
  await adoptAnkiServerFolders(
    config.dataDir,
    await services.localUsers.list(),
    services.profiles,
    log,
  );
  adoptPythonServerMedia(config.dataDir, log);
  const stopPruning = startPruning(services.sessions, services.knownLogins, log);
  // Before any task thread lowers its priority (ANKISYNCD_TASK_NICE), which threads it started
  // would inherit.
  if (config.taskNice > 0) await startSharedThreads();
  const baseExecutor: CollectionExecutor = new WorkerPoolExecutor(
    workerSettings(config),
    config.workers,
  );
  let placement: NodePlacement | undefined;
  const counted = await withMetrics(config, baseExecutor, () => placement?.servedUsers ?? 0);
  const metrics = counted.metrics;
  placement = config.cluster
    ? await newPlacement(config, services, counted.executor, log)
    : undefined;
  let executor = counted.executor;
  if (placement) {
    await placement.start();
    const { PlacedExecutor } = await import("./placement/placedExecutor.ts");
    executor = new PlacedExecutor(executor, placement);
  }
  const sharedDb = services.stateDb.dialect === "postgres" ? services.stateDb : undefined;
  const readyDownloads = config.readyDownloads
    ? new ReadyDownloads(executor, config.dataDir, log)
    : undefined;
  const app = createApp({
    config,
    identity: services.identity,
    executor,
    log,
    metrics,
    sharedDb,
    placement,
    readyDownloads,
  });
  const listener = listen(app, { hostname: config.host, port: config.port });
  // The SYNC_USERn password checks above (64 MiB of argon2 each) and start-up's garbage; then
  // start-up's compiled code, once the event loop is idle.
  releaseHashingMemory();
  releaseStartupMemory();
  const port = listener.port;
  if (!listener.acceptsAtOnce) {
    log.warn("could not turn off deferred accepting on the listener", {
      effect: "after a restart, a client may fail one sync on a connection it kept",
    });
  }
  const metricsListener = metrics ? startMetricsListener(metrics, config.metrics) : null;
  const metricsUrl = metricsListener
    ? `${httpUrl(config.metrics.host, metricsListener.port)}metrics`
    : null;
  log.info("ankisyncd listening", {
    // The address actually bound (0.0.0.0 means every interface), not a guess at a reachable one.
    url: httpUrl(listener.hostname, port),
    data: config.dataDir,
    users: config.syncUsers.length,
    networkFs: isNetworkFs(config),
    metrics: metricsUrl ?? (metrics ? "/metrics on the sync port (token)" : undefined),
  });
  // Where a client on this machine reaches it (a wildcard address is not one to connect to).
  const host = ["0.0.0.0", "::", "[::]"].includes(config.host) ? "127.0.0.1" : config.host;
  let stopping: Promise<void> | undefined;
  const shutDown = async () => {
    stopPruning();
    readyDownloads?.close();
    await metricsListener?.stop();
    await drain(listener, log);
    await executor.close();
    // After the files are closed: other nodes may take this node's users at once.
    await placement?.stop();
    await services.stateDb.close();
    lease.release();
    log.info("ankisyncd stopped");
  };
  return {
    url: httpUrl(host, port),
    port,
    metricsUrl,
    stop() {
      stopping ??= shutDown();
      return stopping;
    },
  };
}

function httpUrl(host: string, port: number): string {
  return `http://${host.includes(":") ? `[${host}]` : host}:${port}/`;
}

/**
 * Scale-out: this node's placement, kept in session.db beside the sessions. Its modules are
 * loaded only on a node of a cluster: every module a server loads stays in its memory.
 */
async function newPlacement(
  config: Config,
  services: Services,
  executor: CollectionExecutor,
  log: Logger,
): Promise<NodePlacement> {
  const [{ NodePlacement }, { DbPlacementStore }] = await Promise.all([
    import("./placement/nodePlacement.ts"),
    import("./placement/dbStore.ts"),
  ]);
  const cluster = config.cluster as NonNullable<Config["cluster"]>;
  return new NodePlacement({
    config: cluster,
    store: new DbPlacementStore(services.stateDb),
    instance: instanceTag(),
    idleMs: config.idleCloseSecs * 1000,
    log,
    hooks: {
      release: (uuid, ifIdle) => executor.run({ kind: "release", user: { uuid }, ifIdle }),
      instanceAlive: (tag) => instanceAlive(config.dataDir, tag),
    },
  });
}

/**
 * Metrics need counts from the executor; without /metrics nothing is wrapped, and prom-client
 * (about 14 MB of an idle server's memory) is not even loaded.
 */
async function withMetrics(
  config: Config,
  executor: CollectionExecutor,
  placedUsers: () => number,
): Promise<{ executor: CollectionExecutor; metrics?: ServerMetrics }> {
  if (config.metrics.port === null && config.metrics.token === null) return { executor };
  const [{ CountingExecutor }, { ServerMetrics }] = await Promise.all([
    import("./metrics/executorStats.ts"),
    import("./metrics/serverMetrics.ts"),
  ]);
  const counting = new CountingExecutor(executor, config.idleCloseSecs * 1000);
  const metrics = new ServerMetrics({
    dataDir: config.dataDir,
    openCollections: () => counting.openCollections(),
    queueDepth: () => counting.queueDepth(),
    ...(config.cluster && { node: config.cluster.nodeId, placedUsers }),
  });
  return { executor: counting, metrics };
}

/** Stops listening and waits for requests in flight, closing their connections after DRAIN_MS. */
async function drain(server: Listener, log: Logger): Promise<void> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const graceful = server.stop(false).then(() => true);
  const late = new Promise<boolean>((resolve) => {
    timer = setTimeout(() => resolve(false), DRAIN_MS);
  });
  const finished = await Promise.race([graceful, late]);
  clearTimeout(timer);
  if (!finished) {
    log.warn("requests still running at shutdown: closing their connections", {
      waitedMs: DRAIN_MS,
    });
    await server.stop(true);
  }
}
