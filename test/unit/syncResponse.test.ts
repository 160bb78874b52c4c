/** The encoding of in-memory replies: which go as a stream of one chunk, and that the bytes are the same. */
import { describe, expect, test } from "bun:test";
import { encodedResponse, ONE_SEND_STREAM } from "../../src/http/syncResponse.ts";

const bodyOf = (size: number) => Uint8Array.from({ length: size }, (_, i) => (i * 7) % 251);

describe("encodedResponse", () => {
  test("a small reply has its length and a plain body", async () => {
    const body = bodyOf(ONE_SEND_STREAM.from - 1);
    const response = encodedResponse(body, 40000, false);
    expect(response.headers.get("content-length")).toBe(String(body.byteLength));
    expect(response.headers.get("anki-original-size")).toBe("40000");
    expect(new Uint8Array(await response.arrayBuffer())).toEqual(body);
  });

  test("a v11 reply past the corked size is one chunk of a stream, the same bytes", async () => {
    const body = bodyOf(ONE_SEND_STREAM.from);
    const response = encodedResponse(body, 90000, false);
    expect(response.headers.get("content-length")).toBeNull();
    expect(response.headers.get("anki-original-size")).toBe("90000");
    const chunks: Uint8Array[] = [];
    for await (const chunk of response.body as ReadableStream<Uint8Array>) chunks.push(chunk);
    expect(chunks).toHaveLength(1);
    expect(chunks[0]).toEqual(body);
  });

  test("an answer made in its request's turn keeps its length at any size", () => {
    const body = bodyOf(ONE_SEND_STREAM.from * 2);
    const response = encodedResponse(body, 1, false, { sameTurn: true });
    expect(response.headers.get("content-length")).toBe(String(body.byteLength));
  });

  test("legacy replies and media zips of a megabyte or more keep their length", () => {
    const legacy = encodedResponse(bodyOf(ONE_SEND_STREAM.from * 2), 0, true);
    expect(legacy.headers.get("content-length")).toBe(String(ONE_SEND_STREAM.from * 2));
    const zip = encodedResponse(bodyOf(ONE_SEND_STREAM.below), 5, false);
    expect(zip.headers.get("content-length")).toBe(String(ONE_SEND_STREAM.below));
  });
});
