"""Cognito identities with the real Anki client, against ours only (Anki's server has no
Cognito): logins through a real Cognito API (moto in server mode, see cognito_emulator.py),
data under the user's `sub`, refusals, rechecks that revoke disabled or deleted users, and
sessions that survive a restart."""

from __future__ import annotations

import sqlite3
import time
from pathlib import Path

import pytest
import requests
from anki.collection import Collection
from anki.errors import SyncError

import anki_client as ac
from cognito_emulator import MotoServer, UserPool
from conftest import SyncServer

RECHECK_SECS = 2


@pytest.fixture(autouse=True)
def _ours_only(server_kind: str) -> None:
    if server_kind != "ours":
        pytest.skip("Cognito is ankisyncd's own feature; Anki's server has no equivalent")


@pytest.fixture(scope="module")
def moto(tmp_path_factory: pytest.TempPathFactory):
    srv = MotoServer(tmp_path_factory.mktemp("moto") / "moto.log")
    srv.start()
    yield srv
    srv.stop()


@pytest.fixture
def pool(moto: MotoServer) -> UserPool:
    return UserPool(moto)


@pytest.fixture
def cognito_server(server_factory, pool: UserPool) -> SyncServer:
    """Ours with local users (USERS) and the pool, local tried first (the default order)."""
    return server_factory(env=pool.server_env(RECHECK_SECS))


def profile_row(server: SyncServer, uuid: str) -> dict | None:
    con = sqlite3.connect(server.base / "session.db")
    con.row_factory = sqlite3.Row
    try:
        row = con.execute("select * from profiles where uuid = ?", (uuid,)).fetchone()
        return dict(row) if row else None
    finally:
        con.close()


def active_sessions(server: SyncServer, uuid: str) -> int:
    con = sqlite3.connect(server.base / "session.db")
    try:
        return con.execute(
            "select count(*) from sessions join profiles using (profile_id) where uuid = ? and revoked_at is null",
            (uuid,),
        ).fetchone()[0]
    finally:
        con.close()


def login_error(col, server: SyncServer, user: str, password: str) -> SyncError:
    with pytest.raises(SyncError) as info:
        ac.login(col, server, user, password)
    return info.value


def test_login_and_sync_land_under_the_sub(cognito_server: SyncServer, pool: UserPool, device) -> None:
    user = pool.add_user("ada@example.com")
    a = device("ada-A")
    ac.populate(a)
    auth = ac.login(a, cognito_server, user.email, user.password)
    assert ac.sync(a, auth).action == "upload"
    assert (cognito_server.base / "collections" / user.sub / "collection.anki2").is_file()
    row = profile_row(cognito_server, user.sub)
    assert row is not None
    assert (row["provider"], row["email"], row["is_active"]) == ("cognito", user.email, 1)
    assert row["last_login_at"] is not None

    b = device("ada-B")
    auth_b = ac.login(b, cognito_server, user.email, user.password)
    assert ac.sync(b, auth_b).action == "download"
    ac.assert_same(ac.snapshot(a), ac.snapshot(b))

    # a local user still logs in beside Cognito (local is tried first)
    c = device("local")
    ac.login(c, cognito_server, "user1", "pass1")


def test_refusals_are_403(cognito_server: SyncServer, pool: UserPool, device) -> None:
    pool.add_user("bea@example.com", "Right-Password-1")
    pool.add_user("off@example.com", "Right-Password-1")
    pool.disable("off@example.com")
    pool.add_user("temp@example.com", "Temporary-Pass-1", permanent=False)
    assert pool.status_of("temp@example.com") == "FORCE_CHANGE_PASSWORD"
    pool.sign_up("unconfirmed@example.com", "Right-Password-1")
    assert pool.status_of("unconfirmed@example.com") == "UNCONFIRMED"
    col = device("refused")
    cases = {
        "wrong password": ("bea@example.com", "Wrong-Password-1"),
        "unknown user": ("nobody@example.com", "Right-Password-1"),
        "disabled user": ("off@example.com", "Right-Password-1"),
        "forced password change": ("temp@example.com", "Temporary-Pass-1"),
        "unconfirmed user": ("unconfirmed@example.com", "Right-Password-1"),
    }
    for what, (email, password) in cases.items():
        err = login_error(col, cognito_server, email, password)
        assert ac.is_auth_error(err), f"{what}: expected 403, got {err!r}"
    log = cognito_server.log_path.read_text(errors="replace")
    assert "user disabled in Cognito" in log
    assert "NEW_PASSWORD_REQUIRED" in log
    assert "user not confirmed in Cognito" in log
    assert profile_row(cognito_server, pool.sub_of("off@example.com")) is None


@pytest.mark.parametrize("change", ["disable", "delete"])
def test_disabled_or_deleted_user_loses_sessions_within_recheck(
    cognito_server: SyncServer, pool: UserPool, device, change: str
) -> None:
    user = pool.add_user(f"cy-{change}@example.com")
    a = device("cy")
    ac.populate(a)
    auth = ac.login(a, cognito_server, user.email, user.password)
    assert ac.sync(a, auth).action == "upload"

    getattr(pool, change)(user.email)
    time.sleep(RECHECK_SECS + 0.5)
    with pytest.raises(SyncError) as info:
        ac.sync(a, auth)
    assert ac.is_auth_error(info.value), info.value
    assert active_sessions(cognito_server, user.sub) == 0
    assert f"user {change}d in Cognito" in cognito_server.log_path.read_text(errors="replace")

    if change == "disable":
        pool.enable(user.email)
        auth = ac.login(a, cognito_server, user.email, user.password)
        assert ac.sync(a, auth).action == "none"
    # the data stays under the sub whatever happened in Cognito
    assert (cognito_server.base / "collections" / user.sub / "collection.anki2").is_file()


def test_sessions_survive_a_restart(cognito_server: SyncServer, pool: UserPool, device) -> None:
    user = pool.add_user("dee@example.com")
    a = device("dee")
    ac.populate(a)
    auth = ac.login(a, cognito_server, user.email, user.password)
    assert ac.sync(a, auth).action == "upload"
    a.add_note(_note(a, "after restart"), a.decks.id("Default"))
    path = a.path
    a.close(downgrade=False)
    cognito_server.restart()
    # reopened like Anki after its own restart: a new client (and connection pool), the stored key
    again = Collection(path)
    try:
        assert ac.sync(again, ac.make_auth(auth.hkey, cognito_server.url)).action == "normal"
    finally:
        again.close(downgrade=False)


def test_cognito_outage(server_factory, tmp_path: Path, device) -> None:
    """Existing sessions keep syncing while Cognito is unreachable; new logins fail with a
    server error, not a wrong-password 403."""
    moto = MotoServer(tmp_path / "moto-outage.log")
    moto.start()
    try:
        pool = UserPool(moto)
        user = pool.add_user("eve@example.com")
        server = server_factory(env=pool.server_env(RECHECK_SECS))
        a = device("eve")
        ac.populate(a)
        auth = ac.login(a, server, user.email, user.password)
        assert ac.sync(a, auth).action == "upload"
    finally:
        moto.stop()
    time.sleep(RECHECK_SECS + 0.5)
    a.add_note(_note(a, "during outage"), a.decks.id("Default"))
    assert ac.sync(a, auth).action == "normal"
    assert "Cognito recheck failed; session kept" in server.log_path.read_text(errors="replace")

    b = device("eve-B")
    err = login_error(b, server, user.email, user.password)
    assert not ac.is_auth_error(err), "an outage must not look like a wrong password"
    r = requests.post(server.url + "sync/hostKey", timeout=30, **_v11_login(user.email, user.password))
    assert r.status_code == 500


def _note(col, front: str):
    note = col.new_note(col.models.by_name("Basic"))
    note.fields[0], note.fields[1] = front, "back"
    return note


def _v11_login(user: str, password: str) -> dict:
    import json

    return {
        "headers": {"anki-sync": json.dumps({"v": 11, "k": "", "c": "test,1,linux", "s": "s"})},
        "data": ac.zstd_compress(json.dumps({"u": user, "p": password}).encode()),
    }
