/**
 * Scale-out administration: `admin node list` (nodes, their users, lease ages) and
 * `admin user move <user> <node>` (registered in userCommands.ts). Reads and writes the
 * placement tables of the shared-state database, like the nodes do.
 */
import { DbPlacementStore } from "../placement/dbStore.ts";
import { MoveError, moveUser } from "../placement/moves.ts";
import type { NodeRecord, PlacementRecord } from "../placement/store.ts";
import { type CommandGroup, subcommands } from "./commandGroup.ts";
import { type CliContext, CliError, parseArgs, printListing, UsageError } from "./context.ts";

const DEFAULT_MOVE_WAIT_SECS = 60;

const group: CommandGroup = {
  summary: "scale-out nodes (ANKISYNCD_PUBLIC_URL) and where users are served",
  usage: ["node list [--json]"],
  run: subcommands("node", { list }),
};
export default group;

async function store(ctx: CliContext): Promise<DbPlacementStore> {
  return new DbPlacementStore((await ctx.stores()).db);
}

/** Seconds from now, signed: `+12s` left, `-3s` ago. */
function secondsFrom(at: number, now: number): string {
  const s = Math.round((at - now) / 1000);
  return `${s >= 0 ? "+" : ""}${s}s`;
}

async function list(ctx: CliContext, args: string[]): Promise<void> {
  const { flags } = parseArgs(args, { flags: ["json"] });
  const placements = await (await store(ctx)).listPlacements();
  const nodes = await (await store(ctx)).listNodes();
  const names = await userNames(ctx, placements);
  const now = Date.now();
  if (flags.has("json")) {
    ctx.out(JSON.stringify({ now, nodes, placements }, null, 2));
    return;
  }
  printListing(ctx, nodes, {
    json: false,
    empty: "no nodes (is ANKISYNCD_PUBLIC_URL set on the servers?)",
    header: ["NODE", "STATE", "URL", "UP", "LEASE", "USERS"],
    cells: (n: NodeRecord) => [
      n.id,
      n.leaseExpiresAt > now ? "live" : "expired",
      n.publicUrl,
      `${Math.round((now - n.startedAt) / 1000)}s`,
      secondsFrom(n.leaseExpiresAt, now),
      String(placements.filter((p) => p.nodeId === n.id && p.leaseExpiresAt > now).length),
    ],
  });
  if (placements.length === 0) return;
  ctx.out("");
  printListing(ctx, placements, {
    json: false,
    empty: "",
    header: ["USER", "UUID", "NODE", "LEASE", "MOVING TO"],
    cells: (p: PlacementRecord) => [
      names.get(p.userUuid) ?? "?",
      p.userUuid,
      p.nodeId,
      secondsFrom(p.leaseExpiresAt, now),
      p.movingTo ?? "-",
    ],
  });
}

async function userNames(
  ctx: CliContext,
  placements: PlacementRecord[],
): Promise<Map<string, string>> {
  const { profiles } = await ctx.stores();
  const names = new Map<string, string>();
  for (const p of placements) {
    const profile = await profiles.byUuid(p.userUuid);
    if (profile) names.set(p.userUuid, profile.name);
  }
  return names;
}

/** `user move <user> <node> [--wait <secs>]`. */
export async function moveCommand(ctx: CliContext, args: string[]): Promise<void> {
  const { positional, options } = parseArgs(args, { options: ["wait"] });
  if (positional.length !== 2) throw new UsageError("expected <user> <node>");
  const [who, to] = positional as [string, string];
  const waitSecs = Number(options.get("wait") ?? DEFAULT_MOVE_WAIT_SECS);
  if (!Number.isFinite(waitSecs) || waitSecs < 0) throw new UsageError("--wait takes seconds");
  const profile = await ctx.findProfile(who);
  const leaseMs = (ctx.config.cluster?.leaseSecs ?? 30) * 1000;
  let outcome: Awaited<ReturnType<typeof moveUser>>;
  try {
    outcome = await moveUser(await store(ctx), profile.uuid, to, {
      leaseMs,
      waitMs: waitSecs * 1000,
    });
  } catch (err) {
    if (err instanceof MoveError) throw new CliError(err.message);
    throw err;
  }
  const messages = {
    moved: `${profile.name} moved to ${to}: its sync there drained, clients are redirected at their next sync`,
    placed: `${profile.name} placed on ${to} (no live node served them)`,
    "already-there": `${profile.name} is already served by ${to}`,
    requested: `${profile.name}: move to ${to} requested; the serving node hands over when the user's sync ends`,
  };
  ctx.out(messages[outcome]);
  if (outcome === "requested") throw new CliError(`not handed over within ${waitSecs}s`, 75);
}
