"""The workloads: each is driven by the real Anki client (test/e2e/anki_client.py)
against one server. `setup` runs once per server, untimed; `round` runs once per
round and times its parts with `measure(figure)`. Every figure a workload can
produce is listed in `figures`, so a failure can be reported against all of them.
"""

from __future__ import annotations

import contextlib
import itertools
import os
import re
import shutil
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, ContextManager, Iterator

from anki.collection import Collection

import content
from servers import BenchServer  # also puts test/e2e on sys.path

import anki_client as ac  # noqa: E402  (test/e2e/anki_client.py)
import loadclient as lc  # noqa: E402


@dataclass
class Timing:
    """Yielded by `measure`: a body may set `seconds` to report a time it took itself, and
    `extra` figures that go into results.json as `<server>_<key>`."""

    seconds: float | None = None
    extra: dict = field(default_factory=dict)


Measure = Callable[..., ContextManager[Timing]]
MEDIA_TIMEOUT_SECS = 600
MAX_CONCURRENT_SYNCS = 200


@dataclass(frozen=True)
class Params:
    rounds: int
    small_mb: float
    large_mb: float
    changed_notes: int
    small_files: int
    small_file_bytes: int
    large_files: int
    large_file_bytes: int
    b_syncs_alone: int = 5
    b_changed_notes: int = 10
    many_users: int = 50
    many_secs: float = 60.0
    many_notes: int = 5  # notes each of them changes per sync
    many_checked: int = 3  # users whose end state the real client checks
    many_client: str = "bun"  # load generator: "bun" (loadclient.ts) or "python" (loadclient.py)
    many_procs: int = 1  # Bun load-client processes sharing the users
    # Where `multi`'s two client devices keep their collections: "tmpfs" (/dev/shm), as on
    # machines of their own, or "disk", beside the servers' data.
    multi_devices: str = "tmpfs"
    # Where the media workloads' client devices live. "disk" (beside the servers' data) is how
    # every round so far measured them; "tmpfs" keeps the clients' own writes and syncs (their
    # media folders and media databases) off the servers' disk, as on devices of their own.
    media_devices: str = "disk"
    idle_users: int = 1000
    idle_close_secs: int = 5  # ours: ANKISYNCD_IDLE_CLOSE_SECS for `idle users`


FULL = Params(5, 10, 100, 3000, 1000, 8_000, 20, 5_000_000)
QUICK = Params(
    1, 5, 20, 1000, 300, 8_000, 4, 2_000_000, b_syncs_alone=3,
    many_users=4, many_secs=4.0, many_checked=1, idle_users=40, idle_close_secs=1,
)


@dataclass
class Ctx:
    """What every workload may use: parameters, generated content, device folders."""

    params: Params
    workdir: Path
    small: Path = field(init=False)  # template collections (closed, schema 18)
    large: Path = field(init=False)
    small_media: Path = field(init=False)
    large_media: Path = field(init=False)
    _ids: Iterator[int] = field(default_factory=itertools.count)

    def __post_init__(self) -> None:
        gen = self.workdir / "generated"
        self.small, self.large = gen / "small.anki2", gen / "large.anki2"
        self.tiny = gen / "tiny.anki2"  # each `many users` user's collection
        self.small_media, self.large_media = gen / "media-small", gen / "media-large"

    @contextlib.contextmanager
    def device(
        self, name: str, *, template: Path | None = None, media: Path | None = None, root: Path | None = None
    ) -> Iterator[Collection]:
        """A client collection in a folder of its own (under `root`, by default the workdir's
        `devices`), deleted afterwards."""
        folder = (root or self.workdir / "devices") / f"{name}-{next(self._ids)}"
        folder.mkdir(parents=True)
        if template:
            shutil.copyfile(template, folder / "collection.anki2")
            # On disk before anything is timed: otherwise the client's first commit flushes
            # the whole copy (100 MB) in the middle of a measurement, stalling every fsync on
            # the machine, the other user's and the servers' alike; client and server share
            # one disk here, which they would not in use.
            flush_file(folder / "collection.anki2")
        if media:
            content.copy_media(media, folder / "collection.media")
        col = Collection(str(folder / "collection.anki2"))
        try:
            yield col
        finally:
            with contextlib.suppress(Exception):
                col.close(downgrade=False)
            shutil.rmtree(folder, ignore_errors=True)


def flush_file(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def password(user: str) -> str:
    return f"pw-{user}"


def login(col: Collection, srv: BenchServer, user: str):
    return ac.login(col, srv, user, password(user))


def expect(cond: bool, what: str) -> None:
    if not cond:
        raise RuntimeError(what)


def normal_sync(col: Collection, auth) -> None:
    res = ac.sync(col, auth)
    expect(res.action == "normal", f"expected a normal sync, got {res}")


def full_upload(col: Collection, auth) -> None:
    ac.full_sync(col, auth, upload=True)


def full_download(col: Collection, auth, cards: int) -> None:
    ac.full_sync(col, auth, upload=False)
    expect(col.card_count() == cards, f"downloaded {col.card_count()} cards, uploaded {cards}")


def sync_media(col: Collection, auth) -> None:
    """Media sync as the client runs it (in the background), waited for; raises
    what the sync raised."""
    col.sync_media(auth)
    deadline = time.monotonic() + MEDIA_TIMEOUT_SECS
    while col.media_sync_status().active:
        expect(time.monotonic() < deadline, f"media sync still running after {MEDIA_TIMEOUT_SECS}s")
        time.sleep(0.005)


# ---------------------------------------------------------------------------


class Workload:
    key: str  # user-name prefix
    figures: list[str]
    rounds: int | None = None  # default: Params.rounds

    def own_server(self, ctx: Ctx) -> tuple[dict[str, str], dict[str, str]] | None:
        """Users and environment for a server of this workload's own, or None for the shared one."""
        return None

    def users(self, rounds: int) -> list[str]:
        return [self.key]

    def setup(self, ctx: Ctx, srv: BenchServer) -> dict:
        return {}

    def round(self, ctx: Ctx, srv: BenchServer, state: dict, r: int, measure: Measure) -> None:
        raise NotImplementedError


class FullSync(Workload):
    """Full upload of a generated collection (replacing the one a warm-up upload
    left), then a full download of it by a fresh device. Times include the
    client's close and reopen, as a user waits for them."""

    def __init__(self, ctx: Ctx, size: str):
        self.template = ctx.small if size == "small" else ctx.large
        mb = ctx.params.small_mb if size == "small" else ctx.params.large_mb
        self.key = f"full{size}"
        self.up, self.down = f"full upload {mb:g} MB", f"full download {mb:g} MB"
        self.figures = [self.up, self.down]

    def setup(self, ctx: Ctx, srv: BenchServer) -> dict:
        with ctx.device(self.key, template=self.template) as col:
            auth = login(col, srv, self.key)
            full_upload(col, auth)
            return {"auth": auth, "cards": col.card_count()}

    def round(self, ctx: Ctx, srv: BenchServer, state: dict, r: int, measure: Measure) -> None:
        with ctx.device(self.key, template=self.template) as col:
            with measure(self.up):
                full_upload(col, state["auth"])
        with ctx.device(self.key) as col:
            with measure(self.down):
                full_download(col, state["auth"], state["cards"])


class NormalSync(Workload):
    """Device A changes N notes (a field, their cards rescheduled, one review
    each) and syncs them up; device B then syncs them down. Both start from the
    small collection, full-synced in setup."""

    key = "normal"

    def __init__(self, ctx: Ctx):
        n = ctx.params.changed_notes
        self.push, self.pull = f"normal sync up {n} notes", f"normal sync down {n} notes"
        self.figures = [self.push, self.pull]

    def setup(self, ctx: Ctx, srv: BenchServer) -> dict:
        stack = contextlib.ExitStack()
        a = stack.enter_context(ctx.device("normal-A", template=ctx.small))
        b = stack.enter_context(ctx.device("normal-B"))
        try:
            auth_a, auth_b = login(a, srv, self.key), login(b, srv, self.key)
            full_upload(a, auth_a)
            full_download(b, auth_b, a.card_count())
        except BaseException:
            stack.close()
            raise
        return {"a": a, "b": b, "auth_a": auth_a, "auth_b": auth_b, "stack": stack}

    def round(self, ctx: Ctx, srv: BenchServer, state: dict, r: int, measure: Measure) -> None:
        a, b = state["a"], state["b"]
        changed = content.change_notes(a, ctx.params.changed_notes, r)
        for figure, device, auth in ((self.push, a, state["auth_a"]), (self.pull, b, state["auth_b"])):
            with measure(figure) as timing:
                before = server_cpu(srv)
                normal_sync(device, auth)
                after = server_cpu(srv)
            # Server CPU of each round's sync (ms): every thread, and the main thread alone.
            cpu = state.setdefault(figure, {"server_cpu_ms": [], "server_main_thread_cpu_ms": []})
            cpu["server_cpu_ms"].append(round((after[0] - before[0]) * 1000))
            cpu["server_main_thread_cpu_ms"].append(round((after[1] - before[1]) * 1000))
            timing.extra = {k: list(v) for k, v in cpu.items()}
        got = b.db.scalar("select count() from notes where flds like ?", f"%round {r}: %")
        expect(got == changed, f"device B has {got} of the {changed} notes changed in round {r}")


class MediaSync(Workload):
    """Device A syncs a media folder up to an empty account (a user per round);
    a fresh device B then syncs it all down."""

    def __init__(self, ctx: Ctx, size: str):
        p = ctx.params
        small = size == "small"
        self.folder = ctx.small_media if small else ctx.large_media
        self.count = p.small_files if small else p.large_files
        each = f"{p.small_file_bytes // 1000} kB" if small else f"{p.large_file_bytes / 1e6:g} MB"
        self.key = f"media{size}"
        self.up = f"media up {self.count} x {each}"
        self.down = f"media down {self.count} x {each}"
        self.figures = [self.up, self.down]

    def users(self, rounds: int) -> list[str]:
        return [f"{self.key}{r}" for r in range(rounds)]

    def round(self, ctx: Ctx, srv: BenchServer, state: dict, r: int, measure: Measure) -> None:
        user = f"{self.key}{r}"
        root = tmpfs_devices(ctx.params.media_devices)
        with ctx.device(user, media=self.folder, root=root) as a:
            auth = login(a, srv, user)
            with measure(self.up):
                sync_media(a, auth)
        with ctx.device(user, root=root) as b:
            auth = login(b, srv, user)
            with measure(self.down):
                sync_media(b, auth)
            got = len(list(Path(b.media.dir()).iterdir()))
            expect(got == self.count, f"device B downloaded {got} of {self.count} media files")


class MultiUser(Workload):
    """User B's normal syncs (a few changed notes each) alone, then while user A
    full-uploads the large collection; B's latency is the figure."""

    key = "multi"

    def __init__(self, ctx: Ctx):
        mb = ctx.params.large_mb
        self.alone = "user B normal sync, alone"
        self.during = f"user B normal sync, during A's {mb:g} MB upload"
        self.slowest = "user B normal sync, during A's upload (slowest)"
        self.upload = f"user A {mb:g} MB upload, during B's syncs"
        self.figures = [self.alone, self.during, self.slowest, self.upload]

    def users(self, rounds: int) -> list[str]:
        return ["multiA", "multiB"]

    def devices_root(self, ctx: Ctx) -> Path | None:
        """On one shared disk, client A preparing its upload (it syncs its own 100 MB file)
        stalls every commit on the machine, B's client's and the server's alike, whichever
        server runs; on tmpfs the clients behave as on devices of their own, and what B waits
        for is the server."""
        return tmpfs_devices(ctx.params.multi_devices)

    def setup(self, ctx: Ctx, srv: BenchServer) -> dict:
        stack = contextlib.ExitStack()
        root = self.devices_root(ctx)
        if root:
            stack.callback(shutil.rmtree, root, ignore_errors=True)
        try:
            with ctx.device("multiA", template=ctx.large, root=root) as a:
                auth_a = login(a, srv, "multiA")
                full_upload(a, auth_a)
            b = stack.enter_context(ctx.device("multiB", template=ctx.small, root=root))
            auth_b = login(b, srv, "multiB")
            full_upload(b, auth_b)
        except BaseException:
            stack.close()
            raise
        state = {"b": b, "auth_a": auth_a, "auth_b": auth_b, "stack": stack, "n": itertools.count(), "root": root}
        if srv.kind == "ours":
            state["note"] = same_worker_note(srv.log_path, "multiA", "multiB")
        return state

    def change_b(self, ctx: Ctx, state: dict) -> None:
        content.change_notes(state["b"], ctx.params.b_changed_notes, 1000 + next(state["n"]))

    def round(self, ctx: Ctx, srv: BenchServer, state: dict, r: int, measure: Measure) -> None:
        b, auth_b = state["b"], state["auth_b"]
        for _ in range(ctx.params.b_syncs_alone):
            self.change_b(ctx, state)
            with measure(self.alone):
                normal_sync(b, auth_b)
        with ctx.device("multiA", template=ctx.large, root=state["root"]) as a:
            upload = BackgroundUpload(a, state["auth_a"])
            with measure(self.upload) as timing:
                upload.start()
                try:
                    for _ in range(MAX_CONCURRENT_SYNCS):
                        if upload.done():
                            break
                        self.change_b(ctx, state)
                        with (
                            measure(self.during, memory=False, user="multiB"),
                            measure(self.slowest, memory=False, stat="max", user="multiB"),
                        ):
                            normal_sync(b, auth_b)
                finally:
                    upload.join()  # before A's device folder goes, even when B failed
                timing.seconds = upload.seconds


def same_worker_note(log: Path, *users: str) -> str:
    """Whether our server pinned the users to one worker thread: it hashes each
    user's uuid (random for local users, so this varies between runs) with
    FNV-1a modulo ANKISYNCD_WORKERS (default 2), as src/executor/executor.ts pin()."""
    uuids = dict(re.findall(r"\buser=(\S+) uuid=(\S+)", log.read_text(errors="replace")))
    workers = int(os.environ.get("ANKISYNCD_WORKERS", "2"))
    if not all(u in uuids for u in users):
        return f"ours: could not tell which workers {' and '.join(users)} were pinned to"
    pins = {fnv1a(uuids[u]) % workers for u in users}
    same = "the same worker" if len(pins) == 1 else "different workers"
    return f"ours: {' and '.join(users)} were pinned to {same}"


TMPFS_DEVICES = Path("/dev/shm") / f"ankisyncd-bench-{os.getpid()}"


def tmpfs_devices(setting: str) -> Path | None:
    """Client devices' root for "tmpfs" (/dev/shm, where there is one); None: the workdir's."""
    if setting != "tmpfs" or not TMPFS_DEVICES.parent.is_dir():
        return None
    TMPFS_DEVICES.mkdir(exist_ok=True)
    return TMPFS_DEVICES


def fnv1a(text: str) -> int:
    h = 0x811C9DC5
    for ch in text:
        h = ((h ^ ord(ch)) * 0x01000193) & 0xFFFFFFFF
    return h


class BackgroundUpload:
    """A full upload in a thread (the Anki backend releases the GIL)."""

    def __init__(self, col: Collection, auth):
        self.error: BaseException | None = None
        self.seconds = 0.0
        self.thread = threading.Thread(target=self._run, args=(col, auth), daemon=True)

    def _run(self, col: Collection, auth) -> None:
        started = time.perf_counter()
        try:
            full_upload(col, auth)
        except BaseException as e:  # re-raised in join()
            self.error = e
        self.seconds = time.perf_counter() - started

    def start(self) -> None:
        self.thread.start()

    def done(self) -> bool:
        return not self.thread.is_alive()

    def join(self) -> None:
        self.thread.join()
        if self.error:
            raise self.error


# Every simulated user logs in from 127.0.0.1: ours' per-IP login limit would refuse most.
LOAD_ENV = {"ANKISYNCD_LOGIN_RATE_PER_IP": "0"}


class ManyUsers(Workload):
    """`many_users` users at once, each with its own small collection and media, each
    syncing a few changed notes (a complete normal sync) and one new media file (a
    complete media sync) in a loop. Fifty real-client processes would saturate two CPUs
    themselves, so the load comes from a lean protocol client: bench/loadclient.ts (Bun,
    every user an async task; `many_procs` processes share the users), or with
    `many_client="python"` bench/loadclient.py (one thread per user, one process; it needs
    ~4.4 ms of CPU per sync under the GIL). Afterwards the real client downloads some of the
    users and checks their notes and media."""

    key = "many"
    rounds = 1

    def __init__(self, ctx: Ctx):
        self.figure = "many users"
        self.figures = [self.figure]

    def user_names(self, ctx: Ctx) -> list[str]:
        return [f"many{i}" for i in range(1, ctx.params.many_users + 1)]

    def users(self, rounds: int) -> list[str]:
        return []

    def own_server(self, ctx: Ctx) -> tuple[dict[str, str], dict[str, str]]:
        # Pre-hashed (cheap PBKDF2), as for idle users: 50 argon2id hashes at start took longer
        # than the start timeout on a loaded machine.
        users = {u: lc.pbkdf2_phc(password(u)) for u in self.user_names(ctx)}
        return users, {**LOAD_ENV, "PASSWORDS_HASHED": "1"}

    def setup(self, ctx: Ctx, srv: BenchServer) -> dict:
        template = lc.Template.load(ctx.tiny, ctx.params.many_notes)
        names = self.user_names(ctx)
        if ctx.params.many_client == "python":
            clients = [lc.LeanClient(srv.url, u, password(u), template) for u in names]

            def prepare(c: lc.LeanClient) -> None:
                c.login()
                c.full_upload()
                c.normal_sync()  # the first one brings the whole collection down: untimed
                c.media_sync()

            run_threads(clients, prepare, workers=4)
            return {"clients": clients}
        stack = contextlib.ExitStack()
        load = stack.enter_context(
            BunLoad(ctx, srv, template, [(u, password(u)) for u in names], ctx.params.many_procs)
        )
        return {"load": load, "stack": stack}

    def round(self, ctx: Ctx, srv: BenchServer, state: dict, r: int, measure: Measure) -> None:
        with measure(self.figure) as timing:
            cpu_before = server_cpu(srv)
            if "load" in state:
                outcome = state["load"].run()
            else:
                outcome = run_python_load(state["clients"], ctx.params.many_secs)
            cpu_after = server_cpu(srv)
            times, errors, elapsed = sorted(outcome["times"]), outcome["errors"], outcome["elapsed"]
            expect(len(times) > 0, f"no sync completed; errors: {errors}")
            per_sync = lambda secs: round(secs * 1000 / len(times), 2)  # noqa: E731
            timing.seconds = percentile(times, 50)
            timing.extra = {
                "syncs_per_s": round(len(times) / elapsed, 2),
                "syncs": len(times),
                "p95_s": round(percentile(times, 95), 4),
                "p99_s": round(percentile(times, 99), 4),
                "errors": sum(errors.values()),
                "errors_by_kind": errors,
                "load_generator": outcome["generator"],
                "load_generator_cpu_ms_per_sync": per_sync(outcome["cpu_s"]),
                "server_cpu_ms_per_sync": per_sync(cpu_after[0] - cpu_before[0]),
                "server_main_thread_cpu_ms_per_sync": per_sync(cpu_after[1] - cpu_before[1]),
                "loadavg": [round(x, 2) for x in os.getloadavg()],
            }
        for c in outcome["users"][: ctx.params.many_checked]:
            check_with_real_client(ctx, srv, c)


@dataclass
class UserEnd:
    """What a load-client user last synced: the real client must find it on the server."""

    user: str
    last_fields: dict[int, str]
    media_files: int


def run_python_load(clients: list[lc.LeanClient], secs: float) -> dict:
    """The timed loops on loadclient.py's threads (one per user, one process)."""
    times: list[float] = []
    errors: dict[str, int] = {}
    lock = threading.Lock()
    deadline = time.monotonic() + secs

    def loop(c: lc.LeanClient) -> None:
        while time.monotonic() < deadline:
            started = time.perf_counter()
            try:
                c.normal_sync()
                c.media_sync()
            except lc.SyncFailure as e:
                with lock:
                    errors[e.kind] = errors.get(e.kind, 0) + 1
                time.sleep(0.5)  # a real client would not retry at once
                continue
            with lock:
                times.append(time.perf_counter() - started)

    cpu = time.process_time()
    started = time.monotonic()
    run_threads(clients, loop, workers=len(clients))
    elapsed = time.monotonic() - started
    return {
        "times": times, "errors": errors, "elapsed": elapsed, "cpu_s": time.process_time() - cpu,
        "generator": f"bench/loadclient.py (lean v11 protocol client), {len(clients)} threads in one process",
        "users": [UserEnd(c.user, c.last_fields, c.media_files) for c in clients],
    }


class BunLoad:
    """bench/loadclient.ts in `procs` Bun processes, the users split between them: each
    prepares its users (login, full upload, one untimed sync) when entered; `run()` starts
    the timed loops in all of them at once and merges what they report."""

    def __init__(self, ctx: Ctx, srv: BenchServer, template: lc.Template, users: list[tuple[str, str]], procs: int):
        import json
        import subprocess

        upload = ctx.workdir / "many-upload.anki2"
        upload.write_bytes(template.data)
        self.secs = ctx.params.many_secs
        self.procs: list[subprocess.Popen] = []
        self.shares = [users[i::procs] for i in range(max(1, min(procs, len(users))))]
        for i, share in enumerate(self.shares):
            config = ctx.workdir / f"many-load-{i}.json"
            config.write_text(json.dumps({
                "url": srv.url, "users": [{"user": u, "password": p} for u, p in share],
                "upload": str(upload), "notes": template.notes, "counts": template.counts, "seconds": self.secs,
            }))
            self.procs.append(subprocess.Popen(
                [shutil.which("bun") or "bun", str(Path(__file__).with_name("loadclient.ts")), str(config)],
                stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, cwd=Path(__file__).parents[1],
            ))

    def __enter__(self) -> BunLoad:
        try:
            for proc in self.procs:
                self._line(proc)  # {"ready": true}
        except BaseException:
            self.__exit__()
            raise
        return self

    def _line(self, proc) -> dict:
        import json

        line = proc.stdout.readline()
        if not line:
            raise RuntimeError(f"bench/loadclient.ts exited ({proc.wait()}) without an answer")
        return json.loads(line)

    def run(self) -> dict:
        for proc in self.procs:
            proc.stdin.write("go\n")
            proc.stdin.flush()
        parts = [self._line(proc) for proc in self.procs]
        errors: dict[str, int] = {}
        for part in parts:
            for kind, n in part["errors"].items():
                errors[kind] = errors.get(kind, 0) + n
        users = [
            UserEnd(u["user"], {int(k): v for k, v in u["last_fields"].items()}, u["media_files"])
            for part in parts for u in part["users"]
        ]
        n = len(self.procs)
        return {
            "times": [t for part in parts for t in part["times"]],
            "errors": errors,
            "elapsed": max(part["elapsed"] for part in parts),
            "cpu_s": sum(part["cpu_s"] for part in parts),
            "generator": f"bench/loadclient.ts (lean v11 protocol client on Bun), {len(users)} users as async tasks "
            f"in {n} process{'es' if n > 1 else ''}",
            "users": users,
        }

    def __exit__(self, *exc: object) -> None:
        import subprocess

        for proc in self.procs:
            if proc.poll() is None:
                proc.kill()
            with contextlib.suppress(subprocess.TimeoutExpired):
                proc.wait(timeout=10)


def check_with_real_client(ctx: Ctx, srv: BenchServer, c: UserEnd) -> None:
    """A fresh device of the user downloads the collection and the media: the notes carry
    the last change the lean client synced, and every file it uploaded is there."""
    with ctx.device(c.user) as col:
        auth = login(col, srv, c.user)
        ac.full_sync(col, auth, upload=False)
        for nid, text in c.last_fields.items():
            got = col.get_note(nid).fields[0]
            expect(got == text, f"{c.user}: note {nid} has {got!r}, the last sync sent {text!r}")
        sync_media(col, auth)
        got_files = len(list(Path(col.media.dir()).iterdir()))
        expect(got_files == c.media_files, f"{c.user}: {got_files} media files, uploaded {c.media_files}")


class IdleUsers(Workload):
    """`idle_users` users log in and each does one `meta` (which opens, or creates, their
    collection); the figure is how long that takes, and the memory once the server has
    closed their collections (ours: after ANKISYNCD_IDLE_CLOSE_SECS, with the threads
    that held them stopped)."""

    key = "idle"
    rounds = 1

    def __init__(self, ctx: Ctx):
        self.figure = "idle users"
        self.figures = [self.figure]

    def users(self, rounds: int) -> list[str]:
        return []

    def own_server(self, ctx: Ctx) -> tuple[dict[str, str], dict[str, str]]:
        # Pre-hashed (cheap PBKDF2) so neither server spends minutes hashing at start.
        users = {f"idle{i}": lc.pbkdf2_phc(password(f"idle{i}")) for i in range(1, ctx.params.idle_users + 1)}
        env = {**LOAD_ENV, "PASSWORDS_HASHED": "1", "ANKISYNCD_IDLE_CLOSE_SECS": str(ctx.params.idle_close_secs)}
        return users, env

    def round(self, ctx: Ctx, srv: BenchServer, state: dict, r: int, measure: Measure) -> None:
        idle_before = servers_rss(srv)
        names = [f"idle{i}" for i in range(1, ctx.params.idle_users + 1)]
        clients = [lc.LeanClient(srv.url, u, password(u), None) for u in names]  # type: ignore[arg-type]

        def visit(c: lc.LeanClient) -> None:
            c.login()
            c.meta()

        with measure(self.figure) as timing:
            run_threads(clients, visit, workers=8)
        # Long enough for ours to close the collections and stop the idle threads.
        time.sleep(ctx.params.idle_close_secs * 3 + 2)
        after = servers_rss(srv)
        timing.extra = {
            "idle_server_rss_mb": round(idle_before, 1),
            "rss_after_idle_mb": round(after, 1),
            "rss_over_idle_mb": round(after - idle_before, 1),
        }


def cpu_secs(pid: int) -> float:
    """CPU time (user + system) a process or one thread (/proc/<pid>/task/<tid>) has used."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return 0.0
    fields = stat[stat.rindex(")") + 2 :].split()  # from "state": utime, stime are 12th, 13th
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def server_cpu(srv: BenchServer) -> tuple[float, float]:
    """The server's CPU seconds so far: its whole process group, and its main thread."""
    from servers import group_pids

    total = sum(cpu_secs(p) for p in group_pids(srv.proc.pid))
    return total, cpu_secs_thread(srv.proc.pid, srv.proc.pid)


def cpu_secs_thread(pid: int, tid: int) -> float:
    return cpu_secs(f"{pid}/task/{tid}")  # type: ignore[arg-type]


def servers_rss(srv: BenchServer) -> float:
    from servers import rss_mb

    return rss_mb(srv.proc.pid)


def percentile(sorted_times: list[float], p: float) -> float:
    index = min(len(sorted_times) - 1, max(0, round(p / 100 * len(sorted_times)) - 1))
    return sorted_times[index]


def run_threads(items: list, work: Callable, *, workers: int) -> None:
    """`work(item)` for every item on `workers` threads; re-raises the first error."""
    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(max_workers=workers) as pool:
        for future in [pool.submit(work, item) for item in items]:
            future.result()


def teardown(state: dict) -> None:
    if "stack" in state:
        state["stack"].close()


def all_workloads(ctx: Ctx) -> list[Workload]:
    return [
        FullSync(ctx, "small"),
        FullSync(ctx, "large"),
        NormalSync(ctx),
        MediaSync(ctx, "small"),
        MediaSync(ctx, "large"),
        MultiUser(ctx),
        ManyUsers(ctx),
        IdleUsers(ctx),
    ]
