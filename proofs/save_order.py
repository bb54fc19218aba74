"""Ordering constraints on a file's *save* steps: which of them must stay before which.

The ordering graph (``proofs.graph``) orders the restore interface. The save side has
orders that matter too: a step that writes state the stream carries (GICv5's IST save
writes the LPI IST into guest memory; the ITS's KVM_DEV_ARM_ITS_SAVE_TABLES its tables)
must come before the step that takes it (the guest-memory save), and a VMM that moves a
selector to read a selected register must read the selector first. Seed 003 states one
such rule ("guest memory must be saved after the IST save", L229-L231) and one freedom
("a) & b) could happen in either order", L230).

Derivation, for the file's own save (with its own restore; ``None``, the ideal save, has
no order to check):

* each top-level save step is a node (an ``each`` block is one node);
* a step's *footprint* on the source: the fields it changes (W) and the fields the words
  it saves, and its failure, are terms of (R). A read changes nothing; the guest-memory
  save reads the memory fields. Two steps whose footprints are disjoint (W_a meets
  neither R_b nor W_b, W_b does not meet R_a) save the same words in either order: no
  constraint, no query;
* for every other pair (x before y in the file), the file's save is compared with the
  same save with y moved just before x, in one Z3 context (both share the source's
  variables): a state that one order restores and the other does not (or one refuses)
  makes the pair a constraint, in the direction that keeps the state. The witness is
  replayed on the concrete model before the constraint is reported; one that does not
  replay is reported as such, never shown as confirmed;
* a pair where each order loses something the other keeps is reported as a conflict.

What it covers: the configuration the ordering graph uses (up to two vCPUs, the largest
interrupt count, one interrupt of each class the file's steps distinguish), the file's
assumptions and the device's premises.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from models.machine import Config, Machine, make_state, run_save_checked
from models.symbolic import SymbolicOps, free_variables, fresh_symbolic
from proofs import solver
from proofs.classes import representatives
from proofs.graph import loss_between
from proofs.replay import replay
from proofs.roundtrip import Encoding, Witness, encode
from spec.algebra import Value
from spec.device import SAVE_MEMORY, DeviceSpec
from spec.sequence import Sequence, Step


@dataclass
class SaveConstraint:
    before: str  # the step's label, with its line: "KVM_DEV_ARM_VGIC_GRP_IST_GET (line 15)"
    after: str
    reason: str
    respected: bool  # the file has ``before`` first
    replayed: bool  # the witness replayed on the concrete model (the alternative order loses it)


@dataclass
class SaveOrder:
    constraints: list[SaveConstraint]
    conflicts: list[SaveConstraint]  # pairs each of whose orders loses something
    unresolved: list[str]
    pairs: int  # the pairs of save steps considered
    independent: int  # of them, told apart by their footprints (no query)


def label(step: Step) -> str:
    what = f"each {step.target}" if step.action == "each" else step.target
    return f"{what} (line {step.line})"


def _flat_terms(v: Any) -> list[Value]:
    if isinstance(v, dict):
        return [t for x in v.values() for t in _flat_terms(x)]
    return [v]


def _changes(step: Step, spec: DeviceSpec) -> bool:
    """Whether a save step can change the source's state: reads never do, nor does taking
    the guest's memory."""
    if step.action == "each":
        return any(_changes(s, spec) for s in step.steps)
    if step.action == "op":
        return spec.operation(step.target).kind != SAVE_MEMORY
    return step.action == "write"


def save_order(spec: DeviceSpec, seq: Sequence, budget: solver.Budget = solver.DEFAULT_BUDGET) -> SaveOrder:
    out = SaveOrder([], [], [], 0, 0)
    if seq.save is None or len(seq.save) < 2:
        return out
    reps = tuple(representatives(spec, seq.save, seq.restore, max(spec.irq_counts)))
    config = Config(min(2, spec.max_cpus), max(spec.irq_counts), reps)
    ops = fresh_symbolic()
    steps = list(seq.save)
    feet = _footprints(spec, seq, config, ops, steps)
    encoded: dict[tuple[int, ...], Encoding] = {}

    def enc(order: tuple[int, ...]) -> Encoding:
        if order not in encoded:
            encoded[order] = encode(spec, _with_save(seq, [steps[i] for i in order]), config, seq.destination, ops)
        return encoded[order]

    file_order = tuple(range(len(steps)))
    for i in range(len(steps)):
        for j in range(i + 1, len(steps)):
            if not (_changes(steps[i], spec) or _changes(steps[j], spec)):
                continue  # two steps that change nothing commute
            out.pairs += 1
            (wi, ri), (wj, rj) = feet[i], feet[j]
            if not (wi & (rj | wj)) and not (wj & ri):
                out.independent += 1
                continue
            moved = file_order[:i] + (j,) + tuple(k for k in file_order[i:] if k != j)
            keep_file, loss_moved = _loss(spec, ops, enc(file_order), enc(moved), config, budget)
            keep_moved, loss_file = _loss(spec, ops, enc(moved), enc(file_order), config, budget)
            if "unknown" in (keep_file, keep_moved):
                out.unresolved.append(f"{label(steps[i])} / {label(steps[j])}: solver unknown")
                continue
            x, y = label(steps[i]), label(steps[j])
            if loss_moved is not None and loss_file is None:
                out.constraints.append(_constraint(spec, seq, steps, moved, x, y, loss_moved, True))
            elif loss_file is not None and loss_moved is None:
                out.constraints.append(_constraint(spec, seq, steps, file_order, y, x, loss_file, False))
            elif loss_file is not None and loss_moved is not None:
                out.conflicts.append(_constraint(spec, seq, steps, moved, x, y, loss_moved, True))
                out.conflicts.append(_constraint(spec, seq, steps, file_order, y, x, loss_file, False))
    return out


def _with_save(seq: Sequence, save: list[Step]) -> Sequence:
    return dataclasses.replace(seq, save=tuple(save), lost=None, violates=())


def _footprints(spec: DeviceSpec, seq: Sequence, config: Config, ops: SymbolicOps,
                steps: list[Step]) -> list[tuple[frozenset[str], frozenset[str]]]:
    """(W, R) of each save step run alone on a symbolic source, as "scope|key|field"."""
    sem = seq.source_semantics(spec)

    def fv(scope: str, key: Any, name: str, width: int) -> Value:
        return ops.var(f"fp|{scope}|{key}|{name}", width)

    base = make_state(spec, sem, config, ops, fv)
    out = []
    for s in steps:
        m = Machine(spec, sem, config, ops, base.copy())
        r = run_save_checked(m, [s])
        written = set()
        for scope, before, after in _scopes(base, m.state):
            written |= {f"{scope}|{k}" for k, v in after.items() if not v.eq(before[k])}
        terms = [r.failed] + [t for w in r.saved.values() for t in _flat_terms(w)]
        read = frozenset(v.split("|", 1)[1] for v in free_variables(terms) if v.startswith("fp|"))
        out.append((frozenset(written), read))
    return out


def _scopes(a: Any, b: Any) -> Iterable[tuple[str, dict, dict]]:
    yield "global|None", a.glob, b.glob
    for (c, x), y in zip(a.cpu.items(), b.cpu, strict=True):
        yield f"cpu|{c}", x, y
    for k in a.irq:
        yield f"irq|{k}", a.irq[k], b.irq[k]


def _loss(spec: DeviceSpec, ops: SymbolicOps, good: Encoding, bad: Encoding, config: Config,
          budget: solver.Budget) -> tuple[str, Witness | None]:
    """A state ``good`` restores (or does not refuse) and ``bad`` does not: ("sat",
    witness) / ("unsat", None) / ("unknown", None)."""
    status, loss = loss_between(spec, ops, config, good, bad, budget)
    return status, loss.witness if loss is not None else None


def _constraint(spec: DeviceSpec, seq: Sequence, steps: list[Step], wrong: tuple[int, ...], before: str,
                after: str, w: Witness, respected: bool) -> SaveConstraint:
    """``before`` must precede ``after``: the save order ``wrong`` (``after`` first) loses
    the witness's state; replayed on the concrete model through that order."""
    bad_seq = _with_save(seq, [steps[i] for i in wrong])
    rep = replay(spec, bad_seq, w, seq.destination)
    where = rep.where_text if w.field else ""
    if w.label == "refused" or w.label.startswith("refused"):
        reason = f"with {after} first, the migration fails"
        if rep.failed_at is not None:
            reason += f" at {rep.failed_at.label(spec)}: {rep.errno}"
        confirmed = rep.failed_at is not None
    else:
        reason = f"with {after} first, {w.field} of {where} is not restored"
        confirmed = rep.confirmed
    return SaveConstraint(before, after, reason, respected, confirmed)


__all__ = ["SaveConstraint", "SaveOrder", "save_order", "label"]
