/**
 * Placement on the shared-state database (session.db, and PostgreSQL where there is one): who wins a claim, leases running
 * out, hand-over, and a node's answers to `meta` (serve, redirect, refuse) with two nodes in
 * one process sharing the file.
 */
import { afterEach, beforeEach, describe, expect, test } from "bun:test";
import { ConfigError, loadConfig } from "../../src/config.ts";
import type { StateDb } from "../../src/identity/stateDb.ts";
import { createLogger } from "../../src/log.ts";
import { baseOfUrl } from "../../src/placement/addressing.ts";
import { DbPlacementStore } from "../../src/placement/dbStore.ts";
import { PlacementError } from "../../src/placement/errors.ts";
import { moveUser } from "../../src/placement/moves.ts";
import { NodePlacement } from "../../src/placement/nodePlacement.ts";
import { openTestStateDb, type TestStateDb, testDialects } from "../helpers/stateDbs.ts";

const LEASE_MS = 30_000;

describe.each(testDialects())("on %s", (dialect) => {
  let testDb: TestStateDb;
  let db: StateDb;
  let store: DbPlacementStore;
  let clock: number;

  beforeEach(async () => {
    testDb = await openTestStateDb(dialect);
    db = testDb.db;
    store = new DbPlacementStore(db);
    clock = 1_000_000;
  });

  afterEach(async () => {
    await testDb.dispose();
  });

  async function node(id: string, leaseExpiresAt = clock + LEASE_MS) {
    await store.putNode({
      id,
      publicUrl: `https://sync.example.org/${id}/`,
      instance: `${id}-proc`,
      startedAt: clock,
      leaseExpiresAt,
    });
  }

  describe("DbPlacementStore", () => {
    test("a live placement is kept; one run out, or of a dead node, is taken", async () => {
      await node("n1");
      await node("n2");
      expect((await store.claim("u", "n1", clock + LEASE_MS, clock)).nodeId).toBe("n1");
      expect((await store.claim("u", "n2", clock + LEASE_MS, clock)).nodeId).toBe("n1");
      // n1 renews its own: still n1, lease extended.
      expect((await store.claim("u", "n1", clock + 2 * LEASE_MS, clock)).leaseExpiresAt).toBe(
        clock + 2 * LEASE_MS,
      );
      // n1 dies: its node lease runs out before the placement's.
      await store.renewNode("n1", "n1-proc", clock - 1);
      expect((await store.claim("u", "n2", clock + LEASE_MS, clock)).nodeId).toBe("n2");
      // The placement's own lease running out frees it too.
      await store.renewNode("n1", "n1-proc", clock + 10 * LEASE_MS);
      const later = clock + LEASE_MS + 1;
      expect((await store.claim("u", "n1", later + LEASE_MS, later)).nodeId).toBe("n1");
    });

    test("a move is asked of the owner, kept through its renewals, and done by its hand-over", async () => {
      await node("n1");
      await node("n2");
      await store.claim("u", "n1", clock + LEASE_MS, clock);
      await store.requestMove("u", "n2");
      expect((await store.claim("u", "n1", clock + LEASE_MS, clock)).movingTo).toBe("n2");
      expect((await store.renew("n1", ["u"], clock + LEASE_MS))[0]?.movingTo).toBe("n2");
      expect(await store.handOver("u", "n2", "n1", clock)).toBe(false);
      expect(await store.handOver("u", "n1", "n2", clock + LEASE_MS)).toBe(true);
      expect(await store.find("u")).toEqual({
        userUuid: "u",
        nodeId: "n2",
        leaseExpiresAt: clock + LEASE_MS,
        movingTo: null,
      });
      expect(await store.renew("n1", ["u"], clock + LEASE_MS)).toEqual([]);
    });

    test("moveUser places a user whose node is gone without waiting", async () => {
      await node("n1", clock - 1);
      await node("n2");
      await store.claim("u", "n1", clock + LEASE_MS, clock - LEASE_MS);
      const outcome = await moveUser(store, "u", "n2", {
        leaseMs: LEASE_MS,
        waitMs: 0,
        now: () => clock,
      });
      expect(outcome).toBe("placed");
      expect((await store.find("u"))?.nodeId).toBe("n2");
    });
  });

  describe("NodePlacement", () => {
    const released: string[] = [];
    const log = createLogger("error", "text");
    /** Node `id` of this test's store and clock; `over` replaces whole options. */
    const make = (id: string, over: Partial<ConstructorParameters<typeof NodePlacement>[0]> = {}) =>
      new NodePlacement({
        config: { nodeId: id, publicUrl: `https://sync.example.org/${id}/`, leaseSecs: 30 },
        store,
        instance: `${id}-proc`,
        idleMs: 60_000,
        log,
        now: () => clock,
        hooks: {
          release: async (uuid) => {
            released.push(`${id}:${uuid}`);
            return true;
          },
          instanceAlive: () => true,
        },
        ...over,
      });
    const at = (id: string) => baseOfUrl(`https://sync.example.org/${id}/`);
    const shared = baseOfUrl("https://sync.example.org/");

    async function outcome(p: Promise<void>): Promise<string> {
      try {
        await p;
        return "serve";
      } catch (err) {
        if (!(err instanceof PlacementError)) throw err;
        return err.location ? `${err.kind} ${err.location}` : err.kind;
      }
    }

    test("meta: taken here, redirected to the owner, refused when the owner is unreachable", async () => {
      const n1 = make("n1");
      const n2 = make("n2");
      await n1.start();
      await n2.start();
      try {
        // First contact through the shared address: n1 takes the user and sends the client to
        // its own base, where it is served.
        expect(
          await outcome(
            n1.admitMeta("u", { version: 11, addressedBase: shared, sessionKey: "s1" }),
          ),
        ).toBe("redirect https://sync.example.org/n1/");
        expect(
          await outcome(
            n1.admitMeta("u", { version: 11, addressedBase: at("n1"), sessionKey: "s1" }),
          ),
        ).toBe("serve");
        // A proxy that hides the base: the same client (session key) back at once is served,
        // not sent round again.
        const hidden = { version: 11, addressedBase: shared, sessionKey: "s2" };
        expect(await outcome(n1.admitMeta("u", hidden))).toBe(
          "redirect https://sync.example.org/n1/",
        );
        expect(await outcome(n1.admitMeta("u", hidden))).toBe("serve");
        expect(n1.serving("u")).toBe(true);
        // At n2's base: redirected to n1.
        expect(
          await outcome(
            n2.admitMeta("u", { version: 11, addressedBase: at("n2"), sessionKey: "s1" }),
          ),
        ).toBe("redirect https://sync.example.org/n1/");
        // Meant for n1 but brought to n2 (the proxy's fallback): n1 is unreachable.
        expect(
          await outcome(
            n2.admitMeta("u", { version: 11, addressedBase: at("n1"), sessionKey: "s1" }),
          ),
        ).toBe("unavailable");
        // Other requests at n2: another node serves the user.
        expect(await outcome(n2.admit("u"))).toBe("elsewhere");
        expect(n2.serving("u")).toBe(false);
        // ... which names n1 to forward to, unless another node forwarded it here already.
        const forwardTo = async (forwardedBy?: string) =>
          (await n2.admit("u", forwardedBy).catch((err: PlacementError) => err))?.forwardTo;
        expect(await forwardTo()).toEqual({
          nodeId: "n1",
          publicUrl: "https://sync.example.org/n1/",
        });
        expect(await forwardTo("n3")).toBeUndefined();
        // A legacy client's meta at n2 is forwarded too, and n1 is not asked to hand over.
        const legacyMeta = (forwardedBy?: string) =>
          n2
            .admitMeta("u", { version: 10, addressedBase: at("n2"), sessionKey: "l", forwardedBy })
            .catch((err: PlacementError) => err);
        const legacy = await legacyMeta();
        expect(legacy instanceof PlacementError && legacy.kind).toBe("elsewhere");
        expect((legacy as PlacementError).forwardTo?.nodeId).toBe("n1");
        const again = await legacyMeta("n3");
        expect(again instanceof PlacementError && again.kind).toBe("elsewhere");
        expect((again as PlacementError).forwardTo).toBeUndefined();
        expect((await store.find("u"))?.movingTo).toBeNull();
      } finally {
        await n1.stop();
        await n2.stop();
      }
      // Stopping gave everything up.
      expect(await store.listPlacements()).toEqual([]);
      expect(await store.listNodes()).toEqual([]);
    });

    test("a user n1 lost (moved away) has their files closed at n1's next renewal", async () => {
      const n1 = make("n1");
      await node("n2");
      await n1.start();
      try {
        await n1.admit("u");
        await store.place("u", "n2", clock + LEASE_MS);
        released.length = 0;
        await n1.tick();
        expect(released).toEqual(["n1:u"]);
        expect(n1.serving("u")).toBe(false);
      } finally {
        await n1.stop();
      }
    });

    test("a move waits for the user's sync to end, then closes the files and hands over", async () => {
      let syncOpen = true;
      const calls: string[] = [];
      const n1 = make("n1", {
        hooks: {
          release: async (_uuid, ifIdle) => {
            calls.push(ifIdle ? "release if idle" : "release");
            return !(ifIdle && syncOpen);
          },
          instanceAlive: () => true,
        },
      });
      await node("n2");
      await n1.start();
      try {
        await n1.admit("u");
        n1.leave("u");
        await store.requestMove("u", "n2");
        await n1.tick();
        // A normal sync is open: nothing closed, still n1's.
        expect((await store.find("u"))?.nodeId).toBe("n1");
        expect(n1.serving("u")).toBe(true);
        syncOpen = false;
        await n1.tick();
        expect((await store.find("u"))?.nodeId).toBe("n2");
        expect(n1.serving("u")).toBe(false);
        expect(calls).toEqual(["release if idle", "release if idle", "release"]);
      } finally {
        await n1.stop();
      }
    });

    test("a second process with a running node's id is refused", async () => {
      const n1 = make("n1");
      await n1.start();
      const twin = make("n1", {
        config: { nodeId: "n1", publicUrl: "https://sync.example.org/other/", leaseSecs: 30 },
        instance: "another-proc",
      });
      try {
        await expect(twin.start()).rejects.toThrow(/held by another running process/);
      } finally {
        await n1.stop();
      }
    });
  });
});

describe("scale-out settings", () => {
  const base = { SYNC_BASE: "/tmp/ankisyncd-config-test" };

  test("off without a public URL; the node id from its last segment, else its host", () => {
    expect(loadConfig(base).cluster).toBeNull();
    expect(
      loadConfig({ ...base, ANKISYNCD_PUBLIC_URL: "https://sync.example.org/n2" }).cluster,
    ).toEqual({
      publicUrl: "https://sync.example.org/n2/",
      nodeId: "n2",
      leaseSecs: 30,
    });
    const byHost = loadConfig({
      ...base,
      ANKISYNCD_PUBLIC_URL: "http://10.0.0.5:8080/",
      ANKISYNCD_PLACEMENT_LEASE_SECONDS: "10",
    }).cluster;
    expect(byHost).toEqual({
      publicUrl: "http://10.0.0.5:8080/",
      nodeId: "10.0.0.5:8080",
      leaseSecs: 10,
    });
    expect(
      loadConfig({
        ...base,
        ANKISYNCD_PUBLIC_URL: "https://a.example/x/",
        ANKISYNCD_NODE_ID: "east-1",
      }).cluster?.nodeId,
    ).toBe("east-1");
  });

  test("a public URL that is not an absolute http(s) URL is refused", () => {
    expect(() => loadConfig({ ...base, ANKISYNCD_PUBLIC_URL: "sync.example.org/n1/" })).toThrow(
      ConfigError,
    );
    expect(() => loadConfig({ ...base, ANKISYNCD_PUBLIC_URL: "ftp://sync.example.org/" })).toThrow(
      ConfigError,
    );
  });
});
