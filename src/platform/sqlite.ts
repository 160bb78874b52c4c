/**
 * The only module that touches `bun:sqlite`. Everything else receives a `Db`.
 * Collections need Anki's `unicase` collation, which bun:sqlite cannot register from JS,
 * so it comes from a small loadable extension (native/unicase) built at install time.
 */
import { Database } from "bun:sqlite";
import { existsSync } from "node:fs";
import { resolve } from "node:path";

export type Db = Database;
export type SqlValue = string | number | bigint | boolean | null | Uint8Array;

export interface OpenOptions {
  readonly?: boolean;
  create?: boolean;
  /** Register the `unicase` collation (needed for schema 14+ collection files). */
  unicase?: boolean;
}

const DEFAULT_EXTENSION = resolve(import.meta.dir, "../../build/unicase.so");

/** Path of the compiled unicase extension; overridable for packaged installs. */
export function unicaseExtensionPath(): string {
  return process.env.ANKISYNCD_UNICASE_EXTENSION ?? DEFAULT_EXTENSION;
}

export function openDatabase(path: string, options: OpenOptions = {}): Db {
  const db = options.readonly
    ? new Database(path, { readonly: true, strict: true })
    : new Database(path, { create: options.create ?? true, readwrite: true, strict: true });
  if (options.unicase) loadUnicase(db);
  return db;
}

/** Fails with a message that says what to do if the unicase extension cannot be loaded. */
export function checkUnicaseExtension(): void {
  const db = new Database(":memory:");
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
