"""Reading a server's log in tests. The per-request line is written after the response has
gone out, so a test that reads the log right after its last request polls for the line."""

from __future__ import annotations

import time
from pathlib import Path


def log_with(path: Path, needle: str, timeout: float = 10.0) -> str:
    """The log's text once it contains `needle` (or as it is when `timeout` runs out)."""
    deadline = time.monotonic() + timeout
    while True:
        text = path.read_text(errors="replace") if path.exists() else ""
        if needle in text or time.monotonic() > deadline:
            return text
        time.sleep(0.05)
