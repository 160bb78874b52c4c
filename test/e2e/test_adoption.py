"""A data folder written by Anki's own sync server is picked up by ours: the real client's
collection, synced to Anki's server, is served by ours afterwards without loss. Runs both
servers on one data folder, so it only runs with E2E_SERVER=ours."""

from __future__ import annotations

from pathlib import Path

import anki_client as ac
import pytest
from conftest import USERS
from test_full_sync import download_fresh, upload_rich


def test_anki_server_folder_is_adopted(server_kind: str, tmp_path: Path, device, server_factory):
    if server_kind != "ours":
        pytest.skip("runs both servers on one data folder; exercised with E2E_SERVER=ours")
    base = tmp_path / "data"
    official = server_factory(kind="official", base=base)
    a, _auth, snap_a = upload_rich(device, official)
    official.stop()
    original = (base / "user1" / "collection.anki2").read_bytes()

    ours = server_factory(kind="ours", base=base)
    # Anki's server derives host keys from the password; ours issues its own: log in again.
    auth_a = ac.login(a, ours, "user1", USERS["user1"])
    assert ac.sync(a, auth_a).action == "none", "same collection: nothing to sync"
    b = download_fresh(device, ours, "B")
    ac.assert_same(snap_a, ac.snapshot(b), "uploaded to Anki's server vs downloaded from ours")

    # Both devices keep syncing normally through ours.
    note = b.new_note(b.models.by_name("Basic"))
    note["Front"] = "added after the move"
    b.add_note(note, b.decks.id("Default"))
    assert ac.sync(b, ac.login(b, ours, "user1", USERS["user1"])).action == "normal"
    assert ac.sync(a, auth_a).action == "normal"
    ac.assert_same(ac.snapshot(a), ac.snapshot(b), "A vs B after a normal sync through ours")
    # Adoption copies: Anki's own folder is left exactly as it was.
    assert (base / "user1" / "collection.anki2").read_bytes() == original
