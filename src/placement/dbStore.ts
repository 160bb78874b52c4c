/**
 * PlacementStore on the shared-state database (identity/stateDb.ts): session.db for several
 * processes on one machine, PostgreSQL for nodes on several. Every method is one statement, so
 * it is atomic on both; the claim is one upsert whose condition decides which node wins.
 */
import { and, eq, inArray, ne, sql } from "#drizzle/sqlite";
import { first, type Orm, type StateDb, type Tables } from "../identity/stateDb.ts";
import type { NodeRecord, PlacementRecord, PlacementStore } from "./store.ts";

/** Users renewed per statement: SQLite caps the number of bound parameters. */
const BATCH = 500;

export class DbPlacementStore implements PlacementStore {
  private readonly orm: Orm;
  private readonly nodes: Tables["nodes"];
  private readonly placements: Tables["placements"];

  constructor(db: StateDb) {
    this.orm = db.orm;
    this.nodes = db.tables.nodes;
    this.placements = db.tables.placements;
  }

  async putNode(node: NodeRecord): Promise<void> {
    await this.orm
      .insert(this.nodes)
      .values(node)
      .onConflictDoUpdate({ target: this.nodes.id, set: { ...node } });
  }

  async getNode(id: string): Promise<NodeRecord | null> {
    return first(await this.orm.select().from(this.nodes).where(eq(this.nodes.id, id))) ?? null;
  }

  async listNodes(): Promise<NodeRecord[]> {
    return await this.orm.select().from(this.nodes).orderBy(this.nodes.id);
  }

  async renewNode(id: string, instance: string, leaseExpiresAt: number): Promise<boolean> {
    const n = this.nodes;
    const rows = await this.orm
      .update(n)
      .set({ leaseExpiresAt })
      .where(and(eq(n.id, id), eq(n.instance, instance)))
      .returning({ id: n.id });
    return rows.length > 0;
  }

  async removeNode(id: string, instance: string): Promise<void> {
    const n = this.nodes;
    await this.orm.delete(n).where(and(eq(n.id, id), eq(n.instance, instance)));
  }

  async find(userUuid: string): Promise<PlacementRecord | null> {
    const p = this.placements;
    return first(await this.orm.select().from(p).where(eq(p.userUuid, userUuid))) ?? null;
  }

  async listPlacements(): Promise<PlacementRecord[]> {
    const p = this.placements;
    return await this.orm.select().from(p).orderBy(p.nodeId, p.userUuid);
  }

  async claim(
    userUuid: string,
    nodeId: string,
    leaseExpiresAt: number,
    now: number,
  ): Promise<PlacementRecord> {
    const p = this.placements;
    const n = this.nodes;
    // Portable SQL (SQLite and PostgreSQL): the placement is free when ours, run out, or its
    // node is gone or dead.
    const free = sql`${p.nodeId} = ${nodeId}
      or ${p.leaseExpiresAt} <= ${now}
      or not exists (select 1 from ${n} where ${n.id} = ${p.nodeId} and ${n.leaseExpiresAt} > ${now})`;
    await this.orm
      .insert(p)
      .values({ userUuid, nodeId, leaseExpiresAt, movingTo: null })
      .onConflictDoUpdate({
        target: p.userUuid,
        set: {
          nodeId,
          leaseExpiresAt,
          // The owner renewing keeps a move asked of it; a new owner starts without one.
          movingTo: sql`case when ${p.nodeId} = ${nodeId} then ${p.movingTo} else null end`,
        },
        setWhere: free,
      });
    const row = await this.find(userUuid);
    if (!row) throw new Error(`placement of ${userUuid} vanished while claiming it`);
    return row;
  }

  async renew(
    nodeId: string,
    userUuids: string[],
    leaseExpiresAt: number,
  ): Promise<PlacementRecord[]> {
    const p = this.placements;
    const renewed: PlacementRecord[] = [];
    for (let i = 0; i < userUuids.length; i += BATCH) {
      const batch = userUuids.slice(i, i + BATCH);
      const rows = await this.orm
        .update(p)
        .set({ leaseExpiresAt })
        .where(and(eq(p.nodeId, nodeId), inArray(p.userUuid, batch)))
        .returning();
      renewed.push(...rows);
    }
    return renewed;
  }

  async requestMove(userUuid: string, to: string): Promise<void> {
    const p = this.placements;
    await this.orm
      .update(p)
      .set({ movingTo: to })
      .where(and(eq(p.userUuid, userUuid), ne(p.nodeId, to)));
  }

  async handOver(
    userUuid: string,
    from: string,
    to: string,
    leaseExpiresAt: number,
  ): Promise<boolean> {
    const p = this.placements;
    const rows = await this.orm
      .update(p)
      .set({ nodeId: to, leaseExpiresAt, movingTo: null })
      .where(and(eq(p.userUuid, userUuid), eq(p.nodeId, from)))
      .returning({ userUuid: p.userUuid });
    return rows.length > 0;
  }

  async place(userUuid: string, nodeId: string, leaseExpiresAt: number): Promise<void> {
    const p = this.placements;
    await this.orm
      .insert(p)
      .values({ userUuid, nodeId, leaseExpiresAt, movingTo: null })
      .onConflictDoUpdate({ target: p.userUuid, set: { nodeId, leaseExpiresAt, movingTo: null } });
  }

  async release(nodeId: string, userUuids?: string[]): Promise<void> {
    const p = this.placements;
    if (userUuids?.length === 0) return;
    const mine = eq(p.nodeId, nodeId);
    await this.orm.delete(p).where(userUuids ? and(mine, inArray(p.userUuid, userUuids)) : mine);
  }
}
