#!/usr/bin/env python3
"""Benchmark gicproof: ``gicproof check`` end to end, the GICv2 ordering graph (4.7 and
6.12), and each GICv2 obligation at 8 CPUs
and 64 / 256 / 992 interrupts (64 is the smallest count KVM accepts, 992 the largest:
vgic_set_common_attr rejects anything above VGIC_MAX_RESERVED = 1023), in both encodings,
plus "all sizes" (every CPU count, every interrupt count, by interrupt classes).

Each measurement runs --runs times (default 5); the table gives the median, min and max
wall-clock seconds. Run from the repository root after installing:

    python bench/bench.py [--runs 5] [--quick]
    python bench/bench.py --rlimit-usage     # the largest Z3 resource count of one query

``--rlimit-usage`` runs the shipped suite's obligations and the largest encoding the CLI
accepts once, and prints the most Z3 resource units one query used: the figure the
default budget (``proofs.solver.DEFAULT_RLIMIT``) is calibrated against.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import time
from collections.abc import Callable

from proofs import solver
from proofs.clearset import pairs, prove_clear_then_set
from proofs.graph import build_graph
from proofs.roundtrip import prove_roundtrip
from spec.devices import DEVICES, SEQUENCES_DIR
from spec.sequence import load

GICV2 = DEVICES["gicv2"]
SEQUENCE = SEQUENCES_DIR / "gicv2" / "qemu-current-6.12.toml"


def measure(fn: Callable[[], object], runs: int) -> tuple[float, float, float, object]:
    times = []
    out = None
    for _ in range(runs):
        t0 = time.perf_counter()
        out = fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times), min(times), max(times), out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--runs", type=int, default=5, help="runs per measurement (default 5)")
    ap.add_argument("--quick", action="store_true", help="skip the full encoding at 256 and 992 interrupts")
    ap.add_argument("--rlimit-usage", action="store_true",
                    help="print the largest Z3 resource count of one query (calibrates the default budget)")
    args = ap.parse_args()
    seq = load(SEQUENCE, DEVICES)
    if args.rlimit_usage:
        return rlimit_usage(seq)
    rows: list[tuple[str, str, float, float, float, str]] = []

    def add(what: str, size: str, fn: Callable[[], object], describe: Callable[[object], str]) -> None:
        med, lo, hi, out = measure(fn, args.runs)
        rows.append((what, size, med, lo, hi, describe(out)))
        print(f"  {what:<58} {size:<28} median {med:7.3f} s", file=sys.stderr)

    def rt(r: object) -> str:
        return f"{r.verdict} {len(r.labels)} losses"  # type: ignore[attr-defined]

    print(f"benchmark: {args.runs} runs each", file=sys.stderr)
    med, lo, hi, _ = measure(lambda: subprocess.run([sys.executable, "-m", "proofs.cli", "check"],
                                                    capture_output=True, check=True), args.runs)
    rows.append(("gicproof check (7 sequences: round trip + graph; 12 clear-then-set)", "all sizes", med, lo, hi, "exit 0"))
    add("round trip qemu-current-6.12, classes", "all sizes (1-8 CPUs, 64-992)",
        lambda: prove_roundtrip(GICV2, seq), rt)
    for irqs in (64, 256, 992):
        add("round trip qemu-current-6.12, classes", f"8 CPUs x {irqs}",
            lambda irqs=irqs: prove_roundtrip(GICV2, seq, cpus=8, irqs=irqs), rt)
        if not (args.quick and irqs > 64):
            add("round trip qemu-current-6.12, full (every irq symbolic)", f"8 CPUs x {irqs}",
                lambda irqs=irqs: prove_roundtrip(GICV2, seq, cpus=8, irqs=irqs, encoding="full"), rt)
    for kernel in ("4.7", "6.12"):
        add(f"ordering graph, derived and confirmed (kernel {kernel})", "2 CPUs, every class",
            lambda kernel=kernel: build_graph(GICV2, kernel),
            lambda g: f"{len(g.edges)} edges, {len(g.commuting)} commuting")  # type: ignore[attr-defined]
    for s, c in pairs(GICV2):
        add(f"clear-then-set {c.name} -> {s.name}", "8 CPUs, every kind",
            lambda s=s, c=c: prove_clear_then_set(GICV2, "6.12", s, c),
            lambda r: r.verdict)  # type: ignore[attr-defined]
    print("\n| measurement | size | median (s) | min (s) | max (s) | result |")
    print("|---|---|---|---|---|---|")
    for what, size, med, lo, hi, res in rows:
        print(f"| {what} | {size} | {med:.3f} | {lo:.3f} | {hi:.3f} | {res} |")
    return 0


def rlimit_usage(seq: object) -> int:
    import contextlib
    import io

    from proofs.cli import main as cli_main

    with contextlib.redirect_stdout(io.StringIO()):
        cli_main(["check", "--json", "--jobs", "1"])  # in this process: solver.USAGE counts its queries
    check = dict(solver.USAGE)
    solver.USAGE.update(max_rlimit=0, queries=0)
    t0 = time.perf_counter()
    r = prove_roundtrip(GICV2, seq, cpus=8, irqs=992, encoding="full")  # type: ignore[arg-type]
    full = dict(solver.USAGE)
    print(f"gicproof check: {check['queries']} queries, the largest used {check['max_rlimit']} resource units")
    print(f"prove --encoding full --cpus 8 --irqs 992 ({r.verdict}, {time.perf_counter() - t0:.0f} s): "
          f"{full['queries']} queries, the largest used {full['max_rlimit']} units")
    print(f"default budget: {solver.DEFAULT_RLIMIT} units per query "
          f"({solver.DEFAULT_RLIMIT / max(1, full['max_rlimit']):.1f} x the largest)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
