"""The real Anki client against one endpoint, in a process of its own.

The client (Rust, inside the `anki` package) loads its trusted roots -- the system's, or the
file named by SSL_CERT_FILE -- once per process, so each TLS setup of test_https_caddy.py
runs it in a fresh process with SSL_CERT_FILE pointing at that setup's CA.

    python tls_client.py login     ENDPOINT USER PASSWORD WORKDIR
    python tls_client.py refused   ENDPOINT USER PASSWORD WORKDIR
    python tls_client.py roundtrip ENDPOINT USER PASSWORD WORKDIR

login: logs in, prints {"hkey": ...}.
refused: a login that must fail; prints the error's class, kind and message.
roundtrip: device A (rich content) logs in and fully uploads; device B logs in, fully
downloads, and must equal A; then a note added on B reaches A by normal syncs. Prints what
happened as JSON; any failure exits non-zero with the traceback on stderr.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

from anki.collection import Collection

import anki_client as ac


def device(workdir: Path, name: str) -> Collection:
    folder = workdir / name
    folder.mkdir(parents=True, exist_ok=False)
    return Collection(str(folder / "collection.anki2"))


def login(endpoint: str, user: str, password: str, workdir: Path) -> dict:
    col = device(workdir, "login")
    try:
        auth = ac.login(col, endpoint, user, password)
        return {"hkey": auth.hkey}
    finally:
        col.close(downgrade=False)


def refused(endpoint: str, user: str, password: str, workdir: Path) -> dict:
    """A login expected to fail (e.g. an untrusted certificate): what the client reports."""
    col = device(workdir, "refused")
    try:
        ac.login(col, endpoint, user, password)
        return {"error": None}
    except Exception as e:  # noqa: BLE001 -- reported, the test judges it
        kind = getattr(e, "kind", None)
        return {"error": type(e).__name__, "kind": getattr(kind, "name", str(kind)), "message": str(e)}
    finally:
        col.close(downgrade=False)


def roundtrip(endpoint: str, user: str, password: str, workdir: Path) -> dict:
    out: dict = {}
    a = device(workdir, "A")
    b = device(workdir, "B")
    try:
        ac.populate(a)
        auth_a = ac.login(a, endpoint, user, password)
        res = ac.sync(a, auth_a)
        assert (res.required, res.action) == ("FULL_UPLOAD", "upload"), res
        out["upload"] = res.action

        auth_b = ac.login(b, endpoint, user, password)
        res = ac.sync(b, auth_b)
        assert (res.required, res.action) == ("FULL_DOWNLOAD", "download"), res
        out["download"] = res.action
        ac.assert_same(ac.snapshot(a), ac.snapshot(b), "uploaded and downloaded collections")
        out["cards"] = b.card_count()

        note = b.new_note(b.models.by_name("Basic"))
        note.fields[0], note.fields[1] = "through caddy", "over https"
        b.add_note(note, 1)
        res = ac.sync(b, auth_b)
        assert res.action == "normal", res
        res = ac.sync(a, auth_a)
        assert res.action == "normal", res
        assert a.find_notes('"front:through caddy"'), "the note added on B did not reach A"
        out["normal"] = "ok"
        return out
    finally:
        for col in (a, b):
            if col.db is not None:
                col.close(downgrade=False)


def main(argv: list[str]) -> int:
    command, endpoint, user, password, workdir = argv
    Path(workdir).mkdir(parents=True, exist_ok=True)
    result = {"login": login, "refused": refused, "roundtrip": roundtrip}[command](endpoint, user, password, Path(workdir))
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
