"""The two servers under test, their memory, and our server's per-request times.

Servers are test/e2e/conftest.py's SyncServer (same command lines, variables and
health check as the end-to-end tests); only our log level differs (info: the
per-request line with `ms=` is logged at info, debug would only add noise).
"""

from __future__ import annotations

import os
import re
import sys
import threading
import time
from collections import defaultdict
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO_ROOT / "test" / "e2e"))

from conftest import SyncServer  # noqa: E402

KINDS = ("ours", "official", "ours-deno")  # ours-deno: the same server on Deno
DEFAULT_KINDS = ("ours", "official")
POLL_SECS = 0.02


class BenchServer(SyncServer):
    cpu_prof_dir: Path | None = None  # ours under `bun --cpu-prof`: a profile per process

    def command(self) -> tuple[list[str], Path]:
        cmd, cwd = super().command()
        if self.kind == "ours" and self.cpu_prof_dir:
            flags = ["--cpu-prof", "--cpu-prof-md", f"--cpu-prof-dir={self.cpu_prof_dir}"]
            cmd = [cmd[0], *flags, *cmd[1:]]
        return cmd, cwd

    def env(self) -> dict[str, str]:
        env = super().env()
        if self.kind in ("ours", "ours-deno"):
            env["ANKISYNCD_LOG_LEVEL"] = "info"
        return env


def new_server(kind: str, workdir: Path, users: dict[str, str], env: dict[str, str] | None = None) -> BenchServer:
    """A server (not started) with its data and log in workdir/server-<kind>/."""
    root = workdir / f"server-{kind}"
    root.mkdir(parents=True, exist_ok=True)
    return BenchServer(kind, root / "data", root / "server.log", users, env=env)


# ---------------------------------------------------------------------------
# Memory: VmHWM (reset through clear_refs) and polled VmRSS of the process group
# ---------------------------------------------------------------------------


def group_pids(pgid: int) -> list[int]:
    """Processes in the server's process group (it runs in a session of its own)."""
    pids = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            stat = Path(f"/proc/{entry}/stat").read_text()
        except OSError:
            continue
        fields = stat[stat.rindex(")") + 2 :].split()
        if int(fields[2]) == pgid:  # fields after "(comm)": state, ppid, pgrp, ...
            pids.append(int(entry))
    return pids


def status_kb(pid: int, key: str) -> int:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith(key + ":"):
                return int(line.split()[1])
    except OSError:
        pass
    return 0


def rss_mb(pid: int) -> float:
    return sum(status_kb(p, "VmRSS") for p in group_pids(pid)) / 1024


class PeakRss:
    """Peak resident memory of a process group while the `with` block runs:
    the larger of the summed VmHWM (high-water marks reset at entry by writing 5
    to clear_refs) and the largest summed VmRSS seen by polling every 20 ms."""

    def __init__(self, pid: int):
        self.pid = pid
        self.polled_kb = 0
        self.peak_mb = 0.0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._poll, daemon=True)

    def __enter__(self) -> PeakRss:
        for p in group_pids(self.pid):
            try:
                Path(f"/proc/{p}/clear_refs").write_text("5")
            except OSError:
                pass
        self._thread.start()
        return self

    def _poll(self) -> None:
        pids, refreshed = group_pids(self.pid), time.monotonic()
        while not self._stop.wait(POLL_SECS):
            if time.monotonic() - refreshed > 0.5:
                pids, refreshed = group_pids(self.pid), time.monotonic()
            self.polled_kb = max(self.polled_kb, sum(status_kb(p, "VmRSS") for p in pids))

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
        hwm_kb = sum(status_kb(p, "VmHWM") for p in group_pids(self.pid))
        self.peak_mb = max(hwm_kb, self.polled_kb) / 1024


# ---------------------------------------------------------------------------
# Per-request server time, from the log lines both servers write per request:
#   ours:     "... INFO  sync method=applyChunk status=200 user=u ... ms=12 ..."
#   official: "... request{uri="/sync/applyChunk" ... uid="u" ...}: finished elap_ms=12 ..."
# ---------------------------------------------------------------------------

_ANSI = re.compile(r"\x1b\[[0-9;]*m")
_OURS = re.compile(r"\bmethod=(?P<method>\S+).*?(?:\buser=(?P<user>\S+).*?)?\bms=(?P<ms>\d+)")
_OFFICIAL = re.compile(r'uri="/(?P<method>[^"]+)".*?(?:uid="(?P<user>[^"]*)".*?)?elap_ms=(?P<ms>\d+)')


class LogCursor:
    """Reads the server log lines written since the last call."""

    def __init__(self, path: Path):
        self.path = path
        self.offset = path.stat().st_size if path.exists() else 0

    def new_lines(self) -> list[str]:
        with open(self.path, "rb") as f:
            f.seek(self.offset)
            data = f.read()
        self.offset += len(data)
        return _ANSI.sub("", data.decode(errors="replace")).splitlines()


def request_times(lines: list[str], user: str | None = None) -> dict[str, dict[str, float]]:
    """"user:method" -> {"n": requests, "ms": summed server time}; only `user`'s
    requests if given."""
    out: dict[str, dict[str, float]] = defaultdict(lambda: {"n": 0, "ms": 0.0})
    for line in lines:
        m = _OURS.search(line) or _OFFICIAL.search(line)
        if m and (user is None or m["user"] == user):
            who = re.sub(r"\d+$", "", m["user"] or "?")  # one user per round counts as one
            acc = out[f"{who}:{m['method'].removeprefix('sync/')}"]
            acc["n"] += 1
            acc["ms"] += int(m["ms"])
    return dict(out)
