"""The compatibility matrix (DESIGN.md "Properties": compatibility; ``gicproof matrix``).

Across host kinds and kernel releases a migration must either round-trip or be refused
cleanly at a step with the kernel's error; a silent change of state is a counterexample.
``run`` proves one sequence file for every (source kernel, source host) x (destination
kernel, destination host) pair: each cell is exactly what ``gicproof prove`` does for the
file with ``source_kernel``/``source_host`` set to the row and ``kernel``/``host`` to the
column (``proofs.check.run_sequence``: the same proof, the same sizes, every witness
replayed on the concrete model before it is shown). Nothing here proves anything itself.

A cell's verdict (``Cell.kind``):

* ``round trip``: PROVED;
* ``refused``: REFUSED, every refusal with the step (file line), the access and the errno
  the replay computed;
* ``silent``: COUNTEREXAMPLE, the replayed losses (refusals the same cell also has are
  listed with it);
* ``unknown``: the budget ran out, the solver said unknown, or a witness did not replay
  (a tool bug, never shown as a loss);
* ``not run``: the cell cannot be run (the device models no such kernel on that host kind).

Each cell is a job (a top-level function of plain arguments, returning a picklable
``Cell``), so ``--jobs`` runs cells in worker processes through ``proofs.executor``, and
the cells are collected in submission order: the output does not depend on the number of
jobs apart from the times.
"""

from __future__ import annotations

import dataclasses
import textwrap
import threading
import time
from collections.abc import Callable
from concurrent.futures import Executor, Future
from dataclasses import dataclass, field
from typing import Any

from proofs import solver
from proofs.check import run_sequence
from proofs.report import replay_json, sequence_json
from proofs.roundtrip import COUNTEREXAMPLE, PROVED, REFUSED
from spec.device import DeviceSpec
from spec.devices import DEVICES
from spec.sequence import SequenceError, load

ROUND_TRIP = "round trip"
REFUSED_CELL = "refused"
SILENT = "silent"
UNKNOWN_CELL = "unknown"
NOT_RUN = "not run"
KINDS = (ROUND_TRIP, REFUSED_CELL, SILENT, UNKNOWN_CELL, NOT_RUN)


@dataclass(frozen=True)
class Side:
    """One side of a migration: a kernel release on a host kind."""

    kernel: str
    host: str

    @property
    def label(self) -> str:
        return f"{self.kernel}/{self.host}" if self.host else self.kernel


@dataclass(frozen=True)
class Refusal:
    """Where a migration stops: the file's line, the access, the register or operation
    it names, the errno, and whether it was a save step."""

    line: int
    access: str
    target: str
    errno: str
    in_save: bool = False

    @property
    def text(self) -> str:
        side = "save line" if self.in_save else "line"
        return f"refused at {side} {self.line}: {self.errno or 'check failed'} ({self.access})"

    @property
    def code(self) -> str:
        return f"{self.errno or 'CHECK'} @{'save:' if self.in_save else ''}{self.line}"


@dataclass
class Loss:
    """One replayed silent loss, as a line of the per-cell detail."""

    label: str
    config: str
    where: str
    step: str  # "line N ACCESS: note", or the note when no step is to blame
    rule_source: str


@dataclass
class Cell:
    source: Side
    destination: Side
    kind: str  # one of KINDS
    verdict: str = ""  # the round trip's verdict (PROVED, ...); "" when not run
    losses: list[Loss] = field(default_factory=list)  # silent, replayed
    refusals: list[Refusal] = field(default_factory=list)
    reason: str = ""  # unknown: why; not run: why not
    covers: str = ""
    seconds: float = 0.0
    queries: int = 0
    json: dict[str, Any] = field(default_factory=dict)  # the cell as ``prove --json``'s result
    error: tuple[str, int, str] | None = None  # bad input a job found: SequenceError's fields

    @property
    def lost(self) -> list[str]:
        return [x.label for x in self.losses]

    @property
    def text(self) -> str:
        """The full verdict, one line."""
        if self.kind == ROUND_TRIP:
            return ROUND_TRIP
        if self.kind == REFUSED_CELL:
            return "; ".join(r.text for r in self.refusals)
        if self.kind == SILENT:
            out = f"silent: {', '.join(self.lost)}"
            if self.refusals:
                out += "; also " + "; ".join(r.text for r in self.refusals)
            return out
        if self.kind == UNKNOWN_CELL:
            found = f" (found before that, replayed: {', '.join(self.lost)})" if self.losses else ""
            return f"unknown: {self.reason}{found}"
        return f"not run: {self.reason}"


def _where(rep: Any) -> str:
    scope = rep.witness.where[0]
    return rep.where_text + (f", field {rep.witness.field}" if scope != "step" and rep.witness.field else "")


def job_cell(path: str, source: Side, destination: Side, cpus: int | None, irqs: int | None,
             budget: solver.Budget) -> Cell:
    """One cell: ``prove`` of the file at ``path`` with its source and destination sides
    replaced (the round trip and the replays of ``run_sequence``)."""
    try:
        seq = load(path, DEVICES)
    except SequenceError as e:
        return Cell(source, destination, NOT_RUN, error=(e.path, e.line, e.message))
    spec = DEVICES[seq.device]
    for side, what in ((source, "source"), (destination, "destination")):
        try:
            spec.semantics(side.kernel, side.host)
        except ValueError as e:
            return Cell(source, destination, NOT_RUN, reason=f"{what} {side.label}: {e}")
    seq = dataclasses.replace(seq, source_kernel=source.kernel, source_host=source.host)
    try:
        rep = run_sequence(seq, destination.kernel, None, cpus, irqs, "classes", budget,
                           host=destination.host)
    except SequenceError as e:
        return Cell(source, destination, NOT_RUN, error=(e.path, e.line, e.message))
    cell = Cell(source, destination, UNKNOWN_CELL, rep.verdict, covers=rep.result.covers,
                seconds=rep.result.seconds, queries=rep.result.queries)
    doc = sequence_json(rep)
    doc["source_host"] = rep.seq.effective_source_host or spec.default_host
    doc["host"] = rep.seq.host or spec.default_host
    # only replayed counterexamples are shown (a witness that did not replay makes the
    # verdict UNKNOWN and is reported as a tool bug, in unknown_reason)
    doc["counterexamples"] = [replay_json(r, spec) for r in rep.replays if r.confirmed]
    cell.json = doc
    for r in rep.replays:
        if not r.confirmed:
            continue
        if r.witness.label.startswith("refused:"):
            acc = r.failed_at
            cell.refusals.append(Refusal(acc.step.line if acc else 0, acc.label(spec) if acc else "?",
                                         acc.name if acc else "?", r.errno, r.in_save))
        else:
            step = (f"line {r.diverging.step.line} {r.diverging.label(spec)}: {r.diverging_note}"
                    if r.diverging is not None else r.diverging_note)
            cell.losses.append(Loss(r.witness.label, r.config.describe(), _where(r), step, r.rule_source))
    if rep.verdict == PROVED:
        cell.kind = ROUND_TRIP
    elif rep.verdict == REFUSED:
        cell.kind = REFUSED_CELL
    elif rep.verdict == COUNTEREXAMPLE:
        cell.kind = SILENT
    else:
        cell.kind, cell.reason = UNKNOWN_CELL, rep.unknown_reason or "unknown"
    return cell


@dataclass
class Matrix:
    path: str
    device: str
    name: str
    destination: str  # fresh | any: the file's
    sources: list[Side]
    destinations: list[Side]
    cells: list[Cell]  # row-major: sources x destinations
    seconds: float = 0.0

    def cell(self, source: Side, destination: Side) -> Cell:
        return self.cells[self.sources.index(source) * len(self.destinations) + self.destinations.index(destination)]

    def count(self, kind: str) -> int:
        return sum(c.kind == kind for c in self.cells)

    def exit_code(self) -> int:
        """1 if any cell is a silent change, else 3 if any is unknown, else 0."""
        if self.count(SILENT):
            return 1
        if self.count(UNKNOWN_CELL):
            return 3
        return 0


def sides(spec: DeviceSpec, kernels: list[str] | None, hosts: list[str] | None) -> list[Side]:
    """Every kernel on every host kind, kernel-major. Default kernels: one release per
    semantic revision (the revision's own, its first mainline release); default hosts:
    every host kind the device models."""
    ks = kernels or list(spec.versions)
    hs = hosts or list(spec.hosts) or [spec.default_host]
    return [Side(k, h) for k in ks for h in hs]


def run(executor: Executor, path: str, kernels: list[str] | None = None, hosts: list[str] | None = None,
        cpus: int | None = None, irqs: int | None = None, budget: solver.Budget = solver.DEFAULT_BUDGET,
        progress: Callable[[str], None] | None = None) -> Matrix:
    """Every cell of the file's matrix, through ``executor``; bad input a job found is
    raised as ``SequenceError`` (the first in row-major order)."""
    t0 = time.perf_counter()
    seq = load(path, DEVICES)
    spec = DEVICES[seq.device]
    all_sides = sides(spec, kernels, hosts)
    pairs = [(s, d) for s in all_sides for d in all_sides]
    total = len(pairs)
    done = 0
    lock = threading.Lock()

    def finished(_: Future) -> None:
        nonlocal done
        with lock:
            done += 1
            count = done
        if progress is not None:
            progress(f"{count}/{total} cells done")

    if progress is not None:
        progress(f"0/{total} cells done")
    futures = []
    for s, d in pairs:
        fut = executor.submit(job_cell, path, s, d, cpus, irqs, budget)
        fut.add_done_callback(finished)
        futures.append(fut)
    cells = [f.result() for f in futures]
    for c in cells:
        if c.error is not None:
            raise SequenceError(*c.error)
    return Matrix(path, seq.device, seq.name, seq.destination, all_sides, all_sides, cells,
                  time.perf_counter() - t0)


# ---------------------------------------------------------------------------------------
# Cell codes, text and JSON.

CODE_WIDTH = 18  # a silent cell's code names its rarest distinguishing field and counts the rest
LEGEND_WIDTH = 110


def _field(label: str) -> str:
    return label.split(":")[0].split("@")[0]


def codes(m: Matrix) -> list[str]:
    """Each cell's short code, in ``m.cells``' order: ``ok``, ``REFUSED ERRNO @LINE``,
    ``SILENT`` followed by the fields it loses that not every silent cell loses (the rarest
    first, then ``+N`` for the others), ``UNKNOWN`` or ``NOT RUN``. Two different verdicts
    never share a code: a repeated code gets ``#2``, ``#3``... in order of first appearance."""
    silent = [c for c in m.cells if c.kind == SILENT]
    common = set.intersection(*({_field(x) for x in c.lost} for c in silent)) if silent else set()
    seen: dict[str, int] = {}
    for c in silent:
        for f in {_field(x) for x in c.lost} - common:
            seen[f] = seen.get(f, 0) + 1
    out = []
    for c in m.cells:
        if c.kind == ROUND_TRIP:
            code = "ok"
        elif c.kind == REFUSED_CELL:
            first = c.refusals[0].code if c.refusals else "?"
            code = f"REFUSED {first}" + (f" +{len(c.refusals) - 1}" if len(c.refusals) > 1 else "")
        elif c.kind == SILENT:
            extra = sorted({_field(x) for x in c.lost} - common, key=lambda f: (seen[f], f))
            code = "SILENT" + (f" {extra[0]}" + (f"+{len(extra) - 1}" if len(extra) > 1 else "") if extra else "")
        elif c.kind == UNKNOWN_CELL:
            code = "UNKNOWN"
        else:
            code = "NOT RUN"
        out.append(code)
    texts: dict[str, list[str]] = {}
    final = []
    for code, c in zip(out, m.cells, strict=True):
        variants = texts.setdefault(code, [])
        if c.text not in variants:
            variants.append(c.text)
        n = variants.index(c.text)
        final.append(code if n == 0 else f"{code} #{n + 1}")
    return final


def _table(rows: list[list[str]]) -> list[str]:
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    return ["  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip() for r in rows]


def _detail(c: Cell, covers: str) -> list[str]:
    """The lines under a cell's verdict (which names every refusal): each replayed loss
    with its smallest configuration, where, the step it diverged at and the rule's source;
    what the verdict covers when it is not ``covers``, the matrix's."""
    out = []
    for x in c.losses:
        out.append(f"    {x.label}: {x.config}; {x.where}; {x.step}" + (f" ({x.rule_source})" if x.rule_source else ""))
    if c.covers and c.covers != covers:
        out.append(f"    covers: {c.covers}")
    return out


def render(m: Matrix) -> str:
    """Sources down, destinations across (one table per destination host kind when there
    are several, so that a table fits a terminal), short codes with a legend, then every
    cell's full verdict (cells with the same detail are listed together)."""
    spec = DEVICES[m.device]
    cell_codes = codes(m)
    kernels = list(dict.fromkeys(s.kernel for s in m.destinations))
    hosts = list(dict.fromkeys(s.host for s in m.destinations))
    out = [f"{m.name}", f"  file: {m.path}",
           f"  device {m.device}, destination {m.destination}; each cell is 'gicproof prove' of the file with "
           "source_kernel/source_host set to the row and kernel/host to the column",
           f"  kernels: {', '.join(kernels)}; hosts: {', '.join(hosts)}; "
           f"{len(m.sources)} sources x {len(m.destinations)} destinations = {len(m.cells)} cells"]
    covers = sorted({c.covers for c in m.cells if c.covers})
    common = covers[0] if len(covers) == 1 else ""
    if common:
        out.append(f"  covers: {common}")
    index = {(c.source, c.destination): code for c, code in zip(m.cells, cell_codes, strict=True)}
    for host in hosts:
        cols = [d for d in m.destinations if d.host == host]
        out.append("")
        if len(hosts) > 1 or spec.hosts:
            out.append(f"destination host {host}:")
        rows = [["source \\ destination"] + [d.kernel for d in cols]]
        for s in m.sources:
            rows.append([s.label] + [index[(s, d)] for d in cols])
        out += ["  " + line for line in _table(rows)]
    out.append("")
    out.append("legend:")
    legend: dict[str, Cell] = {}
    for c, code in zip(m.cells, cell_codes, strict=True):
        legend.setdefault(code, c)
    for code, c in legend.items():
        n = cell_codes.count(code)
        text = f"{c.text} ({n} cell{'s' if n != 1 else ''})"
        out += textwrap.wrap(text, LEGEND_WIDTH, initial_indent=f"  {code:<{CODE_WIDTH}} ",
                             subsequent_indent=" " * (CODE_WIDTH + 3), break_on_hyphens=False)
    out.append("")
    out.append("cells (every counterexample replayed on the concrete model; cells with the same detail together):")
    groups: dict[tuple[str, ...], list[Cell]] = {}
    for c in m.cells:
        groups.setdefault((c.text, *_detail(c, common)), []).append(c)
    for (text, *lines), cells in groups.items():
        # a no-break space keeps each "source -> destination" on one line
        names = ", ".join(f"{c.source.label}\xa0->\xa0{c.destination.label}" for c in cells) + ":"
        out += [line.replace("\xa0", " ") for line in textwrap.wrap(
            names, LEGEND_WIDTH, initial_indent="  ", subsequent_indent="  ", break_on_hyphens=False)]
        out.append(f"    {text}")
        out += lines
    counts = ", ".join(f"{m.count(k)} {k}" for k in KINDS if m.count(k))
    out.append("")
    out.append(f"summary: {len(m.cells)} cells: {counts} ({m.seconds:.1f} s)")
    return "\n".join(out)


def matrix_json(m: Matrix) -> dict[str, Any]:
    """The matrix as ``--json`` prints it: every cell with its code, its full verdict and
    the round trip's result as ``prove --json`` gives it (replayed counterexamples only)."""
    cell_codes = codes(m)

    def side(s: Side) -> dict[str, str]:
        return {"kernel": s.kernel, "host": s.host}

    return {
        "obligation": "compatibility-matrix", "file": m.path, "name": m.name, "device": m.device,
        "destination": m.destination,
        "sources": [side(s) for s in m.sources], "destinations": [side(d) for d in m.destinations],
        "counts": {k: m.count(k) for k in KINDS}, "seconds": round(m.seconds, 2),
        "cells": [{
            "source": side(c.source), "destination": side(c.destination), "verdict": c.kind, "code": code,
            "text": c.text, "lost": c.lost,
            "refusals": [{"line": r.line, "access": r.access, "target": r.target, "errno": r.errno,
                          "save": r.in_save} for r in c.refusals],
            "reason": c.reason, "result": c.json or None,
        } for c, code in zip(m.cells, cell_codes, strict=True)],
    }


__all__ = ["Side", "Refusal", "Loss", "Cell", "Matrix", "KINDS", "ROUND_TRIP", "REFUSED_CELL", "SILENT",
           "UNKNOWN_CELL", "NOT_RUN", "job_cell", "run", "sides", "codes", "render", "matrix_json"]
