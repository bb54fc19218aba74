"""Command-line value types and the solver budget options, shared by every subcommand
(``proofs.cli`` and ``proofs.cpregs_cli``)."""

from __future__ import annotations

import argparse
import math

from proofs import solver

TIMEOUT_MIN_S, TIMEOUT_MAX_S = 0.001, 86400.0


def positive(text: str) -> int:
    try:
        v = int(text, 0)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None
    if v <= 0:
        raise argparse.ArgumentTypeError(f"expected a positive number, got {v}")
    return v


def seconds(text: str) -> float:
    """A per-query solver timeout in seconds. Z3 takes whole milliseconds and reads 0 as
    "no limit", so anything below 1 ms would silently mean no timeout at all."""
    try:
        v = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected seconds (e.g. 30 or 0.5), got {text!r}") from None
    if not math.isfinite(v):
        raise argparse.ArgumentTypeError(f"the timeout must be a finite number of seconds, "
                                         f"{TIMEOUT_MIN_S:g} to {TIMEOUT_MAX_S:g}, not {text!r}")
    if v < TIMEOUT_MIN_S:
        raise argparse.ArgumentTypeError(f"the timeout must be at least {TIMEOUT_MIN_S:g} s (1 ms, the solver's "
                                         f"resolution), not {text!r}")
    if v > TIMEOUT_MAX_S:
        raise argparse.ArgumentTypeError(f"the timeout must be at most {TIMEOUT_MAX_S:g} s (one day), not {text!r}")
    return v


TIMEOUT_HELP = (f"also a wall-clock limit per solver query, in seconds, {TIMEOUT_MIN_S:g} to {TIMEOUT_MAX_S:g} "
                "(default none: verdicts then do not depend on the machine's load); running out is UNKNOWN")


def budget_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--rlimit", type=positive, default=solver.DEFAULT_RLIMIT, metavar="N",
                   help=f"Z3 resource limit per solver query (deterministic; default {solver.DEFAULT_RLIMIT}); "
                        "running out is UNKNOWN")
    p.add_argument("--timeout", type=seconds, default=None, metavar="S", help=TIMEOUT_HELP)


def budget(args: argparse.Namespace) -> solver.Budget:
    ms = None if args.timeout is None else max(1, round(args.timeout * 1000))
    return solver.Budget(args.rlimit, ms)
