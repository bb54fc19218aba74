"""Confirm every shipped GICv2 and GICv3 counterexample on every cached real kernel.

    python bench/on_kernel.py [--kernels 5.10,6.1,...] [--devices gicv2,gicv3,gicv3-its] [--details]

For each cached kernel, every shipped sequence of the devices (spec/sequences/DEVICE/*.toml) is
proved under the semantics of that kernel's real release, on both sides: ``kernel`` and
``source_kernel`` (the sequence format's destination and source kernels) are both set to
the release, since one booted kernel plays source and destination. Every counterexample
of every file is then run on the kernel (``proofs.on_kernel.confirm``: two boots per
kernel and QEMU host: GICv2 files on gic-version=2, GICv3 files on gic-version=3; files
whose host kind QEMU cannot provide, gicv4.1 and gicv3-pri7, are "not run"). Prints one row per kernel
and file: counterexamples, confirmed, disagreed, not buildable, not observable; totals
per kernel and overall; boots and seconds. ``--details`` also prints every outcome.
Exit status 1 if any kernel disagreed with the model, 0 otherwise.
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from models.kernel import harness  # noqa: E402
from models.kernel.model import release_of  # noqa: E402
from proofs.cli import run_sequence  # noqa: E402
from proofs.on_kernel import (  # noqa: E402
    CONFIRMED,
    DISAGREED,
    NOT_BUILDABLE,
    NOT_OBSERVABLE,
    NOT_RUN,
    confirm,
)
from spec.devices import DEVICES, SEQUENCES_DIR  # noqa: E402
from spec.sequence import load  # noqa: E402

COLUMNS = (CONFIRMED, DISAGREED, NOT_BUILDABLE, NOT_OBSERVABLE, NOT_RUN)
SHORT = {CONFIRMED: "confirmed", DISAGREED: "disagreed", NOT_BUILDABLE: "not buildable",
         NOT_OBSERVABLE: "not observable", NOT_RUN: "not run"}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--kernels", default=",".join(k.label for k in harness.list_kernels()))
    ap.add_argument("--devices", default="gicv2,gicv3", help="devices whose shipped files to run")
    ap.add_argument("--details", action="store_true", help="print every outcome")
    args = ap.parse_args()
    files = [f for d in args.devices.split(",") if d for f in sorted((SEQUENCES_DIR / d).glob("*.toml"))]
    head = ("kernel", "file", "counterexamples", *(SHORT[c] for c in COLUMNS))
    rows: list[tuple[str, ...]] = [head]
    grand = dict.fromkeys(COLUMNS, 0)
    grand_cx = 0
    disagreed = False
    boots = 0
    t_all = time.perf_counter()
    timing = []
    for label in [k for k in args.kernels.split(",") if k]:
        k = harness.find_kernel(label)
        release = release_of(k)
        t0 = time.perf_counter()
        reports = []
        for f in files:
            seq = load(f, DEVICES)
            seq = dataclasses.replace(seq, kernel=release, source_kernel="")
            reports.append(run_sequence(seq))
        prove_s = time.perf_counter() - t0
        rep = confirm(reports, k)
        boots += rep.boots
        timing.append(f"{label} ({release}): proofs {prove_s:.1f} s, {rep.boots} boots, "
                      f"{rep.boot_seconds:.1f} s in QEMU, {rep.ioctls} ioctls, on-kernel total "
                      f"{rep.seconds:.1f} s")
        disagreed |= rep.disagreed
        totals = dict.fromkeys(COLUMNS, 0)
        for r in reports:
            outs = [o for o in rep.outcomes if o.file == r.seq.path]
            counts = {c: sum(o.status == c for o in outs) for c in COLUMNS}
            for c in COLUMNS:
                totals[c] += counts[c]
            rows.append((label, Path(r.seq.path).name, str(len(outs)), *(str(counts[c]) for c in COLUMNS)))
        n = sum(totals.values())
        grand_cx += n
        for c in COLUMNS:
            grand[c] += totals[c]
        rows.append((label, f"total ({release})", str(n), *(str(totals[c]) for c in COLUMNS)))
        if args.details or rep.disagreed:
            print(rep.render(), file=sys.stderr)
    rows.append(("all", "total", str(grand_cx), *(str(grand[c]) for c in COLUMNS)))
    widths = [max(len(row[i]) for row in rows) for i in range(len(head))]
    for row in rows:
        print("  ".join(c.ljust(w) if i < 2 else c.rjust(w) for i, (c, w) in enumerate(zip(row, widths, strict=True))))
    print()
    for t in timing:
        print(t)
    print(f"{boots} boots, {time.perf_counter() - t_all:.1f} s in all")
    return 1 if disagreed else 0


if __name__ == "__main__":
    sys.exit(main())
