/**
 * The platform contract (src/platform), the same cases on every runtime: `bun test` runs it
 * with the Bun implementations, `deno test` (scripts/test.sh) with the Deno ones. node:test
 * and node:assert, which both runtimes provide. Each case is a difference found between
 * bun:sqlite / Bun natives and their Deno replacements.
 */
import assert from "node:assert/strict";
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { connect } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, describe, test } from "node:test";
import * as zlib from "node:zlib";
import { Elysia } from "elysia";
import { exceedsListenerCap } from "../../src/platform/bodyCap.ts";
import { loadEnvFile } from "../../src/platform/env.ts";
import { consumeTempFile, StreamTooLarge, writeStreamToFile } from "../../src/platform/files.ts";
import { syncFilesystem } from "../../src/platform/filesystemSync.ts";
import { newFingerprinter } from "../../src/platform/fingerprint.ts";
import { releaseStartupMemory } from "../../src/platform/memory.ts";
import { hashPassword, verifyArgon2 } from "../../src/platform/password.ts";
import { clientAddress, listen } from "../../src/platform/serve.ts";
import { openDatabase } from "../../src/platform/sqlite.ts";
import { lowerThreadPriority, startSharedThreads } from "../../src/platform/threadPriority.ts";
import { spawnWorker } from "../../src/platform/workers.ts";
import { zstdCompress, zstdCompressStream, zstdDecompressStream } from "../../src/platform/zstd.ts";
import { threadNice } from "./fixtures/threadNice.ts";

const dir = mkdtempSync(join(tmpdir(), "platform-contract-"));
after(() => rmSync(dir, { recursive: true, force: true }));

async function collect(stream: ReadableStream<Uint8Array>): Promise<Uint8Array> {
  const parts: Uint8Array[] = [];
  for await (const chunk of stream) parts.push(chunk);
  const out = new Uint8Array(parts.reduce((n, p) => n + p.byteLength, 0));
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.byteLength;
  }
  return out;
}

/** Same bytes (whatever the array class: Bun returns Buffers). */
function sameBytes(actual: Uint8Array, expected: Uint8Array): void {
  assert.equal(actual.byteLength, expected.byteLength);
  assert.ok(Buffer.from(actual).equals(Buffer.from(expected)), "bytes differ");
}

function streamOf(data: Uint8Array, chunk = 7): ReadableStream<Uint8Array> {
  let at = 0;
  return new ReadableStream({
    pull(controller) {
      if (at >= data.byteLength) return controller.close();
      controller.enqueue(data.slice(at, at + chunk));
      at += chunk;
    },
  });
}

describe("sql", () => {
  test("no row is null, not undefined", () => {
    const db = openDatabase(":memory:");
    db.exec("create table t (id integer primary key, v)");
    assert.equal(db.query("select * from t where id = ?").get(1), null);
    db.close();
  });

  test("an integral number binds as INTEGER; a fraction as REAL; a boolean as 1", () => {
    const db = openDatabase(":memory:");
    const row = db
      .query("select typeof($n) as t, 'g' || $n as s, typeof($f) as f, $b as b")
      .get({ n: 5, f: 1.5, b: true });
    assert.deepEqual({ ...(row as object) }, { t: "integer", s: "g5", f: "real", b: 1 });
    db.exec("create table u (v)"); // untyped column: stores what was bound
    db.query("insert into u values (?)").run(5);
    assert.deepEqual(db.query("select typeof(v) from u").values(), [["integer"]]);
    db.close();
  });

  test("64-bit integers round-trip as bigint with safeIntegers()", () => {
    const db = openDatabase(":memory:");
    db.exec("create table t (id integer primary key, v integer)");
    const big = 1700000000123456789n;
    const r = db.query("insert into t (id, v) values (?, ?)").safeIntegers(true).run(big, big);
    assert.equal(r.changes, 1);
    assert.equal(BigInt(r.lastInsertRowid), big);
    const row = db.query("select id, v from t").safeIntegers(true).get() as {
      id: bigint;
      v: bigint;
    };
    assert.equal(row.id, big);
    assert.equal(row.v, big);
    assert.deepEqual(db.prepare("select v from t").safeIntegers(true).values(), [[big]]);
    db.close();
  });

  test("named parameters, rows as objects and as arrays", () => {
    const db = openDatabase(":memory:");
    db.exec("create table t (a, b); insert into t values (1, 'x'), (2, 'y')");
    const rows = db.query("select a, b from t where a >= $min order by a").all({ min: 1 });
    assert.deepEqual(
      rows.map((r) => ({ ...(r as object) })),
      [
        { a: 1, b: "x" },
        { a: 2, b: "y" },
      ],
    );
    assert.deepEqual(db.query("select a, b from t order by a").values(), [
      [1, "x"],
      [2, "y"],
    ]);
    const blob = new Uint8Array([0, 1, 255]);
    const got = db.query("select ? as b").get(blob) as { b: Uint8Array };
    assert.deepEqual([...got.b], [0, 1, 255]);
    db.close();
  });

  test("transactions: the result is returned, a nested failure rolls back only its part", () => {
    const db = openDatabase(":memory:");
    db.exec("create table t (v)");
    const insert = db.query("insert into t values (?)");
    const result = db.transaction(() => {
      assert.equal(db.inTransaction, true);
      insert.run(1);
      assert.throws(() =>
        db.transaction(() => {
          insert.run(2);
          throw new Error("inner");
        })(),
      );
      insert.run(3);
      return "done";
    })();
    assert.equal(result, "done");
    assert.equal(db.inTransaction, false);
    assert.deepEqual(db.query("select v from t order by v").values(), [[1], [3]]);
    assert.throws(() =>
      db
        .transaction(() => {
          insert.run(4);
          throw new Error("outer");
        })
        .immediate(),
    );
    assert.deepEqual(db.query("select count(*) from t").values(), [[2]]);
    db.close();
  });

  test("readonly refuses writes; create: false refuses a missing file", () => {
    const path = join(dir, "ro.db");
    const rw = openDatabase(path);
    rw.exec("create table t (v); insert into t values (1)");
    rw.close();
    const ro = openDatabase(path, { readonly: true });
    assert.deepEqual(ro.query("select v from t").values(), [[1]]);
    assert.throws(() => ro.exec("insert into t values (2)"));
    ro.close();
    assert.throws(() => openDatabase(join(dir, "missing.db"), { create: false }));
  });

  test("the unicase collation is loaded", () => {
    const db = openDatabase(":memory:", { unicase: true });
    assert.deepEqual(db.query("select 'Ä' = 'ä' collate unicase").values(), [[1]]);
    db.close();
  });
});

describe("fingerprint", () => {
  const digestOf = (bytes: Uint8Array, piece: number) => {
    const f = newFingerprinter();
    for (let at = 0; at < bytes.byteLength; at += piece) f.update(bytes.subarray(at, at + piece));
    return f.digest();
  };
  const bytes = new Uint8Array(3 * 1024 * 1024 + 17).map((_, i) => (i * 31) % 251);

  test("does not depend on how the bytes are fed; one changed byte changes it", () => {
    const whole = digestOf(bytes, bytes.byteLength);
    assert.equal(digestOf(bytes, 1000), whole);
    assert.equal(digestOf(bytes, 1024 * 1024), whole);
    const changed = bytes.slice();
    changed.set([(bytes[2 * 1024 * 1024 + 5] ?? 0) ^ 1], 2 * 1024 * 1024 + 5);
    assert.notEqual(digestOf(changed, 4096), whole);
    assert.notEqual(digestOf(bytes.subarray(1), 4096), whole);
    assert.match(newFingerprinter().digest(), /^[a-z0-9]+:[0-9a-f]+$/);
  });
});

describe("zstd", () => {
  const data = new TextEncoder().encode("anki sync ".repeat(5000));

  test("one-shot and streamed forms round-trip and interoperate", async () => {
    const frame = await zstdCompress(data);
    assert.ok(frame.byteLength < data.byteLength);
    const decompress = (bytes: Uint8Array) =>
      collect(streamOf(bytes).pipeThrough(zstdDecompressStream()));
    sameBytes(await decompress(frame), data);
    const streamed = await collect(streamOf(data, 1000).pipeThrough(zstdCompressStream()));
    sameBytes(await decompress(streamed), data);
    const empty = await zstdCompress(new Uint8Array(0));
    assert.equal(
      (await collect(streamOf(empty).pipeThrough(zstdDecompressStream()))).byteLength,
      0,
    );
  });

  test("a truncated frame or garbage is an error, not a short result", async () => {
    const frame = await zstdCompress(data);
    for (const cut of [frame.subarray(0, 5), frame.subarray(0, frame.byteLength >> 1)]) {
      await assert.rejects(collect(streamOf(cut).pipeThrough(zstdDecompressStream())));
    }
    const garbage = new TextEncoder().encode("this is not zstd at all");
    await assert.rejects(collect(streamOf(garbage).pipeThrough(zstdDecompressStream())));
  });
  // 8 MiB that zstd cannot shrink much, so the decompressor has output left when stopped.
  const noisy = new Uint8Array(8 * 1024 * 1024);
  for (let i = 0, x = 1; i < noisy.byteLength; i++) {
    x = (x * 1103515245 + 12345) >>> 0;
    noisy[i] = x >>> 24;
  }

  test("a cut or garbage after output has started is an error", async () => {
    const frame = await zstdCompress(noisy);
    const trailing = new Uint8Array(frame.byteLength + 64).fill(0x5a);
    trailing.set(frame);
    for (const bad of [frame.subarray(0, frame.byteLength >> 1), trailing]) {
      await assert.rejects(collect(streamOf(bad, 65536).pipeThrough(zstdDecompressStream())));
    }
  });

  test("checksummed frames: verified, and a mismatch is an error, never an uncaught one", async () => {
    // Deno's zlib threw a checksum (or any) error found past its first output buffer as an
    // uncaught exception; the frame check now hands it one block at a time.
    const uncaught: unknown[] = [];
    const record = (err: unknown) => uncaught.push(err);
    process.on("uncaughtException", record);
    const checked = (bytes: Uint8Array) =>
      new Uint8Array(
        zlib.zstdCompressSync(bytes, { params: { [zlib.constants.ZSTD_c_checksumFlag]: 1 } }),
      );
    const body = new TextEncoder().encode(
      JSON.stringify(Array.from({ length: 50000 }, (_, i) => `card ${i}`)),
    );
    const frame = checked(body);
    for (const size of [7, 65536]) {
      sameBytes(await collect(streamOf(frame, size).pipeThrough(zstdDecompressStream())), body);
    }
    const empty = checked(new Uint8Array(0));
    assert.equal(
      (await collect(streamOf(empty).pipeThrough(zstdDecompressStream()))).byteLength,
      0,
    );
    for (let at = 64; at < frame.byteLength; at += Math.floor(frame.byteLength / 9)) {
      const bad = frame.slice();
      for (let i = at; i < Math.min(at + 8, bad.byteLength); i++)
        bad[i] = (bad[i] as number) ^ 0x5a;
      await assert.rejects(collect(streamOf(bad, 65536).pipeThrough(zstdDecompressStream())));
    }
    const lastByte = frame.slice();
    lastByte[lastByte.byteLength - 1] = (lastByte[lastByte.byteLength - 1] as number) ^ 1;
    await assert.rejects(collect(streamOf(lastByte, 65536).pipeThrough(zstdDecompressStream())));
    await new Promise((resolve) => setTimeout(resolve, 100));
    process.off("uncaughtException", record);
    assert.deepEqual(uncaught, []);
  });

  test("a reader that stops early (a body over its limit) cancels cleanly", async () => {
    // Deno's Duplex.toWeb kept enqueueing after the cancel: an uncaught error ended the process.
    // Repetitive input, so each compressed chunk unpacks to far more than the reader takes.
    const repetitive = noisy.map((_, i) => (i * 7) % 251);
    const frame = await zstdCompress(repetitive);
    // node:test on Deno does not fail a test for an uncaught error: watch for one here.
    const uncaught: unknown[] = [];
    const record = (err: unknown) => uncaught.push(err);
    process.on("uncaughtException", record);
    for (const stopAt of [1, 1024 * 1024]) {
      const reader = streamOf(frame, 65536).pipeThrough(zstdDecompressStream()).getReader();
      let read = 0;
      while (read < stopAt) {
        const { done, value } = await reader.read();
        assert.equal(done, false);
        read += value?.byteLength ?? 0;
      }
      await reader.cancel();
    }
    const compressing = streamOf(noisy, 65536).pipeThrough(zstdCompressStream()).getReader();
    await compressing.read();
    await compressing.cancel();
    // Give stray callbacks of the stopped streams the chance to throw before the test ends.
    await new Promise((resolve) => setTimeout(resolve, 200));
    process.off("uncaughtException", record);
    assert.deepEqual(uncaught, []);
    sameBytes(
      await collect(streamOf(frame, 65536).pipeThrough(zstdDecompressStream())),
      repetitive,
    );
  });
});

describe("files", () => {
  test("a download a client leaves part way ends quietly and its temporary goes", async () => {
    // A download's body is a temporary read by fileStream (Readable.toWeb on Deno); a client
    // that disconnects cancels it after some chunks, or before the first.
    const data = new Uint8Array(3 * 1024 * 1024).map((_, i) => (i * 31) % 256);
    const uncaught: unknown[] = [];
    const record = (err: unknown) => uncaught.push(err);
    process.on("uncaughtException", record);
    for (const readFirst of [0, 1, 3]) {
      const path = join(dir, `download-${readFirst}`);
      writeFileSync(path, data);
      const reader = consumeTempFile(path).getReader();
      for (let i = 0; i < readFirst; i++) assert.equal((await reader.read()).done, false);
      await reader.cancel(new Error("client went away"));
      assert.equal(existsSync(path), false);
    }
    await new Promise((resolve) => setTimeout(resolve, 200));
    process.off("uncaughtException", record);
    assert.deepEqual(uncaught, []);
    const path = join(dir, "download-whole");
    writeFileSync(path, data);
    sameBytes(await collect(consumeTempFile(path)), data);
    assert.equal(existsSync(path), false);
  });
});

describe("password", () => {
  test("argon2id PHC strings made by either runtime verify", async () => {
    // Made by Bun.password.hash (Bun 1.4.5).
    const bunMade =
      "$argon2id$v=19$m=65536,t=2,p=1$8WSSfrBvXSa2ylmCsOvPXxJlfblPdBZh75QkSxaiw5A$V4L5CrtWP4MUfMz8ZJdw885cYCMsPrmLXQSAIYf7H6o";
    assert.equal(await verifyArgon2("correct horse", bunMade), true);
    assert.equal(await verifyArgon2("wrong horse", bunMade), false);
    const made = await hashPassword("s3cret pass");
    assert.match(made, /^\$argon2id\$v=19\$m=65536,t=2,p=1\$/);
    assert.equal(await verifyArgon2("s3cret pass", made), true);
  });
});

describe("memory", () => {
  test("after start-up's code is dropped, functions that ran before run again alike", async () => {
    const square = (n: number) => n * n;
    const sum = () => {
      let total = 0;
      for (let i = 0; i < 100_000; i++) total += square(i % 1000);
      return total;
    };
    const before = sum(); // hot enough to be compiled by the optimising tiers
    releaseStartupMemory();
    await new Promise((resolve) => setTimeout(resolve, 50)); // the runtime's idle moment
    assert.equal(sum(), before);
  });
});

describe("serve", () => {
  test("serves an app: streamed body, client address, 413 past the cap, stop", async () => {
    const app = new Elysia({ serve: { maxRequestBodySize: 1000 } }).post(
      "/echo",
      async ({ request, server }) => {
        let n = 0;
        for await (const chunk of request.body ?? []) n += (chunk as Uint8Array).byteLength;
        return `${n} ${clientAddress(request, server) ?? "none"}`;
      },
      { parse: "none" },
    );
    const listener = listen(app, { hostname: "127.0.0.1", port: 0 });
    try {
      assert.ok(listener.port > 0);
      const url = `http://127.0.0.1:${listener.port}/echo`;
      const ok = await fetch(url, { method: "POST", body: "x".repeat(600) });
      assert.equal(await ok.text(), "600 127.0.0.1");
      const big = await fetch(url, { method: "POST", body: "x".repeat(5000) });
      assert.equal(big.status, 413);
      await big.body?.cancel();
    } finally {
      await listener.stop(true);
    }
  });

  test("a body sent in 4 KiB pieces, as the real client sends, is written out whole and in order; past the cap it fails", async () => {
    const path = join(dir, "streamed-body");
    const cap = 4 * 1024 * 1024;
    const app = new Elysia({ serve: { maxRequestBodySize: cap } }).post(
      "/store",
      async ({ request }) => {
        try {
          return String(await writeStreamToFile(request.body as ReadableStream<Uint8Array>, path));
        } catch (err) {
          if (exceedsListenerCap(err)) return "over the cap";
          throw err;
        }
      },
      { parse: "none" },
    );
    const listener = listen(app, { hostname: "127.0.0.1", port: 0 });
    const send = (data: Uint8Array) =>
      fetch(`http://127.0.0.1:${listener.port}/store`, {
        method: "POST",
        body: streamOf(data, 4096),
        duplex: "half",
      } as RequestInit);
    try {
      const sent = new Uint8Array(3 * 1024 * 1024 + 123);
      for (let i = 0; i < sent.length; i++) sent[i] = (i * 7 + (i >> 12)) & 0xff;
      assert.equal(await (await send(sent)).text(), String(sent.length));
      sameBytes(readFileSync(path), sent);
      rmSync(path);
      const over = await send(new Uint8Array(cap + 4096));
      // Bun answers 413 itself; on Deno the body read fails with the listener's error.
      const text = await over.text();
      assert.ok(over.status === 413 || text === "over the cap", `${over.status} ${text}`);
    } finally {
      await listener.stop(true);
      rmSync(path, { force: true });
    }
  });

  test("connections are accepted as they open; a graceful stop closes idle ones and one never sent on", async () => {
    const app = new Elysia().get("/", () => "ok");
    const listener = listen(app, { hostname: "127.0.0.1", port: 0 });
    assert.equal(listener.acceptsAtOnce, true);
    // Resolves once connected (and answered, for one that sends) with a promise of its close.
    const open = (send: boolean) =>
      new Promise<{ closed: Promise<void> }>((ready) => {
        const socket = connect({ host: "127.0.0.1", port: listener.port });
        socket.on("error", () => {});
        const closed = new Promise<void>((resolve) => socket.on("close", () => resolve()));
        socket.on("data", () => ready({ closed }));
        socket.on("connect", () => {
          if (send) socket.write("GET / HTTP/1.1\r\nHost: test\r\n\r\n");
          else ready({ closed });
        });
      });
    const closing = await Promise.all([open(false), open(true)]);
    await listener.stop(false);
    await Promise.all(closing.map((c) => c.closed));
  });
});

describe("workers", () => {
  test("a worker that throws reports to onerror and the process goes on", async () => {
    const worker = spawnWorker(new URL("./fixtures/throwingWorker.ts", import.meta.url));
    const message = await new Promise<string>((resolve) => {
      worker.onerror = (event) => {
        event.preventDefault();
        resolve(event.message);
      };
      worker.postMessage("go");
    });
    worker.terminate();
    assert.match(message, /worker failed on purpose/);
  });

  test("a thread lowers its own priority only, or leaves it (runtime without per-thread nice)", async () => {
    await startSharedThreads();
    const before = threadNice(readFileSync);
    const worker = spawnWorker(new URL("./fixtures/niceWorker.ts", import.meta.url));
    const reply = await new Promise<{ applied: boolean; nice: number | null }>((resolve) => {
      worker.onmessage = (event) => resolve(event.data);
      worker.postMessage(7);
    });
    worker.terminate();
    // The thread that spawned the worker keeps its priority either way.
    assert.equal(threadNice(readFileSync), before);
    // Bun on Linux is the case the server relies on (task threads, ANKISYNCD_TASK_NICE).
    if ("Bun" in globalThis && process.platform === "linux") assert.ok(reply.applied);
    if (reply.applied) assert.equal(reply.nice, 7);
    else assert.equal(reply.nice, before);
    assert.equal(lowerThreadPriority(0), false);
  });
});

describe("env file", () => {
  test("fills unset names only, values literal", () => {
    const path = join(dir, ".env");
    writeFileSync(
      path,
      "CONTRACT_A='a:$argon2id$v=19'\nCONTRACT_B=from-file\n# comment\nexport CONTRACT_C=\"c\"\n",
    );
    process.env.CONTRACT_B = "already";
    loadEnvFile(path);
    assert.equal(process.env.CONTRACT_A, "a:$argon2id$v=19");
    assert.equal(process.env.CONTRACT_B, "already");
    assert.equal(process.env.CONTRACT_C, "c");
    loadEnvFile(join(dir, "no-such.env")); // a missing file is not an error
  });
});

describe("file writes", () => {
  test("blocking and awaited writes, flushed behind or not, store the same bytes; past the limit nothing is left", async () => {
    const data = noisyBytes(300_000);
    for (const options of [{}, { blocking: true }, { blocking: true, writeBehindBytes: 65_536 }]) {
      const path = join(dir, `written-${JSON.stringify(options)}`);
      assert.equal(
        await writeStreamToFile(streamOf(data, 10_000), path, data.byteLength, options),
        data.byteLength,
      );
      sameBytes(new Uint8Array(readFileSync(path)), data);
      const over = join(dir, `over-${JSON.stringify(options)}`);
      await assert.rejects(
        writeStreamToFile(streamOf(data, 10_000), over, data.byteLength - 1, options),
        StreamTooLarge,
      );
      assert.equal(existsSync(over), false);
    }
  });
});

describe("filesystem sync", () => {
  // Both runtimes may start `sync` here (deno test --allow-all; deno.json grants --allow-run=sync).
  test("a folder's filesystem is synced at once on Linux; elsewhere the answer is no, never an error", async () => {
    writeFileSync(join(dir, "to-sync"), "bytes");
    assert.equal(await syncFilesystem(dir), process.platform === "linux");
    assert.equal(await syncFilesystem(join(dir, "no-such-folder")), false);
  });
});

function noisyBytes(length: number): Uint8Array {
  return Uint8Array.from({ length }, (_, i) => (i * 2654435761) >>> 24);
}
