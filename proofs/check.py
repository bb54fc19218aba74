"""The obligations of ``gicproof check`` as jobs, and the helpers they share with the
other commands (``run_sequence``, ``graph_for``, ``violations``).

Each obligation is a top-level function of plain arguments (a file path, a device name,
a kernel string, register names, a ``Budget``) returning an ``Outcome``: what the tables
and the JSON need, already computed, since the reports themselves hold the device
specification (functions and closures) and cannot cross a process boundary. ``run`` submits
them to an executor (``proofs.executor``) and collects the outcomes in submission order,
so the output is the same for any number of jobs.
"""

from __future__ import annotations

import dataclasses
import threading
from collections.abc import Callable
from concurrent.futures import Executor, Future
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from models.machine import MissingSaved
from proofs import solver
from proofs.clearset import pairs, prove_clear_then_set
from proofs.graph import OrderingGraph, build_graph, check_sequence
from proofs.invariant import prove_invariant
from proofs.invariant import render as render_invariant
from proofs.invariant import result_json as invariant_json
from proofs.replay import replay
from proofs.report import (
    SequenceReport,
    clearset_json,
    render_clearset,
    render_sequence,
    sequence_json,
)
from proofs.roundtrip import UNKNOWN, prove_roundtrip
from spec.devices import DEVICES
from spec.sequence import Sequence, SequenceError, load


def run_sequence(seq: Sequence, kernel: str | None = None, destination: str | None = None,
                 cpus: int | None = None, irqs: int | None = None, encoding: str = "classes",
                 budget: solver.Budget = solver.DEFAULT_BUDGET, progress: Any = None,
                 assume: tuple[str, ...] = (), host: str | None = None) -> SequenceReport:
    """Prove one sequence's round trip and replay every witness. ``assume``: assumptions
    added to the file's (then the expectation is not compared: it was computed without
    them). ``kernel`` and ``host`` override the file's (the destination's; a file's
    ``source_kernel`` / ``source_host`` stay)."""
    spec = DEVICES[seq.device]
    extra = tuple(a for a in assume if a not in seq.assume)
    applies = kernel is None and destination is None and not extra and host is None
    if kernel is not None:
        seq = dataclasses.replace(seq, kernel=kernel)
    if host is not None:
        seq = dataclasses.replace(seq, host=host)
    if extra:
        seq = dataclasses.replace(seq, assume=seq.assume + extra)
    dest = destination or seq.destination
    try:
        result = prove_roundtrip(spec, seq, dest, cpus, irqs, encoding, budget, progress)
    except MissingSaved as e:
        raise SequenceError(seq.path, e.step.line, str(e).split(": ", 1)[1]) from None
    replays = [replay(spec, seq, w, dest) for w in result.witnesses]
    return SequenceReport(seq, spec, seq.kernel, dest, result, replays, applies)


_GRAPHS: dict[tuple[str, str, str, int, solver.Budget, str], OrderingGraph] = {}


def graph_for(device: str, kernel: str, destination: str = "any", cpus: int = 2,
              budget: solver.Budget = solver.DEFAULT_BUDGET, progress: Any = None,
              host: str = "") -> OrderingGraph:
    key = (device, kernel, destination, cpus, budget, host)
    if key not in _GRAPHS:
        _GRAPHS[key] = build_graph(DEVICES[device], kernel, destination, cpus, budget, progress, host)
    return _GRAPHS[key]


def violations(og: OrderingGraph, seq: Sequence) -> list[str]:
    chk = check_sequence(og, DEVICES[seq.device], seq)
    return sorted(f"{e.before} -> {e.after}" for _, _, e in chk.violated)


def short(p: Path | str) -> str:
    p = Path(p)
    return f"{p.parent.name}/{p.name}"


# ---------------------------------------------------------------------------------------
# Jobs.


@dataclass
class Outcome:
    """One obligation's result as ``check`` prints and counts it (picklable)."""

    json: dict[str, Any]
    row: tuple[str, ...]  # its row in the obligation's table
    bad: bool = False  # not as expected (an UNKNOWN is not counted here)
    unknown: bool = False
    detail: str = ""  # the full report, printed after the tables when not as expected
    error: tuple[str, int, str] | None = None  # bad input found by the job: SequenceError's fields


def _status(matches: bool | None, verdict: str) -> str:
    return "ok" if matches else ("UNKNOWN" if verdict == UNKNOWN else "MISMATCH")


def _input_error(e: SequenceError) -> Outcome:
    # SequenceError's constructor takes three arguments, so it does not survive pickling:
    # send its fields and raise it again in the parent
    return Outcome({}, (), error=(e.path, e.line, e.message))


def job_invariant(device: str, kernel: str, budget: solver.Budget) -> Outcome:
    r = prove_invariant(DEVICES[device], kernel, budget)
    return Outcome(invariant_json(r),
                   (f"{r.device} invariant (reset + every action)", r.kernel,
                    r.verdict + (f" ({len(r.found)} documented)" if r.expected and r.matches else ""), str(r.actions),
                    _status(r.matches, r.verdict)),
                   bad=not r.matches and r.verdict != UNKNOWN, unknown=r.verdict == UNKNOWN,
                   detail="" if r.matches else render_invariant(r))


def job_round_trip(path: str, budget: solver.Budget) -> Outcome:
    try:
        r = run_sequence(load(path, DEVICES), budget=budget)
    except SequenceError as e:
        return _input_error(e)
    exp = r.seq.expect + (f" ({len(r.seq.lost)} losses)" if r.seq.lost else "")
    kernel = r.kernel + (f" (from {r.seq.source_kernel})" if r.seq.source_kernel else "")
    covers = "all sizes" if r.result.covers.startswith("all configurations") else r.result.covers
    return Outcome(sequence_json(r),
                   (short(r.seq.path), kernel, r.destination, exp, r.verdict, covers, _status(r.matches, r.verdict)),
                   bad=r.matches is False and r.verdict != UNKNOWN, unknown=r.verdict == UNKNOWN,
                   detail="" if r.matches else render_sequence(r))


def job_clear_then_set(device: str, kernel: str, set_reg: str, clear_reg: str, budget: solver.Budget) -> Outcome:
    spec = DEVICES[device]
    r = prove_clear_then_set(spec, kernel, spec.register(set_reg), spec.register(clear_reg), budget)
    return Outcome(clearset_json(r),
                   (f"{r.device} clear-then-set {r.clear_reg} -> {r.set_reg} ({r.field})", r.kernel, r.verdict,
                    "witness (replayed)" if r.set_alone_shown else "no witness", _status(r.matches, r.verdict)),
                   bad=not r.matches and r.verdict != UNKNOWN, unknown=r.verdict == UNKNOWN,
                   detail="" if r.matches else render_clearset(r))


def job_ordering_graph(device: str, kernel: str, destination: str, host: str, paths: tuple[str, ...],
                       budget: solver.Budget) -> list[Outcome]:
    """Derive one ordering graph and check every sequence that uses it against it (one
    outcome per sequence, in the order of ``paths``): a graph is derived once, not once per
    sequence."""
    og = graph_for(device, kernel, destination, budget=budget, host=host)
    out = []
    for path in paths:
        try:
            seq = load(path, DEVICES)
            got = violations(og, seq)
        except SequenceError as e:
            out.append(_input_error(e))
            continue
        want = sorted(seq.violates)
        # an unresolved pair is unknown; other violations than the file expects, or an edge
        # whose witness did not replay on the concrete backend (a tool bug), fail. A cycle
        # (two steps each of whose orders loses something: no valid order, as on 5.10 for
        # guest memory and the ITS tables) is a finding the graph reports; which of its
        # edges a file violates is still exact, and is what the file states
        unreplayed = sorted(f"{x} -> {y}" for (x, y), e in og.edges.items() if not e.replayed)
        ok = got == want and not og.unresolved and not unreplayed
        unknown = bool(og.unresolved) and og.cycle is None
        out.append(Outcome(
            {"obligation": "ordering-graph-check", "file": seq.path, "kernel": kernel,
             "violated": got, "expected": want, "matches": ok, "unreplayed_edges": unreplayed,
             "cycle": [f"{x} -> {y}" for x, y in og.cycle or []]},
            (short(seq.path), kernel, f"{len(og.edges)} edges"
             + (" (a cycle: no valid order)" if og.cycle is not None else "")
             + (f" ({len(unreplayed)} DID NOT REPLAY)" if unreplayed else ""), ", ".join(got) or "none",
             "as expected" if got == want else ", ".join(want) or "none",
             "ok" if ok else ("UNKNOWN" if unknown else "MISMATCH")),
            bad=not ok and not unknown, unknown=unknown))
    return out


def job_cpregs_obligations(budget: solver.Budget) -> list[Outcome]:
    """The CPU register list protocol's obligations (``gicproof cpregs prove``: the merge for
    every length, per register, the mitigations), each against its documented expectation."""
    from proofs import cpregs as P
    from proofs.cpregs_cli import render_obligations
    from spec.cpregs import VARIANTS
    out = []
    for o in P.run(list(VARIANTS), budget):
        unknown = o.verdict == P.UNKNOWN
        out.append(Outcome({"obligation": "cpregs", **o.json(), "matches": o.as_expected},
                           (f"arm-cpregs {o.name}", o.variant, o.verdict, o.expected,
                            _status(o.as_expected, o.verdict)),
                           bad=not o.as_expected and not unknown, unknown=unknown,
                           detail="" if o.as_expected else render_obligations([o])))
    return out


def job_cpregs_matrix(expectations: str | None = None) -> list[Outcome]:
    """One vCPU migrated QEMU-style between every ordered pair of the shipped kernels'
    register lists (``gicproof cpregs matrix``), each cell against spec/cpregs/matrix.toml
    (or ``expectations``)."""
    from models import cpregs as M
    from proofs.cpregs import cell_text, real_matrix, render_pair
    from spec.cpregs import VARIANTS
    try:
        want = M.load_matrix_expectations(expectations or M.MATRIX_EXPECTATIONS)
        mx = real_matrix(M.shipped_lists(), VARIANTS["qemu"])
    except M.ListError as e:
        where, _, message = str(e).partition(": ")
        path, _, line = where.partition(":")
        return [Outcome({}, (), error=(path, int(line) if line.isdigit() else 0, message))]
    out = []
    for (src, dst), mig in mx.cells.items():
        got = cell_text(mig)
        exp = want.get((src, dst))
        expected = exp.cell if exp else ("round trip (same kernel)" if src == dst else "(not in matrix.toml)")
        unknown = mig.verdict == M.UNKNOWN
        ok = got == expected
        out.append(Outcome({"obligation": "cpregs-matrix", "source": src, "destination": dst, "cell": got,
                            "expected": expected, "matches": ok, "why": exp.why if exp else ""},
                           (f"arm-cpregs matrix {src} -> {dst}", "qemu", got, "as expected" if ok else expected,
                            "ok" if ok else ("UNKNOWN" if unknown else "MISMATCH")),
                           bad=not ok and not unknown, unknown=unknown and not ok,
                           detail="" if ok else "\n".join(render_pair(mig, mx.blessed[(src, dst)]))))
    for (src, dst), exp in want.items():
        if (src, dst) not in mx.cells:
            out.append(Outcome({"obligation": "cpregs-matrix", "source": src, "destination": dst,
                                "expected": exp.cell, "matches": False},
                               (f"arm-cpregs matrix {src} -> {dst}", "qemu", "no such pair of shipped lists",
                                exp.cell, "MISMATCH"), bad=True))
    return out


# ---------------------------------------------------------------------------------------
# Running them.


@dataclass
class CheckOutcomes:
    invariants: list[Outcome]
    sequences: list[Outcome]
    clear_set: list[Outcome]
    graphs: list[Outcome]  # one per sequence, in the order of ``sequences``
    cpregs: list[Outcome] = dataclasses.field(default_factory=list)  # the CPU register list protocol

    def all(self) -> list[Outcome]:
        """In the order of the JSON results."""
        return self.invariants + self.sequences + self.clear_set + self.graphs + self.cpregs


@dataclass
class Task:
    section: str  # "graph" | "round-trip" | "invariant" | "clear-then-set" | "cpregs"
    label: str  # what it proves, for the progress line (and ``only``)
    obligations: int  # how many outcomes it gives (for the progress line; a cpregs job counts once)
    fn: Callable[..., Any]
    args: tuple[Any, ...]
    seqs: tuple[int, ...] = ()  # the indices of the sequences it checks (graph) or proves (round trip)


def plan(seqs: list[Sequence], budget: solver.Budget) -> list[Task]:
    """Every obligation of ``check`` over the loaded sequences, as jobs, in submission
    order: the longest jobs first (each ordering graph, derived once and checked against
    every sequence that uses it; the CPU register list protocol; then the round trips), so
    that no long job starts last
    while the other workers sit idle. The output's order does not depend on this one."""
    graph_keys: dict[tuple[str, str, str, str], list[int]] = {}
    for i, s in enumerate(seqs):
        # a file that names the device's default host has the graph of a file that names none
        host = "" if s.host == DEVICES[s.device].default_host else s.host
        graph_keys.setdefault((s.device, s.kernel, s.destination, host), []).append(i)
    tasks = []
    for (device, kernel, dest, host), idx in graph_keys.items():
        if "graph" not in DEVICES[device].obligations:
            continue
        tasks.append(Task("graph", f"ordering graph {device} {kernel} {dest}" + (f" {host}" if host else ""),
                          len(idx), job_ordering_graph,
                          (device, kernel, dest, host, tuple(seqs[i].path for i in idx), budget), tuple(idx)))
    # the CPU register list protocol (arm-cpregs): not a device of spec.devices, no
    # sequences; its obligations are one job of several seconds, which must not start last
    tasks.append(Task("cpregs", "arm-cpregs obligations", 1, job_cpregs_obligations, (budget,)))
    tasks.append(Task("cpregs", "arm-cpregs matrix of the shipped lists", 1, job_cpregs_matrix, ()))
    # a file without a size of its own is proved for all sizes: those are the longest round
    # trips (GICv3's walk every interrupt count), so they go first
    for i in sorted(range(len(seqs)), key=lambda i: seqs[i].cpus is not None or seqs[i].irqs is not None):
        tasks.append(Task("round-trip", f"round trip {short(seqs[i].path)}", 1, job_round_trip,
                          (seqs[i].path, budget), (i,)))
    for spec in DEVICES.values():
        if "invariant" not in spec.obligations:
            continue
        for kernel in spec.versions:
            tasks.append(Task("invariant", f"invariant {spec.name} {kernel}", 1, job_invariant,
                              (spec.name, kernel, budget)))
    for spec in DEVICES.values():
        if "clear-then-set" not in spec.obligations:
            continue
        for kernel in spec.versions:
            for set_reg, clear_reg in pairs(spec):
                tasks.append(Task("clear-then-set", f"clear-then-set {spec.name} {kernel} {clear_reg.name}/{set_reg.name}",
                                  1, job_clear_then_set, (spec.name, kernel, set_reg.name, clear_reg.name, budget)))
    return tasks


def run(executor: Executor, files: list[Path], budget: solver.Budget,
        progress: Callable[[str], None] | None = None, only: str | None = None) -> CheckOutcomes:
    """Submit every obligation of ``check`` over the sequence ``files`` (already checked
    to load) and collect the outcomes in submission order, then put them in the output's
    order. ``progress`` is called with a count of the obligations done each time a job
    finishes (from the executor's thread, for a pool). ``only`` (for tests) keeps the jobs
    whose label contains it."""
    seqs = [load(f, DEVICES) for f in files]
    tasks = [t for t in plan(seqs, budget) if only is None or only in t.label]
    total = sum(t.obligations for t in tasks)
    done = 0
    lock = threading.Lock()

    def finished(t: Task) -> Callable[[Future], None]:
        def callback(_: Future) -> None:
            nonlocal done
            with lock:
                done += t.obligations
                count = done
            if progress is not None:
                progress(f"{count}/{total} obligations done (last: {t.label})")
        return callback

    if progress is not None:
        progress(f"0/{total} obligations done")
    futures = []
    for t in tasks:
        fut = executor.submit(t.fn, *t.args)
        fut.add_done_callback(finished(t))
        futures.append(fut)
    results = [f.result() for f in futures]
    by_section: dict[str, list[Outcome]] = {"invariant": [], "round-trip": [], "clear-then-set": []}
    graphs: dict[int, Outcome] = {}
    trips: dict[int, Outcome] = {}
    cpregs: list[Outcome] = []
    for t, r in zip(tasks, results, strict=True):
        if t.section == "graph":
            graphs.update(zip(t.seqs, r, strict=True))
        elif t.section == "cpregs":
            cpregs += r
        elif t.section == "round-trip":
            trips[t.seqs[0]] = r  # printed in file order, whatever the submission order
        else:
            by_section[t.section].append(r)
    by_section["round-trip"] = [trips[i] for i in sorted(trips)]
    out = CheckOutcomes(by_section["invariant"], by_section["round-trip"], by_section["clear-then-set"],
                        [graphs[i] for i in sorted(graphs)], cpregs)
    # bad input a job found: the first in the order the serial check met it (a sequence's
    # round trip before its graph check)
    for o in out.sequences + out.graphs + out.invariants + out.clear_set + out.cpregs:
        if o.error is not None:
            raise SequenceError(*o.error)
    return out


__all__ = ["Outcome", "CheckOutcomes", "Task", "plan", "run", "run_sequence", "graph_for", "violations", "short",
           "job_invariant", "job_round_trip", "job_clear_then_set", "job_ordering_graph",
           "job_cpregs_obligations", "job_cpregs_matrix"]
