"""Reports: the human text and the JSON shape (documented in README.md, "JSON output").

``SequenceReport`` bundles one sequence's round-trip result with its replayed
counterexamples and whether the verdict matches the file's expectation.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from proofs.clearset import ClearSetResult
from proofs.replay import Replay
from proofs.roundtrip import COUNTEREXAMPLE, PROVED, REFUSED, UNKNOWN, RoundTripResult
from spec.device import DERIVED, DeviceSpec
from spec.devices import DEVICES
from spec.sequence import Sequence, Step

JSON_VERSION = 1


@dataclass
class SequenceReport:
    seq: Sequence
    spec: DeviceSpec
    kernel: str
    destination: str
    result: RoundTripResult
    replays: list[Replay] = field(default_factory=list)
    expectation_applies: bool = True

    @property
    def tool_bug(self) -> bool:
        """A witness that did not replay concretely: never shown as a counterexample."""
        return any(not r.confirmed for r in self.replays)

    @property
    def verdict(self) -> str:
        if self.tool_bug:
            return UNKNOWN
        return self.result.verdict

    @property
    def unknown_reason(self) -> str:
        """Why the verdict is UNKNOWN (empty otherwise), the same in text and JSON."""
        reasons = []
        if self.result.verdict == UNKNOWN:
            reasons.append(self.result.unknown_reason or "unknown")
        bad = [r.witness.label for r in self.replays if not r.confirmed]
        if bad:
            reasons.append("TOOL BUG: the solver's witness for " + ", ".join(bad)
                           + " did not replay on the concrete model (a bug in gicproof)")
        return "; ".join(reasons)

    @property
    def matches(self) -> bool | None:
        if not self.expectation_applies:
            return None
        v = self.verdict
        e = self.seq.expect
        if e == "proved":
            return v == PROVED
        if e == "refused":
            return v == REFUSED
        if v != COUNTEREXAMPLE:
            return False
        return self.seq.lost is None or sorted(self.seq.lost) == self.result.labels

    def exit_code(self) -> int:
        if self.verdict == UNKNOWN:
            return 3
        m = self.matches
        if m is None:
            return 0 if self.verdict == PROVED else 1
        return 0 if m else 1


# ---------------------------------------------------------------------------------------
# Text.


def _step_lines(steps: tuple[Step, ...], mark: Step | None, note: str) -> list[str]:
    out = []
    for s in steps:
        inner = list(s.steps) if s.action == "each" else []
        if s.action == "each":
            hit = mark is not None and any(i is mark for i in inner)
            out.append(f"  {'>>' if hit else '  '} line {s.line:<4} each {s.target}:")
            for i in inner:
                here = i is mark
                out.append(f"  {'>>' if here else '  '}   line {i.line:<4} {i.describe()}" + (f"    <- {note}" if here else ""))
        else:
            here = s is mark
            out.append(f"  {'>>' if here else '  '} line {s.line:<4} {s.describe()}" + (f"    <- {note}" if here else ""))
    return out


def _fields(d: dict[str, int]) -> str:
    return " ".join(f"{k}={v:#x}" for k, v in d.items())


def _scope_fields(state: Any, where: tuple[str, Any]) -> dict[str, int]:
    scope, key = where
    if scope == "irq":
        return dict(state.irq[key])
    if scope == "cpu":
        return dict(state.cpu[key])
    return dict(state.glob)


def _shown(spec: DeviceSpec, rep: Replay) -> list[str]:
    """The fields worth showing: all but derived ones, which appear only when they moved
    (the 4.7 soft_pending shadow matters only where it explains a loss)."""
    names = list(_scope_fields(rep.source, rep.witness.where))
    out = []
    for n in names:
        if spec.field_spec(n).classification != DERIVED:
            out.append(n)
            continue
        vals = {_scope_fields(st, rep.witness.where)[n] for st in (rep.source, rep.prior, rep.after)}
        if vals != {0}:
            out.append(n)
    return out


def render_replay(rep: Replay, spec: DeviceSpec, seq: Sequence, n: int, total: int) -> list[str]:
    w = rep.witness
    head = f"counterexample {n} of {total}: {w.label}"
    if not rep.confirmed:
        return [head, "  TOOL BUG: the solver's witness did not replay on the concrete model; it is not shown",
                f"  (configuration {rep.config.describe()}, at {w.where})"]
    out = [head + "  (confirmed by concrete replay)",
           f"  configuration: {rep.config.describe()} (the smallest that shows it)"]
    if w.label.startswith("refused:"):
        side = "save" if rep.in_save else "restore"
        out.append(f"  the {side} fails at: {rep.failed_at.label(spec) if rep.failed_at else '?'} -> {rep.errno}")
        g = spec.scope_label("global")
        out.append(f"  {g} (source):".ljust(30) + _fields(rep.source.glob))
        out.append(f"  {g} (destination):".ljust(30) + _fields(rep.prior.glob))
        mark = rep.failed_at.step if rep.failed_at else None
        note = rep.errno
    else:
        out.append(f"  where: {rep.where_text}, field {w.field}")
        where = w.where
        shown = _shown(spec, rep)

        def pick(st: Any) -> dict[str, int]:
            f = _scope_fields(st, where)
            # a field this side's host does not have (GICC_APR3 on a 5-bit GICv3 host) is absent
            return {n: f[n] for n in shown if n in f}

        out.append("  source state:               " + _fields(pick(rep.source)))
        out.append("  destination before restore: " + _fields(pick(rep.prior)))
        out.append("  destination after restore:  " + _fields(pick(rep.after)))
        if where[0] == "irq":
            out.append(f"  {spec.scope_label('global')} (source / destination before): "
                       + _fields(rep.source.glob) + " / " + _fields(rep.prior.glob))
        mark = rep.diverging.step if rep.diverging else None
        note = (rep.diverging.label(spec) + ": " if rep.diverging else "") + rep.diverging_note
    if rep.in_save and seq.save is not None:
        out.append(f"  save sequence ({seq.path}; >> marks the step where the save stopped):")
        out += _step_lines(seq.save, mark, note)
    else:
        out.append(f"  restore sequence ({seq.path}; >> marks the step where the state diverged):")
        out += _step_lines(seq.restore, mark, note)
    if rep.diverging is None and not w.label.startswith("refused:"):
        out.append(f"  ({rep.diverging_note})")
        mark = None
    if rep.rule:
        out.append(f"  rule: {rep.rule}")
        out.append(f"        ({rep.rule_source})")
    if rep.read_rule:
        out.append(f"  and: {rep.read_rule}")
    return out


def render_sequence(rep: SequenceReport, timing: bool = True) -> str:
    seq, spec, r = rep.seq, rep.spec, rep.result
    out = [f"{seq.name}", f"  file: {seq.path}",
           f"  device {spec.name} ({spec.title}), kernel {rep.kernel}"
           + (f" (source kernel {seq.source_kernel})" if seq.source_kernel else "")
           + (f", host {seq.host or spec.default_host}" if spec.hosts else "")
           + (f" (source host {seq.source_host})" if seq.source_host and seq.source_host != seq.host else "")
           + f", destination {rep.destination}"]
    if seq.reference:
        out.append(f"  reference: {seq.reference}")
    out.append("")
    out.append(f"round trip: {rep.verdict}")
    out.append(f"  covers: {r.covers}")
    assumed = tuple(spec.premises) + tuple(a for a in seq.assume if a not in spec.premises)
    if assumed:
        out.append("  assumes (checked satisfiable with the invariant): " + "; ".join(
            f"{a}{' (of the destination before the restore)' if spec.assumption(a).side == 'destination' else ''}"
            f"{' (the device premise)' if a in spec.premises else ''}: "
            f"{spec.assumption(a).reason}" for a in assumed))
    if timing:
        out.append(f"  {r.queries} solver queries, {r.seconds:.2f} s")
    if rep.verdict == UNKNOWN:
        out.append(f"  unknown: {rep.unknown_reason}")
        if r.witnesses:
            out.append("  (the losses below were found and replayed before that; the list may be incomplete)")
    if r.labels:
        out.append(f"  lost or refused: {', '.join(r.labels)}")
    m = rep.matches
    if m is None:
        out.append("  expectation: not compared (kernel or destination overridden on the command line)")
    else:
        exp = seq.expect + (f" ({', '.join(sorted(seq.lost))})" if seq.lost else "")
        outcome = ("not established (the verdict is UNKNOWN)" if rep.verdict == UNKNOWN
                   else "matches" if m else "DOES NOT MATCH")
        out.append(f"  expected: {exp} -> {outcome}")
        if seq.why:
            out.append(f"  why: {seq.why}")
    for i, rp in enumerate(rep.replays, 1):
        out.append("")
        out += render_replay(rp, spec, seq, i, len(rep.replays))
    return "\n".join(out)


def render_clearset(r: ClearSetResult) -> str:
    out = [f"clear-then-set {r.clear_reg} (ones) then {r.set_reg} (value), field {r.field}, "
           f"{r.device} kernel {r.kernel}: {r.verdict}"]
    spec = DEVICES.get(r.device)
    if spec is not None and spec.clear_set_assumption_reason:
        out.append(f"  for prior states with {spec.clear_set_assumption_reason}")
    for k in r.kinds:
        line = f"  {k.kind} (interrupt {k.intid}): {k.verdict}"
        if k.witness is not None:
            prior = {n: v for n, v in k.witness.items() if n != "value"}
            line += (f" (from {_fields(prior)}, clearing then writing {k.witness['value']:#x} leaves "
                     f"{r.field}={k.witness_result:#x}" + ("" if k.replayed else "; DID NOT REPLAY: tool bug") + ")")
        if k.gap:
            line += f" [expected: {k.gap}]"
        if k.set_alone_witness is not None:
            prior = {n: v for n, v in k.set_alone_witness.items() if n != "value"}
            line += (f"; {r.set_reg} alone is not enough: from {_fields(prior)}, writing "
                     f"{k.set_alone_witness['value']:#x} leaves {r.field}={k.set_alone_result:#x}"
                     + ("" if k.witness_replayed else " (WITNESS DID NOT REPLAY: tool bug)"))
        elif k.set_alone_status == "unsat":
            line += f"; {r.set_reg} alone suffices here (proved)"
        else:
            line += f"; {r.set_reg} alone: UNKNOWN"
        if k.reason:
            line += f" ({k.reason})"
        out.append(line)
    return "\n".join(out)


# ---------------------------------------------------------------------------------------
# JSON (shape documented in README.md).


def _where_json(where: tuple[str, Any]) -> dict[str, Any]:
    scope, key = where
    if scope == "irq":
        return {"scope": "irq", "bank": key[0], "intid": key[1]}
    if scope == "cpu":
        return {"scope": "cpu", "cpu": key}
    if scope == "step":
        return {"scope": "step", "access": key}
    return {"scope": "global"}


def replay_json(rep: Replay, spec: DeviceSpec) -> dict[str, Any]:
    w = rep.witness
    d: dict[str, Any] = {
        "label": w.label, "confirmed": rep.confirmed,
        "config": {"cpus": rep.config.cpus, "irqs": rep.config.irqs},
        "where": _where_json(w.where), "field": w.field,
    }
    if rep.confirmed and not w.label.startswith("refused:"):
        d["source"] = _scope_fields(rep.source, w.where)
        d["destination_before"] = _scope_fields(rep.prior, w.where)
        d["destination_after"] = _scope_fields(rep.after, w.where)
    step = rep.diverging
    d["diverging_step"] = ({"line": step.step.line, "access": step.label(spec), "note": rep.diverging_note}
                           if step else None)
    d["errno"] = rep.errno
    d["rule"] = rep.rule
    d["rule_source"] = rep.rule_source
    d["saved_from"] = rep.read_rule
    return d


def sequence_json(rep: SequenceReport) -> dict[str, Any]:
    seq, r = rep.seq, rep.result
    return {
        "obligation": "round-trip", "file": seq.path, "name": seq.name, "device": seq.device,
        "kernel": rep.kernel, "source_kernel": seq.effective_source_kernel,
        "destination": rep.destination, "expect": seq.expect,
        "expected_lost": sorted(seq.lost) if seq.lost is not None else None,
        "verdict": rep.verdict, "matches": rep.matches, "covers": r.covers, "assumes": list(seq.assume),
        "labels": r.labels, "unknown_reason": rep.unknown_reason,
        "seconds": round(r.seconds, 3), "queries": r.queries,
        "counterexamples": [replay_json(x, rep.spec) for x in rep.replays],
    }


def clearset_json(r: ClearSetResult) -> dict[str, Any]:
    return {
        "obligation": "clear-then-set", "device": r.device, "kernel": r.kernel,
        "set": r.set_reg, "clear": r.clear_reg, "field": r.field,
        "verdict": r.verdict, "matches": r.matches, "seconds": round(r.seconds, 3),
        "kinds": [{"kind": k.kind, "intid": k.intid, "verdict": k.verdict,
                   "set_alone_witness": k.set_alone_witness, "set_alone_result": k.set_alone_result,
                   "witness_replayed": k.witness_replayed, "set_alone_status": k.set_alone_status,
                   "reason": k.reason, "expected": k.expected, "gap": k.gap, "witness": k.witness,
                   "witness_result": k.witness_result, "replayed": k.replayed} for k in r.kinds],
    }


__all__ = ["JSON_VERSION", "SequenceReport", "render_sequence", "render_clearset",
           "sequence_json", "clearset_json", "PROVED", "COUNTEREXAMPLE", "REFUSED", "UNKNOWN"]
