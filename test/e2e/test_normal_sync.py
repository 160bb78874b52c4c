"""Normal (incremental) sync scenarios with the real Anki client: two devices of one
account, changes on one side, normal syncs, and at the end both devices hold the same
collection (notes, cards, revlog, decks, deck options, note types, tags, synced config).

Every scenario must pass against Anki's own server (E2E_SERVER=official), which proves the
expectations, and against ours (E2E_SERVER=ours). See conftest.py for how to run.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

import pytest
from anki.collection import AddNoteRequest, Collection
from anki.sync import SyncAuth

import anki_client as ac
from conftest import USERS, SyncServer


@dataclass
class Device:
    col: Collection
    auth: SyncAuth
    name: str

    def sync(self, expect: str = "normal") -> ac.SyncResult:
        res = ac.sync(self.col, self.auth)
        assert res.action == expect, f"{self.name}: expected a {expect} sync, got {res}"
        ac.assert_no_pending(self.col)
        return res

    def full_sync(self, direction: str) -> None:
        res = ac.sync(self.col, self.auth, prefer=direction)
        assert (res.required, res.action) == ("FULL_SYNC", direction), f"{self.name}: {res}"
        ac.assert_no_pending(self.col)


def two_devices(device, server: SyncServer, *, rich: bool = True) -> tuple[Device, Device]:
    """A (populated, full upload) and B (empty, full download), both in sync."""
    user = "user1"
    a = Device(device("A"), None, "A")  # type: ignore[arg-type]
    if rich:
        ac.populate(a.col)
    else:
        _add_basic_notes(a.col, "seed", 3)
    a.auth = ac.login(a.col, server, user, USERS[user])
    res = ac.sync(a.col, a.auth)
    assert res.action == "upload", res
    b = Device(device("B"), None, "B")  # type: ignore[arg-type]
    b.auth = ac.login(b.col, server, user, USERS[user])
    res = ac.sync(b.col, b.auth)
    assert res.action == "download", res
    assert_devices_equal(a, b, "after the initial full sync")
    return a, b


def assert_devices_equal(a: Device, b: Device, when: str) -> dict:
    snap_a = ac.snapshot(a.col)
    ac.assert_same(snap_a, ac.snapshot(b.col), f"A vs B {when}")
    return snap_a


def settle(first: Device, second: Device) -> None:
    """`first` sends its changes, `second` sends its own and receives `first`'s, then
    `first` receives `second`'s: afterwards nothing is pending anywhere."""
    first.sync()
    second.sync()
    res = ac.sync(first.col, first.auth)
    assert res.action in ("none", "normal"), res
    ac.assert_no_pending(first.col)


def tick() -> None:
    """Object mtimes are in seconds; edits meant to be ordered need a new second."""
    time.sleep(1.05)


# --- content helpers ----------------------------------------------------------------


def _add_basic_notes(col: Collection, prefix: str, n: int, *, deck: str = "Default", tags=()) -> list[int]:
    did = col.decks.id(deck)
    basic = col.models.by_name("Basic")
    requests = []
    for i in range(n):
        note = col.new_note(basic)
        note.fields[0] = f"{prefix} front {i}"
        note.fields[1] = f"{prefix} back <b>{i}</b> &amp; more"
        note.tags = list(tags)
        requests.append(AddNoteRequest(note=note, deck_id=did))
    col.add_notes(requests)
    return [r.note.id for r in requests]


def _answer(col: Collection, deck: str, eases: list[int]) -> int:
    col.decks.select(col.decks.id(deck))
    answered = 0
    for ease in eases:
        card = col.sched.getCard()
        if card is None:
            break
        col.sched.answerCard(card, ease)
        answered += 1
    return answered


def _note_by_field(col: Collection, text: str):
    nids = col.find_notes(f'"{text}"')
    assert len(nids) == 1, (text, nids)
    return col.get_note(nids[0])


def _counts(col: Collection) -> dict[str, int]:
    return {t: col.db.scalar(f"select count() from {t}") for t in ("notes", "cards", "revlog", "graves")}


def _changes_on(col: Collection, tag: str) -> dict[str, Any]:
    """A broad set of changes of every synced kind, made on one device."""
    mm = col.models
    # notes: add, edit, delete
    added = _add_basic_notes(col, tag, 4, deck=f"{tag}::New deck", tags=[f"{tag}::fresh", "shared"])
    edited = _note_by_field(col, "Hund")
    edited.fields[1] = f"dog (edited on {tag}) <img src=\"{tag}.jpg\">"
    edited.tags.append(f"{tag}-edited")
    col.update_note(edited)
    doomed = _note_by_field(col, "Katze")
    col.remove_notes([doomed.id])
    # reviews
    answered = _answer(col, f"{tag}::New deck", [3, 1, 4, 3])
    # deck options
    conf = col.decks.get_config(1)
    conf["new"]["perDay"] = 30 + len(tag)
    conf["rev"]["maxIvl"] = 9000
    col.decks.update_config(conf)
    # a new note type, with a note of it
    nt = mm.copy(mm.by_name("Basic (and reversed card)"), add=False)
    nt["name"] = f"Copied on {tag}"
    mm.add_dict(nt)
    copied = mm.by_name(f"Copied on {tag}")
    note = col.new_note(copied)
    note.fields[0], note.fields[1] = f"{tag} copy front", f"{tag} copy back"
    col.add_note(note, col.decks.id(f"{tag}::New deck"))
    # tags and config
    col.tags.bulk_add([added[0]], f"{tag}::Extra::deep")
    col.set_config(f"e2e.{tag}", {"list": [1, 2.5], "when": tag})
    col.set_config("e2e.shared", tag)
    return {"added": added, "answered": answered}


# --- scenarios ----------------------------------------------------------------------


def test_changes_on_a_reach_b(server: SyncServer, device):
    a, b = two_devices(device, server)
    before = _counts(a.col)
    info = _changes_on(a.col, "A")
    assert info["answered"] > 0
    a.sync()
    b.sync()
    snap = assert_devices_equal(a, b, "after A's changes reached B")
    # the changes really travelled
    assert "A::New deck" in snap["decks"] and "Copied on A" in snap["notetypes"]
    assert snap["config"]["e2e.A"] == {"list": [1, 2.5], "when": "A"}
    assert "A::Extra::deep" in snap["tags"]
    assert _counts(b.col)["revlog"] > before["revlog"]
    assert not b.col.find_notes('"Katze"')
    # further syncs (each finish moves the server's mod, so the other side syncs again,
    # with nothing to exchange) change nothing
    assert ac.sync(a.col, a.auth).action in ("none", "normal")
    assert ac.sync(b.col, b.auth).action in ("none", "normal")
    assert_devices_equal(a, b, "after follow-up syncs")


def test_changes_on_b_reach_a(server: SyncServer, device):
    a, b = two_devices(device, server)
    _changes_on(b.col, "B")
    b.sync()
    a.sync()
    snap = assert_devices_equal(a, b, "after B's changes reached A")
    assert "B::New deck" in snap["decks"] and "Copied on B" in snap["notetypes"]
    assert snap["config"]["e2e.shared"] == "B"


def test_changes_on_both_sides_merge(server: SyncServer, device):
    a, b = two_devices(device, server)
    _changes_on(a.col, "A")
    tick()
    _changes_on(b.col, "B")
    settle(a, b)
    snap = assert_devices_equal(a, b, "after both sides' changes merged")
    for side in ("A", "B"):
        assert f"{side}::New deck" in snap["decks"]
        assert f"Copied on {side}" in snap["notetypes"]
        assert f"{side}::Extra::deep" in snap["tags"]
    # config travels whole from the newer side. A's finish made the server newer than B's
    # local changes, so B received A's config and sent none.
    assert snap["config"]["e2e.shared"] == "A"


@pytest.mark.parametrize("earlier_first", [True, False], ids=["earlier-syncs-first", "later-syncs-first"])
def test_conflicting_note_edits_later_wins(server: SyncServer, device, earlier_first: bool):
    a, b = two_devices(device, server)
    note = _note_by_field(a.col, "gehen")
    note.fields[1] = "edited on A (earlier)"
    a.col.update_note(note)
    tick()
    note = _note_by_field(b.col, "gehen")
    note.fields[1] = "edited on B (later)"
    b.col.update_note(note)
    # whichever edit reaches the server first, the later one must win everywhere
    settle(*((a, b) if earlier_first else (b, a)))
    assert_devices_equal(a, b, "after conflicting edits")
    for dev in (a, b):
        assert _note_by_field(dev.col, "gehen").fields[1] == "edited on B (later)", dev.name


def test_deleting_a_deck_with_cards(server: SyncServer, device):
    a, b = two_devices(device, server)
    did = a.col.decks.id_for_name("Lang::German::Verbs")
    cids = a.col.decks.cids(did, children=True)
    assert cids, "the deck to delete should hold cards"
    a.col.decks.remove([did])
    a.sync()
    b.sync()
    snap = assert_devices_equal(a, b, "after deleting a deck with cards")
    assert "Lang::German::Verbs" not in snap["decks"]
    assert not b.col.db.list(f"select id from cards where id in ({','.join(map(str, cids))})")


def test_thousands_of_notes_both_ways(server: SyncServer, device):
    a, b = two_devices(device, server, rich=False)
    _add_basic_notes(a.col, "bulk A", 2600, deck="Bulk::A", tags=["bulk"])
    started = time.monotonic()
    a.sync()
    up = time.monotonic() - started
    started = time.monotonic()
    b.sync()
    down = time.monotonic() - started
    assert_devices_equal(a, b, "after A's bulk add")
    assert b.col.note_count() >= 2600
    _add_basic_notes(b.col, "bulk B", 1500, deck="Bulk::B", tags=["bulk", "b"])
    b.col.remove_notes(list(b.col.find_notes('"deck:Bulk::A" "bulk A front 1*"'))[:300])
    b.sync()
    a.sync()
    assert_devices_equal(a, b, "after B's bulk add and deletions")
    # several chunks each way, and still quick
    assert up < 30 and down < 30, (up, down)


def test_adding_a_field_needs_full_sync(server: SyncServer, device):
    a, b = two_devices(device, server)
    mm = a.col.models
    basic = mm.by_name("Basic")
    mm.add_field(basic, mm.new_field("Extra"))
    mm.update_dict(basic, skip_checks=True)
    note = _note_by_field(a.col, "Hund")
    note["Extra"] = "added after the schema change"
    a.col.update_note(note)
    a.full_sync("upload")
    b.full_sync("download")
    snap = assert_devices_equal(a, b, "after adding a field (upload, then download)")
    assert [f["name"] for f in snap["notetypes"]["Basic"]["flds"]][-1] == "Extra"
    # normal syncs work again afterwards
    _add_basic_notes(b.col, "after schema change", 2)
    b.sync()
    a.sync()
    assert_devices_equal(a, b, "after a normal sync following the full sync")


def test_filtered_deck(server: SyncServer, device):
    a, b = two_devices(device, server)
    _add_basic_notes(a.col, "to filter", 12, deck="Filter source")
    _answer(a.col, "Filter source", [3, 4])
    deck = a.col.sched.get_or_create_filtered_deck(0)
    deck.name = "Filtered::E2E"
    del deck.config.search_terms[:]
    deck.config.search_terms.add(search='"deck:Filter source"', limit=100, order=0)
    deck.config.reschedule = True
    fdid = a.col.sched.add_or_update_filtered_deck(deck).id
    moved = a.col.db.scalar("select count() from cards where did = ?", fdid)
    assert moved > 0, "the filtered deck should have pulled in cards"
    a.sync()
    b.sync()
    snap = assert_devices_equal(a, b, "after building a filtered deck on A")
    assert snap["decks"]["Filtered::E2E"]["dyn"] == 1
    # study in the filtered deck on B, then empty it on A
    assert _answer(b.col, "Filtered::E2E", [3, 3, 1]) > 0
    b.sync()
    a.sync()
    assert_devices_equal(a, b, "after studying in the filtered deck on B")
    a.col.sched.empty_filtered_deck(fdid)
    a.sync()
    b.sync()
    assert_devices_equal(a, b, "after emptying the filtered deck on A")
    assert b.col.db.scalar("select count() from cards where did = ?", fdid) == 0


def test_fsrs_with_custom_parameters(server: SyncServer, device):
    a, b = two_devices(device, server)
    a.col.set_config("fsrs", True)
    conf = a.col.decks.add_config("FSRS custom E2E")
    conf["fsrsParams6"] = [
        0.3, 1.1, 2.9, 9.5, 6.2, 0.7, 2.8, 0.01, 1.6, 0.2, 0.9, 1.7, 0.08, 0.3, 1.5, 0.5,
        2.1, 0.6, 0.1, 0.05, 0.2,
    ]
    conf["desiredRetention"] = 0.83
    conf["new"]["delays"] = [1.0, 10.0]
    a.col.decks.update_config(conf)
    did = a.col.decks.id("FSRS E2E")
    deck = a.col.decks.get(did)
    deck["conf"] = conf["id"]
    a.col.decks.save(deck)
    _add_basic_notes(a.col, "fsrs", 6, deck="FSRS E2E")
    assert _answer(a.col, "FSRS E2E", [3, 4, 3, 1, 3, 3, 4]) > 0
    a.sync()
    b.sync()
    snap = assert_devices_equal(a, b, "after FSRS reviews on A")
    custom = snap["deck_configs"]["FSRS custom E2E"]
    assert custom["fsrsParams6"][0] == 0.3 and custom["desiredRetention"] == 0.83
    with_memory = [c for c in snap["cards"].values() if '"s":' in c["data"]]
    assert with_memory, "FSRS reviews should have stored memory state in card data"
    # B keeps studying under FSRS; A receives the result. Learning steps of minutes may fall
    # past the 4 am day boundary, so make the deck's cards due today before studying.
    b.col.sched.set_due_date(list(b.col.find_cards('"deck:FSRS E2E"')), "0")
    assert _answer(b.col, "FSRS E2E", [3, 3, 2]) > 0
    b.sync()
    a.sync()
    assert_devices_equal(a, b, "after FSRS reviews on B")
