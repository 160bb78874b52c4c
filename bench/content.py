"""Benchmark content: collections of a target size, media files, and the batch of
changes a normal sync carries. Deterministic (seeded) apart from ids taken from
the clock.

Collections are filled with bulk inserts through `col.db` (a custom 5-field
note type with 2 card templates, tagged notes in nested decks, new/learning/
review cards, 2-8 revlog rows per studied card) and must pass Anki's own
database check, so they look like a real user's collection to both servers.
"""

from __future__ import annotations

import hashlib
import os
import random
import shutil
import string
import time
from pathlib import Path

from anki.collection import Collection

SEED = 20261127
NOTETYPE = "Bench Vocabulary"
FIELDS = ("Word", "Meaning", "Example", "Notes", "Source")
DECKS = ("Languages::German", "Languages::Spanish", "Science::Biology", "Science::Chemistry", "History")
TAGS = [f"{a}::{b}" for a in ("lang", "sci", "hist", "exam") for b in ("core", "extra", "hard", "leech", "2024")]
BATCH = 2000
DAY_MS = 86_400_000

_WORDS: list[str] | None = None


def words() -> list[str]:
    """A fixed vocabulary of word-like strings (text compresses like real text)."""
    global _WORDS
    if _WORDS is None:
        rng = random.Random(SEED)
        letters = "etaoinshrdlucmfwypvbgkjqxz"
        weights = [12, 9, 8, 7, 7, 6, 6, 6, 5, 4, 3, 3, 3, 2, 2, 2, 2, 2, 1, 1, 1, 1, 1, 1, 1, 1]
        _WORDS = ["".join(rng.choices(letters, weights, k=rng.randint(2, 10))) for _ in range(5000)]
    return _WORDS


def sentence(rng: random.Random, n_min: int, n_max: int) -> str:
    return " ".join(rng.choices(words(), k=rng.randint(n_min, n_max))).capitalize() + "."


def field_checksum(text: str) -> int:
    """Anki's csum of a plain-text first field: first 8 hex digits of its SHA-1."""
    return int(hashlib.sha1(text.encode()).hexdigest()[:8], 16)


def guid(rng: random.Random) -> str:
    return "".join(rng.choices(string.ascii_letters + string.digits + "!#$%&()*+,-./:;<=>?@[]^_`{|}~", k=10))


# ---------------------------------------------------------------------------
# Collections
# ---------------------------------------------------------------------------


def add_notetype(col: Collection) -> dict:
    mm = col.models
    nt = mm.new(NOTETYPE)
    for name in FIELDS:
        mm.add_field(nt, mm.new_field(name))
    for i, (front, back) in enumerate((("Word", "Meaning"), ("Meaning", "Word"))):
        t = mm.new_template(f"Card {i + 1}")
        t["qfmt"] = "{{" + front + "}}"
        t["afmt"] = "{{FrontSide}}<hr id=answer>{{" + back + "}}<br>{{Example}}<br><i>{{Notes}}</i>"
        mm.add_template(nt, t)
    mm.add(nt)
    return mm.by_name(NOTETYPE)


def note_fields(rng: random.Random, i: int) -> list[str]:
    word = f"{rng.choice(words())}{i}"
    return [
        word,
        sentence(rng, 3, 12),
        "<b>" + sentence(rng, 8, 25) + "</b><br>" + sentence(rng, 8, 25),
        sentence(rng, 0, 30),
        f"Chapter {rng.randint(1, 40)}, p. {rng.randint(1, 400)}",
    ]


def card_state(rng: random.Random, pos: int, today: int) -> tuple[int, int, int, int, int, int, int]:
    """(type, queue, due, ivl, factor, reps, lapses): 40% new, 5% learning, 55% review."""
    r = rng.random()
    if r < 0.40:
        return 0, 0, pos, 0, 0, 0, 0
    reps = rng.randint(2, 8)
    if r < 0.45:
        return 1, 1, int(time.time()) + rng.randint(60, 3600), 0, 2500, reps, 0
    ivl = rng.randint(1, 400)
    return 2, 2, today + rng.randint(-5, ivl), ivl, rng.choice((1300, 2100, 2500, 2800)), reps, rng.randint(0, 3)


def revlog_rows(rng: random.Random, cid: int, reps: int, next_id: list[int]) -> list[tuple]:
    rows, ivl = [], 0
    for _ in range(reps):
        next_id[0] += rng.randint(1, 5000)
        new_ivl = max(1, int(ivl * 2.5) or 1)
        rows.append((next_id[0], cid, -1, rng.choice((1, 3, 3, 3, 4)), new_ivl, ivl, 2500, rng.randint(1500, 20000), 1))
        ivl = new_ivl
    return rows


def insert_batch(col: Collection, nt: dict, dids: list[int], rng: random.Random, start: int, ids: dict) -> None:
    notes, cards, revlog = [], [], []
    now = int(time.time())
    today = col.sched.today
    for i in range(start, start + BATCH):
        ids["note"] += 1
        nid = ids["note"]
        flds = note_fields(rng, i)
        tags = " " + " ".join(sorted(set(rng.sample(TAGS, rng.randint(1, 3))))) + " "
        notes.append((nid, guid(rng), nt["id"], now, -1, tags, "\x1f".join(flds), flds[0], field_checksum(flds[0]), 0, ""))
        did = dids[i % len(dids)]
        for ord_ in (0, 1):
            ids["card"] += 1
            ctype, queue, due, ivl, factor, reps, lapses = card_state(rng, i, today)
            reviews = revlog_rows(rng, ids["card"], reps, ids["revlog"])
            revlog.extend(reviews)
            data = f'{{"lrt":{reviews[-1][0] // 1000}}}' if reps else ""
            cards.append((ids["card"], nid, did, ord_, now, -1, ctype, queue, due, ivl, factor, reps, lapses, 0, 0, 0, 0, data))

    def write() -> None:
        col.db.executemany("insert into notes values (?,?,?,?,?,?,?,?,?,?,?)", notes)
        col.db.executemany("insert into cards values (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)", cards)
        col.db.executemany("insert into revlog values (?,?,?,?,?,?,?,?,?)", revlog)

    col.db.transact(write)


def db_bytes(col: Collection) -> int:
    return col.db.scalar("pragma page_count") * col.db.scalar("pragma page_size")


def build_collection(path: Path, target_mb: float) -> dict:
    """Create `path` holding about `target_mb` MB of notes; checked by Anki."""
    path.parent.mkdir(parents=True, exist_ok=True)
    # A reused --workdir holds last run's file: adding to it would repeat its ids.
    for stale in (path, path.with_name(path.name + "-wal"), path.with_name(path.name + "-journal")):
        stale.unlink(missing_ok=True)
    col = Collection(str(path))
    try:
        rng = random.Random(SEED)
        nt = add_notetype(col)
        dids = [col.decks.id(name) for name in DECKS]
        base_ms = int(time.time() * 1000)
        ids = {"note": base_ms - 400 * DAY_MS, "card": base_ms - 400 * DAY_MS, "revlog": [base_ms - 800 * DAY_MS]}
        start = 0
        while db_bytes(col) < target_mb * 1_000_000:
            insert_batch(col, nt, dids, rng, start, ids)
            start += BATCH
        problems, ok = col.fix_integrity()
        if not ok:
            raise RuntimeError(f"generated collection fails Anki's check: {problems}")
        col.optimize()
        stats = {"notes": col.note_count(), "cards": col.card_count(), "revlog": col.db.scalar("select count() from revlog")}
    finally:
        col.close(downgrade=False)
    stats["mb"] = round(path.stat().st_size / 1e6, 1)
    return stats


# ---------------------------------------------------------------------------
# Normal-sync changes
# ---------------------------------------------------------------------------


def change_notes(col: Collection, n: int, round_no: int) -> int:
    """Edit `n` notes like a study session plus editing would: a new Notes field,
    their cards reviewed (rescheduled) and one revlog row per card. Returns the
    number of notes changed. Only non-sort fields change, so sfld/csum stay valid."""
    rng = random.Random(SEED + round_no)
    nids = col.db.list(f"select id from notes order by random() limit {int(n)}")
    now, now_ms = int(time.time()), int(time.time() * 1000)
    today = col.sched.today
    rows = col.db.all(f"select id, flds from notes where id in ({','.join(map(str, nids))})")
    updates = []
    for nid, flds in rows:
        parts = flds.split("\x1f")
        parts[3] = f"round {round_no}: " + sentence(rng, 5, 20)
        updates.append(("\x1f".join(parts), now, nid))
    col.db.executemany("update notes set flds = ?, mod = ?, usn = -1 where id = ?", updates)
    cids = col.db.list(f"select id from cards where nid in ({','.join(map(str, nids))})")
    col.db.executemany(
        "update cards set type = 2, queue = 2, ivl = ivl + 3, due = ?, reps = reps + 1, mod = ?, usn = -1 where id = ?",
        [(today + 3, now, cid) for cid in cids],
    )
    base = max(now_ms, (col.db.scalar("select max(id) from revlog") or 0) + 1)
    col.db.executemany(
        "insert into revlog values (?,?,-1,3,?,?,2500,?,1)",
        [(base + i, cid, 3, 1, rng.randint(1500, 20000)) for i, cid in enumerate(cids)],
    )
    col.set_config("benchRound", round_no)  # keeps col.mod moving, as real edits do
    return len(rows)


# ---------------------------------------------------------------------------
# Media
# ---------------------------------------------------------------------------


def build_media(folder: Path, count: int, size: int, *, prefix: str) -> int:
    """`count` files of about `size` bytes; small ones vary in size and kind
    (svg text or incompressible "jpg" bytes), large ones are incompressible."""
    folder.mkdir(parents=True, exist_ok=True)
    rng = random.Random(SEED + count + size)
    total = 0
    for i in range(count):
        if size < 100_000 and i % 3 == 0:
            body = ('<svg xmlns="http://www.w3.org/2000/svg">' + sentence(rng, 50, size // 8) + "</svg>").encode()
            name = f"{prefix}_{i:05d}.svg"
        else:
            n = size if size >= 100_000 else rng.randint(size // 2, size * 3 // 2)
            body = os.urandom(n)
            name = f"{prefix}_{i:05d}.{'mp3' if size >= 100_000 else 'jpg'}"
        (folder / name).write_bytes(body)
        total += len(body)
    return total


def copy_media(src: Path, dest: Path) -> None:
    dest.mkdir(parents=True, exist_ok=True)
    for f in src.iterdir():
        shutil.copyfile(f, dest / f.name)
