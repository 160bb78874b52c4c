/**
 * `#drizzle/sqlite` and `#drizzle/postgres` are, on Bun, the bundle scripts/bundle-deps.ts builds
 * at install (fewer modules, less memory), sharing one copy of Drizzle's core, so a query failing
 * on either is the DrizzleQueryError identity/errors.ts checks for (for PostgreSQL:
 * postgresTimeout.test.ts).
 */
import { expect, test } from "bun:test";
import { existsSync } from "node:fs";
import { resolve } from "node:path";
import * as postgresFace from "#drizzle/postgres";
import * as sqliteFace from "#drizzle/sqlite";
import { DrizzleQueryError } from "#drizzle/sqlite";
import { openPostgresDb } from "../../src/identity/postgresDb.ts";
import { freshPostgresDatabase, testPostgresUrl } from "../helpers/stateDbs.ts";

const built = existsSync(resolve(import.meta.dir, "../../build/deps/drizzle/sqlite.js"));

test.skipIf(!built)("the faces are the bundle's, not the package's", async () => {
  expect(sqliteFace.eq === (await import("drizzle-orm")).eq).toBe(false);
  expect(postgresFace.pgTable === (await import("drizzle-orm/pg-core")).pgTable).toBe(false);
});

test.skipIf(!built)("the bundle is not stale: it has every name its face declares", async () => {
  const declared = async (face: string) =>
    Object.keys(await import(`../../src/platform/drizzle/${face}.ts`)).sort();
  expect(Object.keys(sqliteFace).sort()).toEqual(await declared("sqlite"));
  expect(Object.keys(postgresFace).sort()).toEqual(await declared("postgres"));
});

test.skipIf(!testPostgresUrl())(
  "a failed PostgreSQL query is the DrizzleQueryError the identity layer checks for",
  async () => {
    const database = await freshPostgresDatabase();
    const db = await openPostgresDb(database.url);
    try {
      const failed = await db.orm.execute(sqliteFace.sql`SELECT * FROM no_such_table`).then(
        () => null,
        (err: unknown) => err,
      );
      expect(failed).toBeInstanceOf(DrizzleQueryError);
    } finally {
      await db.close();
      await database.drop();
    }
  },
  30_000,
);
