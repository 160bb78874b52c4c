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
  /** Where batched lines go (stdout by default); tests give their own. */
  writeSome?: WriteSome;
}

/** Where a line goes: the process's stdout or stderr, whole lines only. */
type Sink = (text: string) => void;

/**
 * Writes what the destination takes now of `bytes` from `offset`: how many bytes, 0 when it
 * would block (a full pipe). Throws when it takes nothing more (the reader is gone).
 */
export type WriteSome = (bytes: Uint8Array, offset: number) => number;

export function createLogger(
  level: LogLevel = "info",
  format: LogFormat = "text",
  options: LoggerOptions = {},
): Logger {
  const toOut: Sink = (text) => process.stdout.write(text);
  const toErr: Sink = (text) => process.stderr.write(text);
  const out = options.batched ? batchedSink(options.writeSome ?? writeSomeToStdout) : toOut;
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
 * A batch is written once this long, so a turn that logs a lot does not hold it all (a busy
 * turn logs ~100 lines).
 */
const MAX_BATCH_CHARS = 16_384;

/** How soon bytes a full pipe did not take are offered again. */
const RETRY_MS = 10;

/** The pending text of every batched sink, so a warning or the exit can write it first. */
const pendingFlushes = new Set<(atExit?: boolean) => void>();
let flushOnExit = false;

export function flushBatches(atExit = false): void {
  for (const flush of pendingFlushes) flush(atExit);
}

/**
 * Collects a turn's lines and writes them once, from setImmediate or at exit. Written to the
 * file descriptor from this thread, not through process.stdout: lines handed to the stream were
 * sometimes missing when the process died of an uncaught error (858 of 5,000 in one test run),
 * the lines that explain a crash. What a full pipe does not take stays in `backlog`, in order,
 * is offered again shortly and is written out at exit.
 */
function batchedSink(writeSome: WriteSome): Sink {
  let pending = "";
  let backlog: Buffer | undefined;
  let retry: ReturnType<typeof setTimeout> | undefined;
  const flush = (atExit = false) => {
    pendingFlushes.delete(flush);
    if (pending !== "") {
      const text = Buffer.from(pending);
      pending = "";
      backlog = backlog ? Buffer.concat([backlog, text]) : text;
    }
    if (!backlog) return;
    backlog = writeOut(writeSome, backlog, atExit);
    if (!backlog || atExit) return;
    pendingFlushes.add(flush);
    if (retry) return;
    retry = setTimeout(() => {
      retry = undefined;
      flush();
    }, RETRY_MS);
    retry.unref?.();
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

/**
 * Writes what the destination takes; the rest, or undefined when all went. At exit it waits out
 * a full pipe (for a while). A reader that is gone gets nothing more.
 */
function writeOut(writeSome: WriteSome, bytes: Buffer, atExit: boolean): Buffer | undefined {
  const giveUpAt = Date.now() + EXIT_WRITE_PATIENCE_MS;
  let offset = 0;
  try {
    while (offset < bytes.length) {
      const n = writeSome(bytes, offset);
      if (n === 0 && (!atExit || Date.now() >= giveUpAt)) break;
      offset += n;
    }
  } catch {
    return undefined;
  }
  return offset < bytes.length && !atExit ? bytes.subarray(offset) : undefined;
}

/** stdout is a non-blocking pipe under Bun: a full one says EAGAIN. */
function writeSomeToStdout(bytes: Uint8Array, offset: number): number {
  try {
    return writeSync(STDOUT_FD, bytes, offset);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === "EAGAIN") return 0;
    throw err;
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
