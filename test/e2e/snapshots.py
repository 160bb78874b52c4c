"""Comparable pictures of a collection's content, and their differences.

Only the legacy dict API and plain SQL are used (col.decks.all(), col.models.all(),
col.all_config(), col.db), which every client version from 2.1.44 on has, so the
client driver (client_driver.py) runs this inside any anki version's venv too.
"""

from __future__ import annotations

import difflib
import json
from typing import Any

from anki.collection import Collection

# Object keys excluded from snapshots by default.
#
# After a full sync the collection *file* is transferred wholesale, so every
# row and every legacy-JSON key of notes, cards, revlog, decks, deck configs,
# notetypes and tags is byte-identical between uploader and downloader on
# Anki's own server -- including each object's `mod`, so `mod` is compared.
# What legitimately differs:
#   * collection row: `mod` and `usn` (download bumps both on the server before
#     sending, so the downloader's are ahead of the uploader's) and `ls`
#     (last sync time). Only `crt`, `scm` and `ver` are compared.
#   * per-object `usn`: server bookkeeping. Anki's server keeps the uploaded
#     values (the uploader resets them to 0 before uploading), but any value
#     <= the collection usn and != -1 is equally valid for the client, and a
#     later normal sync stamps rows per side. assert_no_pending() checks the
#     part that matters (no -1 left after a full sync).
#   * config keys in CONFIG_IGNORE (empty for full syncs, see there).
OBJECT_IGNORE = {"usn"}

# Collection config keys to leave out of snapshots. None is needed for full
# syncs: verified against Anki's server, all config (incl. per-device-ish keys
# like curDeck, curModel, _nt_*_lastDeck, rollover, fsrs) arrives unchanged --
# note that these rows travel inside the uploaded file with usn = -1, because
# the client's pre-upload cleanup does not touch the config table.
# Tests comparing after normal syncs may want e.g. {"curModel", "curDeck"}.
CONFIG_IGNORE: set[str] = set()


def _strip(d: dict, ignore: set[str]) -> dict:
    return {k: v for k, v in d.items() if k not in ignore}


def snapshot(col: Collection, *, ignore: set[str] = OBJECT_IGNORE) -> dict:
    """A JSON-able, comparable picture of the collection's content."""
    db = col.db
    deck_names = {d["id"]: d["name"] for d in col.decks.all()}
    deck_names[0] = None
    nt_names = {m["id"]: m["name"] for m in col.models.all()}
    guids = dict(db.all("select id, guid from notes"))

    snap: dict[str, Any] = {}
    crt, scm, ver = db.first("select crt, scm, ver from col")
    snap["collection"] = {"crt": crt, "scm": scm, "ver": ver}
    snap["config"] = {k: v for k, v in sorted(col.all_config().items()) if k not in CONFIG_IGNORE}

    notes = {}
    for nid, guid, mid, mod, usn, tags, flds, flags, data in db.all(
        "select id, guid, mid, mod, usn, tags, flds, flags, data from notes"
    ):
        row = {
            "id": nid,
            "guid": guid,
            "notetype": nt_names.get(mid, f"<missing {mid}>"),
            "fields": flds.split("\x1f"),
            "tags": tags.strip().split(),
            "mod": mod,
            "usn": usn,
            "flags": flags,
            "data": data,
        }
        notes[guid] = _strip(row, ignore)
    snap["notes"] = notes

    cards = {}
    for row in db.all(
        "select id, nid, did, ord, mod, usn, type, queue, due, ivl, factor, reps, lapses, left,"
        " odue, odid, flags, data from cards"
    ):
        (cid, nid, did, ord_, mod, usn, type_, queue, due, ivl, factor, reps, lapses, left, odue, odid, flags, data) = row
        c = {
            "id": cid,
            "note_guid": guids.get(nid, f"<missing note {nid}>"),
            "ord": ord_,
            "deck": deck_names.get(did, f"<missing deck {did}>"),
            "odeck": deck_names.get(odid, f"<missing deck {odid}>"),
            "mod": mod,
            "usn": usn,
            "type": type_,
            "queue": queue,
            "due": due,
            "odue": odue,
            "ivl": ivl,
            "factor": factor,
            "reps": reps,
            "lapses": lapses,
            "left": left,
            "flags": flags,
            "data": data,
        }
        cards[f"{c['note_guid']}/{ord_}"] = _strip(c, ignore)
    snap["cards"] = cards

    revlog = {}
    for rid, cid, usn, ease, ivl, last_ivl, factor, time, type_ in db.all(
        "select id, cid, usn, ease, ivl, lastIvl, factor, time, type from revlog order by id"
    ):
        r = {
            "id": rid,
            "cid": cid,
            "usn": usn,
            "ease": ease,
            "ivl": ivl,
            "lastIvl": last_ivl,
            "factor": factor,
            "time": time,
            "type": type_,
        }
        revlog[str(rid)] = _strip(r, ignore)
    snap["revlog"] = revlog

    snap["decks"] = {d["name"]: _strip(d, ignore) for d in col.decks.all()}
    snap["deck_configs"] = {c["name"]: _strip(c, ignore) for c in col.decks.all_config()}
    snap["notetypes"] = {m["name"]: _strip(m, ignore) for m in col.models.all()}
    # the raw `collapsed` column of the tags table (the browser's tag-tree state)
    snap["tags"] = {tag: {"collapsed": collapsed} for tag, collapsed in db.all("select tag, collapsed from tags")}
    # round-trip through JSON so that tuples/lists etc. compare uniformly
    return json.loads(json.dumps(snap, sort_keys=True, default=str))


def counts(snap: dict) -> dict[str, int]:
    return {k: len(v) for k, v in snap.items() if isinstance(v, (dict, list)) and k not in ("collection", "config")}


def diff_snapshots(a: dict, b: dict, *, max_lines: int = 200) -> list[str]:
    """Human-readable differences; empty list means equal."""
    out: list[str] = []

    def dump(x: Any) -> list[str]:
        return json.dumps(x, indent=1, sort_keys=True, ensure_ascii=False).splitlines()

    for section in sorted(set(a) | set(b)):
        sa, sb = a.get(section), b.get(section)
        if sa == sb:
            continue
        out.append(f"== {section} differs")
        if isinstance(sa, dict) and isinstance(sb, dict):
            only_a = sorted(set(sa) - set(sb))
            only_b = sorted(set(sb) - set(sa))
            if only_a:
                out.append(f"  only in A ({len(only_a)}): {only_a[:20]}")
            if only_b:
                out.append(f"  only in B ({len(only_b)}): {only_b[:20]}")
            for key in sorted(set(sa) & set(sb)):
                if sa[key] != sb[key]:
                    out.append(f"  -- {section}[{key!r}]")
                    out.extend(
                        "    " + line
                        for line in difflib.unified_diff(dump(sa[key]), dump(sb[key]), "A", "B", n=1, lineterm="")
                    )
        else:
            out.extend(
                "    " + line for line in difflib.unified_diff(dump(sa), dump(sb), "A", "B", n=1, lineterm="")
            )
        if len(out) > max_lines:
            out = out[:max_lines] + ["  ... (diff truncated)"]
            break
    return out


def assert_same(a: dict, b: dict, what: str = "collections") -> None:
    lines = diff_snapshots(a, b)
    if lines:
        raise AssertionError(f"{what} differ (A = expected, B = actual):\n" + "\n".join(lines))


def pending_rows(col: Collection) -> dict[str, int]:
    """Rows still marked as locally changed (usn = -1), per table."""
    res = {}
    for table in ("notes", "cards", "revlog", "graves", "decks", "deck_config", "notetypes", "tags"):
        n = col.db.scalar(f"select count() from {table} where usn = -1")
        if n:
            res[table] = n
    return res


def assert_no_pending(col: Collection) -> None:
    pending = pending_rows(col)
    assert not pending, f"rows left with usn=-1 after sync: {pending}"
