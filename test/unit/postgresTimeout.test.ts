/**
 * A query PostgreSQL does not finish in time fails as "shared database unavailable" (500, the
 * client retries) instead of holding a pooled connection for good; the pool then goes on.
 */
import { expect, test } from "bun:test";
import { sql } from "drizzle-orm";
import { asDatabaseError, IdentityError } from "../../src/identity/errors.ts";
import { openPostgresDb } from "../../src/identity/postgresDb.ts";
import { freshPostgresDatabase, testPostgresUrl } from "../helpers/stateDbs.ts";

test.skipIf(!testPostgresUrl())(
  "a query past the statement timeout fails, the next succeeds",
  async () => {
    const database = await freshPostgresDatabase();
    const db = await openPostgresDb(database.url, undefined, 200);
    try {
      const slow = await db.orm.execute(sql`SELECT pg_sleep(5)`).then(
        () => null,
        (err: unknown) => asDatabaseError(err),
      );
      expect(slow).toBeInstanceOf(IdentityError);
      expect((slow as IdentityError).kind).toBe("databaseUnavailable");
      expect((slow as IdentityError).message).toContain("statement timeout");
      await db.ping();
    } finally {
      await db.close();
      await database.drop();
    }
  },
  30_000,
);
