"""Upgrading from the earlier Python server (Cognito, ./efs, nginx): ours starts on its data
folder and the real client carries on syncing with nothing lost.

The old folder is built from its description: `session.db` with `profiles(profile_id, uuid,
name, created_at, is_active)` and a clear-text host-key table `session(hkey, skey, username,
path, refresh_token, actual_username)`; `collections/<uuid>/collection.anki2` in schema 18 as
Anki's library leaves it (with a `-wal` leftover: copied while the library still had it open),
`collection.media/` and `collection.media.server.db` (the ankicommunity media table). Its
server side is written by Anki's own library: Anki's sync server (the same library the old
server used) receives a real client's full upload, normal sync and media, and its files are
then laid out the old way. Ours only (it runs both servers)."""

from __future__ import annotations

import os
import shutil
import sqlite3
import uuid
from pathlib import Path

import anki_client as ac
import pytest
import requests
from anki.collection import Collection
from test_media_sync import add_files, folder_digest, sync_all, sync_media, wait_media

PASSWORD = "Correct-Horse-9"
FILES = {
    "photo one.jpg": os.urandom(3000),
    "sound.mp3": os.urandom(5000),
    "ünïcode name.png": os.urandom(700),
    "doomed.txt": b"deleted before the move\n",
}


@pytest.fixture(autouse=True)
def _ours_only(server_kind: str) -> None:
    if server_kind != "ours":
        pytest.skip("adopting the Python server's folder is ours; runs both servers on it")


def _old_session_db(path: Path, profile_uuid: str, name: str, hkey: str) -> None:
    con = sqlite3.connect(path)
    con.executescript(
        """
        CREATE TABLE profiles (
            profile_id INTEGER PRIMARY KEY AUTOINCREMENT,
            uuid VARCHAR(36) NOT NULL UNIQUE,
            name VARCHAR NOT NULL,
            created_at DATETIME DEFAULT CURRENT_TIMESTAMP,
            is_active BOOLEAN DEFAULT 1
        );
        CREATE TABLE session (
            hkey VARCHAR PRIMARY KEY, skey VARCHAR, username VARCHAR, path VARCHAR,
            refresh_token VARCHAR, actual_username VARCHAR
        );
        """
    )
    con.execute(
        "INSERT INTO profiles (profile_id, uuid, name, created_at, is_active) VALUES (?, ?, ?, ?, ?)",
        (4, profile_uuid, name, "2024-02-03 04:05:06", 1),
    )
    con.execute(
        "INSERT INTO profiles (profile_id, uuid, name, created_at, is_active) VALUES (?, ?, ?, ?, ?)",
        (5, str(uuid.uuid4()), "left@example.com", "2024-02-04 00:00:00", 0),
    )
    con.execute(
        "INSERT INTO session VALUES (?, ?, ?, ?, ?, ?)",
        (hkey, "skey", name, f"/efs/collections/{profile_uuid}", "refresh-token", name),
    )
    con.commit()
    con.close()


def _old_media_db(anki_media_db: Path, old_db: Path) -> None:
    """Anki's server media.db rewritten as the ankicommunity table the old server kept."""
    src = sqlite3.connect(anki_media_db)
    rows = src.execute("SELECT fname, usn, CASE WHEN size = 0 THEN NULL ELSE csum END FROM media").fetchall()
    src.close()
    dst = sqlite3.connect(old_db)
    dst.executescript(
        "CREATE TABLE media (fname TEXT NOT NULL PRIMARY KEY, usn INT NOT NULL, csum TEXT);"
        "CREATE INDEX idx_media_usn ON media (usn);"
    )
    dst.executemany(
        "INSERT INTO media VALUES (?, ?, ?)",
        [(fname, usn, csum.hex() if csum else None) for fname, usn, csum in rows],
    )
    dst.commit()
    dst.close()


def _stage_old_layout(device, server_factory, tmp_path: Path, login: str, profile_uuid: str):
    """Device A syncs (collection and media) on Anki's server; its files become the old layout."""
    official = server_factory(kind="official", base=tmp_path / "official", users={login: PASSWORD})
    a = device("A")
    ac.populate(a)
    add_files(a, FILES)
    auth = ac.login(a, official, login, PASSWORD)
    res = ac.sync(a, auth)
    assert res.action == "upload", res
    sync_media(a, auth)
    # a normal sync and a media deletion, so the old server's state has history
    note = a.new_note(a.models.by_name("Basic"))
    note["Front"] = "added on the old server"
    a.add_note(note, a.decks.id("Default"))
    (Path(a.media.dir()) / "doomed.txt").unlink()
    assert sync_all(a, auth).required == "NO_CHANGES"
    ac.assert_no_pending(a)

    old = tmp_path / "efs"
    user_dir = old / "collections" / profile_uuid
    user_dir.mkdir(parents=True)
    src = official.base / login
    # Copied while Anki's library (inside Anki's server) has the collection open: a -wal leftover.
    for name in os.listdir(src):
        if name.startswith("collection.anki2"):
            shutil.copy2(src / name, user_dir / name)
    official.stop()
    assert (user_dir / "collection.anki2-wal").stat().st_size > 0, "no -wal leftover to adopt"
    shutil.copytree(src / "media", user_dir / "collection.media")
    _old_media_db(src / "media.db", user_dir / "collection.media.server.db")
    _old_session_db(old / "session.db", profile_uuid, login, auth.hkey)
    return old, a, auth


def _profiles(base: Path) -> list[tuple]:
    con = sqlite3.connect(base / "session.db")
    try:
        return con.execute("SELECT uuid, name FROM profiles ORDER BY profile_id").fetchall()
    finally:
        con.close()


def _carry_on(device, ours, a: Collection, auth_a, login: str) -> int:
    """A goes on with its old host key (logging in at most once); B joins; nothing is lost."""
    snap_a = ac.snapshot(a)
    media_a = folder_digest(a)
    auth = ac.make_auth(auth_a.hkey, ours.url)
    logins = 0
    try:
        res = ac.sync(a, auth)
    except Exception as err:  # a Cognito recheck may ask for the password once
        assert ac.is_auth_error(err), err
        auth = ac.login(a, ours, login, PASSWORD)
        logins += 1
        res = ac.sync(a, auth)
    assert res.action == "none", f"same collection on both sides: {res}"
    assert logins <= 1
    sync_media(a, auth)
    assert folder_digest(a) == media_a

    b = device("B")
    auth_b = ac.login(b, ours, login, PASSWORD)
    res = ac.sync(b, auth_b)
    assert (res.required, res.action) == ("FULL_DOWNLOAD", "download"), res
    sync_media(b, auth_b)
    ac.assert_same(snap_a, ac.snapshot(b), "synced on the old server vs downloaded from ours")
    assert folder_digest(b) == media_a
    assert "doomed.txt" not in media_a and "sound.mp3" in media_a

    # both go on syncing normally, collection and media
    note = b.new_note(b.models.by_name("Basic"))
    note["Front"] = "added after the upgrade"
    b.add_note(note, b.decks.id("Default"))
    add_files(b, {"after.jpg": b"new after the upgrade"})
    assert sync_all(b, auth_b).required in ("NO_CHANGES", "NORMAL_SYNC")
    out = a.sync_collection(auth, True)
    wait_media(a)
    assert ac.REQUIRED_NAMES[out.required] in ("NO_CHANGES", "NORMAL_SYNC")
    ac.assert_same(ac.snapshot(a), ac.snapshot(b), "A vs B after syncing through ours")
    assert folder_digest(a) == folder_digest(b)
    return logins


def _checks_of_the_old_readme(ours, base: Path, before: list[tuple]) -> None:
    r = requests.get(ours.url + "sync/hostKey", timeout=10)
    assert r.status_code == 405, r.status_code
    assert "GET is not a login" in r.json()["error"]
    # the old rows answer as before (local users created since come after them)
    assert _profiles(base)[: len(before)] == before, "SELECT uuid, name FROM profiles"
    assert (base / "session.db.python-server.bak").is_file()
    con = sqlite3.connect(base / "session.db")
    try:
        kept = con.execute("SELECT count(*) FROM python_profiles").fetchone()[0]
        old_sessions = con.execute("SELECT count(*) FROM python_session").fetchone()[0]
    finally:
        con.close()
    assert (kept, old_sessions) == (2, 1), "old tables moved aside, not dropped"


def test_local_user_upgrade(server_factory, tmp_path: Path, device) -> None:
    profile_uuid = str(uuid.uuid4())
    old, a, auth_a = _stage_old_layout(device, server_factory, tmp_path, "carol", profile_uuid)
    before = _profiles(old)
    # SYNC_USER1 of the old profile's name takes it over, and with it the data under its uuid.
    ours = server_factory(kind="ours", base=old, users={"carol": PASSWORD})
    _checks_of_the_old_readme(ours, old, before)
    # the old host key was carried over: no login needed at all
    assert _carry_on(device, ours, a, auth_a, "carol") == 0
    user_dir = old / "collections" / profile_uuid
    assert (user_dir / "media").is_dir() and not (user_dir / "collection.media").exists()
    assert (user_dir / "collection.media.server.db").is_file(), "old media database kept"


def test_cognito_user_upgrade(server_factory, tmp_path: Path, device) -> None:
    from cognito_emulator import MotoServer, UserPool

    moto = MotoServer(tmp_path / "moto.log")
    moto.start()
    try:
        pool = UserPool(moto)
        user = pool.add_user("ada@example.com", PASSWORD)
        old, a, auth_a = _stage_old_layout(device, server_factory, tmp_path, user.email, user.sub)
        before = _profiles(old)
        ours = server_factory(kind="ours", base=old, users={"localadmin": "local-admin-pw"}, env=pool.server_env(2))
        _checks_of_the_old_readme(ours, old, before)
        print("logins needed:", _carry_on(device, ours, a, auth_a, user.email))
        con = sqlite3.connect(old / "session.db")
        try:
            row = con.execute("SELECT provider, name FROM profiles WHERE uuid = ?", (user.sub,)).fetchone()
        finally:
            con.close()
        assert row == ("cognito", user.email), row
    finally:
        moto.stop()
