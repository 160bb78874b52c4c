"""PostgreSQL for the shared-state scenarios (ANKISYNCD_DATABASE_URL): the cluster scripts/test.sh
started (ANKISYNCD_TEST_DATABASE_URL, ANKISYNCD_TEST_PG_DIR), else a throwaway one started here by
scripts/pg-test-cluster.sh and stopped at the end of the session. Each test gets a database of its
own."""

from __future__ import annotations

import glob
import os
import shutil
import subprocess
import tempfile
import uuid
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

REPO_ROOT = Path(__file__).resolve().parents[2]
SCRIPT = REPO_ROOT / "scripts" / "pg-test-cluster.sh"


def _psql() -> str | None:
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/psql"))
    return found[-1] if found else shutil.which("psql")


@dataclass
class PostgresCluster:
    url: str  # the `postgres` database, superuser, loopback
    folder: Path | None  # known when stop()/resume() can be used
    owned: bool  # started by us: stopped and removed at the end

    def sql(self, statement: str) -> None:
        psql = _psql()
        if psql is None:
            raise RuntimeError("psql not found (apt-get install postgresql)")
        subprocess.run([psql, self.url, "-v", "ON_ERROR_STOP=1", "-qc", statement], check=True, capture_output=True, timeout=60)

    def fresh_database(self) -> tuple[str, str]:
        """(url, name) of a new empty database."""
        name = f"ankisyncd_e2e_{uuid.uuid4().hex}"
        self.sql(f"CREATE DATABASE {name}")
        parts = urlsplit(self.url)
        return urlunsplit(parts._replace(path=f"/{name}")), name

    def drop_database(self, name: str) -> None:
        self.sql(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")

    def _control(self, command: str) -> None:
        if self.folder is None:
            raise RuntimeError("this cluster's folder is unknown (set ANKISYNCD_TEST_PG_DIR)")
        subprocess.run(["bash", str(SCRIPT), command, str(self.folder)], check=True, timeout=120)

    def stop(self) -> None:
        self._control("stop")

    def resume(self) -> None:
        self._control("resume")


def start_or_reuse() -> PostgresCluster | None:
    url = os.environ.get("ANKISYNCD_TEST_DATABASE_URL")
    if url:
        folder = os.environ.get("ANKISYNCD_TEST_PG_DIR")
        return PostgresCluster(url, Path(folder) if folder else None, owned=False)
    folder = Path(tempfile.mkdtemp(prefix="ankisyncd-e2e-pg-"))
    started = subprocess.run(["bash", str(SCRIPT), "start", str(folder)], capture_output=True, text=True, timeout=120)
    if started.returncode != 0:
        shutil.rmtree(folder, ignore_errors=True)
        return None
    return PostgresCluster(started.stdout.strip(), folder, owned=True)


def dispose(cluster: PostgresCluster) -> None:
    if not cluster.owned or cluster.folder is None:
        return
    subprocess.run(["bash", str(SCRIPT), "stop", str(cluster.folder)], check=False, timeout=120)
    shutil.rmtree(cluster.folder, ignore_errors=True)
