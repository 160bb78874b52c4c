"""Differential: one scenario script, started from the same collection file, run against Anki's
own server and against ours; the devices must end in the same state on both. Runs both servers,
so it only runs with E2E_SERVER=ours."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import anki_client as ac
import pytest
from anki.collection import Collection
from conftest import USERS, SyncServer

# Timestamps and ids minted during the script differ between the two runs by nature.
VOLATILE = {"usn", "mod", "id"}
ID_VALUED_CONFIG = ("curDeck", "activeDecks", "curModel", "_deck_", "_nt_")


def seed_collection(folder: Path) -> Path:
    path = folder / "seed.anki2"
    col = Collection(str(path))
    ac.populate(col)
    col.close()
    return path


def run_script(server: SyncServer, seed: Path, tmp: Path) -> dict[str, dict]:
    a, b = device(tmp / server.kind / "A", seed), device(tmp / server.kind / "B")
    auth_a = ac.login(a, server, "user1", USERS["user1"])
    auth_b = ac.login(b, server, "user1", USERS["user1"])
    assert ac.sync(a, auth_a).action == "upload"
    assert ac.sync(b, auth_b).action == "download"
    edit_on_a(a)
    assert ac.sync(a, auth_a).action == "normal"
    assert ac.sync(b, auth_b).action == "normal"
    edit_on_b(b)
    assert ac.sync(b, auth_b).action == "normal"
    assert ac.sync(a, auth_a).action == "normal"
    return {"A": normalised(a), "B": normalised(b)}


def device(folder: Path, seed: Path | None = None) -> Collection:
    folder.mkdir(parents=True)
    path = folder / "collection.anki2"
    if seed:
        shutil.copy(seed, path)
    return Collection(str(path))


def edit_on_a(col: Collection) -> None:
    first = col.get_note(sorted(col.find_notes(""))[0])
    first.fields[0] = "edited on A"
    first.tags.append("diff::edited")
    col.update_note(first)
    note = col.new_note(col.models.by_name("Basic"))
    note["Front"], note["Back"] = "added on A", "back"
    col.add_note(note, col.decks.id("Diff::New deck"))
    conf = col.decks.get_config(1)
    conf["new"]["perDay"] = 37
    col.decks.update_config(conf)


def edit_on_b(col: Collection) -> None:
    nids = sorted(col.find_notes(""))
    col.remove_notes([nids[1]])
    cids = col.find_cards("\"added on A\"")
    col.set_deck(cids, col.decks.id("Default"))
    col.sched.suspend_cards(cids)
    col.set_config("diffKey", {"from": "B"})


def normalised(col: Collection) -> dict:
    snap = ac.snapshot(col, ignore=VOLATILE)
    snap.pop("collection")
    snap["config"] = {k: v for k, v in snap["config"].items() if not k.startswith(ID_VALUED_CONFIG)}
    # notes and cards minted in the script have random guids: key them by their content
    by_guid = {guid: note["fields"][0] for guid, note in snap["notes"].items()}
    snap["notes"] = {by_guid[g]: {k: v for k, v in n.items() if k != "guid"} for g, n in snap["notes"].items()}
    snap["cards"] = {rekey(k, by_guid): strip_guid(c, by_guid) for k, c in snap["cards"].items()}
    return snap


def rekey(key: str, by_guid: dict[str, str]) -> str:
    guid, ord_ = key.rsplit("/", 1)
    return f"{by_guid.get(guid, guid)}/{ord_}"


def strip_guid(card: dict[str, Any], by_guid: dict[str, str]) -> dict[str, Any]:
    return {**card, "note_guid": by_guid.get(card["note_guid"], card["note_guid"])}


def test_same_script_same_end_state(server_kind: str, tmp_path: Path, server_factory):
    if server_kind != "ours":
        pytest.skip("runs both servers; exercised with E2E_SERVER=ours")
    seed = seed_collection(tmp_path)
    official = run_script(server_factory(kind="official"), seed, tmp_path)
    ours = run_script(server_factory(kind="ours"), seed, tmp_path)
    ac.assert_same(official["A"], official["B"], "A vs B on Anki's server")
    # the script really moved things both ways
    assert {"edited on A", "added on A"} <= set(official["A"]["notes"])
    assert official["A"]["cards"]["added on A/0"]["queue"] == -1
    assert official["A"]["config"]["diffKey"] == {"from": "B"}
    ac.assert_same(official["A"], ours["A"], "device A: Anki's server vs ours")
    ac.assert_same(official["B"], ours["B"], "device B: Anki's server vs ours")
