"""Benchmark ``gicproof conform`` on every cached kernel: per kernel, the programs run
(lifecycle programs among them), the operations compared (lifecycle operations among
them) and the disagreements, summed over the runs, and the medians over the runs of the
boot time (to /init, and in total) and of the operations per second on the kernel.

    python bench/conform.py [--programs N] [--runs R] [--seed S] [--lifecycle P]
                            [--kernels 5.10,6.1,...] [--device gicv2|gicv3|gicv3-its]

Run r uses seed S + r, so the runs compare different programs.
"""

from __future__ import annotations

import argparse
import statistics
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from models.kernel import harness  # noqa: E402
from proofs.conform import LIFECYCLE_SHARE, conform  # noqa: E402


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--programs", type=int, default=1000, help="programs per run (default 1000)")
    ap.add_argument("--runs", type=int, default=3, help="boots per kernel (default 3)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--lifecycle", type=float, default=LIFECYCLE_SHARE,
                    help=f"proportion of lifecycle programs (default {LIFECYCLE_SHARE})")
    ap.add_argument("--kernels", default=",".join(k.label for k in harness.list_kernels()))
    ap.add_argument("--device", default="gicv2", choices=("gicv2", "gicv3", "gicv3-its"),
                    help="the device (default gicv2)")
    args = ap.parse_args()
    rows = []
    worst = 0
    for label in [k for k in args.kernels.split(",") if k]:
        reps = []
        for r in range(max(1, args.runs)):
            rep = conform(label, programs=args.programs, seed=args.seed + r, lifecycle=args.lifecycle,
                          device=args.device)
            worst = max(worst, rep.exit_code)
            if rep.disagreements:
                print(rep.render(), file=sys.stderr)
            reps.append(rep)
        rows.append((label, reps[0].release, str(len(reps)),
                     str(sum(x.programs for x in reps)), str(sum(x.lifecycle_programs for x in reps)),
                     str(sum(x.operations for x in reps)), str(sum(x.lifecycle_operations for x in reps)),
                     str(sum(x.disagreeing_programs for x in reps)),
                     f"{statistics.median(x.boot_seconds for x in reps):.1f}",
                     f"{statistics.median(x.total_seconds for x in reps):.1f}",
                     f"{statistics.median(x.ops_per_second for x in reps):.0f}",
                     f"{statistics.median(x.ioctls / x.ioctl_seconds if x.ioctl_seconds else 0 for x in reps):.0f}"))
    head = ("kernel", "release", "runs", "programs", "lifecycle progs", "operations", "lifecycle ops",
            "disagreements", "boot s (median)", "total s (median)", "ops/s (median)", "ioctls/s (median)")
    widths = [max(len(r[i]) for r in [head, *rows]) for i in range(len(head))]
    for r in [head, *rows]:
        print("  ".join(c.rjust(w) for c, w in zip(r, widths, strict=True)))
    return worst


if __name__ == "__main__":
    sys.exit(main())
