/**
 * The stored file's usn bump of each full download whose copy is already being sent
 * (sync/collection/download.ts says why it is not waited for). A worker applies a user's
 * pending bump before any other job of that user, and the download's `commitDownload` job then
 * learns whether it became durable. Anything else (a bump that failed, a token this thread
 * never issued or already settled) counts as not committed, so that download is cut short.
 */

interface Pending {
  uuid: string;
  now: number;
  /** Set once applied: true, or what went wrong. */
  outcome?: true | { error: unknown };
}

export class DownloadCommits {
  private next = 1;
  private readonly pending = new Map<number, Pending>();

  /** A download's snapshot was taken at `now`; the token names its bump. */
  add(uuid: string, now: number): number {
    const token = this.next++;
    this.pending.set(token, { uuid, now });
    return token;
  }

  /** Applies the user's bumps not yet applied, in the order their snapshots were taken. */
  applyFor(uuid: string, bump: (now: number) => void): void {
    for (const entry of this.pending.values()) {
      if (entry.uuid !== uuid || entry.outcome !== undefined) continue;
      try {
        bump(entry.now);
        entry.outcome = true;
      } catch (error) {
        entry.outcome = { error };
      }
    }
  }

  /** Forgets the token; throws unless its bump is on disk. */
  settle(uuid: string, token: number): void {
    const entry = this.pending.get(token);
    this.pending.delete(token);
    if (entry?.uuid !== uuid || entry.outcome === undefined) {
      throw new Error(`download ${token}: its usn bump was never applied`);
    }
    if (entry.outcome !== true) throw entry.outcome.error;
  }
}
