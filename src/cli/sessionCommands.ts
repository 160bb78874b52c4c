/** `admin session ...`: host-key sessions (only hashes of the keys are stored). */
import {
  type CliContext,
  CliError,
  type CommandGroup,
  parseArgs,
  table,
  UsageError,
  when,
} from "./context.ts";

const group: CommandGroup = {
  summary: "host-key sessions of Anki clients",
  usage: [
    "session list [--user <user>] [--all] [--json]   (--all includes revoked sessions)",
    "session revoke <session-id>...",
    "session revoke --user <user>                     (all of the user's sessions)",
  ],
  async run(args, ctx) {
    const [command, ...rest] = args;
    switch (command) {
      case "list":
        return list(ctx, rest);
      case "revoke":
        return revoke(ctx, rest);
      default:
        throw new UsageError(command ? `unknown command session ${command}` : "missing command");
    }
  },
};
export default group;

function list(ctx: CliContext, args: string[]): void {
  const { positional, flags, options } = parseArgs(args, {
    flags: ["all", "json"],
    options: ["user"],
  });
  if (positional.length) throw new UsageError(`unexpected ${positional.join(" ")}`);
  const { profiles, sessions } = ctx.stores;
  const who = options.get("user");
  const profileId = who === undefined ? undefined : ctx.findProfile(who).profileId;
  const byId = new Map(profiles.list().map((p) => [p.profileId, p]));
  const rows = sessions
    .list(profileId)
    .filter((s) => flags.has("all") || !s.revokedAt)
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
  if (flags.has("json")) {
    ctx.out(JSON.stringify(rows, null, 2));
    return;
  }
  if (rows.length === 0) {
    ctx.out(flags.has("all") ? "no sessions" : "no active sessions");
    return;
  }
  const header = ["ID", "USER", "UUID", "PROVIDER", "CREATED", "LAST USED", "STATE", "CLIENT"];
  const body = rows.map((r) => [
    String(r.id),
    r.user,
    r.uuid,
    r.provider,
    when(r.created),
    when(r.lastUsed),
    r.revoked ? `revoked ${when(r.revoked)}` : "active",
    r.client ?? "-",
  ]);
  for (const line of table([header, ...body])) ctx.out(line);
}

function revoke(ctx: CliContext, args: string[]): void {
  const { positional, options } = parseArgs(args, { options: ["user"] });
  const who = options.get("user");
  const { sessions } = ctx.stores;
  if (who !== undefined) {
    if (positional.length) throw new UsageError("give session ids or --user, not both");
    const profile = ctx.findProfile(who);
    const n = sessions.revokeAllFor(profile.profileId);
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
    if (sessions.revoke(id)) ctx.out(`revoked session ${id}`);
    else missing.push(id);
  }
  if (missing.length) throw new CliError(`no active session ${missing.join(", ")}`);
}
