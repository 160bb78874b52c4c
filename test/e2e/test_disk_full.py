"""The data folder on a real filesystem that fills up (a small tmpfs), with the real client.

While it is full a sync fails with HTTP 500, as Anki's own server answers I/O errors (the
client says the server had a problem, try again later; for a normal-sync step Anki's server
answers 400 instead, see below); nothing is left behind; once space is freed
the same devices sync again with no manual step and nothing is lost. Needs root to mount;
skipped (saying why) otherwise.
"""

from __future__ import annotations

import errno
import os
import subprocess
from pathlib import Path

import pytest
from anki.errors import SyncError

import anki_client as ac
from conftest import USERS
from logs import log_with


@pytest.fixture
def small_fs(tmp_path: Path):
    mount = tmp_path / "smallfs"
    mount.mkdir()
    r = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=40m", "tmpfs", str(mount)], capture_output=True)
    if r.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {r.stderr.decode().strip() or r.returncode}")
    try:
        yield mount
    finally:
        if subprocess.run(["umount", str(mount)], capture_output=True).returncode != 0:
            subprocess.run(["umount", "-l", str(mount)], capture_output=True)


def fill(mount: Path) -> Path:
    filler = mount / "filler"
    with open(filler, "ab", buffering=0) as f:
        for size in (1 << 20, 4096, 1):
            block = b"a" * size
            while True:
                try:
                    f.write(block)
                except OSError as e:
                    if e.errno != errno.ENOSPC:
                        raise
                    break
    return filler


def temporaries(base: Path) -> list[str]:
    return [str(p) for p in base.rglob("*.tmp-*")]


def test_sync_on_a_full_disk_then_recovers(server_factory, device, small_fs: Path) -> None:
    server = server_factory(base=small_fs / "data")
    a = device("A")
    ac.populate(a)
    auth = ac.login(a, server, "user1", USERS["user1"])
    assert ac.sync(a, auth).action == "upload"

    # Changes that need room on the server: a few MiB of note text.
    for i in range(3):
        note = a.new_note(a.models.by_name("Basic"))
        note["Front"] = f"big-{i}"
        note["Back"] = os.urandom(600_000).hex()
        a.add_note(note, a.decks.id("Default"))
    filler = fill(small_fs)
    try:
        with pytest.raises(SyncError) as err:
            ac.sync(a, auth)
        print("client saw:", err.value.kind, err.value)
        if server.kind == "official":
            # Observed: Anki's server answers 400 for any failed normal-sync step, a full disk
            # included, so its client tells the user to run Check Database. We answer 500, as
            # it does for I/O errors elsewhere: "a problem on the server, try again later".
            assert "Check Database" in str(err.value)
        else:
            assert "try again" in str(err.value), err.value
            assert temporaries(server.base) == []
            log = log_with(server.log_path, "disk full")
            assert "disk full" in log and str(server.base) in log
            assert "\n    at " not in log
    finally:
        filler.unlink()

    assert ac.sync(a, auth).action == "normal"
    ac.assert_no_pending(a)
    b = device("B")
    auth_b = ac.login(b, server, "user1", USERS["user1"])
    assert ac.sync(b, auth_b).action == "download"
    ac.assert_same(ac.snapshot(a), ac.snapshot(b))
    if server.kind == "ours":
        assert temporaries(server.base) == []


def test_full_upload_on_a_full_disk_then_recovers(server_factory, device, small_fs: Path) -> None:
    server = server_factory(base=small_fs / "data")
    a = device("A")
    ac.populate(a)
    auth = ac.login(a, server, "user1", USERS["user1"])
    assert ac.sync(a, auth).action == "upload"
    before = ac.snapshot(a)

    c = device("C")
    ac.populate(c)
    note = c.new_note(c.models.by_name("Basic"))
    note["Front"] = "only on C"
    note["Back"] = os.urandom(2_000_000).hex()
    c.add_note(note, c.decks.id("Default"))
    auth_c = ac.login(c, server, "user1", USERS["user1"])
    filler = fill(small_fs)
    try:
        with pytest.raises(SyncError) as err:
            ac.sync(c, auth_c, prefer="upload")
        print("client saw:", err.value.kind, err.value)
        assert "try again" in str(err.value), err.value  # 500 from both servers
        if server.kind == "ours":
            assert temporaries(server.base) == []
    finally:
        filler.unlink()

    # Nothing stored changed: a fresh device still gets A's collection.
    b = device("B")
    auth_b = ac.login(b, server, "user1", USERS["user1"])
    assert ac.sync(b, auth_b).action == "download"
    ac.assert_same(before, ac.snapshot(b))
    # And the upload works now.
    assert ac.sync(c, auth_c, prefer="upload").action == "upload"
