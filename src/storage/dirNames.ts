/** Listing a folder that may be missing or unreadable, where either means nothing to act on. */
import { readdirSync } from "node:fs";

/** The folder's entry names, or none when it cannot be read. */
export function namesIn(dir: string): string[] {
  try {
    return readdirSync(dir);
  } catch {
    return [];
  }
}
