/** The SQL driver on Bun: bun:sqlite itself (the `Db` contract is its API). */
import { Database } from "bun:sqlite";
import type { Db } from "../sqlite.ts";

/**
 * `query()` keeps the statements it prepared in a least-recently-used cache of this many per
 * connection (bun:sqlite's default, 20, is process-wide). One normal sync plus a media sync uses
 * about 30 distinct statements on a collection: with 20, every lookup missed and each request
 * prepared its statements again (~0.3 ms a sync, the largest CPU cost on a worker).
 */
Database.MAX_QUERY_CACHE_SIZE = 64;

export function openDriver(path: string, options: { readonly: boolean; create: boolean }): Db {
  const db = options.readonly
    ? new Database(path, { readonly: true, strict: true })
    : new Database(path, { create: options.create, readwrite: true, strict: true });
  // bun:sqlite's typings say transaction() returns void; it returns the work's result.
  return db as unknown as Db;
}
