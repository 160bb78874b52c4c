/** One small structured logger: `text` for people, `json` (one object per line) for collectors. */
import { Buffer } from "node:buffer";
import { writeSync } from "node:fs";
import { setImmediate } from "node:timers";
import type { LogFormat, LogLevel } from "./config.ts";

export type LogFields = Record<string, unknown>;

export interface Logger {
  debug(msg: string, fields?: LogFields): void;
  info(msg: string, fields?: LogFields): void;
  warn(msg: string, fields?: LogFields): void;
  error(msg: string, fields?: LogFields): void;
}

const RANK: Record<LogLevel, number> = { debug: 10, info: 20, warn: 30, error: 40 };

export interface LoggerOptions {
  /**
   * Info and debug lines of one event-loop turn go out in one write (a busy server logs a line
   * per request, ~11 a sync). Warnings and errors are written at once, after what is pending;
   * what is pending is written when the process exits, however it exits short of a kill.
   */
  batched?: boolean;
}

/** Where a line goes: the process's stdout or stderr, whole lines only. */
type Sink = (text: string) => void;

export function createLogger(
  level: LogLevel = "info",
  format: LogFormat = "text",
  options: LoggerOptions = {},
): Logger {
  const toOut: Sink = (text) => process.stdout.write(text);
  const toErr: Sink = (text) => process.stderr.write(text);
  const out = options.batched ? batchedSink(toOut, STDOUT_FD) : toOut;
  const emit = (lvl: LogLevel, msg: string, fields: LogFields = {}) => {
    if (RANK[lvl] < RANK[level]) return;
    const time = new Date().toISOString();
    const line =
      format === "json"
        ? JSON.stringify({ time, level: lvl, msg, ...fields })
        : `${time} ${lvl.toUpperCase().padEnd(5)} ${msg}${formatFields(fields)}`;
    if (lvl === "error" || lvl === "warn") {
      flushBatches();
      toErr(`${line}\n`);
    } else out(`${line}\n`);
  };
  return {
    debug: (m, f) => emit("debug", m, f),
    info: (m, f) => emit("info", m, f),
    warn: (m, f) => emit("warn", m, f),
    error: (m, f) => emit("error", m, f),
  };
}

const STDOUT_FD = 1;

/**
 * A batch is written once this long: well under a pipe's 64 KiB buffer, as Bun drops at exit
 * what a stream could not write at once, and a busy turn logs ~100 lines.
 */
const MAX_BATCH_CHARS = 16_384;

/** The pending text of every batched sink, so a warning or the exit can write it first. */
const pendingFlushes = new Set<(atExit?: boolean) => void>();
let flushOnExit = false;

export function flushBatches(atExit = false): void {
  for (const flush of pendingFlushes) flush(atExit);
}

/** Collects a turn's lines and writes them once, from setImmediate or at exit. */
function batchedSink(write: Sink, fd: number): Sink {
  let pending = "";
  const flush = (atExit = false) => {
    pendingFlushes.delete(flush);
    if (pending === "") return;
    const text = pending;
    pending = "";
    // At exit the runtime may drop what a stream has not written yet (a pipe that is full).
    if (atExit) writeAllSync(fd, text);
    else write(text);
  };
  if (!flushOnExit) {
    flushOnExit = true;
    process.on("exit", () => flushBatches(true));
  }
  return (text) => {
    if (pending === "") {
      pendingFlushes.add(flush);
      setImmediate(flush);
    }
    pending += text;
    if (pending.length >= MAX_BATCH_CHARS) flush();
  };
}

/** Gives up on a reader that takes no more for this long: the process is ending anyway. */
const EXIT_WRITE_PATIENCE_MS = 2_000;

/** Writes all of it, waiting out EAGAIN (stdout may be a non-blocking pipe). */
function writeAllSync(fd: number, text: string): void {
  const bytes = Buffer.from(text);
  const giveUpAt = Date.now() + EXIT_WRITE_PATIENCE_MS;
  let offset = 0;
  while (offset < bytes.length && Date.now() < giveUpAt) {
    try {
      offset += writeSync(fd, bytes, offset);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== "EAGAIN") return;
    }
  }
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
