"""Hostile input: malformed bodies and headers, traversal names, zip and zstd bombs, oversized
bodies, many idle connections. Every request must get the 4xx a client expects (a full upload
that is not a collection gets Anki's 200 "corrupt" sentence, as from Anki's server), nothing a
user stored may change, and the server must keep serving real clients.

Also measured: the server's peak resident size while ten concurrent zstd bombs of 32 KB
(about 1 GB unpacked each) arrive without a host key (issue 15: 1.5 GB before the host key was
checked first), and while ten arrive with one (to `meta`, whose bodies are bounded small).
"""

from __future__ import annotations

import functools
import hashlib
import io
import json
import socket
import sqlite3
import threading
import time
import zipfile
from pathlib import Path
from typing import Any, Callable

from harness import Server, add_media, add_notes, left_behind, new_device

import anki_client as ac  # noqa: E402  (test/e2e/anki_client.py, on the path via harness)
import requests  # noqa: E402
import zstandard  # noqa: E402

USER, PASSWORD = "dave", "dave-pw"
PAYLOAD_MEGS = 5  # small, so "oversized" stays cheap to send
CORRUPT = ac.CORRUPT_UPLOAD_TEXT


@functools.cache
def zstd_bomb(target_bytes: int = 32 * 1024) -> bytes:
    """A zstd frame of about `target_bytes` that unpacks to about 32,000 times as much."""
    comp = zstandard.ZstdCompressor(level=1).compressobj()
    zeros = bytes(4 * 1024 * 1024)
    out = io.BytesIO()
    while out.tell() < target_bytes:
        out.write(comp.compress(zeros))
    out.write(comp.flush())
    return out.getvalue()


def media_zip(items: list[tuple[str, bytes]], meta: Any = None, level: int = zipfile.ZIP_STORED) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", compression=level) as z:
        for i, (_, data) in enumerate(items):
            z.writestr(str(i), data)
        z.writestr("_meta", json.dumps(meta if meta is not None else [[n, str(i)] for i, (n, _) in enumerate(items)]))
    return buf.getvalue()


@functools.cache
def zip_bomb() -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", compression=zipfile.ZIP_DEFLATED) as z:
        with z.open("0", "w", force_zip64=True) as entry:
            zeros = bytes(4 * 1024 * 1024)
            for _ in range(64):  # 256 MiB of zeros, about 250 KB deflated
                entry.write(zeros)
        z.writestr("_meta", json.dumps([["bomb.bin", "0"]]))
    return buf.getvalue()


def multipart(url: str, method: str, fields: dict[str, bytes | str]) -> ac.RawResponse:
    files = {k: (None, v) if isinstance(v, str) else ("data", v) for k, v in fields.items()}
    return ac._wrap(requests.post(url + "sync/" + method, files=files, timeout=60))


def raw_http(url: str, data: bytes) -> int:
    """A hand-written HTTP request; the status of the answer (0 if the connection just closed)."""
    host, port = url.split("//")[1].rstrip("/").split(":")
    with socket.create_connection((host, int(port)), timeout=30) as s:
        s.sendall(data)
        head = b""
        while b"\r\n" not in head:
            chunk = s.recv(4096)
            if not chunk:
                return 0
            head += chunk
    return int(head.split(b" ")[1])


def cases(url: str, hkey: str) -> list[tuple[str, Callable[[], ac.RawResponse | int], set[int], str | None]]:
    """(name, request, acceptable statuses, required body text)."""
    post = ac.raw_post
    big_json = json.dumps({"v": 11, "cv": "x", "pad": "x" * (2 * 1024 * 1024)}).encode()
    not_a_zip = b"PK\x03\x04 this is not a zip"
    traversal = ["../escape.jpg", "/abs.jpg", "a/b.jpg", "..", ".", "a\x00b.jpg", "..\\win.jpg", "con.jpg\u0000",
                 "e\u0301.jpg", "x" * 300 + ".jpg", ""]
    out: list = [
        ("no framing", lambda: ac.raw_request("POST", url, "sync/meta", data=b"{}"), {400}, None),
        ("header not JSON", lambda: post(url, "sync/meta", header="{nope", payload={}), {400}, None),
        ("header without k", lambda: post(url, "sync/meta", header={"v": 11, "c": "x", "s": "s"}, payload={}), {400}, None),
        ("header version 99", lambda: post(url, "sync/meta", hkey=hkey, version=99, payload={"v": 11}), {400}, None),
        ("header version as text", lambda: post(url, "sync/meta", header={"v": "11", "k": hkey, "c": "x", "s": "s"}, payload={}), {400}, None),
        ("huge header", lambda: post(url, "sync/meta", header={"v": 11, "k": hkey, "c": "x" * 200_000, "s": "s"}, payload={}), {400, 413, 431}, None),
        ("login: broken zstd", lambda: post(url, "sync/hostKey", compressed_body=b"\x28\xb5\x2f\xfd\x01\x02\x03"), {400}, None),
        ("login: not JSON", lambda: post(url, "sync/hostKey", data=b"{u:"), {400}, None),
        ("login: not UTF-8", lambda: post(url, "sync/hostKey", data=b'{"u":"\xff\xfe","p":"x"}'), {400}, None),
        ("login: null", lambda: post(url, "sync/hostKey", payload=None), {400}, None),
        ("login: u a number", lambda: post(url, "sync/hostKey", payload={"u": 1, "p": "x"}), {400}, None),
        ("login: wrong password", lambda: post(url, "sync/hostKey", payload={"u": USER, "p": "wrong"}), {403}, None),
        ("login: zstd bomb", lambda: post(url, "sync/hostKey", compressed_body=zstd_bomb()), {400}, None),
        ("meta: unknown key, bomb", lambda: post(url, "sync/meta", hkey="f" * 64, compressed_body=zstd_bomb()), {403}, None),
        ("meta: broken zstd", lambda: post(url, "sync/meta", hkey=hkey, compressed_body=b"\x28\xb5\x2f\xfdgarbage"), {400}, None),
        ("meta: not JSON", lambda: post(url, "sync/meta", hkey=hkey, data=b"[1,"), {400}, None),
        ("meta: without v", lambda: post(url, "sync/meta", hkey=hkey, payload={"cv": "x"}), {400}, None),
        ("meta: zstd bomb", lambda: post(url, "sync/meta", hkey=hkey, compressed_body=zstd_bomb()), {400}, None),
        ("meta: 2 MiB body", lambda: post(url, "sync/meta", hkey=hkey, data=big_json), {400}, None),
        ("start: no session key", lambda: post(url, "sync/start", hkey=hkey, skey="", payload={"minUsn": 0, "lnewer": False}), {400}, None),
        ("start: minUsn text", lambda: post(url, "sync/start", hkey=hkey, payload={"minUsn": "0", "lnewer": False}), {400}, None),
        ("applyChanges: no session", lambda: post(url, "sync/applyChanges", hkey=hkey, skey="none", payload={"changes": {}}), {400, 409}, None),
        ("chunk: no session", lambda: post(url, "sync/chunk", hkey=hkey, skey="none", payload={}), {400, 409}, None),
        ("applyChunk: bomb", lambda: post(url, "sync/applyChunk", hkey=hkey, skey="none", compressed_body=zstd_bomb()), {400}, None),
        ("applyGraves: oversized", lambda: post(url, "sync/applyGraves", hkey=hkey, skey="none",
                                                 compressed_body=ac.zstd_compress(b'{"chunk":{"cards":[' + b"1," * (9 * 1024 * 1024) + b"1]}}")), {400}, None),
        ("upload: not a collection", lambda: post(url, "sync/upload", hkey=hkey, data=b"SQLite format 3\x00" + bytes(4096)), {200}, CORRUPT),
        ("upload: broken zstd", lambda: post(url, "sync/upload", hkey=hkey, compressed_body=b"\x28\xb5\x2f\xfdgarbage" * 100), {200, 400}, None),
        ("upload: zstd bomb", lambda: post(url, "sync/upload", hkey=hkey, compressed_body=zstd_bomb()), {200, 400, 413}, None),
        ("upload: oversized", lambda: post(url, "sync/upload", hkey=hkey, compressed_body=bytes(3 * PAYLOAD_MEGS * 1024 * 1024 + 1)), {200, 400, 413}, None),
        ("msync begin: not JSON", lambda: post(url, "msync/begin", hkey=hkey, data=b"{"), {400}, None),
        ("msync begin: unknown key", lambda: post(url, "msync/begin", hkey="0" * 64, payload={"v": "x"}), {403}, None),
        ("mediaChanges: lastUsn text", lambda: post(url, "msync/mediaChanges", hkey=hkey, payload={"lastUsn": "0"}), {400}, None),
        ("uploadChanges: not a zip", lambda: post(url, "msync/uploadChanges", hkey=hkey, data=not_a_zip), {400}, None),
        ("uploadChanges: zip bomb", lambda: post(url, "msync/uploadChanges", hkey=hkey, data=zip_bomb()), {400}, None),
        ("uploadChanges: _meta not a list", lambda: post(url, "msync/uploadChanges", hkey=hkey, data=media_zip([("a.jpg", b"x")], meta={"a": 1})), {400}, None),
        ("uploadChanges: 26 files", lambda: post(url, "msync/uploadChanges", hkey=hkey, data=media_zip([(f"f{i}.jpg", b"x") for i in range(26)])), {400}, None),
        ("downloadFiles: traversal", lambda: post(url, "msync/downloadFiles", hkey=hkey, payload={"files": ["../../session.db"]}), {400, 409}, None),
        ("downloadFiles: not a list", lambda: post(url, "msync/downloadFiles", hkey=hkey, payload={"files": "a"}), {400}, None),
        ("legacy: no data", lambda: multipart(url, "meta", {"k": hkey, "c": "1"}), {400}, None),
        ("legacy: broken gzip", lambda: multipart(url, "meta", {"k": hkey, "c": "1", "data": b"\x1f\x8bnot gzip"}), {400}, None),
        ("legacy: unknown key, gzip bomb", lambda: multipart(url, "meta", {"k": "f" * 64, "c": "1", "data": _gzip_bomb()}), {403}, None),
        ("legacy: oversized", lambda: multipart(url, "meta", {"k": hkey, "c": "0", "data": bytes(PAYLOAD_MEGS * 1024 * 1024 + 1)}), {400, 413}, None),
        ("legacy: no boundary", lambda: ac.raw_request("POST", url, "sync/meta", data=b"--x\r\n", headers={"content-type": "multipart/form-data"}), {400}, None),
        ("GET a POST route", lambda: ac.raw_request("GET", url, "sync/meta"), {404}, None),
        ("path traversal in URL", lambda: raw_http(url, b"POST /sync/../../etc/passwd HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\n"), {400, 404}, None),
        ("unknown method", lambda: post(url, "sync/dropTables", hkey=hkey, payload={}), {404}, None),
    ]
    for name in traversal:
        out.append((f"uploadChanges: name {name[:20]!r}",
                    lambda name=name: post(url, "msync/uploadChanges", hkey=hkey, data=media_zip([(name, b"x")])), {400}, None))
    return out


@functools.cache
def _gzip_bomb() -> bytes:
    import gzip

    return gzip.compress(bytes(64 * 1024 * 1024), compresslevel=9)


def stored_state(base: Path) -> dict[str, str]:
    """sha1 of every stored collection, media database and media file (temporaries excluded).

    A collection counts by its content (an SQL dump): the server keeps it in WAL mode while it
    has it open and puts it back at rest later, which rewrites the file's header and leaves
    -wal/-shm files meanwhile without changing a row.
    """
    out = {}
    for path in sorted((base / "collections").rglob("*")):
        if not path.is_file() or ".tmp-" in str(path) or path.name == ".lock" or "backups" in path.parts:
            continue
        if path.name.startswith("collection.anki2-"):
            continue
        data = collection_dump(path) if path.name == "collection.anki2" else path.read_bytes()
        out[str(path.relative_to(base))] = hashlib.sha1(data).hexdigest()
    return out


def collection_dump(path: Path) -> bytes:
    """The collection's schema and rows as SQL, read beside the server (read-only)."""
    con = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        con.create_collation("unicase", lambda a, b: (a.lower() > b.lower()) - (a.lower() < b.lower()))
        return "\n".join(con.iterdump()).encode()
    finally:
        con.close()


def open_idle_connections(url: str, n: int) -> list[socket.socket]:
    """n connections that say nothing, or only the start of a request, and stay open."""
    host, port = url.split("//")[1].rstrip("/").split(":")
    socks = []
    for i in range(n):
        s = socket.create_connection((host, int(port)), timeout=30)
        if i % 2:
            s.sendall(b"POST /sync/meta HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n")
        socks.append(s)
    return socks


def bomb_rss(root: Path, *, with_key: bool) -> dict[str, Any]:
    """Ten concurrent 32 KB zstd bombs at a fresh server with the default limits: statuses and
    the server's resident size before and at its peak (VmHWM)."""
    server = Server(root, {USER: PASSWORD})
    server.start()
    try:
        hkey = ""
        if with_key:
            hkey = ac.raw_post(server.url, "sync/hostKey", payload={"u": USER, "p": PASSWORD}).json()["key"]
        bomb = zstd_bomb()
        before = server.rss_kb("VmRSS")
        statuses: list[int] = []
        methods = ["meta", "start", "applyChanges", "applyChunk", "applyGraves"]

        def send(i: int) -> None:
            method = "meta" if with_key else methods[i % len(methods)]
            statuses.append(ac.raw_post(server.url, f"sync/{method}", hkey=hkey, compressed_body=bomb, timeout=120).status)

        threads = [threading.Thread(target=send, args=(i,)) for i in range(10)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        time.sleep(0.2)
        return {
            "bomb_bytes": len(bomb),
            "statuses": sorted(statuses),
            "rss_before_mb": round(before / 1024, 1),
            "peak_rss_mb": round(server.rss_kb("VmHWM") / 1024, 1),
        }
    finally:
        server.stop()


def run_hostile(root: Path, *, idle_connections: int = 1000) -> dict[str, Any]:
    idle_n = idle_connections
    result: dict[str, Any] = {
        "bombs_without_key": bomb_rss(root / "rss-nokey", with_key=False),
        "bombs_with_key": bomb_rss(root / "rss-key", with_key=True),
    }
    server = Server(root / "server", {USER: PASSWORD}, env={"MAX_SYNC_PAYLOAD_MEGS": str(PAYLOAD_MEGS)})
    server.start()
    devices = root / "devices"
    devices.mkdir(parents=True)
    try:
        from anki.collection import Collection

        (devices / "login").mkdir()
        col = Collection(str(devices / "login" / "collection.anki2"))
        hkey = ac.login(col, server.url, USER, PASSWORD).hkey
        col.close(downgrade=False)
        a = new_device(devices, "A", hkey, server.url)
        add_notes(a.col, "hostile", 50)
        a.sync(prefer="upload")
        add_media(a.col, {f"m{i}.bin": bytes([i]) * 1000 for i in range(5)})
        a.sync_media()
        before = stored_state(server.base)

        unexpected, ran = [], []
        for name, request, ok, text in cases(server.url, hkey):
            try:
                reply = request()
                status = reply if isinstance(reply, int) else reply.status
                body = b"" if isinstance(reply, int) else (reply.body or reply.raw)
            except requests.RequestException as e:
                status, body = -1, str(e).encode()
            ran.append({"case": name, "status": status})
            if status not in ok or (text is not None and text.encode() not in body):
                unexpected.append({"case": name, "status": status, "wanted": sorted(ok), "body": body[:200].decode(errors="replace")})

        after_cases = stored_state(server.base)
        changed = sorted(k for k in set(before) | set(after_cases) if before.get(k) != after_cases.get(k))

        socks = open_idle_connections(server.url, idle_n)
        try:
            idle_ok = requests.get(server.url + "health", timeout=30).status_code == 200
            add_notes(a.col, "while idle connections", 5)
            idle_sync = a.sync().action == "normal"
        finally:
            for s in socks:
                s.close()

        b = new_device(devices, "B", hkey, server.url)
        b.sync()
        b.sync_media()
        same = not ac.diff_snapshots(ac.snapshot(a.col), ac.snapshot(b.col))
        media_same = sorted(p.name for p in Path(a.col.media.dir()).iterdir()) == sorted(p.name for p in Path(b.col.media.dir()).iterdir())
        a.close()
        b.close()
        result.update(
            cases=ran,
            requests=len(ran),
            unexpected=unexpected,
            changed=changed + ([] if same and media_same else ["devices differ after the hostile set"]),
            idle_connections=idle_n,
            healthy=idle_ok and idle_sync and server.proc is not None and server.proc.poll() is None,
            left_behind=left_behind(server.base),
        )
        return result
    finally:
        server.stop()
