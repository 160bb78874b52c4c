"""Temporaries of killed requests with real processes: an upload cut off by a SIGKILL of the
server leaves its body behind, which the next start removes; a second server starting on the
same data folder (two processes on one NFS folder) leaves the first one's upload in flight
alone, and that upload then completes. Our temporaries only (Anki's server keeps bodies in
memory), so skipped against it.
"""

from __future__ import annotations

import json
import socket
import threading
import time
from pathlib import Path

import pytest

import anki_client as ac
from conftest import USERS, SyncServer


@pytest.fixture(autouse=True)
def _ours_only(server_kind: str) -> None:
    if server_kind != "ours":
        pytest.skip("about ankisyncd's temporary files; Anki's server keeps bodies in memory")


def temporaries(base: Path) -> list[Path]:
    return sorted(base.rglob("*.tmp-*"))


class PausedUpload:
    """A full upload whose body is sent in two halves, the second when `finish()` is called."""

    def __init__(self, server: SyncServer, hkey: str, body: bytes) -> None:
        self.sock = socket.create_connection((server.host, server.port), timeout=60)
        header = json.dumps({"v": 11, "k": hkey, "c": ac.CLIENT_VERSION, "s": "paused"})
        head = (
            f"POST /sync/upload HTTP/1.1\r\nHost: {server.host}:{server.port}\r\n"
            f"anki-sync: {header}\r\nContent-Type: application/octet-stream\r\n"
            f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n"
        ).encode()
        half = len(body) // 2
        self.rest = body[half:]
        self.sock.sendall(head + body[:half])

    def finish(self) -> bytes:
        self.sock.sendall(self.rest)
        chunks = []
        while chunk := self.sock.recv(65536):
            chunks.append(chunk)
        self.sock.close()
        return b"".join(chunks)


def wait_for(predicate, what: str, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.05)


def upload_body(device, name: str) -> bytes:
    col = device(name)
    ac.populate(col)
    path = col.path
    col.close(downgrade=False)
    return ac.zstd_compress(Path(path).read_bytes())


def test_a_killed_upload_leaves_nothing_after_restart(server: SyncServer, device) -> None:
    hkey = ac.raw_post(server.url, "sync/hostKey", payload={"u": "user1", "p": USERS["user1"]}).json()["key"]
    upload = PausedUpload(server, hkey, upload_body(device, "A"))
    wait_for(lambda: temporaries(server.base), "the upload's body on disk")
    server.stop(hard=True)
    upload.sock.close()
    assert temporaries(server.base), "SIGKILL should have left the body behind"
    server.start()
    assert temporaries(server.base) == []


def test_a_second_server_leaves_the_first_ones_upload_alone(server_factory, device) -> None:
    first = server_factory()
    hkey = ac.raw_post(first.url, "sync/hostKey", payload={"u": "user1", "p": USERS["user1"]}).json()["key"]
    upload = PausedUpload(first, hkey, upload_body(device, "A"))
    wait_for(lambda: temporaries(first.base), "the upload's body on disk")
    in_flight = temporaries(first.base)
    second = server_factory(base=first.base)
    # Its start-up sweep ran: the first server's upload is still there, and completes.
    assert temporaries(first.base) == in_flight
    reply = upload.finish()
    assert reply.startswith(b"HTTP/1.1 200"), reply[:200]
    # The file as uploaded is kept a moment after the answer, while the download made ahead is
    # made from it; then nothing of the upload is left.
    wait_for(lambda: temporaries(first.base) == [], "the upload's temporaries gone")
    # The second server serves what the first stored (once the first lets go of the user).
    first.stop()
    b = device("B")
    auth = ac.login(b, second, "user1", USERS["user1"])
    assert ac.sync(b, auth).action == "download"
