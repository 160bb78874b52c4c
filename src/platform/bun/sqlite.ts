/** The SQL driver on Bun: bun:sqlite itself (the `Db` contract is its API). */
import { Database } from "bun:sqlite";
import type { Db } from "../sqlite.ts";

export function openDriver(path: string, options: { readonly: boolean; create: boolean }): Db {
  const db = options.readonly
    ? new Database(path, { readonly: true, strict: true })
    : new Database(path, { create: options.create, readwrite: true, strict: true });
  // bun:sqlite's typings say transaction() returns void; it returns the work's result.
  return db as unknown as Db;
}
