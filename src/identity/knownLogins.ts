/** Successful (username, address) pairs in the shared database, for the login limits. */
import { createHash } from "node:crypto";
import { eq, lt } from "#drizzle/sqlite";
import type { KnownLogins } from "./rateLimit.ts";
import { first, type Orm, type StateDb, type Tables } from "./stateDb.ts";

export class KnownLoginStore implements KnownLogins {
  private readonly orm: Orm;
  private readonly known: Tables["knownLogins"];

  constructor(db: StateDb) {
    this.orm = db.orm;
    this.known = db.tables.knownLogins;
  }

  async has(userKey: string, ip: string): Promise<boolean> {
    const k = this.known;
    const rows = await this.orm
      .select({ k: k.keyHash })
      .from(k)
      .where(eq(k.keyHash, pairHash(userKey, ip)));
    return first(rows) !== undefined;
  }

  async remember(userKey: string, ip: string, at = new Date()): Promise<void> {
    await this.orm
      .insert(this.known)
      .values({ keyHash: pairHash(userKey, ip), lastLoginAt: at })
      .onConflictDoUpdate({ target: this.known.keyHash, set: { lastLoginAt: at } });
  }

  /** Pairs not seen since `olderThan` are forgotten (their next login counts as unknown). */
  async prune(olderThan: Date): Promise<number> {
    const k = this.known;
    const gone = await this.orm
      .delete(k)
      .where(lt(k.lastLoginAt, olderThan))
      .returning({ k: k.keyHash });
    return gone.length;
  }
}

function pairHash(userKey: string, ip: string): string {
  return createHash("sha256").update(`${userKey}\n${ip}`).digest("hex");
}
