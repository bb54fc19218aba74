"""``gicproof review FILE [--against FILE]``: a review of a save/restore sequence as a
maintainer would write it on a mailing list.

Plain text, at most 72 columns, no decoration and no line starting with ``>`` (so that it
can be pasted into an interleaved-quoting reply). It says what was checked and under which
assumptions, the verdict, for each counterexample the minimal scenario in a few lines and
the step that loses the state (every counterexample replayed on the concrete model first,
as ``prove`` does: an unreplayed witness is never shown), the ordering constraints the
interface imposes (the derived ordering graph of the file's device, kernel and
destination, each constraint with its reason) and which of them the file violates; with
``--against``, which constraints the second file's interface removes or adds, and how its
verdict differs.

It works for any device's file: it is a front end over ``proofs.check.run_sequence`` (the
round trip) and ``proofs.check.graph_for`` (the graph); it proves nothing of its own.
"""

from __future__ import annotations

import textwrap
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from proofs import solver
from proofs.check import graph_for, run_sequence, violations
from proofs.graph import OrderingGraph, node_of_step
from proofs.replay import Replay
from proofs.report import SequenceReport
from proofs.roundtrip import COUNTEREXAMPLE, PROVED, REFUSED, UNKNOWN
from proofs.save_order import SaveOrder, save_order
from spec.devices import DEVICES
from spec.sequence import Sequence, load

WIDTH = 72


@dataclass
class Review:
    seq: Sequence
    report: SequenceReport
    graph: OrderingGraph
    violated: list[str]
    save: SaveOrder | None = None  # the file's save steps' constraints (None: no save of its own)

    @property
    def constraints(self) -> dict[tuple[str, str], Any]:
        return dict(self.graph.edges)

    def exit_code(self) -> int:
        return self.report.exit_code() if self.report.expectation_applies else (
            3 if self.report.verdict == UNKNOWN else 0 if self.report.verdict == PROVED else 1)


def review(path: str | Path, budget: solver.Budget = solver.DEFAULT_BUDGET, progress: Any = None) -> Review:
    seq = load(path, DEVICES)
    rep = run_sequence(seq, budget=budget, progress=progress)
    og = graph_for(seq.device, seq.kernel, seq.destination, budget=budget, progress=progress, host=seq.host)
    spec = DEVICES[seq.device]
    save = save_order(spec, seq, budget) if seq.save is not None else None
    return Review(seq, rep, og, violations(og, seq), save)


# ---------------------------------------------------------------------------------------
# Text.


def _para(text: str, indent: int = 0, hang: int = 0) -> list[str]:
    lines = textwrap.wrap(text, width=WIDTH, initial_indent=" " * indent,
                          subsequent_indent=" " * (indent + hang), break_on_hyphens=False,
                          break_long_words=True)
    return lines or [""]


def _steps(seq: Sequence) -> str:
    n_restore = len(seq.restore)
    n_save = len(seq.save) if seq.save is not None else 0
    save = f"{n_save} save steps and " if seq.save is not None else "the ideal save (every register read) and "
    return f"{save}{n_restore} restore steps"


def _scenario(rv: Review, same: list[Replay], n: int) -> list[str]:
    """One finding: the losses one step makes under one rule (``same``), shown by the
    first one's scenario."""
    spec = rv.report.spec
    rp = same[0]
    w = rp.witness
    out = _para(f"{n}. {', '.join(r.witness.label for r in same)}", 0, 3)
    if len(same) > 1:
        out += _para(f"({len(same)} losses from one step and one rule; the first shown)", 3, 0)
    if w.label.startswith("refused:"):
        side = "save" if rp.in_save else "restore"
        at = rp.failed_at.label(spec) if rp.failed_at else "?"
        out += _para(f"On {rp.config.describe()}, the {side} fails at {at} with {rp.errno}.", 3, 0)
        step = rp.failed_at.step if rp.failed_at else None
    else:
        def val(st: Any) -> str:
            scope, key = w.where
            f = st.irq[key] if scope == "irq" else st.cpu[key] if scope == "cpu" else st.glob
            v = f.get(w.field)
            return f"{v:#x}" if isinstance(v, int) else "?"
        out += _para(f"On {rp.config.describe()}, {rp.where_text}: the source has {w.field} = {val(rp.source)}; "
                     f"the destination had {val(rp.prior)} before the restore and has {val(rp.after)} "
                     "after it.", 3, 0)
        step = rp.diverging.step if rp.diverging else None
        if rp.diverging is not None:
            out += _para(f"Lost at line {step.line if step else '?'} of the file, "
                         f"{rp.diverging.label(spec)}: {rp.diverging_note}.", 3, 0)
        elif rp.diverging_note:
            out += _para(rp.diverging_note[:1].upper() + rp.diverging_note[1:] + ".", 3, 0)
    if rp.rule:
        out += _para(f"Rule: {rp.rule} ({rp.rule_source}).", 3, 0)
    return out


def _edge_lines(og: OrderingGraph, keys: list[tuple[str, str]]) -> list[str]:
    out: list[str] = []
    for x, y in keys:
        e = og.edges[(x, y)]
        out += _para(f"- {x} before {y}", 2, 4)
        out += _para(f"{e.reason}" + (f" ({e.rule_name})" if e.rule_name else "")
                     + ("" if e.replayed else " [witness DID NOT REPLAY]"), 4, 0)
    return out


def _graph_name(og: OrderingGraph) -> str:
    return f"{og.device}, kernel {og.kernel}, destination {og.destination}"


def _sorted_edges(og: OrderingGraph, only: set[tuple[str, str]] | None = None) -> list[tuple[str, str]]:
    pos = {n: i for i, n in enumerate(og.reference)}
    keys = [k for k in og.edges if only is None or k in only]
    return sorted(keys, key=lambda k: (pos.get(k[0], 0), pos.get(k[1], 0)))


def render(rv: Review, against: Review | None = None) -> str:
    seq, rep = rv.seq, rv.report
    spec = rep.spec
    r = rep.result
    out: list[str] = []
    out += _para(f"Review of {seq.name}", 0, 2)
    out += _para(f"({seq.path}: {spec.title}, kernel {rep.kernel}"
                 + (f", host {seq.host}" if seq.host else "")
                 + (f", source kernel {seq.source_kernel}" if seq.source_kernel else "")
                 + f", destination {rep.destination})", 0, 1)
    if seq.reference:
        out += _para(f"Reference: {seq.reference}", 0, 2)
    out.append("")
    out.append("What was checked")
    out += _para(f"The file's {_steps(seq)} were run symbolically on gicproof's model of the kernel's "
                 f"userspace interface, from every source state the model allows to a destination "
                 f"that is {'freshly created' if rep.destination == 'fresh' else 'any reachable state'}, "
                 "and every field of the source's state was compared with the destination's after the "
                 "restore.", 2, 0)
    out += _para(f"Covers: {r.covers}.", 2, 2)
    for a in seq.assume:
        out += _para(f"Assumes {a}: {spec.assumption(a).reason}.", 2, 2)
    out.append("")
    verdict = rep.verdict
    if verdict == PROVED:
        out += _para("Verdict: PROVED. No state is lost and no step fails for any state covered.", 0, 2)
    elif verdict == UNKNOWN:
        out += _para(f"Verdict: UNKNOWN ({rep.unknown_reason}). Nothing is claimed.", 0, 2)
    elif verdict == REFUSED:
        out += _para("Verdict: REFUSED. The kernel refuses a step of the sequence.", 0, 2)
    else:
        out += _para(f"Verdict: {verdict}. {len(r.labels)} distinct loss{'es' if len(r.labels) != 1 else ''}, "
                     f"{'each ' if len(r.labels) != 1 else ''}replayed on the concrete model:", 0, 2)
    if verdict in (COUNTEREXAMPLE, REFUSED) or rep.replays:
        # losses made by the same step under the same rule are one finding: one scenario
        groups: dict[tuple[Any, ...], list[Replay]] = {}
        for rp in rep.replays:
            if rp.confirmed:
                step = rp.failed_at.step if rp.failed_at else rp.diverging.step if rp.diverging else None
                groups.setdefault((step.line if step else None, rp.rule, rp.diverging is None,
                                   rp.witness.label.startswith("refused:")), []).append(rp)
        for i, same in enumerate(groups.values(), 1):
            out.append("")
            out += _scenario(rv, same, i)
    if rep.matches is not None:
        out.append("")
        exp = seq.expect + (f" ({', '.join(sorted(seq.lost))})" if seq.lost else "")
        out += _para(f"The file expects: {exp}; the verdict {'matches' if rep.matches else 'DOES NOT MATCH'}.",
                     0, 2)
    out.append("")
    out += _ordering(rv)
    if rv.save is not None and rv.save.pairs:
        out.append("")
        out += _save_ordering(rv.save)
    if against is not None:
        out.append("")
        out += _comparison(rv, against)
    # a line starting with '>' would read as quoted text in a reply
    return "\n".join(" " + x if x.startswith(">") else x for x in out) + "\n"


def _ordering(rv: Review) -> list[str]:
    og = rv.graph
    out = ["Ordering constraints of the interface"]
    out += _para(f"Derived from the semantics for {_graph_name(og)} ({len(og.nodes)} steps; each "
                 "constraint confirmed by a witness in which the other order loses state):", 2, 0)
    if og.cycle is not None:
        cyc = ", ".join(f"{x} -> {y}" for x, y in og.cycle)
        out += _para(f"No valid order exists: the constraints form a cycle ({cyc}).", 2, 2)
    red = og.reduction()
    shown = [k for k in _sorted_edges(og) if red.has_edge(*k)]
    if not shown:
        out += _para("None: every pair of steps commutes or is equivalent in context.", 2, 2)
    out += _edge_lines(og, shown)
    implied = len(og.edges) - len(shown)
    if implied:
        out += _para(f"({implied} more follow{'s' if implied == 1 else ''} from these by transitivity.)", 2, 0)
    if og.unresolved:
        out += _para(f"{len(og.unresolved)} pairs unresolved (solver unknown or undecided): "
                     + "; ".join(f"{a} / {b}" for a, b, _ in og.unresolved[:5])
                     + (" ..." if len(og.unresolved) > 5 else ""), 2, 2)
    spec = rv.report.spec
    done = {node_of_step(spec, x) for st in rv.seq.restore for x in (st.steps if st.action == "each" else (st,))}
    never = [n.name for n in og.nodes if n.name not in done]
    if never:
        out.append("")
        out += _para("Interface steps this sequence never performs (an order cannot be violated by a "
                     "step that is absent; what its absence loses is in the verdict above): "
                     + ", ".join(never) + ".", 0, 2)
    out.append("")
    if rv.violated:
        out += _para("This sequence violates: " + ", ".join(rv.violated) + ".", 0, 2)
    else:
        out += _para("This sequence respects every constraint.", 0, 2)
    return out


def _save_ordering(so: SaveOrder) -> list[str]:
    out = ["Ordering constraints of this file's save"]
    out += _para(f"Derived from the file's save steps with its restore: {so.pairs} pairs of steps one of "
                 f"which changes state ({so.independent} of them independent by their footprints); each "
                 "constraint confirmed by a witness in which the other order loses state:", 2, 0)
    if not so.constraints and not so.conflicts and not so.unresolved:
        out += _para("None: the save's steps may run in any order.", 2, 2)
    for c in so.constraints:
        out += _para(f"- {c.before} before {c.after}", 2, 4)
        out += _para(c.reason + ("" if c.replayed else " [witness DID NOT REPLAY]"), 4, 0)
    if so.conflicts:
        out += _para("Pairs each of whose orders loses state (no order keeps everything):", 2, 0)
        for c in so.conflicts:
            out += _para(f"- {c.before} before {c.after}", 2, 4)
            out += _para(c.reason + ("" if c.replayed else " [witness DID NOT REPLAY]"), 4, 0)
    if so.unresolved:
        out += _para(f"{len(so.unresolved)} pairs unresolved: " + "; ".join(so.unresolved), 2, 2)
    broken = [f"{c.before} before {c.after}" for c in so.constraints if not c.respected]
    out.append("")
    if broken:
        out += _para("This save violates: " + ", ".join(broken) + ".", 0, 2)
    elif so.constraints:
        out += _para("This save respects every constraint.", 0, 2)
    return out


def _comparison(rv: Review, other: Review) -> list[str]:
    a, b = rv.graph, other.graph
    out = _para(f"Compared with {other.seq.name}", 0, 2)
    out += _para(f"({other.seq.path}; {_graph_name(b)})", 2, 1)
    out += _para(f"Its verdict: {other.report.verdict}"
                 + (f" ({', '.join(other.report.result.labels)})" if other.report.result.labels else "")
                 + f"; this file's: {rv.report.verdict}"
                 + (f" ({', '.join(rv.report.result.labels)})" if rv.report.result.labels else "") + ".", 2, 2)
    gone_lost = sorted(set(rv.report.result.labels) - set(other.report.result.labels))
    new_lost = sorted(set(other.report.result.labels) - set(rv.report.result.labels))
    if gone_lost:
        out += _para("Losses it no longer has: " + ", ".join(gone_lost) + ".", 2, 2)
    if new_lost:
        out += _para("Losses it adds: " + ", ".join(new_lost) + ".", 2, 2)
    removed = set(a.edges) - set(b.edges)
    added = set(b.edges) - set(a.edges)
    out.append("")
    if not removed and not added:
        out += _para("Its interface imposes the same ordering constraints.", 2, 0)
    if removed:
        out += _para(f"Constraints it removes ({len(removed)}):", 2, 0)
        out += _edge_lines(a, _sorted_edges(a, removed))
    if added:
        out += _para(f"Constraints it adds ({len(added)}):", 2, 0)
        out += _edge_lines(b, _sorted_edges(b, added))
    if rv.save is not None and other.save is not None and (rv.save.pairs or other.save.pairs):
        out += _save_comparison(rv.save, other.save)
    return out


def _save_comparison(mine: SaveOrder, theirs: SaveOrder) -> list[str]:
    """The save-side constraints one file's save has and the other's has not, by step
    (line numbers differ between files)."""
    def by_step(so: SaveOrder) -> dict[tuple[str, str], Any]:
        return {(c.before.split(" (line")[0], c.after.split(" (line")[0]): c for c in so.constraints}

    a, b = by_step(mine), by_step(theirs)
    gone, new = sorted(set(a) - set(b)), sorted(set(b) - set(a))
    out = [""]
    if not gone and not new:
        return out + _para("Its save has the same ordering constraints.", 2, 0)
    for title, keys, src in (("Save constraints it removes", gone, a), ("Save constraints it adds", new, b)):
        if keys:
            out += _para(f"{title} ({len(keys)}):", 2, 0)
            for k in keys:
                out += _para(f"- {k[0]} before {k[1]}", 2, 4)
                out += _para(src[k].reason, 4, 0)
    return out


__all__ = ["Review", "review", "render", "WIDTH"]
