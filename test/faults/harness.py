"""What the fault trials share: a server process that can be SIGKILLed as a whole, devices
driven by the real Anki client, content generators, and the checks made after recovery
(integrity of every database, temporaries left behind, media folder digests).

Kept apart from test/e2e/conftest.py on purpose (that one is shaped around pytest fixtures);
only test/e2e/anki_client.py is reused for driving the client and comparing collections.
"""

from __future__ import annotations

import hashlib
import os
import random
import shutil
import signal
import socket
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

FAULTS_DIR = Path(__file__).resolve().parent
REPO_ROOT = FAULTS_DIR.parents[1]
for p in (REPO_ROOT / "test" / "e2e", REPO_ROOT / "test" / "fixtures"):
    if str(p) not in sys.path:
        sys.path.insert(0, str(p))

import anki_client as ac  # noqa: E402
import requests  # noqa: E402
from anki.collection import AddNoteRequest, Collection  # noqa: E402
from anki.sync import SyncAuth  # noqa: E402

HEALTH_TIMEOUT = 60.0


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _die_with_parent() -> None:
    try:
        import ctypes

        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    except Exception:
        pass


class Server:
    """ankisyncd (`bun run src/main.ts`) in its own process group; data folder and port
    survive restarts, so a killed server comes back where a supervisor would restart it."""

    def __init__(self, root: Path, users: dict[str, str], env: dict[str, str] | None = None, kind: str = "ours"):
        self.kind = kind  # "official": Anki's own server, to prove what a trial expects
        self.root = root
        self.base = root / "data"
        self.log_path = root / "server.log"
        self.users = dict(users)
        self.extra_env = dict(env or {})
        self.port = free_port()
        self.proc: subprocess.Popen | None = None
        self.starts = 0

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/"

    def start(self) -> None:
        assert self.proc is None
        self.base.mkdir(parents=True, exist_ok=True)
        env = {k: v for k, v in os.environ.items() if not k.startswith("SYNC_")}
        env.update(SYNC_HOST="127.0.0.1", SYNC_PORT=str(self.port), SYNC_BASE=str(self.base))
        for i, (user, pw) in enumerate(self.users.items(), start=1):
            env[f"SYNC_USER{i}"] = f"{user}:{pw}"
        env.update(self.extra_env)
        self.starts += 1
        bun = shutil.which("bun") or "bun"
        cmd = [sys.executable, "-m", "anki.syncserver"] if self.kind == "official" else [bun, "run", "src/main.ts"]
        with open(self.log_path, "ab") as log:
            log.write(f"\n===== start #{self.starts} port={self.port} =====\n".encode())
            log.flush()
            self.proc = subprocess.Popen(
                cmd,
                cwd=REPO_ROOT,
                env=env,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
                preexec_fn=_die_with_parent if sys.platform == "linux" else None,
            )
        deadline = time.monotonic() + HEALTH_TIMEOUT
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                code, self.proc = self.proc.returncode, None
                raise RuntimeError(f"server exited during startup (code {code})\n{self.log_tail()}")
            try:
                if requests.get(self.url + "health", timeout=2).status_code == 200:
                    return
            except requests.RequestException:
                pass
            time.sleep(0.05)
        self.kill()
        raise RuntimeError(f"server not healthy after {HEALTH_TIMEOUT}s\n{self.log_tail()}")

    def kill(self) -> None:
        """SIGKILL the whole process group: nothing gets to clean up."""
        self._signal_and_wait(signal.SIGKILL)

    def stop(self) -> int | None:
        """SIGTERM the group, as a supervisor does; the exit code."""
        return self._signal_and_wait(signal.SIGTERM)

    def _signal_and_wait(self, sig: int) -> int | None:
        proc, self.proc = self.proc, None
        if proc is None:
            return None
        try:
            os.killpg(proc.pid, sig)
        except ProcessLookupError:
            pass
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=30)
        with open(self.log_path, "ab") as log:
            log.write(f"===== signal {sig}, exit code {proc.returncode} =====\n".encode())
        return proc.returncode

    def restart(self) -> None:
        if self.proc is not None:
            self.stop()
        self.start()

    def rss_kb(self, key: str = "VmHWM") -> int:
        """VmHWM: the peak resident size of the server process so far; VmRSS: the current one."""
        assert self.proc is not None
        for line in Path(f"/proc/{self.proc.pid}/status").read_text().splitlines():
            if line.startswith(key + ":"):
                return int(line.split()[1])
        raise RuntimeError(f"{key} not in /proc/{self.proc.pid}/status")

    def log_tail(self, lines: int = 60) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except FileNotFoundError:
            return "(no log)"


# --- checks -------------------------------------------------------------------------------


def is_temporary(path: Path) -> bool:
    return ".tmp-" in path.name


def left_behind(base: Path) -> tuple[int, int]:
    """(count, bytes) of temporaries (`*.tmp-*` files and folders) under the data folder."""
    count = size = 0
    for path in base.rglob("*"):
        if is_temporary(path) and not any(is_temporary(p) for p in path.parents):
            count += 1
            if path.is_dir():
                size += sum(f.stat().st_size for f in path.rglob("*") if f.is_file())
            elif path.exists():
                size += path.stat().st_size
    return count, size


def settled_left_behind(base: Path, wait_secs: float = 30.0) -> tuple[int, int]:
    """`left_behind` once the running server's work in flight is done: a full download it makes
    ahead a few seconds after an upload (sync/collection/readyDownload.ts) has temporaries while
    it runs. A real leftover stays, so it is still counted."""
    deadline = time.monotonic() + wait_secs
    found = left_behind(base)
    while found[0] > 0 and time.monotonic() < deadline:
        time.sleep(0.25)
        found = left_behind(base)
    return found


def corrupted_databases(base: Path) -> list[str]:
    """Every SQLite database in the data folder (collections, backups, media.db, session.db)
    that fails `pragma integrity_check`; temporaries are left-behind, not checked."""
    bad = []
    for path in sorted(base.rglob("*")):
        if not path.is_file() or is_temporary(path) or any(is_temporary(p) for p in path.parents):
            continue
        if path.name.endswith(("-journal", "-wal", "-shm")) or path.name == ".lock":
            continue
        with open(path, "rb") as f:
            if f.read(16) != b"SQLite format 3\x00":
                continue
        result = _integrity(path)
        if result != "ok":
            bad.append(f"{path.relative_to(base)}: {result}")
    return bad


def _integrity(path: Path) -> str:
    """Checked on a copy with its journal: a killed writer leaves a hot journal that the next
    opener rolls back (which needs write access), and the server's files stay untouched."""
    with tempfile.TemporaryDirectory(prefix="faults-check-") as tmp:
        copy = Path(tmp) / path.name
        shutil.copyfile(path, copy)
        for suffix in ("-journal", "-wal"):
            side = path.with_name(path.name + suffix)
            if side.exists():
                shutil.copyfile(side, Path(tmp) / side.name)
        try:
            con = sqlite3.connect(str(copy), timeout=30)
            try:
                rows = con.execute("pragma integrity_check").fetchall()
            finally:
                con.close()
        except sqlite3.DatabaseError as e:
            return str(e)
        return "ok" if rows == [("ok",)] else str(rows[:3])


# --- devices ------------------------------------------------------------------------------


@dataclass
class Device:
    col: Collection
    auth: SyncAuth
    name: str

    def sync(self, prefer: str | None = None) -> ac.SyncResult:
        return ac.sync(self.col, self.auth, prefer=prefer)

    def sync_media(self, timeout: float = 300) -> None:
        self.col.sync_media(self.auth)
        wait_media(self.col, timeout)

    def close(self) -> None:
        try:
            if self.col.db is not None:
                self.col.close(downgrade=False)
        except Exception:
            pass


def new_device(folder: Path, name: str, hkey: str, url: str) -> Device:
    """A new Anki install logged in with a known host key (no login: the limits stay out of it)."""
    path = folder / name
    path.mkdir(parents=True, exist_ok=False)
    col = Collection(str(path / "collection.anki2"))
    return Device(col, ac.make_auth(hkey, url), name)


def wait_media(col: Collection, timeout: float) -> None:
    """The client syncs media in a background thread; this waits and re-raises its error."""
    deadline = time.monotonic() + timeout
    while col.media_sync_status().active:
        if time.monotonic() > deadline:
            col.abort_media_sync()
            raise TimeoutError(f"media sync still running after {timeout}s")
        time.sleep(0.05)


_touched: dict[Path, int] = {}


def touch(path: Path) -> None:
    """An mtime (whole seconds) the path never had, so the client's media scan sees a change."""
    t = max(int(time.time()), int(path.stat().st_mtime), _touched.get(path, 0)) + 1
    os.utime(path, (t, t))
    _touched[path] = t


def add_media(col: Collection, files: dict[str, bytes]) -> None:
    folder = Path(col.media.dir())
    for name, data in files.items():
        (folder / name).write_bytes(data)
        touch(folder / name)
    touch(folder)


def media_digest(col: Collection) -> dict[str, str]:
    folder = Path(col.media.dir())
    return {
        e.name: hashlib.sha1(Path(e.path).read_bytes()).hexdigest() for e in os.scandir(folder) if e.is_file()
    }


# --- content ------------------------------------------------------------------------------


def add_notes(col: Collection, prefix: str, n: int, *, field_bytes: int = 0, rng: random.Random | None = None) -> list[int]:
    """n Basic notes; with field_bytes, each back field carries that much random text (hard to
    compress, so the collection file and its transfer are that big)."""
    rng = rng or random.Random(prefix)
    basic = col.models.by_name("Basic")
    did = col.decks.id("Default")
    reqs = []
    for i in range(n):
        note = col.new_note(basic)
        note.fields[0] = f"{prefix} front {i}"
        note.fields[1] = f"{prefix} back {i} " + (rng.randbytes(field_bytes // 2).hex() if field_bytes else "")
        note.tags = [prefix.split()[0]]
        reqs.append(AddNoteRequest(note=note, deck_id=did))
    col.add_notes(reqs)
    return [r.note.id for r in reqs]


def wait_past_ids(*cols: Collection) -> None:
    """Note and card ids are milliseconds, and a device adding hundreds of notes runs its ids
    ahead of the clock: wait until the clock passes every id, so that two devices adding in
    turn never pick the same id (a clash no real pair of devices has, and not a fault)."""
    top = max(col.db.scalar("select max(m) from (select max(id) m from notes union all select max(id) from cards)") or 0 for col in cols)
    ahead = top / 1000 - time.time()
    if ahead > -0.002:
        time.sleep(ahead + 0.01)


def change_round(col: Collection, tag: str, n: int, rng: random.Random) -> int:
    """About n changes a round: new notes, edits of existing ones, a few deletions and reviews.
    Returns the number of changed objects."""
    added = add_notes(col, f"{tag} new", n // 2, rng=rng)
    nids = list(col.find_notes(""))
    rng.shuffle(nids)
    edited = [col.get_note(nid) for nid in nids[: n // 2 - n // 20]]
    for note in edited:
        note.fields[0] = note.fields[0].split(" | ")[0] + f" | {tag}"
    col.update_notes(edited)
    doomed = [nid for nid in nids[n // 2 : n // 2 + n // 20] if nid not in added]
    col.remove_notes(doomed)
    col.decks.select(col.decks.id("Default"))
    for _ in range(10):
        card = col.sched.getCard()
        if card is None:
            break
        col.sched.answerCard(card, rng.choice([1, 3, 4]))
    return len(added) + len(edited) + len(doomed)


# --- killing at a random moment -----------------------------------------------------------


@dataclass
class Outcome:
    acked: bool = False  # the client was told the operation succeeded
    error: str = ""
    killed_after: float = 0.0


def run_and_kill(server: Server, work: Callable[[], Any], delay: float) -> Outcome:
    """Runs `work` (a client operation) in a thread and SIGKILLs the server `delay` seconds in.
    If the work ends first, the server is killed right after (then it is a kill between
    requests, which matters too)."""
    out = Outcome()
    done = threading.Event()

    def target() -> None:
        try:
            work()
            out.acked = True
        except BaseException as e:  # noqa: BLE001 - any client failure is the outcome
            out.error = f"{type(e).__name__}: {e}"[:300]
        finally:
            done.set()

    started = time.monotonic()
    thread = threading.Thread(target=target, daemon=True)
    thread.start()
    done.wait(delay)
    server.kill()
    out.killed_after = time.monotonic() - started
    thread.join(600)
    if thread.is_alive():
        out.error = "client still running 600 s after the kill"
    return out


@dataclass
class PhaseReport:
    phase: str
    trials: int = 0
    acked: int = 0
    corrupted: int = 0
    lost: int = 0
    unrecovered: int = 0
    left_behind_files: int = 0
    left_behind_bytes: int = 0
    notes: list[str] = field(default_factory=list)

    def problem(self, kind: str, text: str) -> None:
        setattr(self, kind, getattr(self, kind) + 1)
        self.notes.append(f"{kind}: {text}"[:2000])

    def line(self) -> str:
        return (
            f"{self.phase:15} trials={self.trials:3} acked={self.acked:3} corrupted={self.corrupted} "
            f"lost={self.lost} unrecovered={self.unrecovered} "
            f"left_behind={self.left_behind_files} files / {self.left_behind_bytes / 1e6:.1f} MB"
        )
