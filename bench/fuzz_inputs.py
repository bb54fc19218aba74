#!/usr/bin/env python3
"""Fuzz gicproof's inputs: N generated malformed sequence files (shipped GICv2 sequences
mutated at the text level, tests/malformed_gen.py) and a list of bad command lines, all
through the CLI in-process (``proofs.cli.main``), and count what happened:

* files tried; rejected cleanly (exit 2, one line ``gicproof: error: FILE:LINE: ...`` with
  LINE a line of the file holding the key or table the error is about); accepted (a
  mutation that left the file valid, proved at 1 CPU x 64 interrupts: exit 0, 1 or 3);
  rejected with a bad message; tracebacks and other exits;
* the same for the command lines (each must be refused with exit 2 and a message).

The last two counts of each must be 0; the script exits 1 otherwise and prints the first
problems with the seed that reproduces them. Run from the repository root:

    python bench/fuzz_inputs.py [--count 10000] [--seed 0] [--jobs N]
"""

from __future__ import annotations

import argparse
import collections
import contextlib
import io
import multiprocessing
import os
import random
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))
sys.path.insert(0, str(ROOT))

import malformed_gen as g  # noqa: E402

from proofs.cli import main  # noqa: E402

QEMU = str(ROOT / "spec" / "sequences" / "gicv2" / "qemu-current-6.12.toml")


def command_lines(tmp: Path) -> list[list[str]]:
    """Command lines that must each be refused with exit 2, quickly (before any proof)."""
    bad_file = tmp / "bad.toml"
    bad_file.write_text('name = "t"\ndevice = "gicv2"\n[[restore]]\nwrite = "GICD_CTRL"\n')
    huge = "9" * 5000
    return [
        [], ["frobnicate"], ["--version"], ["--bogus"],
        ["prove"], ["prove", ""], ["prove", str(tmp / "nope.toml")], ["prove", str(ROOT / "spec")],
        ["prove", "/dev/null"], ["prove", "/dev/zero"], ["prove", "a\0b"], ["prove", "/nonexistent/dir/x.toml"],
        ["prove", str(bad_file)], ["prove", str(bad_file), "--kernel", "6.12"],
        ["prove", QEMU, "--cpus", "0"], ["prove", QEMU, "--cpus", "-1"], ["prove", QEMU, "--cpus", "9"],
        ["prove", QEMU, "--cpus", "abc"], ["prove", QEMU, "--cpus", "1e3"], ["prove", QEMU, "--cpus", huge],
        ["prove", QEMU, "--cpus"], ["prove", QEMU, "--irqs", "100"], ["prove", QEMU, "--irqs", "0"],
        ["prove", QEMU, "--irqs", "2048"], ["prove", QEMU, "--kernel", "2.6"], ["prove", QEMU, "--kernel", ""],
        ["prove", QEMU, "--destination", "elsewhere"], ["prove", QEMU, "--encoding", "bits"],
        ["prove", QEMU, "--timeout", "nan"], ["prove", QEMU, "--timeout", "inf"],
        ["prove", QEMU, "--timeout", "1e308"], ["prove", QEMU, "--timeout", "0.0001"],
        ["prove", QEMU, "--timeout", "0"], ["prove", QEMU, "--timeout=-5"], ["prove", QEMU, "--timeout", "abc"],
        ["prove", QEMU, "--timeout", ""], ["prove", QEMU, "--timeout", huge], ["prove", QEMU, "extra"],
        ["prove", QEMU, "--json", "--bogus"],
        ["check", "--timeout", "nan"], ["check", "--timeout=-inf"], ["check", "extra"],
        ["check", "--jobs", "0"], ["check", "--jobs", "x"], ["check", "--jobs=-1"], ["check", "--jobs", ""],
        ["graph"], ["graph", "gicv5"], ["graph", ""], ["graph", "gicv2", "--kernel", "9.9"],
        ["graph", "gicv2", "--versus", "1.0"], ["graph", "gicv2", "--host", "alien"],
        ["graph", "gicv2", "--cpus", "9"], ["graph", "gicv2", "--cpus", "0"], ["graph", "gicv2", "--format", "pdf"],
        ["graph", "gicv2", "--sequence", str(tmp / "nope.toml")], ["graph", "gicv2", "--sequence", ""],
        ["graph", "gicv2", "--sequence", str(ROOT / "spec")], ["graph", "gicv2", "--sequence", str(bad_file)],
        ["graph", "gicv2", "-o", "/nonexistent/dir/x.dot"], ["graph", "gicv2", "-o", "/"],
        ["graph", "gicv2", "-o", ""], ["graph", "gicv2", "-o", "a\0b"], ["graph", "gicv2", "--timeout", "inf"],
        ["graph", "gicv2", "--destination", "nowhere"],
        ["describe"], ["describe", "gicv9"], ["describe", "gicv2", "--kernel", "1.0"], ["describe", "gicv2", "extra"],
    ]


def run(args: list[str]) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = main(args)
    return code, out.getvalue(), err.getvalue()


def fuzz_files(count: int, seed: int, tmp: Path, keep: Path, problems: list[str],
               start: int = 0) -> collections.Counter:
    c: collections.Counter = collections.Counter()
    t0 = time.perf_counter()
    for k in range(start, start + count):
        rnd = random.Random(f"{seed}:{k}")
        data = g.malformed(rnd)
        p = g.write(tmp, data)
        code, out, err = run(["prove", str(p), *g.CHEAP])
        problem = g.judge(str(p), data, code, out, err)
        c["tried"] += 1
        if problem:
            kind = "traceback or other exit" if ("Traceback" in problem or code not in (0, 1, 2, 3)) \
                else "rejected, bad message"
            c[kind] += 1
            kept = keep / f"problem-{seed}-{k}.toml"
            kept.write_bytes(data)
            problems.append(f"file seed {seed}:{k} ({kept}): {problem[:300]}")
        elif code == 2:
            c["rejected cleanly"] += 1
        else:
            c["accepted"] += 1
        if (k + 1 - start) % 1000 == 0:
            print(f"  files {start}..{k}: {time.perf_counter() - t0:.0f} s", file=sys.stderr)
    return c


def _worker(job: tuple[int, int, int, str]) -> tuple[collections.Counter, list[str]]:
    """Files start..start+count-1 of the seed, in a process of their own."""
    seed, start, count, keep = job
    problems: list[str] = []
    with tempfile.TemporaryDirectory(prefix="gicproof-fuzz-") as d:
        c = fuzz_files(count, seed, Path(d), Path(keep), problems, start)
    return c, problems


def fuzz_command_lines(tmp: Path, problems: list[str]) -> collections.Counter:
    c: collections.Counter = collections.Counter()
    for args in command_lines(tmp):
        code, out, err = run(args)
        c["tried"] += 1
        if "Traceback" in err or "Traceback" in out or code not in (0, 1, 2, 3):
            c["traceback or other exit"] += 1
            problems.append(f"command line {args!r}: exit {code}: {err[-300:]}")
        elif code == 2 and "error" in err:
            c["rejected cleanly"] += 1
        elif code == 2:
            c["rejected, bad message"] += 1
            problems.append(f"command line {args!r}: exit 2 without an error message: {err[-300:]!r}")
        else:
            c["accepted"] += 1
            problems.append(f"command line {args!r} was accepted (exit {code})")
    return c


KINDS = ("tried", "rejected cleanly", "accepted", "rejected, bad message", "traceback or other exit")


def main_(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--count", type=int, default=10000, help="malformed files to generate (default 10000)")
    ap.add_argument("--seed", type=int, default=0, help="seed of the generator (default 0)")
    ap.add_argument("--jobs", type=int, default=os.cpu_count() or 1,
                    help="processes for the files (default: one per CPU)")
    args = ap.parse_args(argv)
    problems: list[str] = []
    t0 = time.perf_counter()
    keep = Path(tempfile.mkdtemp(prefix="gicproof-fuzz-problems-"))  # the inputs of problems
    with tempfile.TemporaryDirectory(prefix="gicproof-fuzz-") as d:
        tmp = Path(d)
        jobs = max(1, min(args.jobs, args.count))
        if jobs == 1:
            files = fuzz_files(args.count, args.seed, tmp, keep, problems)
        else:
            share = -(-args.count // jobs)
            work = [(args.seed, s, min(share, args.count - s), str(keep)) for s in range(0, args.count, share)]
            files = collections.Counter()
            # spawn, not fork: a fresh interpreter per worker, nothing of Z3 inherited
            with multiprocessing.get_context("spawn").Pool(len(work)) as pool:
                for c, ps in pool.map(_worker, work):
                    files.update(c)
                    problems.extend(ps)
        t_files = time.perf_counter() - t0
        lines = fuzz_command_lines(tmp, problems)
    seconds = time.perf_counter() - t0
    print(f"malformed sequence files ({t_files:.0f} s):")
    for k in KINDS:
        print(f"  {k:<26} {files[k]}")
    print(f"bad command lines ({seconds - t_files:.1f} s):")
    for k in KINDS:
        print(f"  {k:<26} {lines[k]}")
    print(f"total {seconds:.0f} s")
    if problems:
        print(f"\n{len(problems)} problems (inputs kept in {keep}); the first 20:")
        for p in problems[:20]:
            print("  " + p)
    if not any(keep.iterdir()):
        keep.rmdir()
    bad = files["traceback or other exit"] + files["rejected, bad message"] + \
        lines["traceback or other exit"] + lines["rejected, bad message"] + lines["accepted"]
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main_())
