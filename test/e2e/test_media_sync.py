"""Media-sync scenarios with the real Anki client (see conftest.py for how to run).

The client syncs media in a background thread: ``col.sync_media(auth)`` (or
``sync_collection(auth, sync_media=True)``, or a full sync given the server's
media usn) starts it, and ``col.media_sync_status()`` reports ``active`` until
it ends -- and raises the error if it failed. ``wait_media`` polls it.

The client notices local changes by the media folder's mtime (whole seconds)
and each file's mtime, so a test that changes files moves those forward
(``touch``) rather than relying on the clock.
"""

from __future__ import annotations

import hashlib
import os
import time
from pathlib import Path

import pytest

from anki.collection import Collection
from anki.errors import NetworkError, SyncError
from anki.sync import SyncAuth

import anki_client as ac
from conftest import USERS, SyncServer

# Names a client may produce: non-ASCII (NFC), spaces, several dots, CJK, emoji.
ODD_NAMES = [
    "naïve café.jpg",
    "日本語の音声.mp3",
    "Ελληνικά.png",
    "smile 😀.gif",
    "with  two  spaces.txt",
    "archive.tar.gz",
    "ünïcödé-ŝŧřïńğ.svg",
]


# ---------------------------------------------------------------------------
# helpers


def wait_media(col: Collection, timeout: float = 900.0) -> None:
    """Wait for the background media sync to end; re-raises its error."""
    deadline = time.monotonic() + timeout
    while col.media_sync_status().active:
        if time.monotonic() > deadline:
            col.abort_media_sync()
            raise AssertionError(f"media sync still running after {timeout}s")
        time.sleep(0.05)


def sync_media(col: Collection, auth: SyncAuth) -> None:
    """Media only: the client asks msync/begin for the server's media usn."""
    col.sync_media(auth)
    wait_media(col)


def sync_all(col: Collection, auth: SyncAuth) -> ac.SyncResult:
    """The Sync button with media on: collection first, then media with meta's media usn."""
    out = col.sync_collection(auth, True)
    wait_media(col)
    return ac.SyncResult(ac.REQUIRED_NAMES[out.required], "none", out.server_message, out.server_media_usn, None)


def media_dir(col: Collection) -> Path:
    return Path(col.media.dir())


_last_touched: dict[Path, int] = {}


def touch(path: Path) -> None:
    """Give the path an mtime (whole seconds) it never had before, so the client's scan sees
    a change however quickly the test moves."""
    t = max(int(time.time()), int(path.stat().st_mtime), _last_touched.get(path, 0)) + 1
    os.utime(path, (t, t))
    _last_touched[path] = t


def add_files(col: Collection, files: dict[str, bytes]) -> None:
    folder = media_dir(col)
    for name, data in files.items():
        path = folder / name
        path.write_bytes(data)
        touch(path)
    touch(folder)


def remove_files(col: Collection, names: list[str]) -> None:
    folder = media_dir(col)
    for name in names:
        (folder / name).unlink()
    touch(folder)


def folder_digest(col: Collection) -> dict[str, str]:
    """name -> sha1 of every file in the device's media folder."""
    out = {}
    for entry in os.scandir(media_dir(col)):
        if entry.is_file():
            h = hashlib.sha1()
            with open(entry.path, "rb") as f:
                for chunk in iter(lambda: f.read(1 << 20), b""):
                    h.update(chunk)
            out[entry.name] = h.hexdigest()
    return out


def digest(files: dict[str, bytes]) -> dict[str, str]:
    return {name: hashlib.sha1(data).hexdigest() for name, data in files.items()}


def server_changes(server: SyncServer, hkey: str, after: int = 0) -> list[list]:
    """All of the server's media changes after `after`, paging like the client."""
    rows: list[list] = []
    while True:
        r = ac.raw_post(server.url, "msync/mediaChanges", hkey=hkey, payload={"lastUsn": after})
        assert r.status == 200, r
        body = r.json()
        assert body["err"] == "", body
        batch = body["data"]
        if not batch:
            return rows
        usns = [row[1] for row in batch]
        assert usns == sorted(usns), f"mediaChanges not in usn order: {usns[:20]}"
        rows.extend(batch)
        after = batch[-1][1]


def server_state(server: SyncServer, hkey: str) -> dict[str, str]:
    """name -> sha1 ("" if deleted) as the server reports it (the latest row per name)."""
    state: dict[str, str] = {}
    for name, _usn, sha1 in server_changes(server, hkey):
        state[name] = sha1
    return state


def media_usn(server: SyncServer, hkey: str) -> int:
    r = ac.raw_post(server.url, "msync/begin", hkey=hkey, payload={"v": "anki,26.09.3 (29bb700b),linux"})
    assert r.status == 200, r
    body = r.json()
    assert body["err"] == "" and body["data"]["sk"] == hkey, body
    return body["data"]["usn"]


def device_with_login(device, server: SyncServer, name: str, user: str = "user1") -> tuple[Collection, SyncAuth]:
    col = device(name)
    return col, ac.login(col, server, user, USERS[user])


# ---------------------------------------------------------------------------


def test_added_files_reach_other_device_byte_identical(server: SyncServer, device):
    a, auth_a = device_with_login(device, server, "A")
    files = {name: os.urandom(200 + 37 * i) for i, name in enumerate(ODD_NAMES)}
    files["plain.txt"] = b"hello media\n"
    add_files(a, files)
    res = sync_all(a, auth_a)  # empty collections: no collection changes, then media
    assert res.required == "NO_CHANGES", res
    assert folder_digest(a) == digest(files)

    # the server holds exactly these files, under their NFC names
    assert server_state(server, auth_a.hkey) == digest(files)
    assert media_usn(server, auth_a.hkey) == len(files)

    b, auth_b = device_with_login(device, server, "B")
    sync_all(b, auth_b)
    assert folder_digest(b) == digest(files)

    # nothing left to do on either side: no further changes on the server
    sync_media(a, auth_a)
    sync_media(b, auth_b)
    assert media_usn(server, auth_a.hkey) == len(files)


def test_deletion_and_change_propagate_both_ways(server: SyncServer, device):
    a, auth_a = device_with_login(device, server, "A")
    files = {"keep.png": os.urandom(1000), "doomed.mp3": os.urandom(2000), "edit me.txt": b"version 1\n"}
    add_files(a, files)
    sync_media(a, auth_a)
    b, auth_b = device_with_login(device, server, "B")
    sync_media(b, auth_b)
    assert folder_digest(b) == digest(files)
    usn = media_usn(server, auth_a.hkey)

    # B deletes a file: it disappears on A
    remove_files(b, ["doomed.mp3"])
    sync_media(b, auth_b)
    assert media_usn(server, auth_a.hkey) == usn + 1
    assert server_state(server, auth_a.hkey)["doomed.mp3"] == ""
    sync_media(a, auth_a)
    del files["doomed.mp3"]
    assert folder_digest(a) == digest(files)

    # A changes a file in place: B gets the new content
    files["edit me.txt"] = b"version 2, longer than the first\n"
    add_files(a, {"edit me.txt": files["edit me.txt"]})
    sync_media(a, auth_a)
    assert media_usn(server, auth_a.hkey) == usn + 2
    sync_media(b, auth_b)
    assert folder_digest(b) == digest(files)
    assert folder_digest(a) == digest(files)

    # a deleted name can come back with new content
    files["doomed.mp3"] = os.urandom(3000)
    add_files(b, {"doomed.mp3": files["doomed.mp3"]})
    sync_media(b, auth_b)
    sync_media(a, auth_a)
    assert folder_digest(a) == digest(files)
    assert server_state(server, auth_a.hkey) == digest(files)


def test_large_library_in_many_batches(server: SyncServer, device):
    # On ours-deno this is the 100 MiB batch that outlasted the client's 30 s timeout while the
    # main thread's file writes were awaited (README, "Running on Deno": writes to files block).
    a, auth_a = device_with_login(device, server, "A")
    small = {f"note-{i:04d} ünï.txt": f"small file {i}\n".encode() * (1 + i % 40) for i in range(3000)}
    large = {
        "lecture.mp4": os.urandom(30 * 1024 * 1024),
        "podcast.mp3": os.urandom(6 * 1024 * 1024 + 123),
        "at-the-limit.bin": os.urandom(100 * 1024 * 1024),  # exactly 100 MiB: still synced
    }
    files = {**small, **large}
    add_files(a, files)
    expected = digest(files)
    del files, small, large  # keep the test's memory small
    try:
        sync_media(a, auth_a)
    except NetworkError as err:
        # The reference, not the subject: on a slow host Anki's own server has taken longer than
        # its client's 30 s timeout over this batch (CI, 2026-12-07); ours must not.
        if server.kind == "official" and "timed out" in str(err):
            pytest.xfail(f"Anki's server outlasted its client's timeout: {err}")
        raise
    assert media_usn(server, auth_a.hkey) == len(expected)

    b, auth_b = device_with_login(device, server, "B")
    sync_media(b, auth_b)  # ends with mediaSanity, which would raise on a count mismatch
    assert folder_digest(b) == expected


def full_sync_with_media(col: Collection, auth: SyncAuth, required: str) -> None:
    """A sync with media on that needs a full sync, done as aqt does it: media follows."""
    out = col.sync_collection(auth, True)
    assert ac.REQUIRED_NAMES[out.required] == required, out
    col.close_for_full_sync()
    try:
        col.full_upload_or_download(
            auth=auth, server_usn=out.server_media_usn, upload=required == "FULL_UPLOAD"
        )
    finally:
        col.reopen(after_full_sync=True)
    wait_media(col)


def test_full_sync_then_media(server: SyncServer, device):
    a = device("A")
    ac.populate(a)
    note = a.new_note(a.models.by_name("Basic"))
    note.fields[0] = '<img src="naïve café.jpg"> [sound:日本語の音声.mp3]'
    a.add_note(note, 1)
    files = {"naïve café.jpg": os.urandom(5000), "日本語の音声.mp3": os.urandom(7000)}
    add_files(a, files)
    auth_a = ac.login(a, server, "user1", USERS["user1"])

    # first sync with media on: a full upload is needed, media follows it (as aqt does it)
    full_sync_with_media(a, auth_a, "FULL_UPLOAD")
    assert server_state(server, auth_a.hkey) == digest(files)

    # a new device downloads the collection, then the media
    b = device("B")
    auth_b = ac.login(b, server, "user1", USERS["user1"])
    full_sync_with_media(b, auth_b, "FULL_DOWNLOAD")
    assert folder_digest(b) == digest(files)
    assert b.find_notes('"naïve café"'), "downloaded collection lacks the note using the media"

    # later, a normal sync carries a new note; media follows with meta's media usn
    note = a.new_note(a.models.by_name("Basic"))
    note.fields[0] = 'afterwards <img src="later.png">'
    a.add_note(note, 1)
    files["later.png"] = os.urandom(900)
    add_files(a, {"later.png": files["later.png"]})
    assert sync_all(a, auth_a).required == "NO_CHANGES"
    res = sync_all(b, auth_b)
    assert res.required == "NO_CHANGES" and res.server_media_usn == len(files), res
    assert folder_digest(b) == digest(files)
    assert b.find_notes("afterwards"), "normal sync did not bring the new note"


def test_media_sync_after_server_restart(server: SyncServer, device):
    a, auth_a = device_with_login(device, server, "A")
    files = {"before restart.png": os.urandom(4000), "naïve café.jpg": os.urandom(100)}
    add_files(a, files)
    sync_media(a, auth_a)
    usn = media_usn(server, auth_a.hkey)

    server.restart()
    assert media_usn(server, auth_a.hkey) == usn, "media usn must survive a restart"
    files["after restart.png"] = os.urandom(4000)
    add_files(a, {"after restart.png": files["after restart.png"]})
    sync_media(a, auth_a)
    assert media_usn(server, auth_a.hkey) == usn + 1

    server.restart(hard=True)  # SIGKILL: nothing is flushed on the way out
    b, auth_b = device_with_login(device, server, "B")
    sync_media(b, auth_b)
    assert folder_digest(b) == digest(files)


def test_protocol_answers_match(server: SyncServer, device):
    """Statuses and shapes the client relies on, identical on both servers."""
    a, auth = device_with_login(device, server, "A")
    add_files(a, {"present.txt": b"present\n", "gone.txt": b"gone\n"})
    sync_media(a, auth)
    remove_files(a, ["gone.txt"])
    sync_media(a, auth)
    hkey = auth.hkey

    def post(method: str, payload=None, *, key: str = hkey, **kw) -> ac.RawResponse:
        return ac.raw_post(server.url, f"msync/{method}", hkey=key, payload=payload, **kw)

    r = post("mediaSanity", {"local": 1})
    assert r.status == 200 and r.json() == {"data": "OK", "err": ""}, r
    r = post("mediaSanity", {"local": 5})
    assert r.status == 200 and r.json() == {"data": "mediaSanity", "err": ""}, r

    rows = post("mediaChanges", {"lastUsn": 0}).json()["data"]
    assert [row[0] for row in rows] == ["present.txt", "gone.txt"], rows
    assert rows[0][2] == hashlib.sha1(b"present\n").hexdigest() and rows[1][2] == "", rows
    assert post("mediaChanges", {"lastUsn": rows[-1][1]}).json() == {"data": [], "err": ""}

    r = post("downloadFiles", {"files": ["present.txt"]})
    assert r.status == 200 and r.body[:4] == b"PK\x03\x04", r
    assert post("downloadFiles", {"files": ["gone.txt"]}).status == 409
    assert post("downloadFiles", {"files": ["never-existed.txt"]}).status == 409
    assert post("downloadFiles", {"files": [f"f{i}" for i in range(26)]}).status == 400

    assert post("begin", {"v": ""}).status == 400, "begin without a client version"
    assert post("mediaChanges", {"lastUsn": 0}, key="0" * 40).status == 403
    assert post("uploadChanges", data=b"not a zip").status == 400


def test_data_folder_moves_between_servers(server_kind: str, tmp_path: Path, device, server_factory):
    """Anki's server's media.db and media/ are adopted by ours, and ours go back to Anki's
    server: both keep the same files, usn and tombstones. Uses both servers, so it runs once
    (with E2E_SERVER=ours)."""
    if server_kind != "ours":
        import pytest

        pytest.skip("runs both servers; exercised with E2E_SERVER=ours")
    import shutil

    base = tmp_path / "data"

    def start(kind: str) -> SyncServer:
        return server_factory(kind=kind, base=base)

    official = start("official")
    a, auth_a = device_with_login(device, official, "A")
    sync_all(a, auth_a)  # creates the collection on the server, which adoption looks for
    files = {"naïve café.jpg": os.urandom(3000), "kept.mp3": os.urandom(500), "deleted.png": os.urandom(10)}
    add_files(a, files)
    sync_media(a, auth_a)
    remove_files(a, ["deleted.png"])
    sync_media(a, auth_a)
    del files["deleted.png"]
    usn = media_usn(official, auth_a.hkey)
    official.stop()

    ours = start("ours")
    auth_a = ac.login(a, ours, "user1", USERS["user1"])
    assert media_usn(ours, auth_a.hkey) == usn
    assert server_state(ours, auth_a.hkey) == {**digest(files), "deleted.png": ""}
    sync_media(a, auth_a)  # nothing to do
    b, auth_b = device_with_login(device, ours, "B")
    sync_media(b, auth_b)
    assert folder_digest(b) == digest(files)
    files["added on ours.gif"] = os.urandom(700)
    add_files(b, {"added on ours.gif": files["added on ours.gif"]})
    sync_media(b, auth_b)
    assert media_usn(ours, auth_b.hkey) == usn + 1
    ours.stop()

    # back to Anki's server: our media.db and media/ replace its own
    ours_dir = next(p.parent for p in (base / "collections").glob("*/media.db"))
    user_dir = base / "user1"
    shutil.rmtree(user_dir / "media")
    shutil.copytree(ours_dir / "media", user_dir / "media")
    for suffix in ("", "-wal"):
        target = user_dir / f"media.db{suffix}"
        target.unlink(missing_ok=True)
        if (ours_dir / f"media.db{suffix}").exists():
            shutil.copy2(ours_dir / f"media.db{suffix}", target)
    official = start("official")
    c, auth_c = device_with_login(device, official, "C")
    sync_media(c, auth_c)
    assert folder_digest(c) == digest(files)
    assert media_usn(official, auth_c.hkey) == usn + 1
    auth_a = ac.login(a, official, "user1", USERS["user1"])
    sync_media(a, auth_a)
    assert folder_digest(a) == digest(files)


def test_temporaries_cap_holds_large_batches_not_small_ones(server_kind: str, device, server_factory):
    """ANKISYNCD_MAX_TEMP_MEGS (ours): while a user's temporaries fill the cap, a small batch
    (kept in memory) still goes through; a batch that would be written to disk waits (409)
    and goes through once there is room, nothing lost."""
    if server_kind == "official":
        pytest.skip("ours only: Anki's server has no cap on temporaries")
    server = server_factory(env={"ANKISYNCD_MAX_TEMP_MEGS": "1"})
    a, auth_a = device_with_login(device, server, "A")
    sync_media(a, auth_a)  # the user's folder exists from here on
    (user_dir,) = list((server.base / "collections").iterdir())
    # An upload in flight looks like this: named with the tag of the live server process.
    (lock,) = [p for p in (server.base / ".instances").iterdir() if p.name.endswith(".lock")]
    held = user_dir / f"collection.anki2.tmp-{lock.name.removesuffix('.lock')}-1.incoming"
    held.write_bytes(b"\0" * (1024 * 1024))

    small = {f"small-{i}.txt": f"small {i}\n".encode() * 50 for i in range(5)}
    add_files(a, small)
    sync_media(a, auth_a)
    assert media_usn(server, auth_a.hkey) == len(small)

    large = {"large.bin": os.urandom(3 * 1024 * 1024 // 2)}  # incompressible: past the 1 MiB
    add_files(a, large)
    # The client shows its "try again later" for a 409.
    with pytest.raises(SyncError, match="try again"):
        sync_media(a, auth_a)
    assert media_usn(server, auth_a.hkey) == len(small)
    assert "method=msync/uploadChanges status=409" in server.log_path.read_text()

    held.unlink()
    sync_media(a, auth_a)
    expected = digest({**small, **large})
    assert media_usn(server, auth_a.hkey) == len(expected)
    b, auth_b = device_with_login(device, server, "B")
    sync_media(b, auth_b)
    assert folder_digest(b) == expected
