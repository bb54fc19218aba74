#!/usr/bin/env python3
"""The mutation suite: how sound is gicproof?

Every mutation operator (tests/mutants.py: drop, swap adjacent and non-adjacent,
duplicate, clear view written with zeros, narrowed index, other kernel, added/removed
source_kernel, dropped save step) on every shipped sequence. Each mutant is proved for all
sizes (``proofs.cli.run_sequence``) and simulated concretely from random reachable states
at 1x64, 2x96 and 3x128 (``models.reachable``); PROVED mutants are also checked
exhaustively on tiny machines. The device invariant is checked on every state the
exhaustive search reaches, for every kernel.

Prints the counts: mutants, verdicts, symbolic labels confirmed concretely,
disagreements (each with its mutant, label and the concrete witness path), PROVED mutants
with a concrete loss, reachable states breaking the invariant per kernel, time.
Exit 1 if there is any disagreement, PROVED mutant with a loss, or invariant break.

    python bench/mutate.py [--quick] [--seed N] [--workers 2]
"""

from __future__ import annotations

import argparse
import sys
import time
from collections import Counter
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))

import mutants as mt  # noqa: E402

from models.reachable import describe_path  # noqa: E402
from spec.devices import DEVICES  # noqa: E402

_POOLS: mt.Pools = {}


def _init(seed: int, walks: int, length: int) -> None:
    global _POOLS
    _POOLS = mt.make_pools(seed, walks, length)


def _evaluate(job: tuple[mt.Mutant, int, float | None, int]) -> mt.MutantResult:
    m, sources, timeout, seed = job
    return mt.evaluate(m, _POOLS, sources, timeout, seed)


def _explore(job: tuple[str, object]) -> dict:
    kernel, cfg = job
    t0 = time.perf_counter()
    ex = mt.explored(kernel, cfg)  # type: ignore[arg-type]
    return {"kernel": kernel, "config": cfg, "states": len(ex), "complete": ex.complete,
            "broken": ex.broken, "breaks": ex.breaks, "seconds": time.perf_counter() - t0}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--quick", action="store_true",
                   help="a seeded sample of at most 4 mutants per file and operator, fewer sources")
    p.add_argument("--seed", type=int, default=0, help="seed of the mutant sample and the random walks")
    p.add_argument("--workers", type=int, default=2, help="worker processes (default 2)")
    p.add_argument("--timeout", type=float, default=None,
                   help="also a wall-clock limit per solver query (s); default none (the deterministic rlimit budget)")
    p.add_argument("--limit", type=int, default=0, help="only the first N mutants (a smoke test)")
    args = p.parse_args(argv)
    t0 = time.perf_counter()
    walks, length, sources = (40, 40, 20) if args.quick else (80, 40, 40)
    muts = mt.all_mutants(quick=args.quick, seed=args.seed)
    if args.limit:
        muts = muts[:args.limit]
    spec = DEVICES["gicv2"]
    print(f"mutation suite: {len(muts)} mutants of the shipped sequences "
          f"({'quick sample' if args.quick else 'all'}), seed {args.seed}; concrete sizes "
          f"{', '.join(f'{c.cpus}x{c.irqs}' for c in mt.SIZES)}, {sources} sources per size")
    jobs = [(m, sources, args.timeout, args.seed) for m in muts]
    results: list[mt.MutantResult] = []
    with ProcessPoolExecutor(args.workers, initializer=_init, initargs=(args.seed, walks, length)) as ex:
        inv_jobs = [(k, cfg) for k in spec.versions for cfg in mt.exhaustive_configs()]
        inv_futs = [ex.submit(_explore, j) for j in inv_jobs]
        for n, r in enumerate(ex.map(_evaluate, jobs, chunksize=2), 1):
            results.append(r)
            if sys.stderr.isatty():
                sys.stderr.write(f"\r\033[K[{time.perf_counter() - t0:6.1f}s] {n}/{len(jobs)} {r.name[:80]}")
        explorations = [f.result() for f in inv_futs]
    if sys.stderr.isatty():
        sys.stderr.write("\r\033[K")

    print(f"\nmutants: {len(results)}")
    for op, n in sorted(Counter(r.operator for r in results).items()):
        print(f"  {op:<14} {n}")
    print("\nverdicts:")
    for v, n in sorted(Counter(r.verdict for r in results).items()):
        print(f"  {v:<14} {n}")
    for r in results:
        if r.verdict in ("UNKNOWN", "INPUT-ERROR") or r.error:
            if r.verdict != "INPUT-ERROR":
                print(f"    {r.verdict}: {r.name} {r.error}")
    sym = sum(len(r.symbolic) for r in results)
    conf = sum(len(r.confirmed) for r in results)
    replayed = sum(r.replayed for r in results)
    print(f"\nsymbolic labels: {sym} ({replayed} witnesses replayed by the prover); "
          f"confirmed by concrete simulation: {conf}; not hit by the simulation: {sym - conf}")
    missed = Counter(lbl for r in results for lbl in r.unconfirmed)
    if missed:
        print("  not hit, by label: " + ", ".join(f"{k} x{v}" for k, v in sorted(missed.items())))
    dis = [d for r in results for d in r.disagreements]
    print(f"\ndisagreements: {len(dis)} in {sum(bool(r.disagreements) for r in results)} mutants")
    by_label = Counter(d.label for d in dis)
    for lbl, n in sorted(by_label.items()):
        print(f"  {lbl}: {n}")
    for d in dis:
        print(f"  - {d.describe()}")
    proved_loss = [r for r in results if r.proved_with_loss]
    print(f"\nPROVED mutants with a concrete loss: {len(proved_loss)} "
          f"(of {sum(r.verdict == 'PROVED' for r in results)} PROVED, each checked exhaustively)")
    for r in proved_loss:
        print(f"  - {r.name}: {', '.join(sorted(set(r.concrete) | set(r.exhaustive or {})))}")
    print("\nreachable states breaking the invariant (exhaustive search, 1 CPU, one interrupt of "
          f"each kind: {', '.join(map(str, mt.EXHAUSTIVE_INTIDS))}):")
    for k in spec.versions:
        rows = [e for e in explorations if e["kernel"] == k]
        states = sum(e["states"] for e in rows)
        broken = sum(e["broken"] for e in rows)
        done = all(e["complete"] for e in rows)
        print(f"  kernel {k}: {broken} of {states} reachable states{'' if done else ' (search cut short)'}"
              f" ({sum(e['seconds'] for e in rows):.0f} s)")
        for e in rows:
            for b in e["breaks"]:
                vals = " ".join(f"{f}={v:#x}" for f, v in sorted(b.fields.items()))
                print(f"    - {b.where} ({vals}) after: {describe_path(b.path)}")
    seconds = time.perf_counter() - t0
    print(f"\ntotal time: {seconds:.1f} s ({args.workers} workers)")
    bad = bool(dis or proved_loss or any(e["broken"] for e in explorations))
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
