"""The client matrix: which `anki` versions the client scenarios run with, their venvs, and
devices driven through client_driver.py in those venvs.

E2E_CLIENTS names the versions, comma- or space-separated; `all` is every version in
ALL_CLIENTS, `default` (or unset) is DEFAULT_CLIENTS. The current version (CURRENT, the one in
the suite's own .venv) needs no extra venv; any other gets one, created on first use under
E2E_CLIENTS_CACHE (default ~/.cache/ankisyncd-e2e/anki-<version>) and reused after that.
"""

from __future__ import annotations

import base64
import fcntl
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

E2E_DIR = Path(__file__).resolve().parent
DRIVER = E2E_DIR / "client_driver.py"

CURRENT = "26.9.3"
# Every generation on PyPI that speaks to a self-hosted server: protocol v10 up to 2.1.54,
# v11 from 2.1.57 on (2.1.55/56 are skipped as Anki skipped them on its download page).
ALL_CLIENTS = (
    "2.1.44", "2.1.49", "2.1.50", "2.1.54",
    "2.1.58", "2.1.60", "2.1.66",
    "23.10.1", "23.12.1", "24.6.3", "24.11",
    "25.2.7", "25.7.5", "25.9.5", "26.5", CURRENT,
)  # fmt: skip
DEFAULT_CLIENTS = ("2.1.54", "2.1.66", CURRENT)
VENV_TIMEOUT = 900


def selected_clients() -> list[str]:
    raw = os.environ.get("E2E_CLIENTS", "").replace(",", " ").split()
    if not raw or raw == ["default"]:
        return list(DEFAULT_CLIENTS)
    if raw == ["all"]:
        return list(ALL_CLIENTS)
    return raw


def version_tuple(version: str) -> tuple[int, ...]:
    return tuple(int(part) for part in version.split("."))


def requirements(version: str) -> list[str]:
    reqs = [f"anki=={version}"]
    if version_tuple(version) <= (2, 1, 49):
        reqs.append("protobuf==3.20.3")  # their generated code predates protobuf 4
    return reqs


def cache_dir() -> Path:
    default = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "ankisyncd-e2e"
    return Path(os.environ.get("E2E_CLIENTS_CACHE") or default)


def client_python(version: str) -> str:
    """The python to run `version` with, creating its venv on first use."""
    if version == CURRENT:
        return sys.executable
    root = cache_dir()
    root.mkdir(parents=True, exist_ok=True)
    venv = root / f"anki-{version}"
    stamp = venv / ".requirements"
    wanted = "\n".join(requirements(version))
    with open(root / f"anki-{version}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # parallel runs (other worktrees) share the cache
        if not (stamp.exists() and stamp.read_text() == wanted):
            _create_venv(venv, version)
            stamp.write_text(wanted)
    return str(venv / "bin" / "python")


def _create_venv(venv: Path, version: str) -> None:
    building = venv.with_name(venv.name + ".building")
    shutil.rmtree(building, ignore_errors=True)
    shutil.rmtree(venv, ignore_errors=True)
    subprocess.run([sys.executable, "-m", "venv", str(building)], check=True, timeout=VENV_TIMEOUT)
    pip = [str(building / "bin" / "python"), "-m", "pip", "install", "-q", "--disable-pip-version-check"]
    done = subprocess.run(pip + requirements(version), capture_output=True, text=True, timeout=VENV_TIMEOUT)
    if done.returncode != 0:
        raise RuntimeError(f"installing anki=={version} failed:\n{done.stdout}\n{done.stderr}")
    building.rename(venv)  # the venv's python finds its packages relative to itself


class DriverError(Exception):
    def __init__(self, kind: str, message: str):
        super().__init__(message)
        self.kind = kind


class ClientDevice:
    """One device (own folder, own collection) running anki `version` in a driver process."""

    def __init__(self, version: str, folder: Path, *, seed: Path | None = None):
        """seed: a collection file to start from (copied), else a new empty collection."""
        self.version = version
        self.name = f"{folder.name}@{version}"
        folder.mkdir(parents=True, exist_ok=True)
        if seed is not None:
            shutil.copy(seed, folder / "collection.anki2")
        self.log_path = folder / "driver.log"
        self._log = open(self.log_path, "ab")
        self.proc = subprocess.Popen(
            [client_python(version), str(DRIVER)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=self._log,
            cwd=folder,
            text=True,
            env={k: v for k, v in os.environ.items() if not k.startswith("SYNC_ENDPOINT")},
        )
        try:
            reported = self.call("version")
            assert version_tuple(reported) == version_tuple(version), f"{self.name}: runs anki {reported}"
            self.call("open", path=str(folder / "collection.anki2"))
        except BaseException:
            self.close()
            raise

    def call(self, op: str, **args: Any) -> Any:
        assert self.proc.stdin and self.proc.stdout
        self.proc.stdin.write(json.dumps({"op": op, "args": args}) + "\n")
        self.proc.stdin.flush()
        line = self.proc.stdout.readline()
        if not line:
            raise RuntimeError(f"{self.name}: driver exited ({self.proc.poll()}); log:\n{self.log_tail()}")
        reply = json.loads(line)
        if "error" in reply:
            error = reply["error"]
            raise DriverError(error["kind"], f"{self.name}: {op}: {error['message']}\n{self.log_tail(20)}")
        return reply["ok"]

    # Thin wrappers, so scenarios read like the in-process ones.

    def login(self, server: Any, user: str, password: str) -> str:
        return self.call("login", url=server.url, user=user, password=password)

    def sync(self, prefer: str | None = None) -> dict:
        return self.call("sync", prefer=prefer)

    def snapshot(self, ignore: set[str] | None = None) -> dict:
        return self.call("snapshot", ignore=sorted(ignore) if ignore is not None else None)

    def add_media(self, name: str, data: bytes) -> str:
        return self.call("add_media", name=name, data_b64=base64.b64encode(data).decode())

    def media_files(self) -> dict[str, bytes]:
        return {k: base64.b64decode(v) for k, v in self.call("media_files").items()}

    def close(self) -> None:
        if self.proc.poll() is None:
            try:
                self.call("close")
            except Exception:
                pass
            assert self.proc.stdin
            self.proc.stdin.close()
            try:
                self.proc.wait(timeout=60)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self._log.close()

    def log_tail(self, lines: int = 40) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except FileNotFoundError:
            return "(no log)"


if __name__ == "__main__":
    # `python test/e2e/clients.py` prepares the venvs of the selected clients ahead of the tests.
    for selected in selected_clients():
        print(f"anki {selected}: {client_python(selected)}", flush=True)
