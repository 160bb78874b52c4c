/**
 * What `/metrics` reports, in Prometheus' text format (prom-client). Sync requests are counted
 * by `http/syncEndpoint.ts`; gauges (open collections, queued jobs, free disk) are read at scrape
 * time. Label values come from fixed sets, so no client can grow the series without bound.
 */
import { statfsSync } from "node:fs";
import { Counter, Gauge, Histogram, Registry } from "prom-client";

export interface GaugeSources {
  dataDir: string;
  openCollections(): number;
  queueDepth(): { jobs: number; tasks: number };
  /** Scale-out: this node's id, a `node` label on every series. */
  node?: string;
  /** Scale-out: users placed on this node now. */
  placedUsers?(): number;
}

/** Seconds: from a 5 ms `meta` to a slow full upload of a large collection. */
const DURATION_BUCKETS = [
  0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300,
];

export type LoginOutcome = "success" | "denied" | "rate_limited" | "error";

export class ServerMetrics {
  readonly registry = new Registry();
  private readonly requests: Counter<"method" | "status">;
  private readonly duration: Histogram<"method">;
  private readonly bytesIn: Counter<"method">;
  private readonly bytesOut: Counter<"method">;
  private readonly logins: Counter<"outcome">;
  private readonly rateLimited: Counter<"method">;

  constructor(sources: GaugeSources) {
    const registers = [this.registry];
    if (sources.node !== undefined) this.registry.setDefaultLabels({ node: sources.node });
    this.requests = new Counter({
      name: "ankisyncd_sync_requests_total",
      help: "Sync requests (/sync/*, /msync/*) answered, by sync method and HTTP status.",
      labelNames: ["method", "status"],
      registers,
    });
    this.duration = new Histogram({
      name: "ankisyncd_sync_request_duration_seconds",
      help: "Time from receiving a sync request to its response, by sync method.",
      labelNames: ["method"],
      buckets: DURATION_BUCKETS,
      registers,
    });
    this.bytesIn = new Counter({
      name: "ankisyncd_sync_received_bytes_total",
      help: "Request body bytes received (as sent, compressed), by sync method.",
      labelNames: ["method"],
      registers,
    });
    this.bytesOut = new Counter({
      name: "ankisyncd_sync_sent_bytes_total",
      help: "Response body bytes sent (as sent, compressed), by sync method.",
      labelNames: ["method"],
      registers,
    });
    this.logins = new Counter({
      name: "ankisyncd_logins_total",
      help: "Logins (hostKey) by outcome: success, denied (wrong credentials), rate_limited, error.",
      labelNames: ["outcome"],
      registers,
    });
    this.rateLimited = new Counter({
      name: "ankisyncd_rate_limited_requests_total",
      help: "Requests refused with 429 by the rate limits, by sync method.",
      labelNames: ["method"],
      registers,
    });
    registerGauges(registers, sources);
  }

  /** One answered sync request; `method` is from the server's own list or "unknown". */
  observeCall(method: string, status: number, seconds: number): void {
    this.requests.inc({ method, status: String(status) });
    this.duration.observe({ method }, seconds);
    if (status === 429) this.rateLimited.inc({ method });
    if (method === "hostKey") this.logins.inc({ outcome: loginOutcome(status) });
  }

  received(method: string, bytes: number): void {
    this.bytesIn.inc({ method }, bytes);
  }

  sent(method: string, bytes: number): void {
    this.bytesOut.inc({ method }, bytes);
  }

  get contentType(): string {
    return this.registry.contentType;
  }

  render(): Promise<string> {
    return this.registry.metrics();
  }
}

function loginOutcome(status: number): LoginOutcome {
  if (status === 200) return "success";
  if (status === 403) return "denied";
  if (status === 429) return "rate_limited";
  return "error";
}

function registerGauges(registers: Registry[], sources: GaugeSources): void {
  new Gauge({
    name: "ankisyncd_open_collections",
    help: "Users whose collection and media files the workers have open.",
    registers,
    collect() {
      this.set(sources.openCollections());
    },
  });
  new Gauge({
    name: "ankisyncd_worker_queue_depth",
    help: "Work queued or running: per-user jobs on the worker threads (job), upload checks and media staging on task workers (task).",
    labelNames: ["kind"],
    registers,
    collect() {
      const depth = sources.queueDepth();
      this.set({ kind: "job" }, depth.jobs);
      this.set({ kind: "task" }, depth.tasks);
    },
  });
  const placedUsers = sources.placedUsers;
  if (placedUsers) {
    new Gauge({
      name: "ankisyncd_placed_users",
      help: "Users this node serves now (scale-out placement).",
      registers,
      collect() {
        this.set(placedUsers());
      },
    });
  }
  new Gauge({
    name: "ankisyncd_data_free_bytes",
    help: "Free space on the data folder's filesystem, available to the server's user.",
    registers,
    collect() {
      const fs = statfsSync(sources.dataDir);
      this.set(Number(fs.bavail) * Number(fs.bsize));
    },
  });
}
