/**
 * Where nodes and placements are kept: an async interface, so a database server (PostgreSQL)
 * can stand beside session.db (SQLite, sqliteStore.ts). Every method is one atomic statement,
 * so nodes racing for a user never both win.
 */
export interface NodeRecord {
  id: string;
  publicUrl: string;
  /** The process holding the id (storage/instance.ts tag). */
  instance: string;
  startedAt: number;
  leaseExpiresAt: number;
}

export interface PlacementRecord {
  userUuid: string;
  nodeId: string;
  leaseExpiresAt: number;
  movingTo: string | null;
}

export interface PlacementStore {
  /** Writes this node's row (a restarted node takes its own id back). */
  putNode(node: NodeRecord): Promise<void>;
  getNode(id: string): Promise<NodeRecord | null>;
  listNodes(): Promise<NodeRecord[]>;
  /** Extends the lease while `instance` still holds the id; false if another process took it. */
  renewNode(id: string, instance: string, leaseExpiresAt: number): Promise<boolean>;
  /** A node stopping: its row goes, so nobody waits for its lease to run out. */
  removeNode(id: string, instance: string): Promise<void>;

  find(userUuid: string): Promise<PlacementRecord | null>;
  listPlacements(): Promise<PlacementRecord[]>;
  /**
   * Takes the user for `nodeId` unless another node holds a live placement (lease not run out
   * and that node alive at `now`); a claim by the owner itself renews it. Returns the
   * placement as it stands afterwards.
   */
  claim(
    userUuid: string,
    nodeId: string,
    leaseExpiresAt: number,
    now: number,
  ): Promise<PlacementRecord>;
  /** Renews those of `userUuids` still placed on `nodeId`, and returns them. */
  renew(nodeId: string, userUuids: string[], leaseExpiresAt: number): Promise<PlacementRecord[]>;
  /** Asks the owner to hand the user to `to` (no effect on an unplaced user). */
  requestMove(userUuid: string, to: string): Promise<void>;
  /** The owner hands over: only if `from` still owns the user. */
  handOver(userUuid: string, from: string, to: string, leaseExpiresAt: number): Promise<boolean>;
  /** Places the user on `nodeId` whoever had it (the owner is known to be gone). */
  place(userUuid: string, nodeId: string, leaseExpiresAt: number): Promise<void>;
  /** Drops placements of `nodeId`: the listed users, or all of them. */
  release(nodeId: string, userUuids?: string[]): Promise<void>;
}
