"""End-to-end tests: the real Anki sync client (Rust, inside the `anki` Python
package) against a sync server started per test.

Run from the repository root:

    .venv/bin/python -m pytest test/e2e -q                      # against ours (default)
    E2E_SERVER=official .venv/bin/python -m pytest test/e2e -q  # against Anki's own server
    .venv/bin/python -m pytest test/e2e -q --server=official    # same, as an option

Python test dependencies are pinned in test/e2e/requirements.txt
(`.venv/bin/pip install -r test/e2e/requirements.txt`).

Servers:
  official  `python -m anki.syncserver` from the same anki package
  ours      `bun run src/main.ts` in the repository root (plus ANKISYNCD_LOG_LEVEL=debug)
Both get SYNC_HOST=127.0.0.1, SYNC_PORT=<free port>, SYNC_BASE=<tmp dir>,
SYNC_USER1..n, and must answer GET /health with 200 once ready. Their
stdout/stderr go to <tmp>/server.log; its tail is attached to the report of a
failing test (section "sync server log").
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Callable

import pytest
import requests

E2E_DIR = Path(__file__).resolve().parent
REPO_ROOT = E2E_DIR.parents[1]
FIXTURES_DIR = REPO_ROOT / "test" / "fixtures"
for p in (str(E2E_DIR), str(FIXTURES_DIR)):
    if p not in sys.path:
        sys.path.insert(0, p)

from anki.collection import Collection  # noqa: E402

SERVER_KINDS = ("official", "ours", "ours-deno")  # ours-deno: the same src/ on Deno
HEALTH_TIMEOUT = float(os.environ.get("E2E_HEALTH_TIMEOUT", "30"))
STOP_TIMEOUT = 10.0

# username -> password; USER3's password contains colons (env value is split at the first one)
USERS = {"user1": "pass1", "user2": "pass2", "user3": "pa:ss:3"}


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--server",
        choices=SERVER_KINDS,
        default=None,
        help="sync server to test: official (python -m anki.syncserver) or ours (bun run src/main.ts). "
        "Default: env E2E_SERVER, else ours.",
    )


def pytest_report_header(config: pytest.Config) -> str:
    return f"e2e sync server: {_server_kind(config)}"


def _server_kind(config: pytest.Config) -> str:
    kind = config.getoption("--server") or os.environ.get("E2E_SERVER") or "ours"
    if kind not in SERVER_KINDS:
        raise pytest.UsageError(f"E2E_SERVER must be one of {SERVER_KINDS}, got {kind!r}")
    return kind


@pytest.fixture(scope="session")
def server_kind(pytestconfig: pytest.Config) -> str:
    return _server_kind(pytestconfig)


def _die_with_parent() -> None:  # runs in the child between fork and exec
    """Linux: SIGKILL the server if the test process dies without teardown."""
    try:
        import ctypes

        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    except Exception:
        pass


_PORTS_GIVEN: set[int] = set()


def free_port() -> int:
    """A port free now and not handed out before in this process: the kernel may offer a
    released port again, and a test that picks several before starting their programs would
    otherwise give two of them the same one (seen: pebble's and Caddy's)."""
    while True:
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        if port not in _PORTS_GIVEN:
            _PORTS_GIVEN.add(port)
            return port


class SyncServer:
    """One sync server process; data dir and port survive restart()."""

    def __init__(self, kind: str, base: Path, log_path: Path, users: dict[str, str], env: dict[str, str] | None = None):
        self.kind = kind
        self.extra_env = dict(env or {})  # added to the server's environment (e.g. Cognito settings)
        self.base = base  # SYNC_BASE
        self.log_path = log_path
        self.users = dict(users)
        self.host = "127.0.0.1"
        self.port = free_port()
        self.proc: subprocess.Popen | None = None
        self.starts = 0

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}/"

    def command(self) -> tuple[list[str], Path]:
        if self.kind == "official":
            return [sys.executable, "-m", "anki.syncserver"], REPO_ROOT
        if self.kind == "ours-deno":
            # The binary itself (not `deno task`), so that signals reach the server; the
            # permissions are deno.json's.
            deno = REPO_ROOT / "node_modules" / "deno" / "deno"
            if not deno.exists():
                raise RuntimeError(f"{deno} missing (E2E_SERVER=ours-deno): run `bun install`")
            perms = ["--allow-net", "--allow-read", "--allow-write", "--allow-env", "--allow-ffi", "--allow-sys", "--allow-run=sync"]
            return [str(deno), "run", *perms, "src/main.ts"], REPO_ROOT
        bun = shutil.which("bun")
        if bun is None:
            raise RuntimeError("`bun` not found on PATH (needed for E2E_SERVER=ours)")
        main = REPO_ROOT / "src" / "main.ts"
        if not main.exists():
            raise RuntimeError(f"{main} does not exist yet (E2E_SERVER=ours); use E2E_SERVER=official")
        return [bun, "run", "src/main.ts"], REPO_ROOT

    def env(self) -> dict[str, str]:
        # The test run's own settings (ANKISYNCD_TEST_*) are not the server's.
        env = {k: v for k, v in os.environ.items() if not k.startswith(("SYNC_", "ANKISYNCD_TEST_"))}
        env.update(SYNC_HOST=self.host, SYNC_PORT=str(self.port), SYNC_BASE=str(self.base))
        for i, (user, pw) in enumerate(self.users.items(), start=1):
            env[f"SYNC_USER{i}"] = f"{user}:{pw}"
        if self.kind in ("ours", "ours-deno"):
            env["ANKISYNCD_LOG_LEVEL"] = "debug"
        env.update(self.extra_env)
        return env

    def start(self) -> None:
        assert self.proc is None, "already running"
        cmd, cwd = self.command()
        self.base.mkdir(parents=True, exist_ok=True)
        self.starts += 1
        with open(self.log_path, "ab") as log:
            log.write(f"\n===== start #{self.starts}: {' '.join(cmd)} port={self.port} =====\n".encode())
            log.flush()
            self.proc = subprocess.Popen(
                cmd,
                cwd=cwd,
                env=self.env(),
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,  # own process group: stop() can kill bun's children too
                preexec_fn=_die_with_parent if sys.platform == "linux" else None,
            )
        self._wait_healthy()

    def _wait_healthy(self) -> None:
        deadline = time.monotonic() + HEALTH_TIMEOUT
        last_err: object = None
        while time.monotonic() < deadline:
            if self.proc is None or self.proc.poll() is not None:
                code = None if self.proc is None else self.proc.returncode
                self.proc = None
                raise RuntimeError(f"{self.kind} server exited during startup (code {code})\n{self.log_tail()}")
            try:
                r = requests.get(self.url + "health", timeout=2)
                if r.status_code == 200:
                    return
                last_err = f"status {r.status_code}"
            except requests.RequestException as e:
                last_err = e
            time.sleep(0.05)
        self.stop()
        raise RuntimeError(
            f"{self.kind} server not healthy after {HEALTH_TIMEOUT}s (last: {last_err})\n{self.log_tail()}"
        )

    def stop(self, *, hard: bool = False) -> None:
        """SIGTERM (or SIGKILL if hard) the process group; SIGKILL after a bounded wait."""
        proc, self.proc = self.proc, None
        if proc is None or proc.poll() is not None:
            return
        sig = signal.SIGKILL if hard else signal.SIGTERM
        try:
            os.killpg(proc.pid, sig)
        except ProcessLookupError:
            pass
        try:
            proc.wait(timeout=STOP_TIMEOUT)
        except subprocess.TimeoutExpired:
            try:
                os.killpg(proc.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            proc.wait(timeout=STOP_TIMEOUT)
        with open(self.log_path, "ab") as log:
            log.write(f"===== stopped ({'SIGKILL' if hard else 'SIGTERM'}), exit code {proc.returncode} =====\n".encode())

    def restart(self, *, hard: bool = False) -> None:
        """Stop and start again on the same port with the same data dir."""
        self.stop(hard=hard)
        self.start()

    def user_dir(self, user: str) -> Path:
        return self.base / user

    def log_tail(self, lines: int = 80) -> str:
        try:
            text = self.log_path.read_text(errors="replace")
        except FileNotFoundError:
            return "(no log)"
        return "\n".join(text.splitlines()[-lines:])


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo):
    outcome = yield
    rep = outcome.get_result()
    if rep.failed:
        for srv in getattr(item, "_e2e_servers", []):
            rep.sections.append((f"sync server log ({srv.kind}, tail of {srv.log_path})", srv.log_tail()))


@pytest.fixture
def server_factory(server_kind: str, tmp_path: Path, request: pytest.FixtureRequest):
    """Start extra servers: server_factory(users=...) -> running SyncServer."""
    servers: list[SyncServer] = []
    request.node._e2e_servers = servers

    def make(
        users: dict[str, str] | None = None,
        env: dict[str, str] | None = None,
        *,
        kind: str | None = None,
        base: Path | None = None,
        database_url: str | None = None,
    ) -> SyncServer:
        """kind: another server than the session's; base: share a data folder between servers;
        database_url: keep the shared state in PostgreSQL (ANKISYNCD_DATABASE_URL, ours only)."""
        if database_url is not None:
            env = {**(env or {}), "ANKISYNCD_DATABASE_URL": database_url}
        n = len(servers)
        root = tmp_path / (f"server{n}" if n else "server")
        srv = SyncServer(kind or server_kind, base or root / "data", root / "server.log", users or USERS, env)
        root.mkdir(parents=True, exist_ok=True)
        servers.append(srv)
        srv.start()
        return srv

    yield make
    for srv in servers:
        srv.stop()


@pytest.fixture(scope="session")
def postgres_cluster():
    """A PostgreSQL server on loopback (postgres_cluster.py), or the test is skipped (failed in CI)."""
    import postgres_cluster as pgc

    cluster = pgc.start_or_reuse()
    if cluster is None:
        if os.environ.get("CI"):
            pytest.fail("PostgreSQL is needed (apt-get install postgresql)")
        pytest.skip("PostgreSQL is not installed (apt-get install postgresql)")
    yield cluster
    pgc.dispose(cluster)


@pytest.fixture
def database_url(postgres_cluster) -> str:
    """A new, empty PostgreSQL database: give it to servers as ANKISYNCD_DATABASE_URL."""
    url, name = postgres_cluster.fresh_database()
    yield url
    postgres_cluster.drop_database(name)


@pytest.fixture
def server(server_factory: Callable[..., SyncServer]) -> SyncServer:
    """A running sync server with USERS, fresh data dir, killed at teardown."""
    return server_factory()


@pytest.fixture
def device(tmp_path: Path):
    """device(name) -> a fresh anki Collection in its own folder (like one Anki install)."""
    cols: list[Collection] = []

    def make(name: str) -> Collection:
        folder = tmp_path / "devices" / name
        folder.mkdir(parents=True, exist_ok=False)
        col = Collection(str(folder / "collection.anki2"))
        cols.append(col)
        return col

    yield make
    for col in cols:
        try:
            if col.db is not None:
                col.close(downgrade=False)
        except Exception:
            pass
