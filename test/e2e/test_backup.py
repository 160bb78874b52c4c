"""`bun run admin backup` / `restore` as an operator uses them (ours only: Anki's server has
neither): a backup taken while the real client syncs, restored into a fresh folder, and a
server started on it that the same clients keep syncing with, normally, with nothing they had
synced before the backup missing.
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import threading
from pathlib import Path

import pytest

import anki_client as ac
from conftest import REPO_ROOT, USERS, SyncServer
from test_media_sync import add_files, digest, folder_digest, full_sync_with_media, sync_all, wait_media

ADMIN_TIMEOUT = 300


@pytest.fixture(autouse=True)
def ours_only(server_kind: str) -> None:
    if server_kind != "ours":
        pytest.skip("admin backup/restore are ankisyncd commands")


def admin(server: SyncServer, *args: str, base: Path | None = None) -> subprocess.CompletedProcess:
    env = server.env()
    if base is not None:
        env["SYNC_BASE"] = str(base)
    return subprocess.run(
        ["bun", "run", "src/cli/admin.ts", *args],
        cwd=REPO_ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=ADMIN_TIMEOUT,
    )


def add_note(col, text: str) -> None:
    note = col.new_note(col.models.by_name("Basic"))
    note.fields[0] = text
    col.add_note(note, 1)


def guids(col) -> set[str]:
    return set(col.db.list("select guid from notes"))


class SyncLoop(threading.Thread):
    """One device that keeps adding a note and a media file and syncing, until stopped."""

    def __init__(self, col, auth):
        super().__init__(daemon=True)
        self.col, self.auth = col, auth
        self.stop = threading.Event()
        self.synced = threading.Event()
        self.rounds = 0
        self.error: BaseException | None = None

    def run(self) -> None:
        try:
            while not self.stop.is_set():
                add_note(self.col, f"loop note {self.rounds}")
                add_files(self.col, {f"loop {self.rounds}.bin": os.urandom(20_000)})
                res = sync_all(self.col, self.auth)
                assert res.required == "NO_CHANGES", res
                self.rounds += 1
                self.synced.set()
        except BaseException as e:  # noqa: BLE001 -- re-raised in the test
            self.error = e
            self.synced.set()


def test_backup_while_syncing_then_restore_and_carry_on(server: SyncServer, server_factory, device, tmp_path):
    # user1 on two devices, with media; both synced before the backup
    a = device("A")
    ac.populate(a)
    add_note(a, 'with media <img src="naïve café.jpg">')
    files = {"naïve café.jpg": os.urandom(6000), "日本語の音声.mp3": os.urandom(9000)}
    add_files(a, files)
    auth_a = ac.login(a, server, "user1", USERS["user1"])
    full_sync_with_media(a, auth_a, "FULL_UPLOAD")
    b = device("B")
    auth_b = ac.login(b, server, "user1", USERS["user1"])
    full_sync_with_media(b, auth_b, "FULL_DOWNLOAD")
    assert folder_digest(b) == digest(files)
    expected_user1 = ac.snapshot(a)

    # user2 keeps syncing (collection and media) all through the backup
    c = device("C")
    auth_c = ac.login(c, server, "user2", USERS["user2"])
    add_note(c, "first of user2")
    full_sync_with_media(c, auth_c, "FULL_UPLOAD")
    loop = SyncLoop(c, auth_c)
    loop.start()
    assert loop.synced.wait(120) and loop.error is None, loop.error
    acknowledged_user2 = guids(c)  # synced before the backup starts: must all be in it

    # user3 is in the middle of a normal sync (its transaction open on the server)
    d = device("D")
    auth_d = ac.login(d, server, "user3", USERS["user3"])
    skey = ac.random_skey()
    assert ac.raw_post(server.url, "sync/meta", hkey=auth_d.hkey, payload={"v": 11, "cv": "anki,26.09.3 (29bb700b),linux"}).status == 200
    start = ac.raw_post(server.url, "sync/start", hkey=auth_d.hkey, skey=skey, payload={"minUsn": 0, "lnewer": False, "graves": None})
    assert start.status == 200, start

    backup_dir = tmp_path / "backups" / "first"
    rounds_before = loop.rounds
    done = admin(server, "backup", str(backup_dir))
    rounds_during = loop.rounds - rounds_before
    loop.stop.set()
    loop.join(180)
    assert loop.error is None, loop.error
    assert done.returncode == 0, done.stderr + done.stdout
    assert f"backup written to {backup_dir}" in done.stdout, done.stdout
    print(f"syncs completed by user2 while the backup ran: {rounds_during}")

    # the unfinished sync was neither blocked nor broken by the backup
    abort = ac.raw_post(server.url, "sync/abort", hkey=auth_d.hkey, skey=skey, payload={})
    assert abort.status == 200, abort

    manifest = json.loads((backup_dir / "manifest.json").read_text())
    assert manifest["format"] == "ankisyncd-backup" and len(manifest["users"]) == 3
    for user in manifest["users"]:
        assert user["problems"] == [], user["problems"]
        for name, size, sha1 in user["mediaFiles"]:
            data = (backup_dir / "collections" / user["uuid"] / "media" / name).read_bytes()
            assert (len(data), hashlib.sha1(data).hexdigest()) == (size, sha1), name

    # a backup folder is never reused
    again = admin(server, "backup", str(backup_dir))
    assert again.returncode == 1 and "is not empty" in again.stderr, again

    # restore into a fresh folder; the old server is gone
    server.stop()
    restored = tmp_path / "restored" / "data"
    done = admin(server, "restore", str(backup_dir), base=restored)
    assert done.returncode == 0, done.stderr + done.stdout
    assert "restored" in done.stdout, done.stdout
    refused = admin(server, "restore", str(backup_dir), base=restored)
    assert refused.returncode == 1 and "is not empty" in refused.stderr, refused

    new = server_factory(base=restored)
    # clients keep their host keys (sessions are in the backup); only the address changed
    auth_a = ac.make_auth(auth_a.hkey, new.url)
    auth_b = ac.make_auth(auth_b.hkey, new.url)

    # user1: nothing to do, then normal syncs carry a note and a file from A to B
    # A normal sync (B's download moved the server's mod) or none; a full sync would say so
    res = sync_all(a, auth_a)
    assert res.required == "NO_CHANGES", res
    add_note(a, 'after restore <img src="later.png">')
    files["later.png"] = os.urandom(3000)
    add_files(a, {"later.png": files["later.png"]})
    assert sync_all(a, auth_a).required == "NO_CHANGES"
    res = sync_all(b, auth_b)
    assert res.required == "NO_CHANGES", res
    wait_media(b)
    assert b.find_notes('"after restore"'), "normal sync after restore did not bring the new note"
    assert folder_digest(b) == digest(files)
    ac.assert_same(ac.snapshot(a), ac.snapshot(b), "user1's devices after restore")
    assert set(ac.snapshot(b)["notes"]) >= set(expected_user1["notes"])

    # user2: a new device gets everything acknowledged before the backup, media included
    e = device("E")
    auth_e = ac.login(e, new, "user2", USERS["user2"])
    full_sync_with_media(e, auth_e, "FULL_DOWNLOAD")
    assert acknowledged_user2 <= guids(e), "notes synced before the backup are missing"
    served = folder_digest(e)
    for name in (f"loop {i}.bin" for i in range(rounds_before)):
        assert name in served, f"{name} was synced before the backup but is missing"
        assert served[name] == hashlib.sha1((Path(c.media.dir()) / name).read_bytes()).hexdigest()


def test_backup_refuses_a_wrong_data_folder(server: SyncServer, tmp_path):
    done = admin(server, "backup", str(tmp_path / "b"), base=tmp_path / "nowhere")
    assert done.returncode == 1, done
    assert "session.db does not exist" in done.stderr, done.stderr
    assert not (tmp_path / "nowhere").exists(), "a wrong SYNC_BASE must not be created"


def test_restore_refuses_a_damaged_backup(server: SyncServer, device, tmp_path):
    a = device("A")
    add_files(a, {"x.png": os.urandom(500)})
    auth = ac.login(a, server, "user1", USERS["user1"])
    sync_all(a, auth)
    wait_media(a)
    backup_dir = tmp_path / "bk"
    assert admin(server, "backup", str(backup_dir)).returncode == 0
    manifest = json.loads((backup_dir / "manifest.json").read_text())
    user = next(u for u in manifest["users"] if u["mediaFiles"])
    damaged = backup_dir / "collections" / user["uuid"] / "media" / "x.png"
    damaged.write_bytes(b"not the same")
    target = tmp_path / "restored"
    done = admin(server, "restore", str(backup_dir), base=target)
    assert done.returncode == 1 and "is damaged" in done.stderr and "nothing restored" in done.stderr, done
    assert not target.exists() or not any(target.iterdir()), "a refused restore wrote files"
