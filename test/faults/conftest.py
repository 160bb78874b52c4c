"""The fault suite's figures (corrupted, lost, unrecovered, left-behind, peak RSS) are printed
at the end of the run whether the tests pass or not; test_faults.py collects them here."""

from __future__ import annotations

import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

FIGURES: dict[str, object] = {}


def pytest_terminal_summary(terminalreporter, exitstatus, config) -> None:  # noqa: ARG001
    if not FIGURES:
        return
    terminalreporter.section("fault suite figures")
    for name, value in FIGURES.items():
        terminalreporter.write_line(f"{name}: {json.dumps(value)}")
