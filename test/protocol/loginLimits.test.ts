/**
 * Login limits over HTTP with the default settings, client addresses given by a trusted
 * X-Forwarded-For (as behind Caddy): 60 users behind one address all log in, and a guesser
 * from elsewhere neither gets far nor locks the real user out of her usual address.
 */
import { afterAll, beforeAll, describe, expect, setDefaultTimeout, test } from "bun:test";
import { v11 } from "../helpers/syncClient.ts";
import { startTestServer, type TestServer } from "../helpers/testServer.ts";

// 60 argon2 hashes at start and 120 checks on a shared, loaded machine.
setDefaultTimeout(120_000);

const USERS = 60;
let server: TestServer;

beforeAll(async () => {
  const env: Record<string, string> = { SYNC_IP_HEADER: "X-Forwarded-For" };
  for (let i = 1; i <= USERS; i++) env[`SYNC_USER${i}`] = `pupil${i}:pupil-password-${i}`;
  server = await startTestServer(env);
});
afterAll(async () => {
  await server.dispose();
});

function logIn(user: string, password: string, ip: string): Promise<number> {
  return v11(
    server.url,
    "hostKey",
    { u: user, p: password },
    {
      headers: { "X-Forwarded-For": ip },
    },
  ).then((reply) => reply.status);
}

describe("login limits (defaults)", () => {
  test("60 users behind one NAT address all log in, twice", async () => {
    for (let round = 0; round < 2; round++) {
      const statuses: number[] = [];
      for (let batch = 0; batch < USERS; batch += 20) {
        const logins = Array.from({ length: 20 }, (_, j) =>
          logIn(`pupil${batch + j + 1}`, `pupil-password-${batch + j + 1}`, "198.51.100.7"),
        );
        statuses.push(...(await Promise.all(logins)));
      }
      expect(statuses.filter((s) => s !== 200)).toEqual([]);
    }
  });

  test("a guesser elsewhere is refused; the user's own address is not", async () => {
    const refused: number[] = [];
    for (let i = 0; i < 15; i++) refused.push(await logIn("pupil1", `guess-${i}`, "192.0.2.66"));
    expect(refused.slice(0, 10).every((s) => s === 403)).toBe(true);
    expect(refused.slice(10)).toContain(429);
    // pupil1 logged in from the school's address before: checked and accepted
    expect(await logIn("pupil1", "pupil-password-1", "198.51.100.7")).toBe(200);
  });
});
