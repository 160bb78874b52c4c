/** Successful (username, address) pairs in session.db, for the login limits (rateLimit.ts). */
import { createHash } from "node:crypto";
import { eq, lt } from "drizzle-orm";
import type { KnownLogins } from "./rateLimit.ts";
import { knownLogins } from "./schema.ts";
import type { SessionDb } from "./sessionDb.ts";

export class KnownLoginStore implements KnownLogins {
  constructor(private readonly db: SessionDb) {}

  has(userKey: string, ip: string): boolean {
    const keyHash = pairHash(userKey, ip);
    return (
      this.db
        .select({ k: knownLogins.keyHash })
        .from(knownLogins)
        .where(eq(knownLogins.keyHash, keyHash))
        .get() !== undefined
    );
  }

  remember(userKey: string, ip: string, at = new Date()): void {
    this.db
      .insert(knownLogins)
      .values({ keyHash: pairHash(userKey, ip), lastLoginAt: at })
      .onConflictDoUpdate({ target: knownLogins.keyHash, set: { lastLoginAt: at } })
      .run();
  }

  /** Pairs not seen since `olderThan` are forgotten (their next login counts as unknown). */
  prune(olderThan: Date): number {
    return this.db
      .delete(knownLogins)
      .where(lt(knownLogins.lastLoginAt, olderThan))
      .returning({ k: knownLogins.keyHash })
      .all().length;
  }
}

function pairHash(userKey: string, ip: string): string {
  return createHash("sha256").update(`${userKey}\n${ip}`).digest("hex");
}
