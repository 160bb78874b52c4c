import { describe, expect, test } from "bun:test";
import { clientIp, onLocalNetwork } from "../../src/http/clientIp.ts";

const request = (headers: Record<string, string>) => new Request("http://x/", { headers });

describe("clientIp", () => {
  test("uses the socket peer unless a header is configured", () => {
    expect(clientIp(request({ "x-forwarded-for": "6.6.6.6" }), "10.0.0.1", null)).toBe("10.0.0.1");
  });

  test("takes the rightmost X-Forwarded-For entry, by header name or Anki's setting name", () => {
    const req = request({ "x-forwarded-for": "6.6.6.6, 203.0.113.7" });
    expect(clientIp(req, "10.0.0.1", "X-Forwarded-For")).toBe("203.0.113.7");
    expect(clientIp(req, "10.0.0.1", "RightmostXForwardedFor")).toBe("203.0.113.7");
  });

  test("understands Anki's other setting names", () => {
    expect(clientIp(request({ "x-real-ip": "203.0.113.8" }), "s", "XRealIp")).toBe("203.0.113.8");
    expect(clientIp(request({ "x-real-ip": "203.0.113.8" }), "s", "ConnectInfo")).toBe("s");
    const fwd = request({ forwarded: 'for=6.6.6.6, for="[2001:db8::1]:4711";proto=https' });
    expect(clientIp(fwd, "s", "RightmostForwarded")).toBe("2001:db8::1");
  });

  test("falls back to the socket peer when the header is missing", () => {
    expect(clientIp(request({}), "10.0.0.1", "XRealIp")).toBe("10.0.0.1");
  });

  test("asks the socket for its peer only when no trusted header names the client", () => {
    let asked = 0;
    const peer = () => {
      asked++;
      return "10.0.0.1";
    };
    expect(clientIp(request({ "x-real-ip": "203.0.113.8" }), peer, "XRealIp")).toBe("203.0.113.8");
    expect(asked).toBe(0);
    expect(clientIp(request({}), peer, "XRealIp")).toBe("10.0.0.1");
    expect(clientIp(request({ "x-real-ip": "203.0.113.8" }), peer, null)).toBe("10.0.0.1");
    expect(asked).toBe(2);
  });
});

describe("onLocalNetwork (a download compressed for speed, not size)", () => {
  test("loopback, private and link-local addresses, IPv4, IPv6 and IPv4-mapped", () => {
    for (const ip of ["127.0.0.1", "10.1.2.3", "172.16.0.1", "172.31.255.254", "192.168.1.5"]) {
      expect(onLocalNetwork(ip)).toBe(true);
    }
    for (const ip of ["169.254.10.1", "::1", "fd12:3456::1", "fe80::1", "::ffff:192.168.1.5"]) {
      expect(onLocalNetwork(ip)).toBe(true);
    }
  });

  test("public addresses, and what is not an address, are remote", () => {
    for (const ip of ["8.8.8.8", "172.32.0.1", "203.0.113.7", "2001:db8::1", "::ffff:8.8.8.8"]) {
      expect(onLocalNetwork(ip)).toBe(false);
    }
    for (const ip of ["unknown", "", "localhost"]) expect(onLocalNetwork(ip)).toBe(false);
  });
});
