#!/usr/bin/env python3
"""Benchmark the GICv3 obligations at scale: each one at the architectural maximum of
512 vCPUs (VGIC_V3_MAX_CPUS) with every SPI (992 interrupts, the most KVM accepts), and
the "all sizes" proofs that cover 1-512 vCPUs, by interrupt and vCPU classes
(proofs/classes.py). Issue 9's target is under 2 s per obligation.

Each measurement runs --runs times (default 5) in this process, one after another; the
table gives the median, min and max wall-clock seconds and the verdict. Run from the
repository root after installing:

    python bench/bench_v3.py [--runs 5]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from proofs.clearset import pairs, prove_clear_then_set  # noqa: E402
from proofs.invariant import prove_invariant  # noqa: E402
from proofs.roundtrip import prove_roundtrip  # noqa: E402
from spec.devices import DEVICES, SEQUENCES_DIR  # noqa: E402
from spec.sequence import load  # noqa: E402

GICV3 = DEVICES["gicv3"]
GICV3_ITS = DEVICES["gicv3-its"]
MAX_CPUS, MAX_IRQS = GICV3.max_cpus, max(GICV3.irq_counts)


def measure(fn: Callable[[], str], runs: int) -> tuple[float, float, float, str]:
    times, out = [], ""
    for _ in range(runs):
        t0 = time.perf_counter()
        out = fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times), min(times), max(times), out


def roundtrip(device, path: Path, cpus: int | None, irqs: int | None) -> Callable[[], str]:
    seq = load(path, DEVICES)

    def run() -> str:
        r = prove_roundtrip(device, seq, cpus=cpus, irqs=irqs)
        return f"{r.verdict} ({', '.join(r.labels)})" if r.labels else r.verdict

    return run


def clear_then_set(kernel: str) -> Callable[[], str]:
    """Every set/clear pair of the table (each pair's kinds at 512 vCPUs x 992)."""
    def run() -> str:
        results = [prove_clear_then_set(GICV3, kernel, s, c) for s, c in pairs(GICV3)]
        ok = sum(r.matches for r in results)
        return f"{ok} of {len(results)} pairs as expected"

    return run


def invariant(device, kernel: str, counts: list[int] | None) -> Callable[[], str]:
    def run() -> str:
        r = prove_invariant(device, kernel, cpu_counts=counts)
        return r.verdict

    return run


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--runs", type=int, default=5, help="runs per measurement (default 5)")
    args = ap.parse_args()
    v3 = SEQUENCES_DIR / "gicv3"
    its = SEQUENCES_DIR / "gicv3-its"
    rows = [
        ("round trip, gicv3, QEMU current (7.1, fresh)", f"{MAX_CPUS} vCPUs x {MAX_IRQS}",
         roundtrip(GICV3, v3 / "qemu-current-7.1-fresh.toml", MAX_CPUS, MAX_IRQS)),
        ("round trip, gicv3, TYPER2 v2 4.1->4.1 (7.1)", f"{MAX_CPUS} vCPUs x {MAX_IRQS}",
         roundtrip(GICV3, v3 / "qemu-typer2-v2-gicv4.1-to-gicv4.1-7.1.toml", MAX_CPUS, MAX_IRQS)),
        ("round trip, gicv3-its (LPIs), QEMU current (7.1)", f"{MAX_CPUS} vCPUs x {MAX_IRQS}",
         roundtrip(GICV3_ITS, its / "qemu-current-7.1-fresh.toml", MAX_CPUS, MAX_IRQS)),
        ("round trip, gicv3-its (LPIs), kernel-documented order", f"{MAX_CPUS} vCPUs x {MAX_IRQS}",
         roundtrip(GICV3_ITS, its / "kernel-documented-order-7.1.toml", MAX_CPUS, MAX_IRQS)),
        ("round trip, gicv3, QEMU current (7.1, fresh)", "all sizes (1-512 vCPUs x 64-992)",
         roundtrip(GICV3, v3 / "qemu-current-7.1-fresh.toml", None, None)),
        ("invariant inductive, gicv3, 7.1", f"{MAX_CPUS} vCPUs", invariant(GICV3, "7.1", [MAX_CPUS])),
        ("invariant inductive, gicv3, 7.1", "all sizes (1-512 vCPUs)", invariant(GICV3, "7.1", None)),
        ("clear-then-set, gicv3, 7.1 (every pair)", f"{MAX_CPUS} vCPUs x {MAX_IRQS}", clear_then_set("7.1")),
    ]
    print(f"{'obligation':<55} {'size':<34} {'median':>7} {'min':>7} {'max':>7}  verdict")
    for name, size, fn in rows:
        med, lo, hi, out = measure(fn, args.runs)
        print(f"{name:<55} {size:<34} {med:7.2f} {lo:7.2f} {hi:7.2f}  {out}", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
