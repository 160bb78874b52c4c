"""One user's device in a process of its own (test_scale_out.py): logs in at the public
address, uploads, syncs `rounds` times adding two notes each, then a reference device downloads
the collection and both are compared. Prints one JSON line: {"identical": bool, "notes": n}.

    python scale_client.py <public url> <user> <password> <workdir> <rounds>
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
for p in (HERE, HERE.parent / "fixtures"):
    if str(p) not in sys.path:
        sys.path.insert(0, str(p))

from anki.collection import Collection  # noqa: E402
from anki.errors import NetworkError, SyncError  # noqa: E402

import anki_client as ac  # noqa: E402

RETRY_FOR = 120.0


def sync(col: Collection, auth) -> ac.SyncResult:
    deadline = time.monotonic() + RETRY_FOR
    while True:
        try:
            return ac.sync(col, auth)
        except (SyncError, NetworkError):
            if time.monotonic() > deadline:
                raise
            time.sleep(0.5)


def add_note(col: Collection, text: str) -> None:
    note = col.new_note(col.models.by_name("Basic"))
    note.fields[0], note.fields[1] = text, "back"
    col.add_note(note, 1)


def main() -> None:
    public, user, password, workdir, rounds = sys.argv[1:6]
    root = Path(workdir)
    (root / "a").mkdir()
    (root / "ref").mkdir()
    a = Collection(str(root / "a" / "collection.anki2"))
    auth = ac.login(a, public, user, password)
    add_note(a, f"{user} start")
    assert sync(a, auth).action == "upload"
    for r in range(int(rounds)):
        add_note(a, f"{user} {r} x")
        add_note(a, f"{user} {r} y")
        assert sync(a, auth).action == "normal"
    ref = Collection(str(root / "ref" / "collection.anki2"))
    ref_auth = ac.login(ref, public, user, password)
    assert sync(ref, ref_auth).action == "download"
    identical = not ac.diff_snapshots(ac.snapshot(a), ac.snapshot(ref))
    print(json.dumps({"identical": identical, "notes": ref.note_count(), "endpoint": auth.endpoint}))
    a.close(downgrade=False)
    ref.close(downgrade=False)


if __name__ == "__main__":
    main()
