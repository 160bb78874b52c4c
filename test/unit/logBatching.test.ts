/**
 * The server's logger writes a turn's info lines at once (log.ts, `batched`): fewer writes, the
 * same lines in the same order, warnings after what was pending, what a full pipe did not take
 * kept and written later, nothing lost when the process exits, whether it stops, exits at once
 * or crashes.
 */
import { afterEach, expect, test } from "bun:test";
import { spawnSync } from "node:child_process";
import { resolve } from "node:path";
import { createLogger } from "../../src/log.ts";

const LOG_TS = resolve(import.meta.dir, "../../src/log.ts");
const realWrite = process.stdout.write;
const realErrWrite = process.stderr.write;
afterEach(() => {
  process.stdout.write = realWrite;
  process.stderr.write = realErrWrite;
});

function capture(): string[] {
  const writes: string[] = [];
  const grab = ((text: string) => writes.push(text) > 0) as typeof process.stdout.write;
  process.stdout.write = grab;
  process.stderr.write = grab;
  return writes;
}

const nextTurn = () => new Promise((done) => setImmediate(done));

/** A destination that takes at most `room()` bytes a call (0: a full pipe) and records each write. */
function destination(room: () => number = () => Number.POSITIVE_INFINITY) {
  const writes: string[] = [];
  const writeSome = (bytes: Uint8Array, offset: number) => {
    const n = Math.min(room(), bytes.length - offset);
    if (n > 0) writes.push(Buffer.from(bytes.subarray(offset, offset + n)).toString());
    return n;
  };
  return { writes, writeSome };
}

test("a turn's info lines go out in one write, in order, warnings after them", async () => {
  const warnings = capture();
  const { writes, writeSome } = destination();
  const log = createLogger("info", "text", { batched: true, writeSome });
  log.info("one", { n: 1 });
  log.debug("not at this level");
  log.info("two", { n: 2 });
  expect(writes).toEqual([]);
  await nextTurn();
  expect(writes).toHaveLength(1);
  expect(writes[0]).toMatch(/INFO {2}one n=1\n.*INFO {2}two n=2\n$/);
  log.info("three");
  log.warn("four");
  // The warning waits for the pending line, and goes to stderr.
  expect(writes.slice(1).map((w) => w.trim().split(" ").slice(1).join(" "))).toEqual([
    "INFO  three",
  ]);
  expect(warnings.map((w) => w.trim().split(" ").slice(1).join(" "))).toEqual(["WARN  four"]);
});

test("what a full pipe does not take is offered again shortly, before later lines", async () => {
  // The pipe has room for 10 bytes, then none until it drains.
  let room = 10;
  const { writes, writeSome } = destination(() => {
    const now = room;
    room = 0;
    return now;
  });
  const log = createLogger("info", "text", { batched: true, writeSome });
  log.info("first");
  await nextTurn();
  expect(writes.join("")).toHaveLength(10);
  log.info("second");
  await nextTurn();
  expect(writes.join("")).toHaveLength(10);
  room = Number.POSITIVE_INFINITY;
  await new Promise((done) => setTimeout(done, 50));
  const lines = writes.join("").split("\n").filter(Boolean);
  expect(lines.map((l) => l.split(" ").slice(1).join(" "))).toEqual([
    "INFO  first",
    "INFO  second",
  ]);
});

test("what is still held back when the process exits is written then", () => {
  const script = `
    import { createLogger } from ${JSON.stringify(LOG_TS)};
    let full = true;
    const out = [];
    const writeSome = (bytes, offset) => {
      if (full) return 0;
      out.push(Buffer.from(bytes.subarray(offset)).toString());
      return bytes.length - offset;
    };
    const log = createLogger("info", "text", { batched: true, writeSome });
    log.info("held back");
    setImmediate(() => {
      log.info("after it");
      setImmediate(() => {
        full = false;
        process.on("exit", () => process.stderr.write(out.join("")));
        process.exit(0);
      });
    });
  `;
  const child = spawnSync(process.execPath, ["-e", script], { encoding: "utf8" });
  const lines = child.stderr.split("\n").filter((l) => l.includes("INFO"));
  expect(lines.map((l) => l.split(" ").slice(1).join(" "))).toEqual([
    "INFO  held back",
    "INFO  after it",
  ]);
});

test("a reader that is gone gets nothing more, and logging goes on", async () => {
  const writeSome = () => {
    throw Object.assign(new Error("broken pipe"), { code: "EPIPE" });
  };
  const log = createLogger("info", "text", { batched: true, writeSome });
  log.info("lost");
  await nextTurn();
  log.info("also lost");
  await nextTurn();
});

test("unbatched (workers, CLI): one write per line, as before", () => {
  const writes = capture();
  const log = createLogger("info", "json");
  log.info("a");
  log.info("b");
  expect(writes.map((w) => JSON.parse(w).msg)).toEqual(["a", "b"]);
});

/** Logs `lines` lines in a child, then ends as `how` says; returns what reached its stdout. */
function childOutput(how: string, lines: number): string[] {
  const script = `
    import { createLogger } from ${JSON.stringify(LOG_TS)};
    const log = createLogger("info", "text", { batched: true });
    for (let i = 0; i < ${lines}; i++) log.info("line", { i, pad: "x".repeat(60) });
    ${how}
  `;
  const child = spawnSync(process.execPath, ["-e", script], { encoding: "utf8" });
  return child.stdout.split("\n").filter((l) => l.includes("INFO  line"));
}

test.each([
  ["ends normally", ""],
  ["exits at once", "process.exit(0);"],
  ["throws", 'throw new Error("crash");'],
  ["leaves a rejection unhandled", 'Promise.reject(new Error("crash"));'],
])("every line reaches a pipe when the process %s", (_, how) => {
  const got = childOutput(how, 5000);
  expect(got).toHaveLength(5000);
  expect(got[4999]).toContain("i=4999");
});
