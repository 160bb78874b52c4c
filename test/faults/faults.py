"""The fault suite as a command: kill trials, the load run and the hostile-input set, with the
figures a demanding operator asks for. The test command runs a few trials of each through
test_faults.py; this runs as many as asked:

    bash test/faults/run.sh --trials 50                  # kill trials, many per phase
    bash test/faults/run.sh --users 40 --secs 120 --only load
    bash test/faults/run.sh --only hostile --idle-connections 10000

Prints one line per phase and a JSON summary (also written to --results); exits 1 if anything
was corrupted, lost or unrecovered, or the load run or hostile set saw an error.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from harness import PhaseReport  # noqa: E402
from hostile import run_hostile  # noqa: E402
from kill_trials import PHASES, run_kill_phases  # noqa: E402
from load import run_load  # noqa: E402

PARTS = ("kill", "load", "hostile")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--trials", type=int, default=3, help="kills per phase (default 3)")
    ap.add_argument("--phases", default=",".join(PHASES), help=f"kill phases, from {','.join(PHASES)}")
    ap.add_argument("--size-mb", type=int, default=30, help="collection size for full upload/download")
    ap.add_argument("--changes", type=int, default=3000, help="changes per normal-sync round")
    ap.add_argument("--media-files", type=int, default=60, help="media files added per media trial")
    ap.add_argument("--media-kib", type=int, default=200, help="size of each media file")
    ap.add_argument("--users", type=int, default=4, help="load run: users syncing at once")
    ap.add_argument("--secs", type=float, default=20, help="load run: seconds")
    ap.add_argument("--idle-connections", type=int, default=1000, help="hostile set: idle connections")
    ap.add_argument("--only", default=",".join(PARTS), help=f"parts to run, from {','.join(PARTS)}")
    ap.add_argument("--seed", type=int, default=int(time.time()), help="random seed (printed)")
    ap.add_argument("--keep", action="store_true", help="keep the scratch folder")
    ap.add_argument("--results", type=Path, help="write the JSON summary here")
    args = ap.parse_args(argv)
    parts = set(args.only.split(","))
    print(f"faults: seed {args.seed}", flush=True)
    scratch = Path(tempfile.mkdtemp(prefix="ankisyncd-faults-"))
    summary: dict = {"seed": args.seed, "scratch": str(scratch)}
    failed = False
    try:
        if "kill" in parts:
            reports = run_kill_phases(
                scratch / "kill",
                trials=args.trials,
                size_mb=args.size_mb,
                changes=args.changes,
                media_files=args.media_files,
                media_kib=args.media_kib,
                seed=args.seed,
                phases=tuple(args.phases.split(",")),
                log=lambda s: print(s, flush=True),
            )
            summary["kill"] = [dataclasses.asdict(r) for r in reports]
            summary["kill_totals"] = totals(reports)
            print("kill totals:", json.dumps(summary["kill_totals"]), flush=True)
            failed |= any(r.corrupted or r.lost or r.unrecovered for r in reports)
        if "load" in parts:
            load = run_load(scratch / "load", users=args.users, secs=args.secs, seed=args.seed)
            summary["load"] = load
            print("load:", json.dumps({k: v for k, v in load.items() if k != "notes"}), flush=True)
            failed |= bool(load["errors"] or load["users_differing"])
        if "hostile" in parts:
            hostile = run_hostile(scratch / "hostile", idle_connections=args.idle_connections)
            summary["hostile"] = hostile
            print("hostile:", json.dumps({k: v for k, v in hostile.items() if k != "cases"}), flush=True)
            failed |= bool(hostile["unexpected"] or hostile["changed"] or not hostile["healthy"])
    finally:
        if args.results:
            args.results.write_text(json.dumps(summary, indent=1))
        if not args.keep:
            import shutil

            shutil.rmtree(scratch, ignore_errors=True)
    for part in ("kill",):
        for r in summary.get(part, []):
            for note in r["notes"]:
                print(f"  {r['phase']}: {note}")
    return 1 if failed else 0


def totals(reports: list[PhaseReport]) -> dict[str, int]:
    """Sums, except left-behind: the phases share one data folder, so it is what the last saw."""
    keys = ("trials", "acked", "corrupted", "lost", "unrecovered")
    out = {k: sum(getattr(r, k) for r in reports) for k in keys}
    out["left_behind_files"] = reports[-1].left_behind_files if reports else 0
    out["left_behind_bytes"] = reports[-1].left_behind_bytes if reports else 0
    return out


if __name__ == "__main__":
    sys.exit(main())
