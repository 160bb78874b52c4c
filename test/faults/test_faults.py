"""A few trials of each fault, as part of the test command (scripts/test.sh); faults.py runs
many (`bash test/faults/run.sh --trials 50`). Only ankisyncd is tested here: the trials check
our storage, not the client. Figures are printed at the end (conftest.py); nothing is timed.

Environment: FAULTS_TRIALS (kills per phase, default 3), FAULTS_SEED (default: time),
FAULTS_ASSERT_LEFT_BEHIND=0 to report temporaries left after recovery without failing on them
(by default none may remain: a restart sweeps those of the killed process).
"""

from __future__ import annotations

import dataclasses
import os
import time
from pathlib import Path

import pytest
from conftest import FIGURES
from hostile import run_hostile
from kill_trials import PHASES, run_kill_phases
from load import run_load

TRIALS = int(os.environ.get("FAULTS_TRIALS", "3"))
SEED = int(os.environ.get("FAULTS_SEED", str(int(time.time()))))


@pytest.fixture(scope="module")
def kill_reports(tmp_path_factory: pytest.TempPathFactory):
    reports = run_kill_phases(
        tmp_path_factory.mktemp("kill"),
        trials=TRIALS,
        size_mb=20,
        changes=2000,
        media_files=40,
        media_kib=100,
        seed=SEED,
        log=lambda line: None,
    )
    FIGURES["kill (seed %d)" % SEED] = [
        {k: v for k, v in dataclasses.asdict(r).items() if k != "notes"} for r in reports
    ]
    return {r.phase: r for r in reports}


@pytest.mark.parametrize("phase", PHASES)
def test_sigkill_at_a_random_moment(kill_reports, phase: str) -> None:
    r = kill_reports[phase]
    assert r.trials == TRIALS
    assert (r.corrupted, r.lost, r.unrecovered) == (0, 0, 0), "\n".join(r.notes)
    if os.environ.get("FAULTS_ASSERT_LEFT_BEHIND", "1") == "1":
        assert r.left_behind_files == 0, f"{r.left_behind_files} temporaries left in the data folder"


def test_load(tmp_path: Path) -> None:
    result = run_load(tmp_path, users=3, secs=10, seed=SEED)
    FIGURES["load"] = {k: v for k, v in result.items() if k != "notes"}
    assert result["syncs"] > 0
    assert (result["errors"], result["users_differing"]) == (0, 0), "\n".join(result["notes"])
    assert result["exit_code"] == 0


def test_hostile_input(tmp_path: Path) -> None:
    result = run_hostile(tmp_path, idle_connections=500)
    FIGURES["hostile"] = {k: v for k, v in result.items() if k != "cases"}
    assert result["unexpected"] == []
    assert result["changed"] == []
    assert result["healthy"]
    nokey = result["bombs_without_key"]
    assert nokey["statuses"] == [403] * 10
    # The target; before the host key was checked first this was about 1.3 GB.
    assert nokey["peak_rss_mb"] < 300
    assert result["bombs_with_key"]["statuses"] == [400] * 10
