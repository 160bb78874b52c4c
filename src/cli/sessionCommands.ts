/** `admin session ...`: host-key sessions (only hashes of the keys are stored). */
import { type CommandGroup, subcommands } from "./commandGroup.ts";
import { type CliContext, CliError, parseArgs, printListing, UsageError, when } from "./context.ts";

const group: CommandGroup = {
  summary: "host-key sessions of Anki clients",
  usage: [
    "session list [--user <user>] [--all] [--json]   (--all includes revoked sessions)",
    "session revoke <session-id>...",
    "session revoke --user <user>                     (all of the user's sessions)",
  ],
  run: subcommands("session", { list, revoke }),
};
export default group;

async function list(ctx: CliContext, args: string[]): Promise<void> {
  const { positional, flags, options } = parseArgs(args, {
    flags: ["all", "json"],
    options: ["user"],
  });
  if (positional.length) throw new UsageError(`unexpected ${positional.join(" ")}`);
  const who = options.get("user");
  const profileId = who === undefined ? undefined : (await ctx.findProfile(who)).profileId;
  printListing(ctx, await sessionRows(ctx, profileId, flags.has("all")), {
    json: flags.has("json"),
    empty: flags.has("all") ? "no sessions" : "no active sessions",
    header: ["ID", "USER", "UUID", "PROVIDER", "CREATED", "LAST USED", "STATE", "CLIENT"],
    cells: (r) => [
      String(r.id),
      r.user,
      r.uuid,
      r.provider,
      when(r.created),
      when(r.lastUsed),
      r.revoked ? `revoked ${when(r.revoked)}` : "active",
      r.client ?? "-",
    ],
  });
}

/** The sessions of one profile (or everyone's), with their users; `all` keeps revoked ones. */
async function sessionRows(ctx: CliContext, profileId: number | undefined, all: boolean) {
  const { profiles, sessions } = await ctx.stores();
  const byId = new Map((await profiles.list()).map((p) => [p.profileId, p]));
  return (await sessions.list(profileId))
    .filter((s) => all || !s.revokedAt)
    .map((s) => {
      const profile = byId.get(s.profileId);
      return {
        id: s.sessionId,
        user: profile?.email ?? profile?.name ?? "?",
        uuid: profile?.uuid ?? "?",
        provider: profile?.provider ?? "?",
        created: s.createdAt,
        lastUsed: s.lastUsedAt,
        client: s.clientVersion,
        revoked: s.revokedAt,
      };
    });
}

async function revoke(ctx: CliContext, args: string[]): Promise<void> {
  const { positional, options } = parseArgs(args, { options: ["user"] });
  const who = options.get("user");
  const { sessions } = await ctx.stores();
  if (who !== undefined) {
    if (positional.length) throw new UsageError("give session ids or --user, not both");
    const profile = await ctx.findProfile(who);
    const n = await sessions.revokeAllFor(profile.profileId);
    ctx.out(`revoked ${n} session(s) of ${profile.email ?? profile.name} (${profile.uuid})`);
    return;
  }
  if (positional.length === 0) throw new UsageError("give session ids or --user <user>");
  const ids = positional.map((p) => {
    const id = Number(p);
    if (!Number.isInteger(id) || id < 1) throw new UsageError(`not a session id: ${p}`);
    return id;
  });
  const missing: number[] = [];
  for (const id of ids) {
    if (await sessions.revoke(id)) ctx.out(`revoked session ${id}`);
    else missing.push(id);
  }
  if (missing.length) throw new CliError(`no active session ${missing.join(", ")}`);
}
