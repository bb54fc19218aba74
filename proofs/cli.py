"""The ``gicproof`` command line.

    gicproof check [--json] [--jobs N] [--rlimit N] [--timeout S]
    gicproof prove FILE [--kernel X.Y] [--destination fresh|any] [--cpus N] [--irqs M]
                        [--encoding classes|full] [--rlimit N] [--timeout S] [--json]
                        [--on-kernel K]
    gicproof graph DEVICE [--kernel X.Y] [--host KIND] [--sequence FILE] [--format text|dot|svg|png]
                          [-o FILE] [--versus X.Y] [--destination fresh|any] [--cpus N] [--json]
    gicproof describe DEVICE [--kernel X.Y]
    gicproof conform DEVICE --kernel K [--programs N] [--seed S] [--lifecycle P] [--gic N] [--json]
    gicproof matrix FILE [--kernels A,B,..] [--hosts X,Y,..] [--cpus N] [--irqs M] [--jobs N]
                         [--rlimit N] [--timeout S] [--json]
    gicproof regress [--base REV] [--json] [--jobs N] [--rerun changed|all|none] [--devices A,B,..]
    gicproof cpregs prove|matrix|migrate|variants|describe ...   (proofs/cpregs_cli.py)

Exit status: 0 proved / as expected, 1 counterexample or unexpected verdict, 2 bad input,
3 unknown (resource limit or timeout, solver unknown, or a witness that did not replay),
4 a bug in gicproof (an unexpected exception: one line on stderr; GICPROOF_DEBUG=1 shows the
traceback), 5 (prove --on-kernel) a real kernel disagreed with the model.

Solver budget: every query runs under Z3's deterministic resource limit (``--rlimit``,
default ``solver.DEFAULT_RLIMIT``), so verdicts do not depend on the machine's load; a
wall-clock limit per query is opt-in (``--timeout S``).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import sys
import time
import traceback
from collections.abc import Callable
from pathlib import Path

from models.kernel import harness
from proofs import check, cpregs_cli, matrix, on_kernel, regress
from proofs import review as review_mod
from proofs.check import graph_for, run_sequence
from proofs.conform import conform, resolve_kernel
from proofs.executor import default_jobs, make_executor, stop
from proofs.graph import check_sequence
from proofs.graph_report import graph_json, render_dot, render_image, render_text
from proofs.options import budget as _budget
from proofs.options import budget_options as _budget_options
from proofs.options import positive as _positive
from proofs.report import JSON_VERSION, render_sequence, sequence_json
from spec.device import DeviceSpec
from spec.devices import DEVICES, SEQUENCES_DIR, shipped_sequences
from spec.sequence import SequenceError, load, printable

EXIT_OK, EXIT_FAIL, EXIT_INPUT, EXIT_UNKNOWN, EXIT_BUG = 0, 1, 2, 3, 4
EXIT_KERNEL_DISAGREES = 5  # prove --on-kernel: the real kernel answered otherwise than the model


class Progress:
    """Progress on a terminal (stderr), nothing otherwise."""

    def __init__(self, enabled: bool):
        self.enabled = enabled
        self.t0 = time.perf_counter()

    def __call__(self, msg: str) -> None:
        if self.enabled:
            sys.stderr.write(f"\r\033[K[{time.perf_counter() - self.t0:5.1f}s] {msg}")
            sys.stderr.flush()

    def done(self) -> None:
        if self.enabled:
            sys.stderr.write("\r\033[K")
            sys.stderr.flush()


def _jobs(text: str) -> int:
    """How many obligations ``check`` runs at once: a whole number, 1 or more."""
    try:
        v = int(text, 10)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number of parallel jobs (1 or more), "
                                         f"got {text!r}") from None
    if v < 1:
        raise argparse.ArgumentTypeError(f"expected at least 1 job (1 runs the obligations one after "
                                         f"another), got {v}")
    return v


def cmd_prove(args: argparse.Namespace) -> int:
    seq = load(args.file, DEVICES)
    spec = DEVICES[seq.device]
    if args.kernel is not None and (why_not := spec.kernel_error(args.kernel)):
        return _input_error(f"--kernel: {why_not}")
    if args.host is not None and args.host not in (spec.hosts or [spec.default_host]):
        return _input_error(f"--host {args.host}: {spec.name} models the host kinds: "
                            f"{', '.join(spec.hosts) or spec.default_host or 'none'}")
    if (why_not := _size_error(spec, args.cpus, args.irqs)):
        return _input_error(why_not)
    progress = Progress(sys.stderr.isatty() and not args.json)
    known = [a.name for a in spec.assumptions]
    for a in args.assume:
        if a not in known:
            return _input_error(f"--assume {a}: {spec.name} declares {', '.join(known) or 'no assumptions'}")
    oracle = None
    kernel = args.kernel
    if args.on_kernel is not None:
        parts = on_kernel.PARTS.get(spec.name)
        if parts is not None and (why := on_kernel.unsupported_hosts(parts, (args.host, seq.host, seq.source_host))):
            return _input_error(f"--on-kernel: the file needs {why}; only a {' or '.join(parts.hosts)} host "
                                "can be confirmed there")
        try:
            oracle = on_kernel.resolve(spec, seq, args.on_kernel, args.kernel)
        except ValueError as e:
            return _input_error(str(e))
        kernel = oracle.kernel_override
    rep = run_sequence(seq, kernel, args.destination, args.cpus, args.irqs, args.encoding,
                       _budget(args), progress, tuple(args.assume), args.host)
    progress.done()
    code = rep.exit_code()
    on = None
    if oracle is not None:
        try:
            on = on_kernel.confirm([rep], oracle.kernel, progress=progress)
        except harness.KernelOracleError as e:
            progress.done()
            print(f"gicproof: the kernel could not be booted: {printable(str(e))}", file=sys.stderr)
            return EXIT_UNKNOWN
        if on.disagreed and code != EXIT_UNKNOWN:
            code = EXIT_KERNEL_DISAGREES
    progress.done()
    if args.json:
        result = sequence_json(rep)
        if on is not None:
            result["on_kernel"] = on.json() | {"note": oracle.note if oracle else ""}
        print(json.dumps({"gicproof": JSON_VERSION, "command": "prove", "results": [result],
                          "exit": code}, indent=2))
    else:
        print(render_sequence(rep))
        if on is not None:
            print()
            if oracle is not None and oracle.note:
                print(f"note: {oracle.note}")
            print(on.render())
    return code


def _names(option: str, text: str, valid: list[str], check_one: Callable[[str], str]) -> tuple[list[str], str]:
    """A comma-separated list of names (``--kernels``, ``--hosts``), each checked, in the
    order given and without repeats; or the error message."""
    names = [n.strip() for n in text.split(",")]
    if not all(names):
        return [], f"{option} {text!r}: give a comma-separated list of names, e.g. {','.join(valid[:2])}"
    for n in names:
        if why_not := check_one(n):
            return [], f"{option}: {why_not}"
    return list(dict.fromkeys(names)), ""


def cmd_matrix(args: argparse.Namespace) -> int:
    seq = load(args.file, DEVICES)
    spec = DEVICES[seq.device]
    kernels = hosts = None
    if args.kernels is not None:
        kernels, err = _names("--kernels", args.kernels, list(spec.versions), spec.kernel_error)
        if err:
            return _input_error(f"{err} (any release X.Y or X.Y.Z {spec.name} models; its semantic revisions, "
                                f"the default: {','.join(spec.versions)})")
    valid_hosts = list(spec.hosts) or [spec.default_host]
    if args.hosts is not None:
        hosts, err = _names("--hosts", args.hosts, valid_hosts, lambda h: "" if h in valid_hosts else (
            f"host '{h}' is not modelled for {spec.name}: valid: {', '.join(valid_hosts)}"))
        if err:
            return _input_error(err)
    if (why_not := _size_error(spec, args.cpus, args.irqs)):
        return _input_error(why_not)
    progress = Progress(sys.stderr.isatty() and not args.json)
    jobs = args.jobs if args.jobs is not None else default_jobs()
    executor = make_executor(jobs)
    try:
        m = matrix.run(executor, args.file, kernels, hosts, args.cpus, args.irqs, _budget(args), progress)
    except BaseException:
        stop(executor)  # Ctrl-C or a job's exception: do not wait for the other cells
        raise
    executor.shutdown()
    progress.done()
    code = m.exit_code()
    if args.json:
        print(json.dumps({"gicproof": JSON_VERSION, "command": "matrix", "results": [matrix.matrix_json(m)],
                          "exit": code}, indent=2))
    else:
        print(matrix.render(m))
    return code


def cmd_regress(args: argparse.Namespace) -> int:
    devices = None
    if args.devices is not None:
        devices = [d.strip() for d in args.devices.split(",")]
        if not all(devices):
            return _input_error(f"--devices {args.devices!r}: give a comma-separated list of device names, "
                                f"e.g. {','.join(DEVICES)}")
    progress = Progress(sys.stderr.isatty() and not args.json)
    jobs = args.jobs if args.jobs is not None else default_jobs()
    try:
        rep = regress.run(Path.cwd(), args.base, jobs, args.rerun, devices, progress)
    except regress.RegressError as e:
        progress.done()
        return _input_error(str(e))
    progress.done()
    code = rep.exit_code()
    if args.json:
        print(json.dumps({"gicproof": JSON_VERSION, "command": "regress", "results": [rep.json()], "exit": code},
                         indent=2))
    else:
        print(regress.render(rep))
    return code


def cmd_check(args: argparse.Namespace) -> int:
    progress = Progress(sys.stderr.isatty() and not args.json)
    t0 = time.perf_counter()
    files = shipped_sequences()
    for f in files:  # bad input is found here, before any job starts
        load(f, DEVICES)
    jobs = args.jobs if args.jobs is not None else default_jobs()
    executor = make_executor(jobs)
    try:
        out = check.run(executor, files, _budget(args), progress, args.only)
    except BaseException:
        stop(executor)  # Ctrl-C or a job's exception: do not wait for the other jobs
        raise
    executor.shutdown()
    progress.done()
    seconds = time.perf_counter() - t0
    outcomes = out.all()
    unknown = sum(o.unknown for o in outcomes)
    bad = sum(o.bad for o in outcomes)
    total = len(outcomes)
    code = EXIT_FAIL if bad else (EXIT_UNKNOWN if unknown else EXIT_OK)
    if args.json:
        print(json.dumps({
            "gicproof": JSON_VERSION, "command": "check",
            "results": [o.json for o in outcomes],
            "summary": {"total": total, "as_expected": total - bad - unknown, "not_as_expected": bad,
                        "unknown": unknown, "seconds": round(seconds, 2)},
            "exit": code}, indent=2))
        return code
    print(f"gicproof check: {len(out.invariants)} invariant obligations, {len(out.sequences)} shipped sequences "
          f"(round trip and ordering graph), {len(out.clear_set)} clear-then-set obligations, "
          f"{len(out.cpregs)} CPU register list obligations\n")
    print(_table([("obligation", "kernel", "verdict", "actions", "")] + [o.row for o in out.invariants]))
    print()
    print(_table([("sequence", "kernel", "dest", "expected", "verdict", "covers", "")]
                 + [o.row for o in out.sequences]))
    print()
    print(_table([("obligation", "kernel", "verdict", "set alone", "")] + [o.row for o in out.clear_set]))
    print()
    print(_table([("sequence", "kernel", "graph", "violated edges", "expected", "")] + [o.row for o in out.graphs]))
    if out.cpregs:
        print()
        print(_table([("CPU register list (arm-cpregs)", "variant", "verdict", "expected", "")]
                     + [o.row for o in out.cpregs]))
    for o in out.invariants + out.sequences + out.clear_set + out.cpregs:
        if o.detail:
            print("\n" + o.detail)
    print(f"\nsummary: {total} checked, {total - bad - unknown} as expected, {bad} not as expected, "
          f"{unknown} unknown ({seconds:.1f} s)")
    return code


def cmd_review(args: argparse.Namespace) -> int:
    progress = Progress(sys.stderr.isatty())
    budget = _budget(args)
    first = review_mod.review(args.file, budget, progress)
    other = review_mod.review(args.against, budget, progress) if args.against else None
    progress.done()
    print(review_mod.render(first, other), end="")
    return first.exit_code()


def cmd_graph(args: argparse.Namespace) -> int:
    if args.device not in DEVICES:
        return _input_error(f"unknown device '{args.device}': valid: {', '.join(DEVICES)}")
    spec = DEVICES[args.device]
    seq = load(args.sequence, DEVICES) if args.sequence is not None else None
    if seq is not None and seq.device != spec.name:
        return _input_error(f"{args.sequence} is a {seq.device} sequence, not {spec.name}")
    kernel = args.kernel or (seq.kernel if seq else spec.default_kernel)
    for k in [kernel] + ([args.versus] if args.versus else []):
        if why_not := spec.kernel_error(k):
            return _input_error(why_not)
    valid_hosts = list(spec.hosts) or [spec.default_host or "default"]
    if args.host is not None and args.host not in valid_hosts:
        return _input_error(f"--host {args.host}: {spec.name} models the host kinds: {', '.join(valid_hosts)}")
    if not 1 <= args.cpus <= spec.max_cpus:
        return _input_error(f"--cpus {args.cpus}: {spec.name} supports 1 to {spec.max_cpus} CPUs")
    destination = args.destination or (seq.destination if seq else "any")
    if args.output is not None:
        problem = _unwritable(args.output)
        if problem:  # before the proofs, which take seconds
            return _input_error(f"-o {args.output!r}: {problem}")
    progress = Progress(sys.stderr.isatty() and not args.json and args.output is None)
    host = args.host or (seq.host if seq else "")
    og = graph_for(spec.name, kernel, destination, args.cpus, _budget(args), progress, host)
    versus = graph_for(spec.name, args.versus, destination, args.cpus, _budget(args), progress, host) \
        if args.versus else None
    progress.done()
    chk = check_sequence(og, spec, seq) if seq else None
    order = chk.order if chk is not None else None
    code = EXIT_OK
    if og.cycle or (chk is not None and chk.violated):
        code = EXIT_FAIL
    elif og.unresolved:
        code = EXIT_UNKNOWN
    if args.json:
        doc = graph_json(og, chk)
        print(json.dumps({"gicproof": JSON_VERSION, "command": "graph", "results": [doc], "exit": code}, indent=2))
        return code
    fmt = args.format
    if fmt == "text":
        data: bytes = render_text(og, chk, seq.path if seq else "", versus, spec.order_assumption_reason).encode() + b"\n"
    else:
        dot = render_dot(og, chk, order)
        if fmt == "dot":
            data = dot.encode()
        else:
            try:
                data = render_image(dot, fmt)
            except FileNotFoundError as e:
                return _input_error(str(e))
    if args.output is not None:
        try:
            Path(args.output).write_bytes(data)
        except OSError as e:
            return _input_error(f"-o {args.output!r}: cannot write the file: {e.strerror or e}")
        print(f"wrote {args.output} ({fmt})", file=sys.stderr)
    elif fmt in ("svg", "png") and sys.stdout.isatty():
        return _input_error(f"--format {fmt} writes binary data: give -o FILE")
    else:
        out = getattr(sys.stdout, "buffer", None)
        if out is not None:
            out.write(data)
        else:  # a text-only stdout (an embedding caller): the formats that reach here are text
            sys.stdout.write(data.decode())
    return code


def cmd_describe(args: argparse.Namespace) -> int:
    if args.device not in DEVICES:
        return _input_error(f"unknown device '{args.device}': valid: {', '.join(DEVICES)}")
    spec = DEVICES[args.device]
    kernel = args.kernel or spec.default_kernel
    if why_not := spec.kernel_error(kernel):
        return _input_error(f"--kernel: {why_not}")
    sem = spec.semantics(kernel)
    print(f"{spec.title}  (device name '{spec.name}')")
    print(f"semantic revisions modelled: {', '.join(spec.versions)} (default {spec.default_kernel}); "
          + ("--kernel takes any release X.Y or stable point release X.Y.Z" if spec.resolve is not None
             else "--kernel takes one of them"))
    shown = getattr(sem, "revision", kernel)
    print(f"showing {kernel}" + (f" (revision {shown})" if shown != kernel else "") + f": {getattr(sem, 'source', '')}")
    if spec.boundaries:
        print("\nversion boundaries (each a change of the userspace semantics):")
        for b in spec.boundaries:
            print(f"  {b.releases():<40} {b.what}")
            print(f"  {'':<40} {b.commit}; evidence: {b.evidence}")
        print("\nrevisions (the mainline releases where the semantics change):")
        for name, rsem in spec.versions.items():
            flags = {k: v for k, v in dataclasses.asdict(rsem).items()
                     if k not in ("kernel", "revision", "source", "host")}
            print(f"  {name:<6} " + ", ".join(f"{k}={v}" for k, v in flags.items()))
    if spec.hosts:
        print(f"\nhost kinds (a file's host / source_host, prove/graph --host; default {spec.default_host}):")
        for name, desc in spec.hosts.items():
            print(f"  {name:<12} {desc}")
    print("\nstate fields:")
    for f in spec.fields:
        kinds = f" [{', '.join(f.kinds)} only]" if f.kinds else ""
        print(f"  {f.name:<22} {f.width:>2} bits  {f.scope:<6} {f.classification:<13}{kinds}  {f.source}")
        if f.reason:
            print(f"  {'':<22} why not state: {f.reason}")
    print("\nnot state (with the reason):")
    for n in spec.not_state:
        print(f"  {n.name:<30} {n.classification:<9} {n.reason} ({n.source})")
    print("\nregisters (guest accessors | userspace accessors):")
    for r in spec.registers:
        shape = f"{r.bits_per_irq} bit/irq x {r.irqs}" if r.scope == "irq" else r.scope
        print(f"  {r.group.split('_GRP_')[-1]:<9} {r.offset:#05x} {r.name:<16} {shape:<18} "
              f"views {','.join(r.views) or '-':<30} {r.guest_read.name}/{r.guest_write.name} | "
              f"{r.user_read.name}/{r.user_write.name}")
    print("\noperations:")
    for o in spec.operations:
        print(f"  {o.name}: {o.rule} ({o.source})")
    print(f"\nshipped sequences: {SEQUENCES_DIR / spec.name}")
    return EXIT_OK


def _table(rows: list[tuple[str, ...]]) -> str:
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    return "\n".join("  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip() for r in rows)


def _unwritable(output: str) -> str:
    """Why ``-o output`` cannot be written, or "" if it looks writable."""
    if not output:
        return "the output file name is empty: give -o FILE, or leave -o out for standard output"
    if "\0" in output:
        return "the output file name contains a NUL byte"
    p = Path(output)
    if p.is_dir():
        return "is a directory: give a file name, e.g. -o graph.dot"
    parent = p.parent
    if not parent.is_dir():
        return f"the directory {str(parent)!r} does not exist"
    if not os.access(parent, os.W_OK) or (p.exists() and not os.access(p, os.W_OK)):
        return "permission denied: choose a file in a directory you can write"
    return ""


CONFORM_GIC = {"gicv2": 2, "gicv3": 3, "gicv3-its": 3}  # the devices with a model of the kernel, and their QEMU host


def cmd_conform(args: argparse.Namespace) -> int:
    if args.device not in DEVICES:
        return _input_error(f"unknown device {args.device!r}: one of {', '.join(DEVICES)}")
    if args.device not in CONFORM_GIC:
        return _input_error(f"conform: only {', '.join(CONFORM_GIC)} have a model of the kernel "
                            f"(not {args.device})")
    gic = CONFORM_GIC[args.device]
    if args.gic is not None and args.gic != gic:
        if args.device == "gicv2":
            return _input_error(f"--gic {args.gic}: only a GICv2 host (--gic 2) is modelled for gicv2; a "
                                "vgic-v2 on a GICv3 host needs the host's GICv2 compatibility, which "
                                "QEMU's emulated GICv3 does not have")
        return _input_error(f"--gic {args.gic}: only a GICv3 host (--gic 3) is modelled for {args.device}; a "
                            "GICv2 host cannot run a vgic-v3, and a GICv4 host (QEMU gic-version=4) "
                            "is not modelled")
    missing = harness.missing_host_tools()
    if missing:
        return _input_error(f"the real-kernel oracle needs the Debian packages {' '.join(missing)}: "
                            "run models/kernel/install-parts.sh (it installs them and caches the kernels)")
    try:
        resolve_kernel(args.kernel)
    except harness.KernelOracleError:
        cached = [k.describe() for k in harness.list_kernels()]
        listing = "; ".join(cached) if cached else "none (run models/kernel/install-parts.sh)"
        return _input_error(f"--kernel {args.kernel}: not a cached kernel; cached: {listing}")
    if not (harness.cache_dir() / "busybox" / "busybox").is_file():
        return _input_error("busybox is not in the kernel cache: run models/kernel/install-parts.sh")
    progress = Progress(sys.stderr.isatty() and not args.json)
    try:
        rep = conform(args.kernel, programs=args.programs, seed=args.seed, progress=progress,
                      lifecycle=args.lifecycle, device=args.device)
    except harness.KernelOracleError as e:
        progress.done()
        print(f"gicproof: the kernel could not be booted: {printable(str(e))}", file=sys.stderr)
        return EXIT_UNKNOWN
    progress.done()
    code = rep.exit_code
    if args.json:
        print(json.dumps({"gicproof": JSON_VERSION, "command": "conform", "results": [rep.json()],
                          "exit": code}, indent=2))
    else:
        print(rep.render())
    return code


def _share(text: str) -> float:
    try:
        v = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number from 0 to 1") from None
    if not 0 <= v <= 1:
        raise argparse.ArgumentTypeError(f"{text!r} is not from 0 to 1")
    return v


def _size_error(spec: DeviceSpec, cpus: int | None, irqs: int | None) -> str:
    """Why --cpus / --irqs name a size the device does not accept ("" when they do)."""
    if cpus is not None and not 1 <= cpus <= spec.max_cpus:
        return f"--cpus {cpus}: {spec.name} supports 1 to {spec.max_cpus} CPUs"
    if irqs is not None and irqs not in spec.irq_counts:
        return (f"--irqs {irqs}: KVM accepts {min(spec.irq_counts)} to "
                f"{max(spec.irq_counts)} interrupts in steps of 32 for {spec.name}")
    return ""


def _input_error(msg: str) -> int:
    print(f"gicproof: error: {printable(msg)}", file=sys.stderr)
    return EXIT_INPUT


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="gicproof",
        description="Prove GIC save/restore sequences (as KVM exposes them to userspace) "
                    "correct, or find confirmed counterexamples.",
        epilog="Exit status: 0 proved / as expected, 1 counterexample or unexpected verdict, "
               "2 bad input, 3 unknown (resource limit, timeout or solver unknown; with --on-kernel "
               "also a kernel that could not be booted), 4 a bug in "
               "gicproof (an unexpected exception; rerun with GICPROOF_DEBUG=1 to see the traceback), "
               "5 (prove --on-kernel) a real kernel disagreed with the model.")
    sub = p.add_subparsers(dest="command", required=True, metavar="COMMAND")
    c = sub.add_parser("check", help="check every shipped sequence and obligation against its expectation",
                       description="Run every shipped sequence's round trip and ordering-graph check, "
                                   "every invariant and every clear-then-set obligation; print the "
                                   "verdicts against the expectations. Exit 0 only if every verdict "
                                   "matches. The obligations run in parallel (--jobs); the output is "
                                   "in a fixed order whatever the number of jobs.")
    c.add_argument("--json", action="store_true", help="print the results as JSON (see README)")
    c.add_argument("-j", "--jobs", type=_jobs, default=None, metavar="N",
                   help="run up to N obligations at once, each in a worker process (default: one per "
                        f"core, here {default_jobs()}); 1 runs them one after another in this process. "
                        "The output is the same for any N, apart from the times")
    # for tests: only the obligations whose progress label contains TEXT (a subset is not a check)
    c.add_argument("--only", metavar="TEXT", help=argparse.SUPPRESS)
    _budget_options(c)
    c.set_defaults(func=cmd_check)
    pr = sub.add_parser("prove", help="prove one sequence file and print the report",
                        description="Prove the round trip of one sequence file: PROVED, or every "
                                    "distinct loss and refusal with a replayed, explained counterexample.")
    pr.add_argument("file", help="a sequence file (TOML, see README 'Writing a sequence file')")
    pr.add_argument("--kernel", metavar="X.Y", help="kernel version whose userspace semantics apply "
                    "(default: the file's); overriding it disables the comparison with 'expect'")
    pr.add_argument("--host", metavar="KIND",
                    help="the destination's host kind (default: the file's; 'gicproof describe DEVICE' "
                         "lists them, e.g. gicv2, gicv3, gicv3-pri7 for gicv2); overriding it disables "
                         "the comparison with 'expect'")
    pr.add_argument("--destination", choices=("fresh", "any"),
                    help="fresh: incoming migration only; any: also the reset path (default: the file's)")
    pr.add_argument("--cpus", type=_positive, metavar="N", help="prove for exactly N CPUs (default: every count)")
    pr.add_argument("--irqs", type=_positive, metavar="M", help="prove for exactly M interrupts (default: every count)")
    pr.add_argument("--assume", action="append", default=[], metavar="NAME",
                    help="add an assumption the device declares (repeatable; 'gicproof describe "
                         "DEVICE' lists them); the expectation is then not compared")
    pr.add_argument("--encoding", choices=("classes", "full"), default="classes",
                    help="classes: one symbolic interrupt per class (covers every size); "
                         "full: every interrupt symbolic (exact size only)")
    _budget_options(pr)
    pr.add_argument("--json", action="store_true", help="print the result as JSON (see README)")
    pr.add_argument("--on-kernel", metavar="K",
                    help="also run every counterexample on a real cached kernel (5.10, 6.1, 6.12, sid, "
                         "or its release, e.g. 6.12.107) booted under QEMU: build the source state "
                         "through userspace writes, save, build the destination, restore, read "
                         "everything back, and say 'confirmed' or where the kernel disagreed; implies "
                         "--kernel RELEASE (a --kernel or source_kernel with other semantics is refused)")
    pr.set_defaults(func=cmd_prove)
    g = sub.add_parser("graph", help="derive the ordering graph of a device's restore interface",
                       description="Derive the ordering dependencies between the steps of a device's restore "
                                   "interface from the semantics, confirm each with a replayed witness, prove "
                                   "the other pairs commute, count the valid orders; optionally check a "
                                   "sequence against it. Exit 1 if the sequence violates an edge or the "
                                   "constraints form a cycle.")
    g.add_argument("device", help=f"one of: {', '.join(DEVICES)}")
    g.add_argument("--kernel", metavar="X.Y", help="kernel version (default: the sequence's, else the newest)")
    g.add_argument("--host", metavar="KIND", help="host kind, for devices that model several")
    g.add_argument("--sequence", metavar="FILE", help="check this sequence file against the graph and overlay its order")
    g.add_argument("--format", choices=("text", "dot", "svg", "png"), default="text",
                   help="text (default), Graphviz DOT, or an image drawn by Graphviz's dot")
    g.add_argument("-o", "--output", metavar="FILE", help="write to FILE instead of standard output")
    g.add_argument("--versus", metavar="X.Y", help="also derive the graph for kernel X.Y and list the edges that differ")
    g.add_argument("--destination", choices=("fresh", "any"), help="fresh or any prior destination (default any)")
    g.add_argument("--cpus", type=_positive, default=2, metavar="N", help="CPUs in the proofs (default 2)")
    _budget_options(g)
    g.add_argument("--json", action="store_true", help="print the graph as JSON")
    g.set_defaults(func=cmd_graph)
    rv = sub.add_parser("review", help="a plain-text review of a sequence file (72 columns) for a mailing-list reply",
                        description="Prove one sequence file's round trip and derive its interface's ordering "
                                    "graph, and print a review a maintainer can paste into an interleaved reply "
                                    "(at most 72 columns, no decoration): what was checked and under which "
                                    "assumptions, the verdict, each replayed counterexample as a short scenario "
                                    "with the step that loses the state, the interface's ordering constraints "
                                    "with their reasons and which the file violates, the ordering constraints of "
                                    "the file's own save steps and which it violates; with --against, how a second "
                                    "file's verdict and constraints differ (the constraints its interface and its "
                                    "save remove or add). Any device's file.",
                        epilog="Exit status: as prove (0 PROVED or as the file expects, 1 a counterexample or "
                               "not as expected, 2 bad input, 3 unknown), for the first FILE.")
    rv.add_argument("file", help="the sequence file to review")
    rv.add_argument("--against", metavar="FILE", help="a second sequence file (e.g. a revised version of the "
                    "interface) to compare with")
    _budget_options(rv)
    rv.set_defaults(func=cmd_review)
    d = sub.add_parser("describe", help="print a device's state fields, register table and sources",
                       description="Print a device specification: canonical state with classifications, "
                                   "the register table with guest and userspace accessors, operations.")
    d.add_argument("device", help=f"one of: {', '.join(DEVICES)}")
    d.add_argument("--kernel", metavar="X.Y", help="kernel version to describe")
    d.set_defaults(func=cmd_describe)
    co = sub.add_parser(
        "conform", help="compare the model with a real kernel on random programs",
        description="Generate random programs from the device table (register reads and writes "
                    "at random words, vCPU fields and values, offsets with no register, SPI "
                    "line levels; for gicv3-its the ITS registers, table entries written into "
                    "guest memory, RESTORE/SAVE_TABLES, CTRL_RESET, reads of the tables), run "
                    "them all in one boot of a real kernel under QEMU (models/kernel/, one fresh "
                    "VM per program) and on the model of that kernel's release, and compare every "
                    "result line. Each disagreement is shrunk to a minimal program with more "
                    "boots and shown with both answers.",
        epilog="Exit status: 0 no disagreement, 1 a disagreement, 2 bad input (unknown device "
               "or kernel, QEMU or the cross tools missing: models/kernel/install-parts.sh), 3 the "
               "kernel could not be booted.")
    co.add_argument("device", help="gicv2 (a vgic-v2 on QEMU's GICv2), gicv3 (a vgic-v3 on QEMU's "
                    "GICv3, no ITS) or gicv3-its (a vgic-v3 and its ITS on QEMU's GICv3: the GITS "
                    "registers, the ITS's base and CTRL attributes, its tables in guest memory, "
                    "SAVE/RESTORE_TABLES, CTRL_RESET)")
    co.add_argument("--kernel", required=True, metavar="K",
                    help="a cached kernel: 5.10, 6.1, 6.12, sid, or its exact release "
                         "(python -m models.kernel.harness --list); the model takes the semantics "
                         "of its real release (e.g. 6.12.107)")
    co.add_argument("--programs", type=_positive, default=300, metavar="N",
                    help="random programs in the batch (default 300)")
    co.add_argument("--seed", type=int, default=0, metavar="S", help="random seed (default 0)")
    co.add_argument("--lifecycle", type=_share, default=0.5, metavar="P",
                    help="the proportion of lifecycle programs (vCPUs, devices, NR_IRQS, addresses, "
                         "INIT, accesses and lines before INIT, in random order), 0 to 1; the "
                         "rest run after the standard setup (default 0.5)")
    co.add_argument("--gic", type=int, default=None, metavar="N",
                    help="QEMU's host GIC version: 2 for gicv2, 3 for gicv3 and gicv3-its (the "
                         "default; the only host modelled for each)")
    co.add_argument("--json", action="store_true", help="print the result as JSON")
    co.set_defaults(func=cmd_conform)
    mx = sub.add_parser(
        "matrix", help="migrate one sequence file across kernels and host kinds: a verdict per cell",
        description="Prove one sequence file for every source (kernel on host kind) and every "
                    "destination, as 'prove' does with the file's source_kernel/source_host set to "
                    "the row and kernel/host to the column, and print sources x destinations: "
                    "round trip, refused cleanly at a step (with the kernel's errno), a silent "
                    "change (the replayed losses), or unknown. Every counterexample is replayed "
                    "before it is shown.",
        epilog="Exit status: 0 no cell is a silent change or unknown, 1 a cell is a silent change, "
               "3 a cell is unknown (and none silent), 2 bad input, 4 a bug in gicproof.")
    mx.add_argument("file", help="a sequence file (TOML, see README 'Writing a sequence file')")
    mx.add_argument("--kernels", metavar="A,B,..",
                    help="the kernel releases of both sides (default: one per semantic revision, "
                         "as 'gicproof describe DEVICE' lists them)")
    mx.add_argument("--hosts", metavar="X,Y,..",
                    help="the host kinds of both sides (default: every host kind the device models)")
    mx.add_argument("--cpus", type=_positive, metavar="N",
                    help="prove every cell for exactly N CPUs (default: the file's, else every count)")
    mx.add_argument("--irqs", type=_positive, metavar="M",
                    help="prove every cell for exactly M interrupts (default: the file's, else every count)")
    mx.add_argument("-j", "--jobs", type=_jobs, default=None, metavar="N",
                    help="prove up to N cells at once, each in a worker process (default: one per "
                         f"core, here {default_jobs()}); 1 runs them in this process")
    _budget_options(mx)
    mx.add_argument("--json", action="store_true", help="print every cell's full verdict as JSON (see README)")
    mx.set_defaults(func=cmd_matrix)
    rg = sub.add_parser(
        "regress", help="what a change of the specifications does to migration (base revision vs working tree)",
        description="Compare the specifications (device tables, sequence files, QEMU streams, vCPU register "
                    "lists) at a git revision of the repository the current directory is in with its working "
                    "tree. Each side is described by its own code in its own process. Lists every register, "
                    "field, kernel revision and sequence added, removed or changed; proves the shipped files "
                    "of every changed device on both sides, each with its own prover, and lists those whose "
                    "verdict or losses changed; says for every register added, removed or changed whether a "
                    "migration old -> new and new -> old round-trips, is refused cleanly (the step and the "
                    "errno) or silently changes state, from the tables (a judgement, not a proof: see README); "
                    "and decides old <-> new compatibility of every QEMU stream version added or changed, "
                    "on every host kind, with what QEMU's vmstate static checker would say.",
        epilog="Exit status: 0 no silent change and no newly failing file, 1 a silent change (in the "
               "migration table or a stream) or a shipped file that fails in the working tree but passed (or "
               "did not exist) at the base, 2 bad input (not a git repository, a bad revision, specifications "
               "that do not load at the base or in the working tree), 4 a bug in gicproof.")
    rg.add_argument("--base", default="HEAD", metavar="REV",
                    help="the revision to compare the working tree with (default HEAD: the uncommitted changes)")
    rg.add_argument("-j", "--jobs", type=_jobs, default=None, metavar="N",
                    help="prove up to N files at once, each in its own process (default: one per core, here "
                         f"{default_jobs()})")
    rg.add_argument("--rerun", choices=("changed", "all", "none"), default="changed",
                    help="which shipped files to prove on both sides: those of devices whose tables changed and "
                         "those that changed (default), every one, or none")
    rg.add_argument("--devices", metavar="A,B,..",
                    help="compare only these devices (default: every device either side has)")
    rg.add_argument("--json", action="store_true", help="print the comparison as JSON (see README)")
    rg.set_defaults(func=cmd_regress)
    cpregs_cli.register(sub)
    return p


def main(argv: list[str] | None = None) -> int:
    """Run one command; return its exit status (argparse's own errors and --help included,
    so an in-process caller never sees SystemExit)."""
    try:
        try:
            args = parser().parse_args(argv)
        except SystemExit as e:  # --help (0) or a usage error (2), already printed
            return e.code if isinstance(e.code, int) else EXIT_INPUT
        return int(args.func(args))
    except SequenceError as e:
        print(f"gicproof: error: {e}", file=sys.stderr)
        return EXIT_INPUT
    except KeyboardInterrupt:
        print("gicproof: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:  # e.g. `gicproof describe gicv2 | head`: the reader left
        _quiet_stdout()
        return 128 + 13  # what a shell reports for a death by SIGPIPE; not 1 (a counterexample)
    except Exception as e:  # anything else (RecursionError and MemoryError too) is a bug
        return _bug(e)


def _bug(e: BaseException) -> int:
    """An unexpected exception: one line saying it is a bug and how to see more, exit 4
    (never 1, which CI reads as a counterexample)."""
    if os.environ.get("GICPROOF_DEBUG"):
        traceback.print_exception(e, file=sys.stderr)
    detail = printable(" ".join(str(e).split()))
    if len(detail) > 300:
        detail = detail[:297] + "..."
    hint = "" if os.environ.get("GICPROOF_DEBUG") else "rerun with GICPROOF_DEBUG=1 to see the traceback, and "
    print(f"gicproof: internal error (a bug in gicproof): {type(e).__name__}: {detail or '(no message)'}; "
          f"{hint}report it with the command line and input files", file=sys.stderr)
    return EXIT_BUG


def _quiet_stdout() -> None:
    """After a broken pipe, point stdout at /dev/null so the interpreter's final flush
    does not fail again."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    except (OSError, ValueError, AttributeError):
        pass


if __name__ == "__main__":
    sys.exit(main())
