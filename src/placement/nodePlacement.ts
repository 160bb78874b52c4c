/**
 * One node's side of scale-out: it registers itself, takes users nobody serves, renews its
 * leases, redirects `meta` of users another live node serves, and closes the files of users it
 * loses (moved away, idle, or leases it could not renew), so the next node can open them.
 *
 * Safety does not rest on the leases alone: a user's files are also under the per-user lock
 * (storage/userLock.ts), which dies with its process. Placement decides where clients go; the
 * lock keeps two processes off one collection whatever the clocks say.
 */
import type { ClusterConfig } from "../config.ts";
import type { Logger } from "../log.ts";
import { baseOfUrl } from "./addressing.ts";
import { PlacementError } from "./errors.ts";
import type { NodeRecord, PlacementRecord, PlacementStore } from "./store.ts";

/** What `meta` knows about the request, beyond the user. */
export interface MetaRequestInfo {
  /** Sync protocol version: clients before 11 do not follow redirects. */
  version: number;
  /** `addressing.ts` `addressedBase` of the request. */
  addressedBase: string;
  /** The client's session key: the same in the `meta` it re-sends after a redirect. */
  sessionKey: string;
  /** The node that forwarded this request here, if one did (never forwarded twice). */
  forwardedBy?: string;
}

export interface PlacementHooks {
  /** Closes the user's files on this node; with `ifIdle`, only if no sync is under way. */
  release(uuid: string, ifIdle: boolean): Promise<boolean>;
  /** Whether the process with this instance tag still runs (storage/instance.ts). */
  instanceAlive(tag: string): boolean;
}

export interface NodePlacementOptions {
  config: ClusterConfig;
  store: PlacementStore;
  hooks: PlacementHooks;
  /** This process's tag. */
  instance: string;
  /** A user unused this long is released (the executor closes idle files after as long). */
  idleMs: number;
  log: Logger;
  now?: () => number;
}

interface Owned {
  /** Our lease as we last wrote it: past it another node may have taken the user. */
  validUntil: number;
  lastActive: number;
  /** Requests of the user being served now: a long upload is not idle. */
  inFlight: number;
  /** Set while the user's files are being closed; requests wait for it. */
  releasing?: Promise<void>;
  /** When a requested move was first seen: the drain's deadline counts from it. */
  drainSince?: number;
}

/** Waiting for an owner to hand a user over is bounded: the client gives up after 30 s idle. */
const MAX_HANDOVER_WAIT_MS = 20_000;

export class NodePlacement {
  readonly nodeId: string;
  readonly publicUrl: string;
  private readonly base: string;
  private readonly leaseMs: number;
  readonly tickMs: number;
  private readonly owned = new Map<string, Owned>();
  /** user -> session key of the last `meta` sent to this node's own base (see admitMeta). */
  private readonly sentHome = new Map<string, string>();
  private timer: ReturnType<typeof setInterval> | undefined;
  private ticking: Promise<void> | null = null;
  private stopped = false;
  private readonly now: () => number;

  constructor(private readonly options: NodePlacementOptions) {
    this.nodeId = options.config.nodeId;
    this.publicUrl = options.config.publicUrl;
    this.base = baseOfUrl(this.publicUrl);
    this.leaseMs = options.config.leaseSecs * 1000;
    // Several renewals per lease, so one slow round does not lose it.
    this.tickMs = Math.max(500, Math.floor(this.leaseMs / 6));
    this.now = options.now ?? Date.now;
  }

  /** Users this node serves now. */
  get servedUsers(): number {
    return this.owned.size;
  }

  /** Registers the node (refusing an id another running process holds) and starts renewing. */
  async start(): Promise<void> {
    const { store, hooks, instance, log } = this.options;
    const now = this.now();
    const existing = await store.getNode(this.nodeId);
    if (
      existing &&
      existing.instance !== instance &&
      existing.leaseExpiresAt > now &&
      hooks.instanceAlive(existing.instance)
    ) {
      throw new Error(
        `node id ${this.nodeId} is held by another running process (${existing.publicUrl}); give each node its own ANKISYNCD_NODE_ID`,
      );
    }
    // Placements of an earlier life of this node: that process is gone, its files closed.
    await store.release(this.nodeId);
    await store.putNode({
      id: this.nodeId,
      publicUrl: this.publicUrl,
      instance,
      startedAt: now,
      leaseExpiresAt: now + this.leaseMs,
    });
    this.timer = setInterval(() => void this.tick(), this.tickMs);
    this.timer.unref?.();
    log.info("node registered", {
      node: this.nodeId,
      url: this.publicUrl,
      leaseSecs: this.leaseMs / 1000,
    });
  }

  /**
   * May this node serve a request of the user that is not `meta`? Takes a user nobody serves;
   * throws `elsewhere` (409) when another node serves them. That error names the owner to
   * forward to when it is live and the request was not forwarded already (`forwardedBy`, the
   * node that passed it on): one hop at most, so two nodes that disagree cannot loop.
   */
  async admit(uuid: string, forwardedBy?: string): Promise<void> {
    const mine = await this.settled(uuid);
    const now = this.now();
    if (!(mine && mine.validUntil > now)) {
      const placement = await this.claim(uuid);
      if (placement.nodeId !== this.nodeId) {
        // Without the owner's row (or the database) the request is refused as before.
        const owner =
          forwardedBy === undefined
            ? await this.liveNode(placement.nodeId).catch(() => null)
            : null;
        throw new PlacementError(
          "elsewhere",
          forwardedBy === undefined
            ? `user is served by node ${placement.nodeId}`
            : `user is served by node ${placement.nodeId}; forwarded here by ${forwardedBy}, not again`,
          undefined,
          owner ? { nodeId: owner.id, publicUrl: owner.publicUrl } : undefined,
        );
      }
    }
    this.enter(uuid);
  }

  /** An admitted request of the user has ended (paired with `admit`/`admitMeta`). */
  leave(uuid: string): void {
    const mine = this.owned.get(uuid);
    if (!mine) return;
    mine.inFlight = Math.max(0, mine.inFlight - 1);
    mine.lastActive = this.now();
  }

  private enter(uuid: string): void {
    const mine = this.owned.get(uuid);
    if (!mine) return;
    mine.inFlight++;
    mine.lastActive = this.now();
  }

  /**
   * `meta` starts every sync: the place to send a client to the user's node. Returns when this
   * node serves it; throws `redirect` (current clients), `elsewhere` or `unavailable` otherwise.
   */
  async admitMeta(uuid: string, request: MetaRequestInfo): Promise<void> {
    await this.settled(uuid);
    let placement = await this.claim(uuid);
    const followsRedirects = request.version >= 11;
    if (placement.nodeId === this.nodeId && placement.movingTo) {
      // A new sync of a user asked to move: nothing is in flight any more (meta ends any
      // sync), so hand over now.
      await this.handOver(uuid, placement.movingTo);
      placement = (await this.options.store.find(uuid)) ?? placement;
    } else if (placement.nodeId !== this.nodeId) {
      const asked = placement.movingTo === this.nodeId;
      if (!followsRedirects && !asked) {
        // An old client cannot be sent elsewhere: its requests are forwarded to the owner
        // (taking the user over instead would pull them back and forth between two old
        // devices on two nodes). Only without a live owner is the user taken over.
        const owner =
          request.forwardedBy === undefined
            ? await this.liveNode(placement.nodeId).catch(() => null)
            : null;
        if (owner || request.forwardedBy !== undefined) {
          throw new PlacementError(
            "elsewhere",
            `user is served by node ${placement.nodeId}`,
            undefined,
            owner ? { nodeId: owner.id, publicUrl: owner.publicUrl } : undefined,
          );
        }
        await this.options.store.requestMove(uuid, this.nodeId);
      }
      if (!followsRedirects || asked) placement = await this.waitForHandover(uuid, placement);
    }
    if (placement.nodeId === this.nodeId) {
      // Through the shared address, later requests of this sync could reach any node: send
      // the client to this node's own base first.
      if (followsRedirects && request.addressedBase !== this.base) {
        // The same client again right after that redirect: the proxy does not say which base
        // was used (docs/scaling.md). Serve rather than send the client in a circle.
        if (this.sentHome.get(uuid) !== request.sessionKey) {
          if (this.sentHome.size > 10_000) this.sentHome.clear();
          this.sentHome.set(uuid, request.sessionKey);
          throw new PlacementError("redirect", "to this node's own address", this.publicUrl);
        }
        this.options.log.warn("client redirected to this node came back at another base", {
          addressed: request.addressedBase,
          publicUrl: this.publicUrl,
        });
      }
      this.sentHome.delete(uuid);
      this.enter(uuid);
      return;
    }
    if (!followsRedirects) {
      // Handed over just now (a move), or the hand-over asked of the owner did not come.
      const owner =
        request.forwardedBy === undefined
          ? await this.liveNode(placement.nodeId).catch(() => null)
          : null;
      throw new PlacementError(
        "elsewhere",
        `node ${placement.nodeId} serves the user`,
        undefined,
        owner ? { nodeId: owner.id, publicUrl: owner.publicUrl } : undefined,
      );
    }
    const owner = await this.options.store.getNode(placement.nodeId);
    if (!owner || owner.leaseExpiresAt <= this.now()) {
      throw new PlacementError("unavailable", `node ${placement.nodeId} is handing the user over`);
    }
    if (baseOfUrl(owner.publicUrl) === request.addressedBase) {
      // Meant for the owner, yet the proxy brought it here: the owner is unreachable and its
      // lease has not run out yet. Redirecting would send the client in a circle.
      throw new PlacementError(
        "unavailable",
        `node ${owner.id} is unreachable; its users move once its lease runs out`,
      );
    }
    const target = placement.movingTo === null ? owner : await this.liveNode(placement.movingTo);
    throw new PlacementError(
      "redirect",
      `user is served by node ${owner.id}`,
      (target ?? owner).publicUrl,
    );
  }

  /** Whether a job of this user may run here now (checked as the job is queued). */
  serving(uuid: string): boolean {
    const mine = this.owned.get(uuid);
    return mine !== undefined && mine.releasing === undefined && mine.validUntil > this.now();
  }

  /** Stops renewing, closes nothing (the executor does at shutdown) and gives every user up. */
  async stop(): Promise<void> {
    if (this.stopped) return;
    this.stopped = true;
    if (this.timer) clearInterval(this.timer);
    await this.ticking;
    const { store, instance, log } = this.options;
    try {
      await store.release(this.nodeId);
      await store.removeNode(this.nodeId, instance);
    } catch (err) {
      log.warn("could not give up placements at shutdown; they lapse with the lease", {
        error: String(err),
      });
    }
    this.owned.clear();
  }

  /** One round: renew the node, renew served users, release idle and lost ones, hand over moves. */
  tick(): Promise<void> {
    if (this.ticking || this.stopped) return this.ticking ?? Promise.resolve();
    this.ticking = this.renewAll()
      .catch((err) => this.options.log.error("placement renewal failed", { error: String(err) }))
      .then(() => this.dropExpired())
      .finally(() => {
        this.ticking = null;
      });
    return this.ticking;
  }

  private async renewAll(): Promise<void> {
    const { store, instance, log } = this.options;
    const now = this.now();
    const until = now + this.leaseMs;
    if (!(await store.renewNode(this.nodeId, instance, until))) {
      log.error("node row taken by another process: re-registering", { node: this.nodeId });
      await store.putNode({
        id: this.nodeId,
        publicUrl: this.publicUrl,
        instance,
        startedAt: now,
        leaseExpiresAt: until,
      });
    }
    const idle: string[] = [];
    const keep: string[] = [];
    for (const [uuid, mine] of this.owned) {
      if (mine.releasing) continue;
      if (mine.inFlight === 0 && now - mine.lastActive > this.options.idleMs) idle.push(uuid);
      else keep.push(uuid);
    }
    for (const uuid of idle) await this.release(uuid, () => store.release(this.nodeId, [uuid]));
    const renewed = new Map(
      (await store.renew(this.nodeId, keep, until)).map((p) => [p.userUuid, p]),
    );
    for (const uuid of keep) {
      const mine = this.owned.get(uuid);
      const row = renewed.get(uuid);
      if (!mine || mine.releasing) continue;
      if (!row) {
        log.info("user placed on another node: closing their files here", { uuid });
        await this.release(uuid);
        continue;
      }
      mine.validUntil = until;
      if (row.movingTo) await this.drain(uuid, mine, row.movingTo, now);
    }
  }

  /** A move was asked for: hand over once the user's sync has ended, or after a bounded wait. */
  private async drain(uuid: string, mine: Owned, to: string, now: number): Promise<void> {
    mine.drainSince ??= now;
    const overdue = now - mine.drainSince > this.leaseMs;
    if (!overdue && (mine.inFlight > 0 || !(await this.options.hooks.release(uuid, true)))) return;
    await this.handOver(uuid, to);
  }

  private async handOver(uuid: string, to: string): Promise<void> {
    const { store, log } = this.options;
    await this.release(uuid, async () => {
      const done = await store.handOver(uuid, this.nodeId, to, this.now() + this.leaseMs);
      log.info("user handed over", { uuid, to, done });
    });
  }

  /** Users whose lease we could not renew in time may be someone else's now: close them. */
  private async dropExpired(): Promise<void> {
    const now = this.now();
    for (const [uuid, mine] of this.owned) {
      if (!mine.releasing && mine.validUntil <= now) {
        this.options.log.warn("placement lease ran out: closing the user's files", { uuid });
        await this.release(uuid);
      }
    }
  }

  /**
   * Closes the user's files here, then runs `then` (the placement's new state in the database),
   * and forgets the user. Requests of the user wait for all of it, so none can renew the
   * placement halfway.
   */
  private async release(uuid: string, then?: () => Promise<unknown>): Promise<void> {
    const mine = this.owned.get(uuid);
    if (!mine) {
      await then?.();
      return;
    }
    let done!: () => void;
    mine.releasing = new Promise<void>((resolve) => {
      done = resolve;
    });
    try {
      await this.options.hooks.release(uuid, false);
      await then?.();
    } catch (err) {
      this.options.log.error("giving a user up failed", { uuid, error: String(err) });
    } finally {
      this.owned.delete(uuid);
      done();
    }
  }

  private async settled(uuid: string): Promise<Owned | undefined> {
    let mine = this.owned.get(uuid);
    while (mine?.releasing) {
      await mine.releasing;
      mine = this.owned.get(uuid);
    }
    return mine;
  }

  /** Takes the user if nobody serves them (or renews our own placement); the row afterwards. */
  private async claim(uuid: string): Promise<PlacementRecord> {
    const now = this.now();
    const until = now + this.leaseMs;
    let placement: PlacementRecord;
    try {
      placement = await this.options.store.claim(uuid, this.nodeId, until, now);
    } catch (err) {
      throw new PlacementError("unavailable", `placement store: ${String(err)}`);
    }
    if (placement.nodeId === this.nodeId) {
      const mine = this.owned.get(uuid);
      if (mine && !mine.releasing) {
        mine.validUntil = until;
        mine.lastActive = now;
      } else if (!mine) {
        this.owned.set(uuid, { validUntil: until, lastActive: now, inFlight: 0 });
      }
    }
    return placement;
  }

  private async waitForHandover(
    uuid: string,
    placement: PlacementRecord,
  ): Promise<PlacementRecord> {
    const deadline = this.now() + Math.min(MAX_HANDOVER_WAIT_MS, this.tickMs * 2 + 2000);
    let current = placement;
    while (current.nodeId !== this.nodeId && this.now() < deadline) {
      await new Promise((r) => setTimeout(r, 200));
      current = await this.claim(uuid);
    }
    return current;
  }

  private async liveNode(id: string): Promise<NodeRecord | null> {
    const node = await this.options.store.getNode(id);
    return node && node.leaseExpiresAt > this.now() ? node : null;
  }
}
