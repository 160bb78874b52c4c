/**
 * Which schema a full download goes out in. Anki's server sends schema 18 to v11 clients and
 * 11 to older ones. Ours stores 11 and can upgrade the copy, but its upgrade writes one
 * layout of the schema 18 blobs, Anki's from 25.09 on (FSRS-6 parameters, per-deck desired
 * retention, ...): an older v11 client reads fields it does not know as lost, where its own
 * upgrade would have kept those keys in `other`. So only clients known to share the layout
 * get schema 18; the others get schema 11 and upgrade it themselves, as before. A newer
 * Anki than the layout gets it only when no legacy object has a key the layout lacks (it may
 * have a field for it). The version is that of Anki's library the client runs, which v11
 * clients (desktop, AnkiDroid alike) name in their request header; anything else: schema 11.
 */

export type DownloadPlan =
  | { schema: 11 }
  /** `unknownKeys`: whether legacy keys without a native field may go to `other` blobs. */
  | { schema: 18; unknownKeys: "keep" | "refuse" };

/** The plan a download made ahead is for (readyDownload.ts): that of Anki 25.09 to 26.09. */
export const READY_PLAN: DownloadPlan = { schema: 18, unknownKeys: "keep" };

export function planKey(plan: DownloadPlan): string {
  return JSON.stringify(plan);
}

export function isReadyPlan(plan: DownloadPlan): boolean {
  return planKey(plan) === planKey(READY_PLAN);
}

type Version = readonly [number, number, number];

/** The first release whose blob layout is the one convert/proto.ts describes. */
const LAYOUT_FIRST: Version = [25, 9, 0];
/** The last release known to have that layout (tested against it). */
const LAYOUT_LAST_KNOWN: Version = [26, 9, Number.MAX_SAFE_INTEGER];

export function downloadPlan(legacyProtocol: boolean, clientVersion: string): DownloadPlan {
  if (legacyProtocol) return { schema: 11 };
  const version = ankiVersion(clientVersion);
  if (version === null || compare(version, LAYOUT_FIRST) < 0) return { schema: 11 };
  const known = compare(version, LAYOUT_LAST_KNOWN) <= 0;
  return { schema: 18, unknownKeys: known ? "keep" : "refuse" };
}

/**
 * A v11 request header carries `<version>,<build>,<platform>` (`meta` has the longer
 * `anki,<version> (<build>),<platform>`); versions read as numbers ("25.09.2").
 */
function ankiVersion(clientVersion: string): Version | null {
  const match = /^(?:anki,)?(\d+)\.(\d+)(?:\.(\d+))?[ ,]/.exec(clientVersion);
  if (!match) return null;
  return [Number(match[1]), Number(match[2]), Number(match[3] ?? 0)];
}

function compare(a: Version, b: Version): number {
  for (let i = 0; i < 3; i++) {
    const diff = (a[i] ?? 0) - (b[i] ?? 0);
    if (diff !== 0) return diff;
  }
  return 0;
}
