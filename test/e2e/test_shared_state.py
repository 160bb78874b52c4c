"""Shared state in PostgreSQL (ANKISYNCD_DATABASE_URL), driven by the real client: a host key
issued by one node works on another sharing the database and the data folder, a revoked one is
refused by both, and a PostgreSQL outage fails syncs cleanly (500, one log line, /ready 503) until
it is back, without restarting the server. Ours only: Anki's own server has no such setting."""

from __future__ import annotations

import subprocess

import anki_client as ac
import pytest
import requests
from anki.errors import SyncError
from conftest import REPO_ROOT, USERS
from logs import log_with


@pytest.fixture(autouse=True)
def _ours_only(server_kind: str) -> None:
    if server_kind not in ("ours", "ours-deno"):
        pytest.skip("ANKISYNCD_DATABASE_URL is ankisyncd's")


def _add_note(col, text: str) -> None:
    note = col.new_note(col.models.by_name("Basic"))
    note["Front"] = text
    note["Back"] = text
    col.add_note(note, col.decks.id("Default"))


def _admin(server, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        ["bun", "run", "src/cli/admin.ts", *args],
        cwd=REPO_ROOT,
        env=server.env(),
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_host_key_from_one_node_works_on_the_other_and_revocation_reaches_both(server_factory, database_url, device):
    node1 = server_factory(database_url=database_url)
    node2 = server_factory(database_url=database_url, base=node1.base)
    assert not (node1.base / "session.db").exists(), "the shared state is in PostgreSQL"

    a = device("A")
    ac.populate(a)
    key = ac.login(a, node1, "user1", USERS["user1"]).hkey
    on_node2 = ac.make_auth(key, node2.url)
    assert ac.sync(a, on_node2).action == "upload"
    _add_note(a, "written through node 2")
    assert ac.sync(a, on_node2).action == "normal"

    b = device("B")
    key_b = ac.login(b, node2, "user1", USERS["user1"]).hkey
    assert ac.sync(b, ac.make_auth(key_b, node2.url), prefer="download").action == "download"
    assert b.note_count() == a.note_count()
    assert b.find_notes('"written through node 2"')

    revoked = _admin(node1, "session", "revoke", "--user", "user1")
    assert revoked.returncode == 0, revoked.stderr
    for node in (node2, node1):
        with pytest.raises(SyncError) as refused:
            ac.sync(a, ac.make_auth(key, node.url))
        assert ac.is_auth_error(refused.value), refused.value


def test_postgres_outage_fails_syncs_cleanly_and_they_recover(server_factory, database_url, postgres_cluster, device):
    if postgres_cluster.folder is None:
        pytest.skip("the cluster's folder is unknown (ANKISYNCD_TEST_PG_DIR), so it cannot be stopped")
    node = server_factory(database_url=database_url)
    a = device("A")
    ac.populate(a)
    auth = ac.login(a, node, "user1", USERS["user1"])
    assert ac.sync(a, auth).action == "upload"
    _add_note(a, "kept through the outage")

    postgres_cluster.stop()
    try:
        with pytest.raises(SyncError) as failed:
            ac.sync(a, auth)
        assert not ac.is_auth_error(failed.value), "an outage is not a wrong password"
        ready = requests.get(node.url + "ready", timeout=30)
        assert ready.status_code == 503, ready.text
        assert "shared database" in ready.text
    finally:
        postgres_cluster.resume()

    assert "shared database (PostgreSQL) unavailable" in log_with(node.log_path, "shared database (PostgreSQL) unavailable")
    assert requests.get(node.url + "ready", timeout=30).status_code == 200
    assert ac.sync(a, auth).action == "normal"
    b = device("B")
    b_auth = ac.login(b, node, "user1", USERS["user1"])
    assert ac.sync(b, b_auth, prefer="download").action == "download"
    assert b.note_count() == a.note_count()
    assert b.find_notes('"kept through the outage"')
