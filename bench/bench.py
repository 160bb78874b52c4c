"""ankisyncd against Anki's own sync server, side by side: both servers run on
loopback with the same users, every workload runs against each (alternating
which goes first) for several rounds, and medians are reported as ratios.

    bash bench/run.sh            # full run (10/100 MB collections, 5 rounds)
    bash bench/run.sh --quick    # smoke run, about a minute
    .venv/bin/python bench/bench.py --help

Writes a table to stdout and bench/results.json; exits non-zero if any workload
failed against either server.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import platform
import shutil
import statistics
import sys
import tempfile
import time
import traceback
from collections import defaultdict
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Iterator

import content
import servers as sv
import workloads as wl

BENCH_DIR = Path(__file__).resolve().parent
MAX_LISTED_SAMPLES = 25  # results.json lists every sample of figures with at most this many


# ---------------------------------------------------------------------------
# Recording figures
# ---------------------------------------------------------------------------


@dataclass
class Figure:
    stat: str = "median"  # or "max": how samples become the figure
    times: dict[str, list[float]] = field(default_factory=lambda: defaultdict(list))
    peak_mb: dict[str, float] = field(default_factory=dict)
    errors: dict[str, str] = field(default_factory=dict)
    requests: dict[str, dict] = field(default_factory=lambda: defaultdict(dict))  # kind -> method -> {n, ms}
    extra: dict[str, wl.Timing] = field(default_factory=dict)  # kind -> last Timing (its `extra`)
    notes: list[str] = field(default_factory=list)


class Recorder:
    def __init__(self) -> None:
        self.figures: dict[str, Figure] = {}

    def figure(self, name: str) -> Figure:
        return self.figures.setdefault(name, Figure())

    def measurer(self, srv: sv.BenchServer) -> wl.Measure:
        @contextlib.contextmanager
        def measure(
            name: str, *, memory: bool = True, stat: str = "median", user: str | None = None
        ) -> Iterator[wl.Timing]:
            fig = self.figure(name)
            fig.stat = stat
            cursor = sv.LogCursor(srv.log_path)
            rss = sv.PeakRss(srv.proc.pid) if memory else contextlib.nullcontext()
            timing = wl.Timing()
            with rss:
                started = time.perf_counter()
                yield timing
                elapsed = time.perf_counter() - started
            fig.times[srv.kind].append(elapsed if timing.seconds is None else timing.seconds)
            fig.extra[srv.kind] = timing  # its `extra` may still be filled in after the block
            if memory:
                fig.peak_mb[srv.kind] = max(fig.peak_mb.get(srv.kind, 0.0), rss.peak_mb)
            add_requests(fig.requests[srv.kind], sv.request_times(cursor.new_lines(), user))

        return measure

    def note(self, names: list[str], text: str) -> None:
        for name in names:
            self.figure(name).notes.append(text)

    def fail(self, names: list[str], kind: str, error: str) -> None:
        for name in names:
            self.figure(name).errors[kind] = error


def add_requests(total: dict[str, dict], new: dict[str, dict]) -> None:
    for method, t in new.items():
        acc = total.setdefault(method, {"n": 0, "ms": 0.0})
        acc["n"] += t["n"]
        acc["ms"] += t["ms"]


# ---------------------------------------------------------------------------
# Running
# ---------------------------------------------------------------------------


def run_workload(work: wl.Workload, ctx: wl.Ctx, servers: dict[str, sv.BenchServer], rec: Recorder) -> None:
    """setup on each server, then the rounds, alternating which server goes first."""
    states: dict[str, dict] = {}
    for kind, srv in servers.items():
        try:
            states[kind] = work.setup(ctx, srv)
            if "note" in states[kind]:
                rec.note(work.figures, states[kind]["note"])
        except Exception as e:
            rec.fail(work.figures, kind, f"setup: {describe(e)}")
    # What generation and setup wrote goes to disk now, not during the first timed rounds
    # (its writeback slowed every fsync there, the servers' alike).
    os.sync()
    try:
        rounds = work.rounds or ctx.params.rounds
        for r in range(rounds):
            order = list(servers) if r % 2 == 0 else list(servers)[::-1]
            for kind in order:
                if kind not in states:
                    continue
                print(f"  {work.key} round {r + 1}/{rounds} on {kind}", flush=True)
                try:
                    work.round(ctx, servers[kind], states[kind], r, rec.measurer(servers[kind]))
                except Exception as e:
                    rec.fail(work.figures, kind, f"round {r + 1}: {describe(e)}")
                    wl.teardown(states.pop(kind))
    finally:
        for state in states.values():
            wl.teardown(state)


def describe(e: BaseException) -> str:
    if os.environ.get("BENCH_TRACEBACK"):
        traceback.print_exception(e)
    text = " ".join(str(e).split())
    return f"{type(e).__name__}: {text[:300]}"


LOAD_ONLY = ("many", "idle")  # workloads that need only the tiny collection


def prepare_content(ctx: wl.Ctx, works: list[wl.Workload]) -> dict:
    p = ctx.params
    if all(w.key in LOAD_ONLY for w in works):
        return {"tiny": content.build_collection(ctx.tiny, 0.2)}
    print(f"generating collections ({p.small_mb:g} MB, {p.large_mb:g} MB) and media ...", flush=True)
    info = {
        "small": content.build_collection(ctx.small, p.small_mb),
        "large": content.build_collection(ctx.large, p.large_mb),
        "media_small_bytes": content.build_media(ctx.small_media, p.small_files, p.small_file_bytes, prefix="s"),
        "media_large_bytes": content.build_media(ctx.large_media, p.large_files, p.large_file_bytes, prefix="l"),
        "tiny": content.build_collection(ctx.tiny, 0.2),
    }
    print(f"  small: {info['small']}\n  large: {info['large']}", flush=True)
    return info


def all_users(works: list[wl.Workload], rounds: int) -> dict[str, str]:
    return {u: wl.password(u) for w in works for u in w.users(rounds)}


# ---------------------------------------------------------------------------
# Reporting
# ---------------------------------------------------------------------------


def rows(rec: Recorder) -> list[dict]:
    out = []
    for name, fig in rec.figures.items():
        row: dict = {"workload": name}
        for kind in sv.KINDS:
            ok = fig.times.get(kind) and kind not in fig.errors
            stat = max if fig.stat == "max" else statistics.median
            row[f"{kind}_s"] = round(stat(fig.times[kind]), 4) if ok else None
        both = row["ours_s"] is not None and row["official_s"] is not None and row["official_s"] > 0
        row["ratio"] = round(row["ours_s"] / row["official_s"], 3) if both else None
        for kind in sv.KINDS:
            peak = fig.peak_mb.get(kind)
            row[f"{kind}_peak_rss_mb"] = round(peak, 1) if peak and kind not in fig.errors else None
        row["samples"] = {kind: len(fig.times.get(kind, [])) for kind in sv.KINDS}
        if max(row["samples"].values()) <= MAX_LISTED_SAMPLES:
            row["all_s"] = {kind: [round(t, 4) for t in fig.times.get(kind, [])] for kind in sv.KINDS}
        for kind, timing in fig.extra.items():
            for key, value in timing.extra.items():
                row[f"{kind}_{key}"] = value if kind not in fig.errors else None
        for kind, err in fig.errors.items():
            row[f"{kind}_error"] = err
        if fig.notes:
            row["note"] = "; ".join(dict.fromkeys(fig.notes))
        one_user = len({key.split(":")[0] for reqs in fig.requests.values() for key in reqs}) <= 1
        for kind, reqs in fig.requests.items():
            if reqs:  # server time per request method, summed over the samples
                row[f"{kind}_requests"] = {
                    (key.split(":", 1)[1] if one_user else key): {"n": t["n"], "ms": round(t["ms"])}
                    for key, t in sorted(reqs.items())
                }
        out.append(row)
    return out


def cell(row: dict, key: str, fmt: str) -> str:
    kind = key.split("_")[0]
    if row.get(f"{kind}_error"):
        return "FAILED"
    return "-" if row[key] is None else format(row[key], fmt)


def table(results: list[dict]) -> str:
    head = f"{'workload':<50} {'ours s':>9} {'official s':>10} {'ratio':>6} {'ours MB':>8} {'official MB':>11}"
    deno = any(r.get("ours-deno_s") is not None or r.get("ours-deno_error") for r in results)
    if deno:  # the same server on Deno: its own columns
        head += f" {'deno s':>8} {'deno MB':>8}"
    lines = [head, "-" * len(head)]
    for r in results:
        ratio = "-" if r["ratio"] is None else f"{r['ratio']:.2f}"
        line = (
            f"{r['workload']:<50} {cell(r, 'ours_s', '.3f'):>9} {cell(r, 'official_s', '.3f'):>10} {ratio:>6}"
            f" {cell(r, 'ours_peak_rss_mb', '.0f'):>8} {cell(r, 'official_peak_rss_mb', '.0f'):>11}"
        )
        if deno:
            line += f" {cell(r, 'ours-deno_s', '.3f'):>8} {cell(r, 'ours-deno_peak_rss_mb', '.0f'):>8}"
        lines.append(line)
    return "\n".join(lines)


def failures(results: list[dict]) -> list[str]:
    return [f"{r['workload']} [{k}]: {r[f'{k}_error']}" for r in results for k in sv.KINDS if r.get(f"{k}_error")]


def where_time_goes(results: list[dict]) -> str:
    """Requests and server time per sample, by request method, from both servers' logs."""
    head = f"{'per sample, from the server logs':<44} {'ours n':>6} {'ours ms':>8} {'off. n':>6} {'off. ms':>8}"
    lines = [head, "-" * len(head)]
    for r in results:
        reqs = {kind: r.get(f"{kind}_requests", {}) for kind in sv.KINDS}
        if not any(reqs.values()):
            continue
        lines.append(f"  {r['workload']}")
        for method in sorted(set(reqs["ours"]) | set(reqs["official"])):
            cells = [per_sample(r, reqs[kind], method, kind) for kind in sv.KINDS]
            lines.append(f"    {method:<40} {cells[0][0]:>6} {cells[0][1]:>8} {cells[1][0]:>6} {cells[1][1]:>8}")
    return "\n".join(lines)


def per_sample(row: dict, reqs: dict, method: str, kind: str) -> tuple[str, str]:
    samples = row["samples"][kind]
    if method not in reqs or not samples:
        return "-", "-"
    return f"{reqs[method]['n'] / samples:.0f}", f"{reqs[method]['ms'] / samples:.0f}"


EXTRA_SKIP = ("s", "peak_rss_mb", "requests", "error")


def extra_lines(results: list[dict]) -> list[str]:
    """The figures a workload reports besides its time (syncs per second, errors, memory after idle)."""
    lines = []
    for r in results:
        for kind in sv.KINDS:
            extra = {k.removeprefix(f"{kind}_"): v for k, v in r.items()
                     if k.startswith(f"{kind}_") and k.removeprefix(f"{kind}_") not in EXTRA_SKIP}
            if extra:
                lines.append(f"{r['workload']} [{kind}]: {json.dumps(extra)}")
    return lines


def machine() -> dict:
    model = next(
        (line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines() if line.startswith("model name")),
        platform.processor(),
    )
    mem_kb = int(next(line.split()[1] for line in Path("/proc/meminfo").read_text().splitlines() if line.startswith("MemTotal")))
    return {"nproc": os.cpu_count(), "memory_gb": round(mem_kb / 1024 / 1024, 1), "cpu": model,
            "kernel": platform.release(), "loadavg_start": os.getloadavg()}


# ---------------------------------------------------------------------------


def parse_args(argv: list[str]) -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="smoke run: small sizes, one round (about a minute)")
    ap.add_argument("--rounds", type=int, help="rounds per workload (default 5, quick 1)")
    ap.add_argument("--only", help="comma-separated workload keys (fullsmall, fulllarge, normal, mediasmall, medialarge, multi, many, idle)")
    ap.add_argument("--servers", default=",".join(sv.DEFAULT_KINDS),
                    help="servers to run: ours, official, ours-deno (default: ours,official)")
    ap.add_argument("--workdir", type=Path, help="scratch folder (default: a new temporary folder, deleted at the end)")
    ap.add_argument("--cpu-prof", type=Path, metavar="DIR", help="run ours under bun --cpu-prof, a profile per workload in DIR")
    ap.add_argument("--results", type=Path, default=BENCH_DIR / "results.json")
    ap.add_argument("--many-secs", type=float, help="how long `many users` runs (default 60, quick 4)")
    ap.add_argument("--many-client", choices=("bun", "python"),
                    help="`many users` load generator: bun (bench/loadclient.ts, default) or python (loadclient.py)")
    ap.add_argument("--many-procs", type=int, help="Bun load-client processes for `many users` (default 1)")
    ap.add_argument("--multi-devices", choices=("tmpfs", "disk"),
                    help="where `multi`'s client devices live: tmpfs (/dev/shm, default), as on machines of "
                         "their own, or disk, beside the servers' data")
    ap.add_argument("--media-devices", choices=("tmpfs", "disk"),
                    help="where the media workloads' client devices live: disk (beside the servers' data, "
                         "default, as in every round so far) or tmpfs (/dev/shm), as on machines of their own")
    return ap.parse_args(argv)


def main(argv: list[str]) -> int:
    args = parse_args(argv)
    params = wl.QUICK if args.quick else wl.FULL
    if args.rounds:
        params = replace(params, rounds=max(1, min(args.rounds, 20)))
    if args.many_secs:
        params = replace(params, many_secs=args.many_secs)
    if args.many_client:
        params = replace(params, many_client=args.many_client)
    if args.multi_devices:
        params = replace(params, multi_devices=args.multi_devices)
    if args.media_devices:
        params = replace(params, media_devices=args.media_devices)
    if args.many_procs:
        params = replace(params, many_procs=max(1, args.many_procs))
    workdir = args.workdir or Path(tempfile.mkdtemp(prefix="ankisyncd-bench-"))
    try:
        return bench(params, workdir, args)
    finally:
        shutil.rmtree(wl.TMPFS_DEVICES, ignore_errors=True)
        if not args.workdir:
            shutil.rmtree(workdir, ignore_errors=True)


def bench(params: wl.Params, workdir: Path, args: argparse.Namespace) -> int:
    started = time.monotonic()
    host = machine()
    print(f"machine: {host}", flush=True)
    ctx = wl.Ctx(params, workdir)
    works = [w for w in wl.all_workloads(ctx) if not args.only or w.key in args.only.split(",")]
    generated = prepare_content(ctx, works)
    sv.BenchServer.cpu_prof_dir = args.cpu_prof.resolve() if args.cpu_prof else None
    rec, idle = run_all(ctx, works, args.servers.split(","))
    results = rows(rec)
    meta = {"machine": host, "params": params.__dict__, "generated": generated, "idle_rss_mb": idle,
            "loadavg_end": os.getloadavg(), "total_s": round(time.monotonic() - started, 1)}
    return report(results, meta, args.results)


def run_all(ctx: wl.Ctx, works: list[wl.Workload], kinds: list[str]) -> tuple[Recorder, dict]:
    """Every workload against every server; each workload gets freshly started
    server processes, so memory figures do not carry over from one to the next."""
    rec = Recorder()
    servers = {kind: sv.new_server(kind, ctx.workdir, all_users(works, ctx.params.rounds)) for kind in kinds}
    idle: dict[str, float] = {}
    try:
        for work in works:
            print(f"workload {work.key}", flush=True)
            own = work.own_server(ctx)
            up = {}
            for kind, shared in servers.items():
                srv = shared
                try:
                    if own:
                        shared.stop()
                        srv = sv.new_server(kind, ctx.workdir / work.key, own[0], env=own[1])
                        srv.start()
                    else:
                        srv.restart()
                        idle.setdefault(kind, round(sv.rss_mb(srv.proc.pid), 1))
                    up[kind] = srv
                except Exception as e:
                    rec.fail(work.figures, kind, f"server did not start: {describe(e)}")
            try:
                run_workload(work, ctx, up, rec)
            finally:
                if own:
                    for srv in up.values():
                        srv.stop()
    finally:
        for srv in servers.values():
            srv.stop()
    print(f"idle RSS after start (MB): {idle}", flush=True)
    return rec, idle


def report(results: list[dict], meta: dict, path: Path) -> int:
    print("\n" + table(results) + "\n")
    print(where_time_goes(results))
    for line in extra_lines(results):
        print(line)
    for note in dict.fromkeys(r["note"] for r in results if r.get("note")):
        print(f"note: {note}")
    failed = failures(results)
    for line in failed:
        print(f"FAILED {line}")
    path.write_text(json.dumps(results, indent=2) + "\n")
    path.with_name(path.stem + "-run.json").write_text(json.dumps(meta, indent=2) + "\n")
    print(f"\n{json.dumps(meta)}\nresults: {path}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
