/**
 * schema.ts (session.db) and schema.postgres.ts (PostgreSQL) declare the same tables, so the
 * stores written once against Drizzle's PostgreSQL types (stateDb.ts) are right on both; and
 * each dialect's migrations are what drizzle-kit generates from its schema today.
 */
import { describe, expect, test } from "bun:test";
import { cpSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, relative, resolve } from "node:path";
import { getTableColumns, getTableName, type Table } from "drizzle-orm";
import * as pg from "../../src/identity/schema.postgres.ts";
import * as sqlite from "../../src/identity/schema.ts";

const ROOT = resolve(import.meta.dir, "../..");

/** True only when A and B are the same type (checked by tsc). */
type Same<A, B> = [A] extends [B] ? ([B] extends [A] ? true : false) : false;
type Rows<S> = { [K in keyof S]: S[K] extends Table ? S[K]["$inferSelect"] : never };
type Inserts<S> = { [K in keyof S]: S[K] extends Table ? S[K]["$inferInsert"] : never };

const sameRows: Same<Rows<typeof sqlite>, Rows<typeof pg>> = true;
/**
 * The stores are typed by PostgreSQL's inserts, so each must be one SQLite takes. (Not equal:
 * SQLite makes an INTEGER PRIMARY KEY optional, local_credentials.profile_id included.)
 */
const insertsFit: [Inserts<typeof pg>] extends [Inserts<typeof sqlite>] ? true : false = true;

function describeTables(schema: Record<string, unknown>) {
  return Object.fromEntries(
    Object.entries(schema)
      .filter(
        (entry): entry is [string, Table] => typeof getTableName(entry[1] as Table) === "string",
      )
      .map(([key, table]) => [
        key,
        {
          name: getTableName(table),
          columns: Object.fromEntries(
            Object.entries(getTableColumns(table)).map(([field, c]) => [
              field,
              { name: c.name, notNull: c.notNull, primary: c.primary },
            ]),
          ),
        },
      ]),
  );
}

describe("the two schemas", () => {
  test("declare the same tables, columns, keys and row types", () => {
    expect(sameRows && insertsFit).toBe(true);
    expect(describeTables(pg)).toEqual(describeTables(sqlite));
  });
});

describe("migrations", () => {
  for (const [dialect, schema, out] of [
    ["sqlite", "src/identity/schema.ts", "migrations"],
    ["postgresql", "src/identity/schema.postgres.ts", "migrations/postgres"],
  ] as const) {
    test(`${out}/ is up to date with ${schema} (drizzle-kit generate finds nothing to do)`, () => {
      const dir = mkdtempSync(join(tmpdir(), "ankisyncd-migrations-"));
      try {
        cpSync(join(ROOT, out, "meta"), join(dir, "meta"), { recursive: true });
        const config = join(dir, "drizzle.config.json");
        writeFileSync(
          config,
          // drizzle-kit takes `out` relative to its working directory.
          JSON.stringify({ dialect, schema, out: relative(ROOT, dir) }),
        );
        const run = Bun.spawnSync(["bunx", "drizzle-kit", "generate", "--config", config], {
          cwd: ROOT,
          stderr: "pipe",
        });
        const output = `${run.stdout.toString()}${run.stderr.toString()}`;
        expect(output).toContain("No schema changes");
        expect(run.exitCode).toBe(0);
      } finally {
        rmSync(dir, { recursive: true, force: true });
      }
    }, 60_000);
  }
});
