"""Full-sync scenarios with the real Anki client (see conftest.py for how to run)."""

from __future__ import annotations

import json
import socket
import time
from pathlib import Path

import pytest
import zstandard
from anki.collection import Collection
from anki.errors import SyncError

import anki_client as ac
from conftest import USERS, SyncServer

# exactly what the anki 26.9.3 client sends to /sync/meta
META = {"v": 11, "cv": "anki,26.09.3 (29bb700b),linux"}


def upload_rich(device, server: SyncServer, user: str = "user1") -> tuple[Collection, object, dict]:
    """New device with rich content; first sync must be a forced full upload."""
    a = device(f"{user}-A")
    ac.populate(a)
    auth = ac.login(a, server, user, USERS[user])
    res = ac.sync(a, auth)
    assert (res.required, res.action) == ("FULL_UPLOAD", "upload"), res
    ac.assert_no_pending(a)
    res = ac.sync(a, auth)
    assert res.action == "none", f"sync right after upload should be a no-op: {res}"
    return a, auth, ac.snapshot(a)


def download_fresh(device, server: SyncServer, name: str, user: str = "user1") -> Collection:
    """New empty device logs in; first sync must be a forced full download."""
    b = device(name)
    auth = ac.login(b, server, user, USERS[user])
    res = ac.sync(b, auth)
    assert (res.required, res.action) == ("FULL_DOWNLOAD", "download"), res
    ac.assert_no_pending(b)
    res = ac.sync(b, auth)
    assert res.action == "none", f"sync right after download should be a no-op: {res}"
    return b


def assert_rich(snap: dict) -> None:
    """Guard against a populate() that silently produced little content."""
    c = ac.counts(snap)
    for section in ("notes", "cards", "revlog", "decks", "deck_configs", "notetypes", "tags"):
        assert c[section] > 0, f"populated collection has no {section}: {c}"
    assert any(d.get("dyn") for d in snap["decks"].values()), "no filtered deck"
    assert any("::" in name for name in snap["decks"]), "no nested deck"
    assert any(nt.get("type") == 1 for nt in snap["notetypes"].values()), "no cloze notetype"
    assert any(
        conf.get("fsrsParams6") or conf.get("fsrsParams5") for conf in snap["deck_configs"].values()
    ), "no deck config with FSRS params"


def raw_meta(server: SyncServer, hkey: str) -> dict:
    r = ac.raw_post(server.url, "sync/meta", hkey=hkey, payload=META)
    assert r.status == 200, r
    return r.json()


# ---------------------------------------------------------------------------


def test_wrong_password_refused(server: SyncServer, device):
    col = device("A")
    with pytest.raises(SyncError) as exc:
        ac.login(col, server, "user1", "wrong")
    assert ac.is_auth_error(exc.value), f"expected an auth error, got {exc.value!r} kind={exc.value.kind}"
    with pytest.raises(SyncError) as exc:
        ac.login(col, server, "nobody", "pass1")
    assert ac.is_auth_error(exc.value), exc.value

    # what the server answered, on the wire
    r = ac.raw_post(server.url, "sync/hostKey", payload={"u": "user1", "p": "wrong"})
    assert r.status == 403, r
    assert "anki-original-size" not in r.headers, "error responses must not be zstd-framed"
    r = ac.raw_post(server.url, "sync/hostKey", payload={"u": "nobody", "p": "pass1"})
    assert r.status == 403, r
    r = ac.raw_post(server.url, "sync/hostKey", payload={"u": "User1", "p": "pass1"})
    assert r.status == 403, f"usernames are case-sensitive: {r}"

    # the right password still works, and the client and a raw login agree on the wire format
    auth = ac.login(col, server, "user1", "pass1")
    assert auth.hkey
    r = ac.raw_post(server.url, "sync/hostKey", payload={"u": "user1", "p": "pass1"})
    assert r.status == 200, r
    assert set(r.json()) == {"key"} and r.json()["key"], r


def test_login_password_containing_colons(server: SyncServer, device):
    # SYNC_USER3=user3:pa:ss:3 -> username "user3", password "pa:ss:3" (split at the first colon)
    col = device("A")
    auth = ac.login(col, server, "user3", "pa:ss:3")
    assert auth.hkey
    res = ac.sync(col, auth)
    assert res.action == "none", res


def test_upload_then_download_equal(server: SyncServer, device):
    a, auth_a, snap_a = upload_rich(device, server)
    assert_rich(snap_a)

    b = download_fresh(device, server, "B")
    ac.assert_same(snap_a, ac.snapshot(b), "uploader A vs downloader B")

    # A's next sync needs no full sync (Anki's server bumps mod on download, so
    # this is an empty normal sync there) and changes nothing.
    res = ac.sync(a, auth_a)
    assert res.action in ("none", "normal"), res
    ac.assert_same(snap_a, ac.snapshot(a), "A before vs after its follow-up sync")
    ac.assert_no_pending(a)


def test_users_isolated(server: SyncServer, device):
    a, auth1, snap_a = upload_rich(device, server, "user1")

    # user2 sees an empty, never-synced server collection
    c = device("user2-C")
    auth2 = ac.login(c, server, "user2", USERS["user2"])
    assert auth2.hkey != auth1.hkey
    meta2 = raw_meta(server, auth2.hkey)
    assert (meta2["mod"], meta2["usn"], meta2.get("empty")) == (0, 0, True), meta2
    res = ac.sync(c, auth2)
    assert res.action == "none", f"fresh device vs fresh server collection must be no-changes: {res}"
    assert c.card_count() == 0

    # user2 uploads different content...
    d = device("user2-D")
    _add_own_notes(d, "user2")
    auth_d = ac.login(d, server, "user2", USERS["user2"])
    res = ac.sync(d, auth_d)
    assert res.action == "upload", res
    snap_d = ac.snapshot(d)

    # ...which leaves user1 untouched
    meta1 = raw_meta(server, auth1.hkey)
    assert meta1["mod"] == a.db.scalar("select mod from col"), (meta1, "user1's server collection changed")
    assert ac.sync(a, auth1).action == "none"
    b = download_fresh(device, server, "user1-B", "user1")
    ac.assert_same(snap_a, ac.snapshot(b), "user1: A vs B")

    e = download_fresh(device, server, "user2-E", "user2")
    ac.assert_same(snap_d, ac.snapshot(e), "user2: D vs E")
    assert snap_d["notes"].keys().isdisjoint(snap_a["notes"].keys())


def _add_own_notes(col: Collection, tag: str, n: int = 3) -> None:
    for i in range(n):
        note = col.new_note(col.models.by_name("Basic"))
        note["Front"], note["Back"] = f"{tag} q{i}", f"{tag} a{i}"
        col.add_note(note, col.decks.id(f"{tag} deck"))


def test_both_sides_have_content_user_chooses(server: SyncServer, device):
    """Schema differs and neither side is empty -> FULL_SYNC, desktop asks the
    user; both answers must work."""
    a, auth_a, snap_a = upload_rich(device, server)

    b = device("B")
    _add_own_notes(b, "B")
    auth_b = ac.login(b, server, "user1", USERS["user1"])
    res = ac.sync(b, auth_b, prefer="download")
    assert (res.required, res.action) == ("FULL_SYNC", "download"), res
    ac.assert_same(snap_a, ac.snapshot(b), "A vs B after B chose download")

    c = device("C")
    _add_own_notes(c, "C")
    auth_c = ac.login(c, server, "user1", USERS["user1"])
    res = ac.sync(c, auth_c, prefer="upload")
    assert (res.required, res.action) == ("FULL_SYNC", "upload"), res
    snap_c = ac.snapshot(c)

    # A's collection is now behind a schema change: full sync again
    res = ac.sync(a, auth_a, prefer="download")
    assert (res.required, res.action) == ("FULL_SYNC", "download"), res
    ac.assert_same(snap_c, ac.snapshot(a), "C vs A after C overwrote the server")


@pytest.mark.parametrize("hard", [False, True], ids=["sigterm", "sigkill"])
def test_restart_between_syncs(server: SyncServer, device, hard: bool):
    a, auth, snap_a = upload_rich(device, server)

    server.restart(hard=hard)

    # same auth object as before the restart: no new login
    res = ac.sync(a, auth)
    assert (res.required, res.action) == ("NO_CHANGES", "none"), res
    b = download_fresh(device, server, "B")
    ac.assert_same(snap_a, ac.snapshot(b), "uploader A vs downloader B after restart")

    # and the hkey keeps working across a second restart too
    server.restart()
    assert ac.sync(b, ac.make_auth(auth.hkey, auth.endpoint)).action == "none"


def _spare_connection(server: SyncServer) -> socket.socket:
    """A connection opened and never sent on, as the client's pool keeps one when a request's
    new connection loses the race to a pooled one coming free (hyper-util's legacy pool)."""
    sock = socket.create_connection((server.host, server.port), timeout=10)
    time.sleep(0.2)  # the handshake is done on both ends before the restart
    return sock


def _closed_by_server(sock: socket.socket) -> bool:
    """Whether the server closed the connection (FIN or reset) rather than forgetting it: a
    connection dropped silently still looks open to the client, and its next request gets a
    reset, which the client does not retry."""
    try:
        return sock.recv(1) == b""
    except ConnectionResetError:
        return True
    except TimeoutError:
        return False
    finally:
        sock.close()


@pytest.mark.parametrize("hard", [False, True], ids=["sigterm", "sigkill"])
def test_restart_closes_kept_connections(server: SyncServer, device, hard: bool):
    """One client (one connection pool, as in Anki between syncs) across restarts: its pooled
    connections and a spare one it never sent on are all closed by the restart, and its next
    syncs go through."""
    a, auth, _ = upload_rich(device, server)
    basic = a.models.by_name("Basic")
    for n in range(3):
        spare = _spare_connection(server)
        server.restart(hard=hard)
        assert _closed_by_server(spare), f"restart {n}: a connection the client kept was dropped silently"
        note = a.new_note(basic)
        note["Front"] = f"after restart {n}"
        a.add_note(note, a.decks.id("Default"))
        assert ac.sync(a, auth).action == "normal", f"restart {n}"
        assert ac.sync(a, auth).action == "none", f"restart {n}"
    b = download_fresh(device, server, "B")
    ac.assert_same(ac.snapshot(a), ac.snapshot(b), "A vs B after restarts between syncs")


def _collection_bytes(col: Collection) -> bytes:
    """The file as the client would upload it (closed, so no WAL pending)."""
    col.close(downgrade=False)
    data = Path(col.path).read_bytes()
    col.reopen()
    return data


def test_corrupt_upload_refused(server: SyncServer, device):
    a, auth, snap_a = upload_rich(device, server)
    meta_before = raw_meta(server, auth.hkey)

    real = _collection_bytes(a)
    assert real.startswith(b"SQLite format 3\x00") and len(real) > 8192
    cases = {
        "garbage": bytes(range(256)) * 40,
        "truncated collection": real[: len(real) // 2],
    }
    for name, payload in cases.items():
        r = ac.raw_post(server.url, "sync/upload", hkey=auth.hkey, data=payload)
        assert r.status == 200, f"{name}: {r}"
        assert r.body is not None, f"{name}: upload answer must be zstd with anki-original-size: {r}"
        assert r.body != b"OK", f"{name}: corrupt upload was accepted"
        assert r.body.decode() == ac.CORRUPT_UPLOAD_TEXT, f"{name}: {r.body!r}"

    # stored collection untouched
    meta_after = raw_meta(server, auth.hkey)
    meta_after.pop("ts"), meta_before.pop("ts")
    assert meta_after == meta_before
    assert ac.sync(a, auth).action == "none"
    b = download_fresh(device, server, "B")
    ac.assert_same(snap_a, ac.snapshot(b), "A vs B after refused corrupt uploads")


def test_garbage_requests_answered_4xx(server: SyncServer, device):
    col = device("probe")
    hkey = ac.login(col, server, "user1", USERS["user1"]).hkey
    url = server.url
    meta_json = json.dumps(META).encode()

    def post(path: str, **kw):
        return ac.raw_post(url, path, **kw)

    cases = [
        # (name, thunk, allowed statuses)
        ("bad anki-sync header JSON", lambda: post("sync/meta", header="{not json", data=meta_json), {400}),
        ("anki-sync header missing a key", lambda: post("sync/meta", header={"v": 11, "k": hkey, "c": "x"}, data=meta_json), {400}),
        ("unknown hkey", lambda: post("sync/meta", hkey="0" * 40, data=meta_json), {403}),
        ("unknown hkey on upload", lambda: post("sync/upload", hkey="f" * 40, data=b"whatever"), {403}),
        ("unknown hkey on download", lambda: post("sync/download", hkey="f" * 40, payload={"_pad": None}), {403}),
        ("empty hkey on meta", lambda: post("sync/meta", hkey="", data=meta_json), {403}),
        ("invalid zstd body", lambda: post("sync/meta", hkey=hkey, compressed_body=b"this is not zstd"), {400}),
        ("truncated zstd frame", lambda: post("sync/meta", hkey=hkey, compressed_body=ac.zstd_compress(meta_json * 40)[:15]), {400}),
        ("bad JSON body for meta", lambda: post("sync/meta", hkey=hkey, data=b"{not json"), {400}),
        ("meta JSON of the wrong shape", lambda: post("sync/meta", hkey=hkey, payload={"x": 1}), {400}),
        ("hostKey JSON of the wrong shape", lambda: post("sync/hostKey", payload={"user": "user1"}), {400}),
        ("v=12 in header", lambda: post("sync/meta", hkey=hkey, data=meta_json, version=12), {400}),
        ("v=7 in header", lambda: post("sync/meta", hkey=hkey, data=meta_json, version=7), {400}),
        ("meta with JSON v=7 (client too old)", lambda: post("sync/meta", hkey=hkey, payload={"v": 7, "cv": "ankidroid,2.0,x"}), {501}),
        ("GET on a POST route", lambda: ac.raw_request("GET", url, "sync/meta"), {404, 405}),
        ("GET on upload", lambda: ac.raw_request("GET", url, "sync/upload"), {404, 405}),
        ("unknown method path", lambda: post("sync/fooBar", hkey=hkey, payload={}), None),
        ("method name with wrong case", lambda: post("sync/Meta", hkey=hkey, data=meta_json), None),
        ("no anki-sync header, not multipart", lambda: ac.raw_request("POST", url, "sync/meta", data=b"hello", headers={"Content-Type": "text/plain"}), {400}),
        ("stateful method without a session", lambda: post("sync/chunk", hkey=hkey, payload={"_pad": None}), {409}),
    ]  # fmt: skip
    failures = []
    for name, thunk, allowed in cases:
        try:
            r = thunk()
        except Exception as e:  # connection reset etc. counts as a failure too
            failures.append(f"{name}: request failed: {e!r}")
            continue
        ok = (400 <= r.status < 500) if allowed is None else (r.status in allowed)
        if not ok:
            failures.append(f"{name}: got {r.status}, want {sorted(allowed) if allowed else '4xx'}: {r!r}")
        elif "anki-original-size" in r.headers:
            failures.append(f"{name}: error response carries anki-original-size (must not be zstd-framed)")
    assert not failures, "\n".join(failures)

    # the server still serves normally
    assert ac.raw_request("GET", url, "health").status == 200
    a, auth, snap_a = upload_rich(device, server)
    b = download_fresh(device, server, "B")
    ac.assert_same(snap_a, ac.snapshot(b))


def test_bad_bodies_leave_the_server_up(server: SyncServer, server_kind: str, device):
    """A zstd body that breaks after output has started, and a meta that unpacks past its
    1 MiB limit (the server stops reading mid-stream), are refused; the process stays up and
    serves the next request. (Both once ended the Deno server: stream controller errors.)"""
    col = device("probe")
    hkey = ac.login(col, server, "user1", USERS["user1"]).hkey
    # With a checksum, so that the flipped bytes are caught whichever part of the frame they hit.
    body = json.dumps({**META, "pad": [f"card {i}" for i in range(50000)]}).encode()
    frame = bytearray(zstandard.ZstdCompressor(write_checksum=True).compress(body))
    for i in range(len(frame) // 2, len(frame) // 2 + 64):
        frame[i] ^= 0x5A
    oversized = {**META, "pad": "x" * (4 * 1024 * 1024)}
    # Ours answers 400 for both (test/protocol/bodyLimits.test.ts). Anki's server refuses the
    # corrupt body with a 4xx of its own; it has no 1 MiB meta limit and answers that one.
    official = server_kind == "official"
    for _ in range(3):
        r = ac.raw_post(server.url, "sync/meta", hkey=hkey, compressed_body=bytes(frame))
        assert 400 <= r.status < 500 if official else r.status == 400, r
        r = ac.raw_post(server.url, "sync/meta", hkey=hkey, payload=oversized)
        assert r.status < 500 if official else r.status == 400, r
    assert server.proc is not None and server.proc.poll() is None, "server process ended"
    assert raw_meta(server, hkey)["cont"] is True


def test_fresh_server_meta(server: SyncServer, device):
    """docs/protocol.md#fresh-collection: a never-synced account reports mod 0, usn 0, empty;
    every meta key the v11 client requires is present (media_usn snake_case)."""
    col = device("A")
    hkey = ac.login(col, server, "user1", USERS["user1"]).hkey
    meta = raw_meta(server, hkey)
    for key in ("mod", "scm", "usn", "ts", "msg", "cont", "hostNum", "media_usn"):
        assert key in meta, f"meta lacks {key!r}: {meta}"
    assert (meta["mod"], meta["usn"], meta["cont"], meta["msg"]) == (0, 0, True, ""), meta
    assert meta.get("empty", False) is True, meta
    assert ac.sync(col, ac.make_auth(hkey, server.url)).action == "none"


# PBKDF2 PHC string for "secret-pw", made with Python's hashlib (salt = decoded B64 bytes).
HASHED = "$pbkdf2-sha256$i=10000,l=32$c29tZXNhbHRzb21lc2FsdA$XqhLU/cuF7VtwtoZ/vg7IOsG/atGWL5wSPq5MPmqOIA"


def test_passwords_hashed(server_factory, device):
    """SYNC_USERn with PASSWORDS_HASHED, as existing deployments of Anki's server have it."""
    srv = server_factory(users={"hashed": HASHED}, env={"PASSWORDS_HASHED": "1"})
    col = device("hashed")
    with pytest.raises(Exception) as refused:
        ac.login(col, srv, "hashed", "wrong")
    assert ac.is_auth_error(refused.value), refused.value
    auth = ac.login(col, srv, "hashed", "secret-pw")
    assert ac.sync(col, auth).action == "none"


def test_download_made_ahead(server_factory, server_kind: str, device):
    """The download made from A's upload (on by default) is what B gets, and both devices and
    the server agree afterwards (normal syncs both ways)."""
    if not server_kind.startswith("ours"):
        pytest.skip("ankisyncd's own option")
    srv = server_factory()
    a, auth_a, snap_a = upload_rich(device, srv)
    records = lambda: list(Path(srv.base).glob("collections/*/collection.anki2.ready-download.json"))  # noqa: E731
    deadline = time.monotonic() + 30
    while not records() and time.monotonic() < deadline:
        time.sleep(0.2)
    assert records(), "no download made ahead 30 s after the upload"

    b = download_fresh(device, srv, "B")
    assert not records(), "the download made ahead was not used"
    assert "ready=true" in srv.log_path.read_text(), "B's download was made on demand, not ahead"
    ac.assert_same(snap_a, ac.snapshot(b), "uploader A vs B's download made ahead")

    ac.add_reviews(b, n=3)
    assert ac.sync(b, ac.login(b, srv, "user1", USERS["user1"])).action == "normal"
    assert ac.sync(a, auth_a).action == "normal"
    ac.assert_same(ac.snapshot(b), ac.snapshot(a), "A and B after normal syncs both ways")


def test_download_right_after_upload_waits_for_the_one_made(server_factory, server_kind: str, device):
    """B downloads the moment A's upload is answered: it gets the download being made from A's
    upload (waiting for it), not a second one made beside it."""
    if not server_kind.startswith("ours"):
        pytest.skip("ankisyncd's own option")
    srv = server_factory()
    a = device("user1-A")
    ac.populate(a)
    b = device("B")
    auth_b = ac.login(b, srv, "user1", USERS["user1"])
    auth_a = ac.login(a, srv, "user1", USERS["user1"])
    assert ac.sync(a, auth_a).action == "upload"
    res = ac.sync(b, auth_b)
    assert (res.required, res.action) == ("FULL_DOWNLOAD", "download"), res
    assert "ready=true" in srv.log_path.read_text(), "B's download was made again on demand"
    ac.assert_same(ac.snapshot(a), ac.snapshot(b), "uploader A vs B, who downloaded at once")
    assert ac.sync(b, auth_b).action == "none"
    # The download's usn bump changed the server's collection: A's next sync is a normal one.
    assert ac.sync(a, auth_a).action in ("none", "normal")
    ac.assert_same(ac.snapshot(a), ac.snapshot(b), "A and B after A's next sync")


def test_changes_after_upload_reach_the_next_download(server_factory, server_kind: str, device):
    """A uploads, then changes notes, reviews and a deck option and syncs them: a new device's
    download has all of it, never the file as uploaded (the download made from the upload is
    stale by then)."""
    srv = server_factory()
    a, auth_a, _ = upload_rich(device, srv)
    _add_own_notes(a, "after-upload", n=4)
    ac.add_reviews(a, n=5)
    conf = a.decks.get_config(1)
    conf["new"]["perDay"] = 37
    a.decks.update_config(conf)
    assert ac.sync(a, auth_a).action == "normal"
    b = download_fresh(device, srv, "B")
    ac.assert_same(ac.snapshot(a), ac.snapshot(b), "A after its changes vs B's download")
    assert b.decks.get_config(1)["new"]["perDay"] == 37
    if server_kind.startswith("ours"):
        assert "ready=true" not in srv.log_path.read_text(), "a stale download made ahead was sent"
