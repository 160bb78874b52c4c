import { expect, test } from "bun:test";
import { downloadPlan } from "../../src/sync/collection/downloadSchema.ts";

test("schema 18 only for Anki libraries sharing the blob layout; newer ones strictly", () => {
  const plan = (legacy: boolean, c: string) => downloadPlan(legacy, c);
  expect(plan(true, "26.09.3,abc,linux")).toEqual({ schema: 11 });
  for (const c of [
    "2.1.66,abc,linux",
    "25.07.5,abc,linux",
    "25.2.7,abc,mac",
    "test,1.0,linux",
    "",
  ]) {
    expect(plan(false, c)).toEqual({ schema: 11 });
  }
  for (const c of [
    "25.09.0,abc,linux",
    "25.09.5,abc,win:11",
    "26.05,abc,linux",
    "26.09.3,abc,linux",
  ]) {
    expect(plan(false, c)).toEqual({ schema: 18, unknownKeys: "keep" });
  }
  expect(plan(false, "anki,26.09.3 (abc),linux")).toEqual({ schema: 18, unknownKeys: "keep" });
  for (const c of ["26.10,abc,linux", "27.01.2,abc,linux"]) {
    expect(plan(false, c)).toEqual({ schema: 18, unknownKeys: "refuse" });
  }
});
