#!/usr/bin/env python3
"""Time ``gicproof check --json`` run serially (``--jobs 1``) and in parallel (``--jobs N``).

Runs the command line (``python -m proofs.cli check --json``, as bench/bench.py does)
``--runs`` times with each job count, alternating them so that a change in the machine's
load falls on both, checks that every run exits 0 and that both give the same results
(apart from the times), and prints the median wall-clock time of each and the speedup.
Run from the repository root after installing:

    python bench/check_jobs.py [--runs 3] [--jobs 2]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent


def untimed(v: Any) -> Any:
    # the cost of a result (its time, and how many solver queries reaching it took) is not
    # part of it: a witness made canonical by extra queries is the same witness
    if isinstance(v, dict):
        return {k: untimed(x) for k, x in v.items() if k not in ("seconds", "queries")}
    if isinstance(v, list):
        return [untimed(x) for x in v]
    return v


def run_check(jobs: int) -> tuple[float, Any]:
    t0 = time.perf_counter()
    r = subprocess.run([sys.executable, "-m", "proofs.cli", "check", "--json", "--jobs", str(jobs)],
                       capture_output=True, text=True, cwd=ROOT)
    seconds = time.perf_counter() - t0
    if r.returncode != 0:
        sys.exit(f"gicproof check --jobs {jobs} exited {r.returncode}:\n{r.stderr[-2000:]}")
    return seconds, untimed(json.loads(r.stdout)["results"])


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--runs", type=int, default=3, help="runs per job count (default 3)")
    ap.add_argument("--jobs", type=int, default=2, help="the parallel job count to compare with 1 (default 2)")
    args = ap.parse_args()
    if args.runs < 1 or args.jobs < 2:
        ap.error("--runs must be at least 1 and --jobs at least 2")
    times: dict[int, list[float]] = {1: [], args.jobs: []}
    results: dict[int, Any] = {}
    print(f"gicproof check --json: {args.runs} runs each with --jobs 1 and --jobs {args.jobs} "
          f"({os.cpu_count()} cores)", file=sys.stderr)
    for i in range(args.runs):
        for jobs in (1, args.jobs):
            s, res = run_check(jobs)
            times[jobs].append(s)
            if results.setdefault(jobs, res) != res:
                sys.exit(f"--jobs {jobs} gave different results from one run to the next")
            print(f"  run {i + 1}: --jobs {jobs}: {s:.1f} s", file=sys.stderr)
    same = results[1] == results[args.jobs]
    serial, parallel = statistics.median(times[1]), statistics.median(times[args.jobs])
    print(f"--jobs 1: median {serial:.1f} s (min {min(times[1]):.1f}, max {max(times[1]):.1f})")
    print(f"--jobs {args.jobs}: median {parallel:.1f} s (min {min(times[args.jobs]):.1f}, "
          f"max {max(times[args.jobs]):.1f})")
    print(f"speedup: {serial / parallel:.2f}x; results identical apart from the times: {'yes' if same else 'NO'}")
    return 0 if same else 1


if __name__ == "__main__":
    sys.exit(main())
