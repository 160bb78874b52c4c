/**
 * The server's logger writes a turn's info lines at once (log.ts, `batched`): fewer writes, the
 * same lines in the same order, warnings after what was pending, nothing lost when the process
 * exits, whether it stops, exits at once or crashes.
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

test("a turn's info lines go out in one write, in order, warnings after them", async () => {
  const writes = capture();
  const log = createLogger("info", "text", { batched: true });
  log.info("one", { n: 1 });
  log.debug("not at this level");
  log.info("two", { n: 2 });
  expect(writes).toEqual([]);
  await nextTurn();
  expect(writes).toHaveLength(1);
  expect(writes[0]).toMatch(/INFO {2}one n=1\n.*INFO {2}two n=2\n$/);
  log.info("three");
  log.warn("four");
  expect(writes.slice(1).map((w) => w.trim().split(" ").slice(1).join(" "))).toEqual([
    "INFO  three",
    "WARN  four",
  ]);
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
