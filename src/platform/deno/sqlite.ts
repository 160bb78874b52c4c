/**
 * The SQL driver on Deno: node:sqlite (DatabaseSync) made to behave like bun:sqlite where the
 * code relies on it: integral numbers bind as INTEGER (node:sqlite binds every number as REAL),
 * booleans as 0/1, no row is null (not undefined), query() is cached, transaction() nests as
 * savepoints. iterate() is not offered: Deno 2.9.6's stops silently at an integer beyond 2^53.
 */
import { existsSync } from "node:fs";
import { DatabaseSync, type StatementSync } from "node:sqlite";
import type { Db, RunResult, SqlParams, Statement, Transaction } from "../sqlite.ts";

// biome-ignore lint/suspicious/noExplicitAny: node:sqlite's binding types are narrower than the values we bind
type Bindable = any;

function bindOne(v: unknown): unknown {
  if (typeof v === "number") return Number.isSafeInteger(v) ? BigInt(v) : v;
  if (typeof v === "boolean") return v ? 1n : 0n;
  return v;
}

function bindable(params: SqlParams): Bindable[] {
  return params.map((p) => {
    if (p !== null && typeof p === "object" && !(p instanceof Uint8Array)) {
      const out: Record<string, unknown> = {};
      for (const [k, v] of Object.entries(p)) out[k] = bindOne(v);
      return out;
    }
    return bindOne(p);
  });
}

class NodeStatement<Row = unknown> implements Statement<Row> {
  private safe = false;
  constructor(private readonly stmt: StatementSync) {}

  safeIntegers(on: boolean): this {
    this.safe = on;
    return this;
  }

  private mode(arrays: boolean): StatementSync {
    this.stmt.setReadBigInts(this.safe);
    this.stmt.setReturnArrays(arrays);
    return this.stmt;
  }

  get(...params: SqlParams): Row | null {
    return (this.mode(false).get(...bindable(params)) as Row | undefined) ?? null;
  }

  all(...params: SqlParams): Row[] {
    return this.mode(false).all(...bindable(params)) as Row[];
  }

  values(...params: SqlParams): unknown[][] {
    return this.mode(true).all(...bindable(params)) as unknown as unknown[][];
  }

  run(...params: SqlParams): RunResult {
    const r = this.mode(false).run(...bindable(params));
    return { changes: Number(r.changes), lastInsertRowid: r.lastInsertRowid };
  }
}

class NodeDb implements Db {
  private readonly raw: DatabaseSync;
  private readonly cache = new Map<string, NodeStatement<unknown>>();
  private depth = 0;

  constructor(path: string, options: { readonly: boolean; create: boolean }) {
    // node:sqlite always creates a missing file.
    if (!options.readonly && !options.create && path !== ":memory:" && !existsSync(path))
      throw new Error(`unable to open database file: ${path}`);
    this.raw = new DatabaseSync(path, { readOnly: options.readonly, allowExtension: true });
  }

  query<Row = unknown>(sql: string): Statement<Row> {
    let stmt = this.cache.get(sql);
    if (!stmt) {
      stmt = new NodeStatement(this.raw.prepare(sql));
      this.cache.set(sql, stmt);
    }
    return stmt as Statement<Row>;
  }

  prepare<Row = unknown>(sql: string): Statement<Row> {
    return new NodeStatement<Row>(this.raw.prepare(sql));
  }

  exec(sql: string): void {
    this.raw.exec(sql);
  }

  loadExtension(path: string): void {
    this.raw.loadExtension(path);
  }

  close(): void {
    this.cache.clear();
    if (this.raw.isOpen) this.raw.close();
  }

  get inTransaction(): boolean {
    return this.raw.isTransaction;
  }

  transaction<A extends unknown[], R>(work: (...args: A) => R): Transaction<A, R> {
    const wrap =
      (begin: string) =>
      (...args: A): R => {
        const nested = this.depth > 0;
        const sp = `sp${this.depth}`;
        this.raw.exec(nested ? `SAVEPOINT ${sp}` : begin);
        this.depth++;
        try {
          const result = work(...args);
          this.raw.exec(nested ? `RELEASE ${sp}` : "COMMIT");
          return result;
        } catch (err) {
          this.raw.exec(nested ? `ROLLBACK TO ${sp}; RELEASE ${sp}` : "ROLLBACK");
          throw err;
        } finally {
          this.depth--;
        }
      };
    const tx = wrap("BEGIN") as Transaction<A, R>;
    tx.deferred = wrap("BEGIN DEFERRED");
    tx.immediate = wrap("BEGIN IMMEDIATE");
    tx.exclusive = wrap("BEGIN EXCLUSIVE");
    return tx;
  }
}

export function openDriver(path: string, options: { readonly: boolean; create: boolean }): Db {
  return new NodeDb(path, options);
}
