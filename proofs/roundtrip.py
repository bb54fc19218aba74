"""The round-trip obligation (DESIGN.md "Properties"):

    for every source state S with inv(S) and every permitted destination prior state D
    (the reset state for destination = "fresh"; any D with inv(D) for "any"),
    restore(D, save(S)) does not fail, and arch(restore(D, save(S))) = arch(S).

Encoding: for each CPU count N, one symbolic representative per interrupt class
(``proofs.classes``), fields as bit-vector variables, the interpreter run on the symbolic
backend. PROVED needs ``unsat`` for every N *and* satisfiable assumptions. Otherwise every
distinct loss (field and direction) and every refusal is searched separately, at the
smallest N that shows it, with a witness minimised towards reset values and then replayed
on the concrete backend (``proofs.replay``).
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

from models.machine import (
    Config,
    DeviceState,
    Machine,
    carry_environment,
    ideal_save_steps,
    make_state,
    run_restore,
    run_save_checked,
)
from models.symbolic import SymbolicOps, fresh_symbolic
from proofs import solver
from proofs.classes import cpu_counts, held_vcpus, named_vcpus, representatives, size_dependent
from spec.algebra import Value
from spec.device import ARCHITECTURAL, DeviceSpec
from spec.sequence import Sequence, Step

PROVED = "PROVED"
COUNTEREXAMPLE = "COUNTEREXAMPLE"
REFUSED = "REFUSED"
UNKNOWN = "UNKNOWN"


@dataclass
class Difference:
    """One way the destination can differ: ``label`` (``field``, ``field:1->0``,
    ``refused:REGISTER``), with the condition under which it happens at ``where``."""

    label: str
    cond: Value
    where: tuple[str, Any]  # (scope, key): ("irq", (bank, intid)), ("cpu", n), ("global", None)
    field: str = ""


@dataclass
class Encoding:
    config: Config
    assumptions: list[Value]
    failed: Value
    differences: list[Difference]
    source: DeviceState
    prior: DeviceState
    after: DeviceState
    variables: list[tuple[Any, int]]  # (z3 var, its reset value), for witness minimisation
    var_names: dict[str, tuple[str, str, Any, str]]  # z3 name -> (side, scope, key, field)


@dataclass
class Witness:
    label: str
    config: Config
    where: tuple[str, Any]
    field: str
    values: dict[tuple[str, str, Any, str], int]  # (side, scope, key, field) -> value
    seconds: float


@dataclass
class RoundTripResult:
    """``verdict`` is UNKNOWN whenever any query the verdict rests on did not answer
    (resource limit, timeout, solver ``unknown``): then ``witnesses`` holds the
    counterexamples found before that (each still replayed), but the set of losses, and
    REFUSED's "nothing else silently changed", are not established."""

    verdict: str
    covers: str
    witnesses: list[Witness] = field(default_factory=list)
    unknown_reason: str = ""
    seconds: float = 0.0
    queries: int = 0

    @property
    def labels(self) -> list[str]:
        return sorted({w.label for w in self.witnesses})


def _var_factory(ops: SymbolicOps, side: str, names: dict[str, tuple[str, str, Any, str]]):
    def fv(scope: str, key: Any, name: str, width: int) -> Value:
        vname = f"{side}|{scope}|{key}|{name}"
        names[vname] = (side, scope, key, name)
        return ops.var(vname, width)

    return fv


def assumption_conds(spec: DeviceSpec, m: Machine, names: tuple[str, ...]) -> list[Value]:
    """The named assumptions (``DeviceSpec.assumptions``) on every scope of ``m``'s state."""
    ops, st = m.ops, m.state
    out = []
    for name in names:
        fn = spec.assumption(name).fn
        out.append(fn(ops, "global", st.glob))
        out += [fn(ops, "cpu", f) for f in st.cpu]
        out += [fn(ops, "irq", f) for f in st.irq.values()]
    return out


def encode(spec: DeviceSpec, seq: Sequence, config: Config, destination: str,
           ops: SymbolicOps | None = None, assume: tuple[str, ...] | None = None) -> Encoding:
    """The round trip of ``seq`` as formulas. Two encodings built with the same ``ops``
    share their source and destination variables (so two orders can be compared).
    ``assume``: the named assumptions on the source (default: the file's)."""
    src_sem = seq.source_semantics(spec)
    dst_sem = seq.destination_semantics(spec)
    names: dict[str, tuple[str, str, Any, str]] = {}
    if ops is None:
        ops = fresh_symbolic()
    src = make_state(spec, src_sem, config, ops, _var_factory(ops, "src", names))
    if destination == "fresh":
        dst = make_state(spec, dst_sem, config, ops)
    else:
        dst = make_state(spec, dst_sem, config, ops, _var_factory(ops, "dst", names))
    carry_environment(spec, src, dst, dst_sem)
    # the save runs on a copy: the state to restore is the source as it stopped, before any
    # save-side write (a selector the VMM moves to read a selected register) changes it
    m_src = Machine(spec, src_sem, config, ops, src.copy())
    m_dst = Machine(spec, dst_sem, config, ops, dst)
    named = (seq.assume if assume is None else assume)
    named = tuple(spec.premises) + tuple(n for n in named if n not in spec.premises)
    on_src = tuple(n for n in named if spec.assumption(n).side == "source")
    on_dst = tuple(n for n in named if spec.assumption(n).side == "destination")
    assumptions = [m_src.invariant()] + assumption_conds(spec, m_src, on_src)
    if destination != "fresh":
        assumptions.append(m_dst.invariant())
        # a fresh destination is the reset state, which every destination assumption holds of
        assumptions += assumption_conds(spec, m_dst, on_dst)
    prior = dst.copy()
    save = run_save_checked(m_src, seq.save if seq.save is not None else ideal_save_steps(spec))
    result = run_restore(m_dst, seq.restore, save.saved)

    diffs: list[Difference] = []
    arch = {f.name: f for f in spec.fields if f.classification == ARCHITECTURAL}

    def compare(scope: str, key: Any, a: dict[str, Value], b: dict[str, Value]) -> None:
        # labels: FIELD[:1->0|:0->1][@KIND]; the interrupt kind tells apart losses that
        # differ only in which interrupts they hit (e.g. the RFC's SPI loss vs an SGI one)
        at = f"@{spec.interrupt_kind(key[1])}" if scope == "irq" else ""
        for name, sf in arch.items():
            if sf.scope != scope or (name not in a and name not in b):
                continue
            # a field only one side's host has (GICC_APR3 on a GICv3 host with 7 priority
            # bits, none on a 5-bit one) is zero on the other: it reads as zero there and
            # ignores writes
            x, y = (f.get(name, ops.const(0, sf.width)) for f in (a, b))
            if sf.width == 1:
                one, zero = ops.const(1, 1), ops.const(0, 1)
                diffs.append(Difference(f"{name}:1->0{at}", ops.and_(ops.eq(x, one), ops.eq(y, zero)), (scope, key), name))
                diffs.append(Difference(f"{name}:0->1{at}", ops.and_(ops.eq(x, zero), ops.eq(y, one)), (scope, key), name))
            else:
                diffs.append(Difference(f"{name}{at}", ops.not_(ops.eq(x, y), 1), (scope, key), name))

    compare("global", None, src.glob, dst.glob)
    for c in config.held:
        compare("cpu", c, src.cpu[c], dst.cpu[c])
    for key in src.irq:
        compare("irq", key, src.irq[key], dst.irq[key])
    # A refusal is labelled by the step where the migration *stops*: that step fails and
    # no earlier one did (QEMU aborts at the first error), so a replay must stop there
    # too. A save step that fails (a save-side check) is "refused:save:REGISTER".
    earlier = ops.const(0, 1)
    for side, outcomes in (("save:", save.outcomes), ("", result.outcomes)):
        for out in outcomes:
            first = ops.and_(out.error, ops.not_(earlier, 1))
            diffs.append(Difference(f"refused:{side}{out.access.name}", first, ("step", (side, out.access.number))))
            earlier = ops.or_(earlier, out.error)

    variables = []
    reset_src = make_state(spec, src_sem, config, ops)
    reset_dst = make_state(spec, dst_sem, config, ops)
    for vname, (side, scope, key, fname) in names.items():
        base = reset_src if side == "src" else reset_dst
        if scope == "global":
            rv = base.glob[fname]
        elif scope == "cpu":
            rv = base.cpu[key][fname]
        else:
            rv = base.irq[key][fname]
        var = ops.var(vname, spec.field_spec(fname).width)
        variables.append((var, rv.as_long()))
    return Encoding(config, assumptions, ops.or_(save.failed, result.failed), diffs, src, prior, dst, variables, names)


def _witness(enc: Encoding, diff_group: list[Difference], extra: list[Any], budget: solver.Budget) -> tuple[solver.Answer, Difference | None]:
    ans = solver.check(enc.assumptions, extra + [solver.any_of([d.cond for d in diff_group])], budget)
    if ans.status != "sat":
        return ans, None
    shown = next((i for i, d in enumerate(diff_group) if solver.value_in(ans, d.cond) == 1), None)
    if shown is None:
        return ans, None
    # the place shown is the first in the group's fixed order where the loss can happen,
    # not whichever the model chose (solver.first_satisfiable)
    status, first = solver.first_satisfiable(enc.assumptions + extra, [d.cond for d in diff_group], shown, budget)
    if status != "sat":
        return ans, diff_group[shown]
    # the witness shown is the least state, in a fixed order, that shows that loss there
    # (solver.minimise_canonical): the same from any process
    canon = solver.minimise_canonical(enc.assumptions, extra + [diff_group[first].cond], enc.variables, budget)
    if canon.status == "sat":
        return canon, diff_group[first]
    return ans, diff_group[shown]


def _values(enc: Encoding, ans: solver.Answer) -> dict[tuple[str, str, Any, str], int]:
    return {info: ans.assignments.get(vname, 0) for vname, info in enc.var_names.items()}


def _span(values: list[int]) -> str:
    if len(values) == 1:
        return str(values[0])
    return f"{values[0]}-{values[-1]}"


def _steps(seq: Sequence) -> list[Step]:
    out: list[Step] = []
    for s in (seq.save or ()) + seq.restore:
        out.extend(s.steps if s.action == "each" else (s,))
    return out


def configs_for(spec: DeviceSpec, seq: Sequence, cpus: int | None, irqs: int | None,
                encoding: str) -> tuple[list[Config], str]:
    """The configurations to prove and what they cover: the command line's size, else
    the file's (``cpus``/``irqs``), else every size the device accepts. An interrupt
    range is proved at its largest count (``proofs.classes``, point 3), or at every count
    when a step depends on the count (``size_dependent``)."""
    named = named_vcpus(seq.save, seq.restore)
    asked = [cpus] if cpus else sorted(seq.cpus or range(1, spec.max_cpus + 1))
    cpu_range = cpu_counts(spec, named, asked)
    by_class = "" if cpu_range == asked else \
        f"; {cpu_range[-1]} CPUs with one vCPU per class stands for {_span([n for n in asked if n not in cpu_range[:-1]])}"
    counts = [irqs] if irqs else sorted(seq.irqs or spec.irq_counts)
    m = max(counts)
    every = cpus is None and irqs is None and seq.cpus is None and seq.irqs is None
    whose = "" if (cpus or irqs) or every else " (the file's configuration)"
    if encoding == "full":
        cfgs = [Config(n, m, None, held_vcpus(spec, n, named)) for n in cpu_range]
        covers = f"exactly {', '.join(map(str, cpu_range))} CPU(s) x {m} interrupts (every interrupt symbolic)"
        return cfgs, covers
    # a strided walk's reach depends on the count: its classes are each count's own, also
    # when one count is asked for
    strided = any(s.stride is not None for s in _steps(seq))
    reps = tuple(i for i in representatives(spec, seq.save, seq.restore, m if strided else max(spec.irq_counts))
                 if i < m)
    if len(counts) > 1 and size_dependent(spec, seq.save, seq.restore):
        # every interrupt count, each with the representatives that exist in it
        per_count = {count: (tuple(representatives(spec, seq.save, seq.restore, count)) if strided
                             else tuple(i for i in reps if i < count)) for count in counts}
        cfgs = [Config(n, count, per_count[count], held_vcpus(spec, n, named)) for n in cpu_range for count in counts]
    else:
        cfgs = [Config(n, m, reps, held_vcpus(spec, n, named)) for n in cpu_range]
    if not by_class and any(c.vcpus is not None for c in cfgs):
        by_class = "; one vCPU per class held"
    if every:
        covers = (f"all configurations: 1-{spec.max_cpus} CPUs x {min(spec.irq_counts)}-{m} "
                  f"interrupts ({_classes(len(reps))}{by_class})")
    else:
        covers = (f"{_span(asked)} CPU(s) x {_span(counts)} interrupts{whose} "
                  f"({_classes(len(reps))}{by_class})")
    return cfgs, covers


def _classes(n: int) -> str:
    return f"{n} interrupt class" + ("" if n == 1 else "es")


def prove_roundtrip(spec: DeviceSpec, seq: Sequence, destination: str | None = None,
                    cpus: int | None = None, irqs: int | None = None, encoding: str = "classes",
                    budget: solver.Budget = solver.DEFAULT_BUDGET, progress: Any = None) -> RoundTripResult:
    """``seq.assume`` names the assumptions the verdict rests on (the CLI adds
    ``--assume`` to it); they are checked satisfiable with the invariant first."""
    t0 = time.perf_counter()
    dest = destination or seq.destination
    cfgs, covers = configs_for(spec, seq, cpus, irqs, encoding)
    if spec.environment_coverage is not None:
        covers += "; " + spec.environment_coverage(dest)
    witnesses: list[Witness] = []
    found: set[str] = set()
    queries = 0
    unknown = ""
    any_sat = False
    for cfg in cfgs:
        if progress:
            progress(f"round trip: {cfg.describe()}")
        enc = encode(spec, seq, cfg, dest)
        vac = solver.satisfiable(enc.assumptions, budget)
        queries += 1
        if vac.status == "unknown":
            unknown = f"checking the assumptions: {vac.reason}"
            continue
        if vac.status == "unsat":
            unknown = "the assumptions are unsatisfiable (a vacuous proof): a bug in the device invariants"
            continue
        bad = solver.any_of([enc.failed] + [d.cond for d in enc.differences if not d.label.startswith("refused:")])
        main = solver.check(enc.assumptions, [bad], budget)
        queries += 1
        if main.status == "unknown":
            unknown = f"{cfg.describe()}: solver {main.reason}"
            continue
        if main.status == "unsat":
            continue
        any_sat = True
        # Every distinct loss: silent ones (no step fails), and refusals (labelled by the
        # step where the restore stops). One query asks whether any label not yet found
        # can happen; each label its model shows gets a witness of its own, minimised;
        # then the query is asked again without them, until it is unsat (none of the
        # remaining labels can happen at this size) or does not answer (UNKNOWN).
        groups: dict[str, list[Difference]] = {}
        for d in enc.differences:
            groups.setdefault(d.label, []).append(d)
        no_failure = solver.none_of([enc.failed])

        remaining = {}
        for label, group in groups.items():
            if label not in found:
                cond = solver.any_of([d.cond for d in group])
                remaining[label] = cond if label.startswith("refused:") else solver.all_of([cond, no_failure])
        while remaining:
            probe = solver.check(enc.assumptions, [solver.any_of(list(remaining.values()))], budget)
            queries += 1
            if probe.status == "unknown":
                unknown = f"{cfg.describe()}: looking for {len(remaining)} kinds of loss: solver {probe.reason}"
                break
            if probe.status == "unsat":
                break
            hits = [label for label, cond in remaining.items() if solver.value_in(probe, cond)]
            assert hits, "a model of a disjunction satisfies one of its terms"
            for label in hits:
                del remaining[label]
                extra = [] if label.startswith("refused:") else [no_failure]
                ans, hit = _witness(enc, groups[label], extra, budget)
                queries += 1
                if ans.status != "sat" or hit is None:
                    # the probe's model is a witness, so this can only be the budget
                    unknown = f"{label}: minimising the witness: solver {ans.reason or ans.status}"
                    continue
                found.add(label)
                witnesses.append(Witness(label, cfg, hit.where, hit.field, _values(enc, ans), ans.seconds))
    seconds = time.perf_counter() - t0
    # reports list losses by label (refusals last), whatever order the search found them in
    witnesses.sort(key=lambda w: (w.label.startswith("refused:"), w.label))
    if unknown:
        # whatever a query that did not answer would have decided is not known: not the
        # exact set of losses, not "nothing else changed"; the witnesses found stay shown
        return RoundTripResult(UNKNOWN, covers, witnesses, unknown, seconds, queries)
    if witnesses:
        silent = [w for w in witnesses if not w.label.startswith("refused:")]
        verdict = COUNTEREXAMPLE if silent else REFUSED
        return RoundTripResult(verdict, covers, witnesses, "", seconds, queries)
    if any_sat:
        return RoundTripResult(UNKNOWN, covers, [], "no witness could be extracted", seconds, queries)
    return RoundTripResult(PROVED, covers, [], "", seconds, queries)
