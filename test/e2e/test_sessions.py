"""Sessions end when the password changes or after long disuse, and the real client then asks
for the password once and carries on (see docs/identity.md, "Sessions").

The password-change case runs on both servers: Anki's own server derives host keys from the
password, so a changed SYNC_USERn logs every device out there too; ankisyncd revokes the
sessions at start. Admin password changes and idle expiry are ankisyncd's own."""

from __future__ import annotations

import sqlite3
import subprocess
import time

import anki_client as ac
import pytest
from anki.errors import SyncError
from conftest import REPO_ROOT, USERS


def _sync_refused(col, auth) -> bool:
    try:
        ac.sync(col, auth)
    except SyncError as err:
        assert ac.is_auth_error(err), err
        return True
    return False


def test_changed_env_password_logs_devices_out(server_factory, device):
    server = server_factory()
    a = device("A")
    ac.populate(a)
    auth = ac.login(a, server, "user1", USERS["user1"])
    assert ac.sync(a, auth).action == "upload"

    server.users["user1"] = "a-new-password-1"
    server.restart()
    assert _sync_refused(a, auth), "the old host key must stop working"
    auth = ac.login(a, server, "user1", "a-new-password-1")
    assert ac.sync(a, auth).action == "none"

    # an unchanged password at the next restart keeps the session
    server.restart()
    assert ac.sync(a, auth).action == "none"


def _admin(server, *args: str, stdin: str = "") -> subprocess.CompletedProcess:
    return subprocess.run(
        ["bun", "run", "src/cli/admin.ts", *args],
        cwd=REPO_ROOT,
        env=server.env(),
        input=stdin,
        capture_output=True,
        text=True,
        timeout=120,
    )


# The server trusts a session it read from session.db for this long (src/identity/sessionCache.ts,
# SESSION_CACHE_TTL_MS): a change made by another process, such as the admin CLI, acts after it.
SESSION_CACHE_TTL_S = 1.0


def _past_session_cache() -> None:
    time.sleep(SESSION_CACHE_TTL_S + 0.1)


def test_admin_passwd_and_idle_expiry(server_factory, server_kind: str, device):
    if server_kind != "ours":
        pytest.skip("admin commands and session expiry are ankisyncd's own")
    server = server_factory(env={"ANKISYNCD_SESSION_IDLE_DAYS": "30"})
    assert _admin(server, "user", "add", "dora", "--password-stdin", stdin="first-password\n").returncode == 0
    a, b = device("A"), device("B")
    ac.populate(a)
    auth_a = ac.login(a, server, "dora", "first-password")
    assert ac.sync(a, auth_a).action == "upload"
    auth_b = ac.login(b, server, "dora", "first-password")
    assert ac.sync(b, auth_b).action == "download"

    # --keep-sessions: both devices go on
    kept = _admin(server, "user", "passwd", "dora", "--password-stdin", "--keep-sessions", stdin="second-password\n")
    assert kept.returncode == 0, kept.stderr
    assert ac.sync(a, auth_a).action in ("none", "normal")

    # a plain passwd logs both devices out; each logs in once with the new password
    changed = _admin(server, "user", "passwd", "dora", "--password-stdin", stdin="third-password\n")
    assert changed.returncode == 0 and "revoked 2 session(s)" in changed.stdout, changed
    _past_session_cache()
    assert _sync_refused(a, auth_a) and _sync_refused(b, auth_b)
    auth_a = ac.login(a, server, "dora", "third-password")
    auth_b = ac.login(b, server, "dora", "third-password")
    assert ac.sync(a, auth_a).action in ("none", "normal")

    # B's session has not been used for 31 days: refused, then B logs in and syncs
    con = sqlite3.connect(server.base / "session.db")
    try:
        old = int(time.time()) - 31 * 86400
        con.execute(
            "UPDATE sessions SET last_used_at = ?, created_at = ? WHERE key_hash = "
            "(SELECT key_hash FROM sessions WHERE revoked_at IS NULL ORDER BY session_id DESC LIMIT 1)",
            (old, old),
        )
        con.commit()
    finally:
        con.close()
    _past_session_cache()
    assert _sync_refused(b, auth_b)
    assert ac.sync(a, auth_a).action in ("none", "normal"), "A's session is still fresh"
    auth_b = ac.login(b, server, "dora", "third-password")
    assert ac.sync(b, auth_b).action in ("none", "normal")
    ac.assert_same(ac.snapshot(a), ac.snapshot(b), "A vs B")

    # the expired session is deleted at the next start; LAST SYNC is recorded
    server.restart()
    listing = _admin(server, "user", "list", "--json")
    assert '"lastSync": "' in listing.stdout or '"lastSync":"' in listing.stdout, listing.stdout
