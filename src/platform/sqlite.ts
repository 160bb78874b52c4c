/**
 * The SQL database contract; the runtime's driver is behind `#platform/sqlite.ts`
 * (bun/sqlite.ts: bun:sqlite itself; deno/sqlite.ts: node:sqlite made to behave the same).
 * Everything else receives a `Db`. Collections need Anki's `unicase` collation, which neither
 * driver can register from JS, so it comes from a small loadable extension (native/unicase)
 * built at install time.
 */
import { existsSync } from "node:fs";
import { resolve } from "node:path";
import { openDriver } from "#platform/sqlite.ts";

type SqlValue = string | number | bigint | boolean | null | Uint8Array;
/** Positional values, or one object of named ones (`{ usn }` for `$usn`). */
export type SqlParams = SqlValue[] | [Readonly<Record<string, SqlValue>>];

export interface RunResult {
  changes: number;
  lastInsertRowid: number | bigint;
}

/** bun:sqlite's statement API, the subset the code uses. */
export interface Statement<Row = unknown> {
  /** The first row, or null (never undefined) when there is none. */
  get(...params: SqlParams): Row | null;
  all(...params: SqlParams): Row[];
  /** Rows as arrays of column values. */
  values(...params: SqlParams): unknown[][];
  run(...params: SqlParams): RunResult;
  /** `true`: integers come back as bigint (exact 64-bit) from now on. (bun:sqlite: without an argument it returns a boolean, not the statement.) */
  safeIntegers(on: boolean): Statement<Row>;
}

export type Transaction<A extends unknown[], R> = ((...args: A) => R) & {
  deferred: (...args: A) => R;
  immediate: (...args: A) => R;
  exclusive: (...args: A) => R;
};

/**
 * bun:sqlite's database API, the subset the code uses. Integral numbers bind as INTEGER,
 * booleans as 0/1; nested transactions are savepoints.
 */
export interface Db {
  /** A prepared statement, cached per connection. */
  query<Row = unknown, _Params = unknown>(sql: string): Statement<Row>;
  /** A prepared statement of its own (not cached). */
  prepare<Row = unknown, _Params = unknown>(sql: string): Statement<Row>;
  /** One or more statements without parameters. */
  exec(sql: string): void;
  transaction<A extends unknown[], R>(work: (...args: A) => R): Transaction<A, R>;
  readonly inTransaction: boolean;
  loadExtension(path: string): void;
  close(): void;
}

export interface OpenOptions {
  readonly?: boolean;
  create?: boolean;
  /** Register the `unicase` collation (needed for schema 14+ collection files). */
  unicase?: boolean;
}

/** Where `build-native.sh` puts it; what a thread uses until told otherwise. */
let extensionPath = resolve(import.meta.dirname, "../../build/unicase.so");

/**
 * Where the unicase extension is (config's `ANKISYNCD_UNICASE_EXTENSION`). Per thread: the
 * server sets it at start and hands it to every worker it starts.
 */
export function useUnicaseExtension(path: string): void {
  extensionPath = path;
}

export function unicaseExtensionPath(): string {
  return extensionPath;
}

export function openDatabase(path: string, options: OpenOptions = {}): Db {
  const db = openDriver(path, {
    readonly: options.readonly ?? false,
    create: options.create ?? true,
  });
  if (options.unicase) loadUnicase(db);
  return db;
}

/** Fails with a message that says what to do if the unicase extension cannot be loaded. */
export function checkUnicaseExtension(): void {
  const db = openDriver(":memory:", { readonly: false, create: true });
  try {
    loadUnicase(db);
    db.query("select 'a' = 'A' collate unicase").get();
  } finally {
    db.close();
  }
}

function loadUnicase(db: Db): void {
  const path = unicaseExtensionPath();
  if (!existsSync(path)) {
    throw new Error(`unicase SQLite extension not found at ${path}: run 'bun run build:native'`);
  }
  db.loadExtension(path);
}
