/** One small structured logger: `text` for people, `json` (one object per line) for collectors. */
import type { LogFormat, LogLevel } from "./config.ts";

export type LogFields = Record<string, unknown>;

export interface Logger {
  debug(msg: string, fields?: LogFields): void;
  info(msg: string, fields?: LogFields): void;
  warn(msg: string, fields?: LogFields): void;
  error(msg: string, fields?: LogFields): void;
}

const RANK: Record<LogLevel, number> = { debug: 10, info: 20, warn: 30, error: 40 };

export function createLogger(level: LogLevel = "info", format: LogFormat = "text"): Logger {
  const emit = (lvl: LogLevel, msg: string, fields: LogFields = {}) => {
    if (RANK[lvl] < RANK[level]) return;
    const time = new Date().toISOString();
    const line =
      format === "json"
        ? JSON.stringify({ time, level: lvl, msg, ...fields })
        : `${time} ${lvl.toUpperCase().padEnd(5)} ${msg}${formatFields(fields)}`;
    (lvl === "error" || lvl === "warn" ? process.stderr : process.stdout).write(`${line}\n`);
  };
  return {
    debug: (m, f) => emit("debug", m, f),
    info: (m, f) => emit("info", m, f),
    warn: (m, f) => emit("warn", m, f),
    error: (m, f) => emit("error", m, f),
  };
}

const WHITESPACE = /\s/;

/** ` key=value` per defined field; a loop rather than entries/filter/map: one line per request. */
function formatFields(fields: LogFields): string {
  let text = "";
  for (const key of Object.keys(fields)) {
    const v = fields[key];
    if (v === undefined) continue;
    text += ` ${key}=${typeof v === "string" && !WHITESPACE.test(v) ? v : JSON.stringify(v)}`;
  }
  return text;
}

export const silentLogger: Logger = { debug() {}, info() {}, warn() {}, error() {} };
