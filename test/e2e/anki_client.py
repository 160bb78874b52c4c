"""Drive the real Anki sync client (the Rust client inside the `anki` package)
the way desktop Anki (aqt/sync.py) does, plus helpers to compare collections
and to send hand-made v11 protocol requests.

API facts taken from the installed package (anki 26.9.3, collection.py and
sync_pb2.pyi), not guessed:

* ``col.sync_login(username, password, endpoint) -> SyncAuth`` (hkey, endpoint,
  io_timeout_secs). A wrong password raises ``anki.errors.SyncError`` with
  ``kind == SyncErrorKind.AUTH`` (the server answered 403).
* ``col.sync_collection(auth, sync_media) -> SyncCollectionResponse`` whose
  ``required`` is ``SyncCollectionResponse.ChangesRequired``:
  NO_CHANGES=0, NORMAL_SYNC=1, FULL_SYNC=2 (both sides have content, user must
  choose), FULL_DOWNLOAD=3 (local collection has no cards), FULL_UPLOAD=4
  (remote collection has no cards). A normal sync is carried out inside
  ``sync_collection`` itself, after which ``required`` reads NO_CHANGES
  (observed); only full syncs need a second step.
* Full sync, as aqt does it: ``col.close_for_full_sync()``, then
  ``col.full_upload_or_download(auth=, server_usn=, upload=)``, then
  ``col.reopen(after_full_sync=True)`` (also when the transfer failed).
  ``server_usn`` is the server's *media* usn (``out.server_media_usn``); aqt
  passes None when media sync is off, which makes the backend skip the media
  sync that otherwise follows the full sync. We pass None (sync_media=False).
"""

from __future__ import annotations

import dataclasses
import json
import random
import string
import sys
from pathlib import Path
from typing import Any, Iterator

import requests
import zstandard
from anki.collection import Collection
from anki.errors import SyncError, SyncErrorKind
from anki.sync import SyncAuth
from anki.sync_pb2 import SyncCollectionResponse

_FIXTURES = str(Path(__file__).resolve().parents[1] / "fixtures")
if _FIXTURES not in sys.path:
    sys.path.insert(0, _FIXTURES)
from rich_collection import populate_rich  # noqa: E402  (test/fixtures/rich_collection.py)

Required = SyncCollectionResponse.ChangesRequired
REQUIRED_NAMES = {v: k for k, v in Required.items()}  # 0 -> "NO_CHANGES", ...

# Exact text Anki's server answers (HTTP 200) to an upload that fails the
# integrity check; rslib/src/sync/collection/upload.rs.
CORRUPT_UPLOAD_TEXT = "Your upload was corrupt. Please use Check Database, or restore from backup."


# ---------------------------------------------------------------------------
# Driving the client
# ---------------------------------------------------------------------------


def login(col: Collection, server: Any, user: str, pw: str) -> SyncAuth:
    """Log in like desktop Anki with a custom sync server (`server.url` ends in /)."""
    url = server if isinstance(server, str) else server.url
    return col.sync_login(username=user, password=pw, endpoint=url)


def make_auth(hkey: str, endpoint: str) -> SyncAuth:
    """What desktop Anki rebuilds from its profile (syncKey + sync url) on every
    sync; no login involved."""
    return SyncAuth(hkey=hkey, endpoint=endpoint)


@dataclasses.dataclass
class SyncResult:
    required: str  # SyncCollectionResponse.required as a name; NO_CHANGES after a normal sync
    action: str  # what happened: "none" | "normal" | "upload" | "download"
    server_message: str
    server_media_usn: int
    new_endpoint: str | None

    def __repr__(self) -> str:
        return f"SyncResult(required={self.required}, action={self.action}, msg={self.server_message!r})"


def sync(col: Collection, auth: SyncAuth, *, prefer: str | None = None) -> SyncResult:
    """One press of the Sync button (collection only, no media).

    prefer: direction to take when the client needs a full sync and both
    directions are possible (FULL_SYNC, desktop asks the user). If the server
    forces a direction (FULL_UPLOAD / FULL_DOWNLOAD) and `prefer` names the
    other one, AssertionError is raised: the test expected something else.
    """
    assert prefer in (None, "upload", "download"), prefer
    before = _col_sync_state(col)
    out = col.sync_collection(auth, False)
    required = REQUIRED_NAMES[out.required]
    new_endpoint = out.new_endpoint if out.HasField("new_endpoint") else None
    if new_endpoint:
        # The server redirected meta (308) to another base: desktop Anki stores it and syncs
        # there from now on, this sync's full sync included (aqt/sync.py).
        auth.endpoint = new_endpoint
    res = SyncResult(required, "none", out.server_message, out.server_media_usn, new_endpoint)
    if out.required in (Required.NO_CHANGES, Required.NORMAL_SYNC):
        # A normal sync is performed inside sync_collection, and the client
        # then reports NO_CHANGES (observed with anki 26.9.3), so tell the two
        # apart by the collection's usn/last-sync time, which only a completed
        # normal sync moves.
        if _col_sync_state(col) != before:
            res.action = "normal"
        return res
    if out.required == Required.FULL_UPLOAD:
        if prefer == "download":
            raise AssertionError("server collection is empty: client only offers upload, test wanted download")
        upload = True
    elif out.required == Required.FULL_DOWNLOAD:
        if prefer == "upload":
            raise AssertionError("local collection is empty: client only offers download, test wanted upload")
        upload = False
    else:
        assert out.required == Required.FULL_SYNC, required
        if prefer is None:
            raise AssertionError("full sync required and both directions possible; pass prefer=")
        upload = prefer == "upload"
    full_sync(col, auth, upload=upload)
    res.action = "upload" if upload else "download"
    return res


def _col_sync_state(col: Collection) -> tuple:
    return tuple(col.db.first("select usn, ls from col"))


def full_sync(col: Collection, auth: SyncAuth, *, upload: bool) -> None:
    """aqt/sync.py full_upload / full_download: close, transfer, always reopen."""
    col.close_for_full_sync()
    try:
        col.full_upload_or_download(auth=auth, server_usn=None, upload=upload)
    finally:
        col.reopen(after_full_sync=True)


def is_auth_error(exc: BaseException) -> bool:
    return isinstance(exc, SyncError) and exc.kind == SyncErrorKind.AUTH


# ---------------------------------------------------------------------------
# Content
# ---------------------------------------------------------------------------


def populate(col: Collection) -> None:
    """Fill a collection with varied content (what the full-sync tests upload):
    test/fixtures/rich_collection.populate_rich (note types incl. cloze and a
    custom one, nested and filtered decks, FSRS deck options, flags, buried and
    suspended cards, tags, odd config values) plus add_reviews()."""
    populate_rich(col)
    add_reviews(col)


def add_reviews(col: Collection, *, deck: str = "E2E::Reviewed", n: int = 8) -> None:
    """Study history in a deck of its own, so revlog rows, review/learning
    cards and FSRS memory state exist whatever the rich fixture's deck limits
    allow for its own study step."""
    did = col.decks.id(deck)
    basic = col.models.by_name("Basic (and reversed card)")
    for i in range(n):
        note = col.new_note(basic)
        note.fields[0], note.fields[1] = f"review front {i}", f"review back {i}"
        note.tags = ["e2e::reviewed"]
        col.add_note(note, did)
    col.decks.select(did)
    eases = [3, 1, 4, 3, 2, 3, 3, 1, 4, 3, 3, 2]
    for ease in eases:
        card = col.sched.getCard()
        if card is None:
            break
        col.sched.answerCard(card, ease)
    assert col.db.scalar("select count() from revlog") >= len(eases) // 2, "add_reviews produced no reviews"
    cids = list(col.find_cards(f'"deck:{deck}" is:new'))
    col.sched.set_due_date(cids[:2], "3-7")  # new -> review without revlog-driven history
    col.decks.select(1)

# ---------------------------------------------------------------------------
# Snapshots: in snapshots.py (importable by the client driver in any anki version)
# ---------------------------------------------------------------------------

from snapshots import (  # noqa: E402,F401  (re-exported: tests use ac.snapshot etc.)
    CONFIG_IGNORE,
    OBJECT_IGNORE,
    assert_no_pending,
    assert_same,
    counts,
    diff_snapshots,
    pending_rows,
    snapshot,
)


# ---------------------------------------------------------------------------
# Raw v11 protocol requests (docs/protocol.md#framing-v11)
# ---------------------------------------------------------------------------

CLIENT_VERSION = "26.09.3,29bb700b,linux"  # what the anki 26.9.3 client sends as "c"


def random_skey() -> str:
    return "".join(random.choice(string.ascii_letters + string.digits) for _ in range(6))


def zstd_compress(data: bytes) -> bytes:
    return zstandard.ZstdCompressor().compress(data)


def zstd_decompress(data: bytes) -> bytes:
    # content size is not required to be in the frame header; stream it
    return zstandard.ZstdDecompressor().decompressobj().decompress(data)


@dataclasses.dataclass
class RawResponse:
    status: int
    headers: dict[str, str]
    raw: bytes  # body as received
    body: bytes | None  # decompressed body for successful v11 responses, else None

    def json(self) -> Any:
        assert self.body is not None, f"no decoded body (status {self.status})"
        return json.loads(self.body)

    def __repr__(self) -> str:
        return f"RawResponse({self.status}, headers={self.headers}, raw={self.raw[:200]!r}, body={(self.body or b'')[:200]!r})"


def _chunks(data: bytes, size: int = 64 * 1024) -> Iterator[bytes]:
    for i in range(0, len(data), size):
        yield data[i : i + size]


def raw_post(
    base_url: str,
    path: str,
    *,
    hkey: str = "",
    payload: Any = None,
    data: bytes | None = None,
    compressed_body: bytes | None = None,
    header: str | dict | None = None,
    version: int = 11,
    skey: str | None = None,
    chunked: bool = True,
    timeout: float = 30,
) -> RawResponse:
    """POST a v11 request like the Rust client does.

    Body: `compressed_body` verbatim if given; else zstd(`data`) if given; else
    zstd(json(`payload`)). Header: `header` verbatim (str) / as JSON (dict) if
    given, else {"v": version, "k": hkey, "c": CLIENT_VERSION, "s": skey}.
    With chunked=True the body is streamed with chunked transfer encoding (no
    Content-Length), as the real client does.

    A 200 response must carry `anki-original-size` equal to the length of the
    zstd-decompressed body (checked here); the decompressed body is in .body.
    """
    if compressed_body is None:
        if data is None:
            data = json.dumps(payload).encode()
        compressed_body = zstd_compress(data)
    if header is None:
        header = {"v": version, "k": hkey, "c": CLIENT_VERSION, "s": skey if skey is not None else random_skey()}
    if isinstance(header, dict):
        header = json.dumps(header, separators=(",", ":"))
    headers = {"anki-sync": header, "Content-Type": "application/octet-stream"}
    body: Any = _chunks(compressed_body) if chunked else compressed_body
    r = requests.post(base_url + path, data=body, headers=headers, timeout=timeout)
    return _wrap(r)


def raw_request(method: str, base_url: str, path: str, **kw: Any) -> RawResponse:
    """Arbitrary request (no protocol framing), for garbage/edge cases."""
    kw.setdefault("timeout", 30)
    return _wrap(requests.request(method, base_url + path, **kw))


def _wrap(r: requests.Response) -> RawResponse:
    headers = {k.lower(): v for k, v in r.headers.items()}
    raw = r.content
    body = None
    if r.status_code == 200 and "anki-original-size" in headers:
        body = zstd_decompress(raw)
        assert int(headers["anki-original-size"]) == len(body), (
            f"anki-original-size {headers['anki-original-size']} != decompressed length {len(body)}"
        )
    return RawResponse(r.status_code, headers, raw, body)
