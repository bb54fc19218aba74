"""Benchmark ``gicproof conform`` on every cached kernel: programs run, operations
compared, disagreements, boot time and operations per second.

    python bench/conform.py [--programs N] [--seed S] [--kernels 5.10,6.1,...]
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from models.kernel import harness  # noqa: E402
from proofs.conform import conform  # noqa: E402


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--programs", type=int, default=1000)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--kernels", default=",".join(k.label for k in harness.list_kernels()))
    args = ap.parse_args()
    rows = []
    worst = 0
    for label in [k for k in args.kernels.split(",") if k]:
        rep = conform(label, programs=args.programs, seed=args.seed)
        worst = max(worst, rep.exit_code)
        rows.append((label, rep.release, str(rep.programs), str(rep.operations),
                     str(rep.disagreeing_programs), f"{rep.boot_seconds:.1f}",
                     f"{rep.total_seconds:.1f}", f"{rep.ops_per_second:.0f}",
                     f"{rep.ioctls / rep.ioctl_seconds if rep.ioctl_seconds else 0:.0f}"))
        if rep.disagreements:
            print(rep.render(), file=sys.stderr)
    head = ("kernel", "release", "programs", "operations", "disagreements", "boot s",
            "total s", "ops/s", "ioctls/s")
    widths = [max(len(r[i]) for r in [head, *rows]) for i in range(len(head))]
    for r in [head, *rows]:
        print("  ".join(c.rjust(w) for c, w in zip(r, widths, strict=True)))
    return worst


if __name__ == "__main__":
    sys.exit(main())
