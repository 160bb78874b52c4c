"""A lean protocol-level sync client for load tests, in Python: the `idle users`
logins and metas, `many users` with `--many-client python` (its default load
generator is bench/loadclient.ts, which needs a quarter of this one's CPU per
sync), and the collection template both use.

Fifty real-client processes would saturate two CPUs by themselves and hide the
servers, so this client speaks the v11 protocol directly (docs/protocol.md):
a complete, valid normal sync (meta, start, applyChanges, chunk until done,
applyChunk with the changed notes, sanityCheck2, finish) and a complete media
sync of one new file (begin, mediaChanges, uploadChanges, mediaSanity). It
keeps only what a client must know (its usn, media usn, table counts), and
checks every answer; the end state is checked afterwards with the real client.
"""

from __future__ import annotations

import base64
import hashlib
import http.client
import io
import json
import random
import shutil
import string
import threading
import time
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

import zstandard

CLIENT_VERSION = "25.02.5,loadclient,linux"
LONG_VERSION = "anki,25.02.5 (loadclient),linux"
_LOCAL = threading.local()  # zstandard's (de)compressors are not thread-safe


def _zstd() -> tuple[zstandard.ZstdCompressor, zstandard.ZstdDecompressor]:
    if not hasattr(_LOCAL, "codecs"):
        _LOCAL.codecs = (zstandard.ZstdCompressor(), zstandard.ZstdDecompressor())
    return _LOCAL.codecs


class SyncFailure(Exception):
    """An unexpected answer; `kind` groups errors for the report."""

    def __init__(self, kind: str, detail: str):
        super().__init__(f"{kind}: {detail}")
        self.kind = kind


@dataclass
class Template:
    """What every user's collection starts as: the file and the rows a client needs."""

    data: bytes
    notes: list[list]  # wire rows (docs/protocol.md#rows) of the notes a sync changes
    counts: list  # sanityCheck2 `client` value (docs/protocol.md#steps)

    @staticmethod
    def load(path: Path, changed_notes: int) -> Template:
        """A copy of `path` made ready for upload as the client does (no row waiting to be
        synced, i.e. no usn -1), read through the anki package (its tables use Anki's collation)."""
        from anki.collection import Collection

        ready = path.with_name(path.stem + "-upload.anki2")
        shutil.copyfile(path, ready)
        col = Collection(str(ready))
        try:
            for table in ("cards", "notes", "revlog", "graves", "decks", "deck_config", "tags", "notetypes", "config"):
                col.db.execute(f"update {table} set usn = 0 where usn = -1")
            one = col.db.scalar
            counts = [
                [0, 0, 0],
                one("select count() from cards"),
                one("select count() from notes"),
                one("select count() from revlog"),
                0,
                one("select count() from notetypes"),
                one("select count() from decks"),
                one("select count() from deck_config"),
            ]
            rows = col.db.all(
                "select id, guid, mid, mod, usn, tags, flds, flags, data from notes order by id limit ?",
                changed_notes,
            )
        finally:
            col.close(downgrade=False)
        notes = [[r[0], r[1], r[2], r[3], r[4], r[5], r[6], "", "", r[7], r[8]] for r in rows]
        return Template(ready.read_bytes(), notes, counts)


@dataclass
class LeanClient:
    """One user's device; not thread-safe (one thread per user)."""

    url: str
    user: str
    password: str
    template: Template
    hkey: str = ""
    usn: int = 0
    media_usn: int = 0
    media_files: int = 0
    round: int = 0
    last_fields: dict[int, str] = field(default_factory=dict)
    _conn: http.client.HTTPConnection | None = None

    # -- transport ---------------------------------------------------------

    def _post(self, path: str, body: bytes, skey: str = "") -> bytes:
        parts = urlsplit(self.url)
        header = json.dumps({"v": 11, "k": self.hkey, "c": CLIENT_VERSION, "s": skey})
        # One connection per user, kept between requests as a real client keeps its pool;
        # a new one when the server closed it.
        conn = self._conn or http.client.HTTPConnection(parts.hostname, parts.port, timeout=120)
        self._conn = None
        try:
            conn.request("POST", path, body=_zstd()[0].compress(body), headers={"anki-sync": header})
            res = conn.getresponse()
            data = res.read()
        except (OSError, http.client.HTTPException) as e:
            conn.close()
            raise SyncFailure(f"connection {type(e).__name__}", str(e)) from e
        if res.will_close:
            conn.close()
        else:
            self._conn = conn
        if res.status != 200:
            raise SyncFailure(f"http {res.status}", f"{path}: {data[:200]!r}")
        return _zstd()[1].decompress(data, max_output_size=1 << 30)

    def _json(self, path: str, payload: object, skey: str = "") -> object:
        return json.loads(self._post(path, json.dumps(payload).encode(), skey))

    def _media(self, method: str, payload: object | bytes) -> object:
        body = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
        reply = json.loads(self._post(f"/msync/{method}", body))
        if reply.get("err"):
            raise SyncFailure("media err", f"{method}: {reply['err']}")
        return reply["data"]

    # -- steps -------------------------------------------------------------

    def login(self) -> None:
        reply = self._json("/sync/hostKey", {"u": self.user, "p": self.password})
        self.hkey = reply["key"]  # type: ignore[index]

    def meta(self) -> dict:
        return self._json("/sync/meta", {"v": 11, "cv": LONG_VERSION})  # type: ignore[return-value]

    def full_upload(self) -> None:
        reply = self._post("/sync/upload", self.template.data, skey=_skey())
        if reply != b"OK":
            raise SyncFailure("upload refused", reply[:200].decode(errors="replace"))
        meta = self.meta()
        self.usn = meta["usn"]
        self.media_usn = meta["media_usn"]

    def normal_sync(self) -> None:
        """Edits the first field of the template's notes and syncs them up."""
        self.round += 1
        meta = self.meta()
        if not meta.get("cont", False):
            raise SyncFailure("meta refused", str(meta))
        server_usn = meta["usn"]
        skey = _skey()
        self._json("/sync/start", {"minUsn": self.usn, "lnewer": False, "graves": None}, skey)
        self._json("/sync/applyChanges", {"changes": {"models": [], "decks": [[], []], "tags": []}}, skey)
        for _ in range(1000):
            chunk = self._json("/sync/chunk", {}, skey)
            if chunk["done"]:  # type: ignore[index]
                break
        now = int(time.time())
        notes = []
        for row in self.template.notes:
            fields = row[6].split("\x1f")
            fields[0] = f"{self.user} round {self.round}"
            self.last_fields[row[0]] = fields[0]
            notes.append([row[0], row[1], row[2], now, server_usn, row[5], "\x1f".join(fields), "", "", row[9], row[10]])
        self._json("/sync/applyChunk", {"chunk": {"done": True, "notes": notes, "cards": [], "revlog": []}}, skey)
        check = self._json("/sync/sanityCheck2", {"client": self.template.counts}, skey)
        if check.get("status") != "ok":  # type: ignore[union-attr]
            self._json("/sync/abort", {}, skey)
            raise SyncFailure("sanity check", json.dumps(check)[:300])
        self._json("/sync/finish", {}, skey)
        self.usn = server_usn + 1

    def media_sync(self) -> None:
        """Uploads one new file, as the client does when one file was added."""
        self._media("begin", {"v": LONG_VERSION})
        changes = self._media("mediaChanges", {"lastUsn": self.media_usn})
        if changes:  # only our own earlier uploads: nothing to fetch
            self.media_usn = max(self.media_usn, changes[-1][1])  # type: ignore[index]
        name = f"{self.user}-{self.round}-{_skey()}.bin"
        payload = random.randbytes(2000 + random.randrange(6000))
        buf = io.BytesIO()
        with zipfile.ZipFile(buf, "w", zipfile.ZIP_STORED) as z:
            z.writestr("0", payload)
            z.writestr("_meta", json.dumps([[name, "0"]]))
        processed, usn = self._media("uploadChanges", buf.getvalue())  # type: ignore[misc]
        if processed != 1 or usn != self.media_usn + 1:
            raise SyncFailure("media upload", f"answered [{processed}, {usn}] after usn {self.media_usn}")
        self.media_usn = usn
        self.media_files += 1
        sanity = self._media("mediaSanity", {"local": self.media_files})
        if sanity != "OK":
            raise SyncFailure("media sanity", str(sanity))


def pbkdf2_phc(password: str, iterations: int = 1000) -> str:
    """A PHC PBKDF2-SHA256 string both servers accept with PASSWORDS_HASHED (README);
    few iterations, so a thousand users start quickly. The salt is hashed as its decoded bytes."""
    salt = random.randbytes(16)
    digest = hashlib.pbkdf2_hmac("sha256", password.encode(), salt, iterations, 32)
    b64 = lambda b: base64.b64encode(b).decode().rstrip("=")  # noqa: E731
    return f"$pbkdf2-sha256$i={iterations},l=32${b64(salt)}${b64(digest)}"


def _skey() -> str:
    return "".join(random.choices(string.ascii_letters + string.digits, k=8))
