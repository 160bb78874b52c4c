"""One device running any anki version: a small JSON-lines server driven by clients.py.

Run with the python of a venv that has the `anki` version under test:

    <venv>/bin/python test/e2e/client_driver.py

Requests on stdin, one JSON object per line: {"op": "<name>", "args": {...}}. Replies on the
original stdout, one line each: {"ok": <result>} or {"error": {"kind": ..., "message": ...}}.
Everything else the library prints goes to stderr.

The sync API differs between versions; the differences are kept in this file:

* up to 2.1.54 (protocol v10) the client takes the server from the SYNC_ENDPOINT /
  SYNC_ENDPOINT_MEDIA environment variables; `sync_login(username, password)`;
* 2.1.57 - 2.1.66 take an endpoint at login, but it must be set on the returned auth too;
* before 23.10 `sync_collection(auth)` has no media flag and full syncs are
  `full_upload(auth)` / `full_download(auth)`; from 23.10 on they are
  `full_upload_or_download(auth=, server_usn=, upload=)`;
* media sync blocks until done before 23.10; later it runs in the background and
  `media_sync_status()` reports when it has finished.
"""

from __future__ import annotations

import base64
import inspect
import json
import os
import sys
import time
import traceback
from pathlib import Path
from typing import Any, Callable

HERE = Path(__file__).resolve().parent
for p in (HERE, HERE.parent / "fixtures"):
    if str(p) not in sys.path:
        sys.path.insert(0, str(p))

# Replies go to the real stdout; anything printed by the library (Python or Rust) goes to stderr.
_replies = os.fdopen(os.dup(1), "w", encoding="utf-8")
os.dup2(2, 1)
sys.stdout = sys.stderr

from anki.collection import Collection  # noqa: E402
from anki.notes import Note  # noqa: E402

import snapshots  # noqa: E402
from settings_collection import populate_settings  # noqa: E402

MEDIA_TIMEOUT = 150.0


def anki_version() -> str:
    try:
        from anki.buildinfo import version  # type: ignore[attr-defined]

        return str(version)
    except ImportError:
        import anki

        return str(getattr(anki, "version"))


def version_tuple(text: str) -> tuple[int, ...]:
    return tuple(int(part) for part in text.split("+")[0].split(".") if part.isdigit())


class Device:
    def __init__(self) -> None:
        self.col: Collection | None = None
        self.auth: Any = None
        self.version = version_tuple(anki_version())

    # --- lifecycle -------------------------------------------------------------------

    def op_version(self) -> str:
        return anki_version()

    def op_open(self, path: str) -> None:
        self.col = Collection(path)

    def op_close(self) -> None:
        if self.col is not None and self.col.db is not None:
            self.col.close(downgrade=False)
        self.col = None

    @property
    def c(self) -> Collection:
        assert self.col is not None, "no collection open"
        return self.col

    # --- sync ------------------------------------------------------------------------

    def op_login(self, url: str, user: str, password: str) -> str:
        if self.version <= (2, 1, 54):
            os.environ["SYNC_ENDPOINT"] = url + "sync/"
            os.environ["SYNC_ENDPOINT_MEDIA"] = url + "msync/"
            self.auth = self.c.sync_login(username=user, password=password)
        else:
            self.auth = self.c.sync_login(username=user, password=password, endpoint=url)
            self.auth.endpoint = url
        return self.auth.hkey

    def op_sync(self, prefer: str | None = None) -> dict:
        """One press of Sync (collection only): like anki_client.sync, for any version."""
        before = self._sync_state()
        legacy_trx = "trx" in inspect.signature(self.c.save).parameters
        if legacy_trx:  # before 23.10 Python holds a transaction open; aqt ends it to sync
            self.c.save(trx=False)
        try:
            if "sync_media" in inspect.signature(self.c.sync_collection).parameters:
                out = self.c.sync_collection(self.auth, False)
            else:
                out = self.c.sync_collection(self.auth)
        finally:
            if legacy_trx:
                self.c.db.begin()
        required = out.DESCRIPTOR.fields_by_name["required"].enum_type.values_by_number[out.required].name
        result = {"required": required, "action": "none", "server_message": out.server_message}
        if required in ("NO_CHANGES", "NORMAL_SYNC"):
            if self._sync_state() != before:
                result["action"] = "normal"
            return result
        if required == "FULL_UPLOAD":
            upload = True
        elif required == "FULL_DOWNLOAD":
            upload = False
        else:
            assert required == "FULL_SYNC", required
            if prefer is None:
                raise AssertionError("full sync required and both directions possible; pass prefer")
            upload = prefer == "upload"
        if prefer is not None and upload != (prefer == "upload"):
            raise AssertionError(f"client offers only {'upload' if upload else 'download'} ({required})")
        self._full_sync(upload)
        result["action"] = "upload" if upload else "download"
        return result

    def _full_sync(self, upload: bool) -> None:
        col = self.c
        col.close_for_full_sync()
        try:
            if hasattr(col, "full_upload_or_download"):
                col.full_upload_or_download(auth=self.auth, server_usn=None, upload=upload)
            elif upload:
                col.full_upload(self.auth)
            else:
                col.full_download(self.auth)
        finally:
            col.reopen(after_full_sync=True)

    def _sync_state(self) -> list:
        return list(self.c.db.first("select usn, ls from col"))

    def op_sync_media(self) -> None:
        self.c.sync_media(self.auth)
        if hasattr(self.c, "media_sync_status"):
            deadline = time.monotonic() + MEDIA_TIMEOUT
            while self.c.media_sync_status().active:
                if time.monotonic() > deadline:
                    raise TimeoutError("media sync still active")
                time.sleep(0.1)

    # --- content ---------------------------------------------------------------------

    def op_populate_settings(self) -> None:
        populate_settings(self.c)

    def op_add_note(self, front: str, back: str = "", deck: str = "Default", tags: list | None = None) -> int:
        col = self.c
        basic = col.models.by_name("Basic") if hasattr(col.models, "by_name") else col.models.byName("Basic")
        note = Note(col, basic)
        note["Front"], note["Back"] = front, back
        note.tags = list(tags or [])
        col.add_note(note, col.decks.id(deck))
        return int(note.id)

    def op_edit_note(self, front: str, new_front: str) -> None:
        note = self._note_by_front(front)
        note["Front"] = new_front
        self._update_note(note)

    def op_remove_note(self, front: str) -> None:
        nid = self._note_by_front(front).id
        remove: Callable = getattr(self.c, "remove_notes", None) or self.c.remNotes
        remove([nid])

    def _note_by_front(self, front: str) -> Note:
        nids = self.c.find_notes(f'"Front:{front}"')
        assert len(nids) == 1, f"{len(nids)} notes with Front {front!r}"
        return self.c.get_note(nids[0]) if hasattr(self.c, "get_note") else self.c.getNote(nids[0])

    def _update_note(self, note: Note) -> None:
        if hasattr(self.c, "update_note"):
            self.c.update_note(note)
        else:
            note.flush()

    def op_update_deck_config(self, conf_id: int, changes: dict) -> None:
        conf = self.c.decks.get_config(conf_id)
        _deep_update(conf, changes)
        self.c.decks.update_config(conf)

    def op_update_deck(self, name: str, changes: dict) -> None:
        deck = self.c.decks.get(self.c.decks.id(name))
        _deep_update(deck, changes)
        self.c.decks.save(deck)

    def op_set_config(self, key: str, value: Any) -> None:
        self.c.set_config(key, value)

    def op_add_field(self, notetype: str, field: str) -> None:
        """A schema change: the next sync must be a full one."""
        mm = self.c.models
        nt = mm.by_name(notetype) if hasattr(mm, "by_name") else mm.byName(notetype)
        mm.add_field(nt, mm.new_field(field))
        mm.save(nt)

    def op_add_media(self, name: str, data_b64: str) -> str:
        return self.c.media.write_data(name, base64.b64decode(data_b64))

    def op_media_files(self) -> dict:
        folder = Path(self.c.media.dir())
        return {p.name: base64.b64encode(p.read_bytes()).decode() for p in sorted(folder.iterdir()) if p.is_file()}

    # --- reading ---------------------------------------------------------------------

    def op_snapshot(self, ignore: list | None = None) -> dict:
        return snapshots.snapshot(self.c, ignore=set(ignore) if ignore is not None else snapshots.OBJECT_IGNORE)

    def op_pending(self) -> dict:
        return snapshots.pending_rows(self.c)


def _deep_update(target: dict, changes: dict) -> None:
    for key, value in changes.items():
        if isinstance(value, dict) and isinstance(target.get(key), dict):
            _deep_update(target[key], value)
        else:
            target[key] = value


def error_kind(exc: BaseException) -> str:
    """"auth" for a refused login (403), whatever the version calls it; else the class name."""
    is_auth = getattr(exc, "is_auth_error", None)  # up to 2.1.5x
    if callable(is_auth) and is_auth():
        return "auth"
    if "AUTH" in str(getattr(exc, "kind", "")):  # SyncErrorKind.AUTH later
        return "auth"
    return type(exc).__name__


def reply(payload: dict) -> None:
    _replies.write(json.dumps(payload) + "\n")
    _replies.flush()


def main() -> None:
    device = Device()
    for line in sys.stdin:
        if not line.strip():
            continue
        request = json.loads(line)
        handler = getattr(device, "op_" + request["op"], None)
        try:
            if handler is None:
                raise ValueError(f"unknown op {request['op']!r}")
            reply({"ok": handler(**request.get("args", {}))})
        except Exception as exc:  # reported to the test, which raises it there
            traceback.print_exc()
            reply({"error": {"kind": error_kind(exc), "message": f"{type(exc).__name__}: {exc}"}})
    device.op_close()


if __name__ == "__main__":
    main()
