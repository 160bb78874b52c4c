"""SIGKILL of the whole server at a random moment of a transfer, then recovery with the real
Anki client, and the checks that matter to a user:

* corrupted: a database in the data folder fails `pragma integrity_check`;
* lost: after recovery a device and a fresh device downloading from the server differ (so
  something a device had, acknowledged or not, is not on the server, or the reverse);
* unrecovered: the client cannot get back in sync by pressing Sync again (an error twice in a
  row, or a normal sync turned into "choose upload or download" — a manual step);
* left-behind: temporaries (`*.tmp-*`) in the data folder after the restart and recovery.

Each phase calibrates how long its operation takes without a kill, then kills at a moment
drawn uniformly from [0, 1.2 x that]: early kills land in the first requests, late ones after
the answer (a kill between requests). Figures, not timings, are what gets reported.
"""

from __future__ import annotations

import random
import time
from pathlib import Path
from typing import Callable

from harness import (  # first: it puts test/e2e (anki_client) on the path
    Device,
    PhaseReport,
    Server,
    add_media,
    add_notes,
    change_round,
    corrupted_databases,
    settled_left_behind,
    media_digest,
    new_device,
    run_and_kill,
    wait_past_ids,
)

import anki_client as ac  # noqa: E402  (test/e2e/anki_client.py)

PHASES = ("full_upload", "full_download", "normal_sync", "media_upload", "media_download")
USERS = {"alice": "alice-pw", "bob": "bob-pw", "carol": "carol-pw"}


class Lab:
    """One server and the devices of its users, in a scratch folder."""

    def __init__(self, root: Path, rng: random.Random, log: Callable[[str], None] = print, kind: str = "ours"):
        self.root = root
        self.rng = rng
        self.log = log
        self.server = Server(root / "server", USERS, kind=kind)
        self.devices_dir = root / "devices"
        self.devices_dir.mkdir(parents=True, exist_ok=True)
        self.hkeys: dict[str, str] = {}
        self.count = 0

    def __enter__(self) -> Lab:
        self.server.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.stop()

    def device(self, user: str, label: str) -> Device:
        self.count += 1
        name = f"{user}-{label}-{self.count}"
        if user not in self.hkeys:
            folder = self.devices_dir / name
            folder.mkdir(parents=True)
            from anki.collection import Collection

            col = Collection(str(folder / "collection.anki2"))
            self.hkeys[user] = ac.login(col, self.server.url, user, USERS[user]).hkey
            return Device(col, ac.make_auth(self.hkeys[user], self.server.url), name)
        return new_device(self.devices_dir, name, self.hkeys[user], self.server.url)

    def after_kill(self, report: PhaseReport, outcome) -> None:
        report.trials += 1
        report.acked += outcome.acked
        self.server.start()
        for bad in corrupted_databases(self.server.base):
            report.problem("corrupted", bad)

    def finish(self, report: PhaseReport) -> PhaseReport:
        report.left_behind_files, report.left_behind_bytes = settled_left_behind(self.server.base)
        self.log(report.line())
        return report


def retried(what: str, action: Callable[[], object]) -> object:
    """Pressing Sync again once after a failure is what any user does; twice is a problem."""
    try:
        return action()
    except Exception as first:  # noqa: BLE001
        time.sleep(1)
        try:
            return action()
        except Exception as second:  # noqa: BLE001
            raise RuntimeError(f"{what}: {first}; again: {second}") from second


def compare_with_fresh(lab: Lab, report: PhaseReport, user: str, reference: Device, when: str) -> None:
    fresh = lab.device(user, "fresh")
    try:
        res = retried("fresh device download", lambda: fresh.sync())
        if getattr(res, "action", None) not in ("download", "none"):
            report.problem("unrecovered", f"{when}: fresh device got {res}")
        diff = ac.diff_snapshots(ac.snapshot(reference.col), ac.snapshot(fresh.col))
        if diff:
            report.problem("lost", f"{when}: {reference.name} vs fresh download:\n" + "\n".join(diff[:30]))
    except Exception as e:  # noqa: BLE001
        report.problem("unrecovered", f"{when}: fresh device: {e}")
    finally:
        fresh.close()


def timed(action: Callable[[], object]) -> float:
    started = time.monotonic()
    action()
    return time.monotonic() - started


# --- phases -------------------------------------------------------------------------------


def full_upload(lab: Lab, trials: int, size_mb: int) -> PhaseReport:
    report = PhaseReport("full_upload")
    a = lab.device("alice", "A")
    add_notes(a.col, "seed", max(1, size_mb * 128), field_bytes=8192, rng=lab.rng)
    took = timed(lambda: a.sync(prefer="upload"))
    lab.log(f"full_upload: {size_mb} MB collection uploads in {took:.1f}s unkilled")
    for i in range(trials):
        add_notes(a.col, f"upload{i}", 3, rng=lab.rng)
        a.col.mod_schema(check=False)  # the next sync needs a full one, which A uploads
        outcome = run_and_kill(lab.server, lambda: a.sync(prefer="upload"), lab.rng.uniform(0, took * 1.2))
        lab.after_kill(report, outcome)
        try:
            res = retried("upload again", lambda: a.sync(prefer="upload"))
            if outcome.acked and res.action != "none":
                report.problem("lost", f"trial {i}: acknowledged upload, then the client was asked again: {res}")
        except Exception as e:  # noqa: BLE001
            report.problem("unrecovered", f"trial {i}: {e}")
            continue
        compare_with_fresh(lab, report, "alice", a, f"full_upload trial {i}")
    a.close()
    return lab.finish(report)


def full_download(lab: Lab, trials: int) -> PhaseReport:
    """Needs the collection full_upload left on the server (alice's)."""
    report = PhaseReport("full_download")
    reference = lab.device("alice", "ref")
    took = timed(lambda: reference.sync())
    lab.log(f"full_download: {took:.1f}s unkilled")
    for i in range(trials):
        b = lab.device("alice", "B")
        outcome = run_and_kill(lab.server, lambda b=b: b.sync(), lab.rng.uniform(0, took * 1.2))
        lab.after_kill(report, outcome)
        try:
            retried("download again", lambda b=b: b.sync())
            res = retried("reference sync", lambda: reference.sync())
            if res.action not in ("none", "normal"):
                report.problem("unrecovered", f"trial {i}: the other device then needed {res}")
            diff = ac.diff_snapshots(ac.snapshot(reference.col), ac.snapshot(b.col))
            if diff:
                report.problem("lost", f"trial {i}: downloaded copy differs:\n" + "\n".join(diff[:30]))
        except Exception as e:  # noqa: BLE001
            report.problem("unrecovered", f"trial {i}: {e}")
        finally:
            b.close()
    reference.close()
    return lab.finish(report)


def normal_sync(lab: Lab, trials: int, changes: int) -> PhaseReport:
    report = PhaseReport("normal_sync")
    a, b = lab.device("bob", "A"), lab.device("bob", "B")
    add_notes(a.col, "seed", changes, rng=lab.rng)
    a.sync(prefer="upload")
    b.sync(prefer="download")
    change_round(a.col, "calibrate", changes, lab.rng)
    took = timed(lambda: a.sync())
    b.sync()
    lab.log(f"normal_sync: a round of ~{changes} changes syncs in {took:.1f}s unkilled")
    for i in range(trials):
        # B only adds: edits of one object on two devices in the same second are a conflict
        # the protocol may settle either way.
        wait_past_ids(a.col, b.col)
        add_notes(b.col, f"b{i}", max(10, changes // 20), rng=lab.rng)
        wait_past_ids(a.col, b.col)
        change_round(a.col, f"a{i}", changes, lab.rng)
        outcome = run_and_kill(lab.server, lambda: a.sync(), lab.rng.uniform(0, took * 1.2))
        lab.after_kill(report, outcome)
        try:
            for dev in (a, b, a):
                res = retried(f"{dev.name} sync", lambda dev=dev: dev.sync())
                if res.action not in ("none", "normal"):
                    report.problem("unrecovered", f"trial {i}: {dev.name} {res}")
            pending = ac.pending_rows(a.col) or ac.pending_rows(b.col)
            if pending:
                report.problem("unrecovered", f"trial {i}: rows still pending after recovery: {pending}")
            diff = ac.diff_snapshots(ac.snapshot(a.col), ac.snapshot(b.col))
            if diff:
                report.problem("lost", f"trial {i}: A vs B after recovery:\n" + "\n".join(diff[:30]))
        except AssertionError as e:  # ac.sync: a full sync needed where a normal one was expected
            report.problem("unrecovered", f"trial {i}: {str(e)[:300]}")
            a.sync(prefer="upload")
            b.sync(prefer="download")
        except Exception as e:  # noqa: BLE001
            report.problem("unrecovered", f"trial {i}: {e}")
            continue
        compare_with_fresh(lab, report, "bob", a, f"normal_sync trial {i}")
    a.close()
    b.close()
    return lab.finish(report)


def _media_batch(rng: random.Random, tag: str, files: int, size: int) -> dict[str, bytes]:
    names = [f"{tag}-{i:03d}.bin" for i in range(files)]
    names[0] = f"{tag} naïve café.jpg"
    return {name: rng.randbytes(size) for name in names}


def media_upload(lab: Lab, trials: int, files: int, size: int) -> tuple[PhaseReport, Device]:
    report = PhaseReport("media_upload")
    a, b = lab.device("carol", "A"), lab.device("carol", "B")
    add_media(a.col, _media_batch(lab.rng, "calibrate", files, size))
    took = timed(lambda: a.sync_media())
    lab.log(f"media_upload: {files} files of {size // 1024} KiB upload in {took:.1f}s unkilled")
    for i in range(trials):
        add_media(a.col, _media_batch(lab.rng, f"up{i}", files, size))
        outcome = run_and_kill(lab.server, lambda: a.sync_media(), lab.rng.uniform(0, took * 1.2))
        lab.after_kill(report, outcome)
        try:
            retried("media sync again", lambda: a.sync_media())
            retried("other device media sync", lambda: b.sync_media())
            want, got = media_digest(a.col), media_digest(b.col)
            if want != got:
                missing = sorted(set(want) - set(got))[:10]
                differing = sorted(n for n in set(want) & set(got) if want[n] != got[n])[:10]
                report.problem("lost", f"trial {i}: missing {missing}, differing {differing}")
        except Exception as e:  # noqa: BLE001
            report.problem("unrecovered", f"trial {i}: {e}")
    b.close()
    return lab.finish(report), a


def media_download(lab: Lab, trials: int, reference: Device) -> PhaseReport:
    """Fresh devices download the media media_upload left on the server."""
    report = PhaseReport("media_download")
    want = media_digest(reference.col)
    probe = lab.device("carol", "probe")
    took = timed(lambda: probe.sync_media())
    probe.close()
    lab.log(f"media_download: {len(want)} files download in {took:.1f}s unkilled")
    for i in range(trials):
        d = lab.device("carol", "D")
        outcome = run_and_kill(lab.server, lambda d=d: d.sync_media(), lab.rng.uniform(0, took * 1.2))
        lab.after_kill(report, outcome)
        try:
            retried("media download again", lambda d=d: d.sync_media())
            got = media_digest(d.col)
            if got != want:
                report.problem("lost", f"trial {i}: {len(set(want) - set(got))} files missing, "
                               f"{sum(1 for n in want if n in got and got[n] != want[n])} differ")
        except Exception as e:  # noqa: BLE001
            report.problem("unrecovered", f"trial {i}: {e}")
        finally:
            d.close()
    return lab.finish(report)


def run_kill_phases(root: Path, *, trials: int, size_mb: int, changes: int, media_files: int,
                    media_kib: int, seed: int, phases=PHASES, log: Callable[[str], None] = print,
                    kind: str = "ours") -> list[PhaseReport]:
    rng = random.Random(seed)
    reports: list[PhaseReport] = []
    with Lab(root, rng, log, kind) as lab:
        if "full_upload" in phases or "full_download" in phases:
            reports.append(full_upload(lab, trials if "full_upload" in phases else 0, size_mb))
        if "full_download" in phases:
            reports.append(full_download(lab, trials))
        if "normal_sync" in phases:
            reports.append(normal_sync(lab, trials, changes))
        if "media_upload" in phases or "media_download" in phases:
            up, a = media_upload(lab, trials if "media_upload" in phases else 0, media_files, media_kib * 1024)
            reports.append(up)
            if "media_download" in phases:
                reports.append(media_download(lab, trials, a))
            a.close()
    return [r for r in reports if r.phase in phases]
