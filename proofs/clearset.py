"""The clear-then-set obligation, for every set/clear register pair of a device:

    for every reachable prior state P of an interrupt and every value v of its slice,
    writing all-ones to the clear view and then v to the set view (userspace semantics)
    leaves the pair's field equal to v;                                      (PROVED)
    and the set view alone does not: some P and v leave the field != v.      (a witness)

The witness is replayed on the concrete backend before it is reported. Checked for every
interrupt kind the pair covers, on a VM with the device's maximum CPU count (the private
interrupt sits in the bank of the last CPU, so SGI source bits of every CPU are in play).
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from dataclasses import field as dc_field

from models.concrete import CONCRETE
from models.machine import SPI_BANK, Config, Machine, make_state
from models.symbolic import fresh_symbolic
from proofs import solver
from proofs.classes import held_vcpus
from spec.device import DeviceSpec, Register

PROVED = "PROVED"
COUNTEREXAMPLE = "COUNTEREXAMPLE"
UNKNOWN = "UNKNOWN"


@dataclass
class KindResult:
    kind: str
    intid: int
    verdict: str  # of clear-then-set
    set_alone_witness: dict[str, int] | None = None  # prior fields and "value"
    set_alone_result: int | None = None
    witness_replayed: bool = False
    set_alone_status: str = ""  # the solver's answer for "the set view alone": sat / unsat / unknown
    reason: str = ""
    expected: str = PROVED  # COUNTEREXAMPLE where the device declares a gap (clear_set_gap)
    gap: str = ""  # the device's reason for that gap
    witness: dict[str, int] | None = None  # a clear-then-set counterexample: prior fields and "value"
    witness_result: int | None = None
    replayed: bool = False  # that counterexample replayed on the concrete backend


@dataclass
class ClearSetResult:
    device: str
    kernel: str
    set_reg: str
    clear_reg: str
    field: str
    kinds: list[KindResult] = dc_field(default_factory=list)
    seconds: float = 0.0

    @property
    def verdict(self) -> str:
        """Of the whole obligation: UNKNOWN when either query of some kind is unknown."""
        if any(k.verdict == UNKNOWN or k.set_alone_status == "unknown" for k in self.kinds):
            return UNKNOWN
        if any(k.verdict == COUNTEREXAMPLE for k in self.kinds):
            return COUNTEREXAMPLE
        return PROVED

    @property
    def set_alone_shown(self) -> bool:
        return any(k.set_alone_witness is not None and k.witness_replayed for k in self.kinds)

    @property
    def matches(self) -> bool:
        """Every kind as expected (PROVED, or a replayed counterexample where the device
        declares a gap, with its reason), and the set view alone shown insufficient."""
        return all(k.verdict == k.expected and (k.verdict != COUNTEREXAMPLE or k.replayed)
                   for k in self.kinds) and self.set_alone_shown and self.verdict != UNKNOWN


def pairs(spec: DeviceSpec) -> list[tuple[Register, Register]]:
    out = []
    for r in spec.registers:
        if r.pair and r.pair_role == "set":
            out.append((r, spec.register(r.pair)))
    return out


def _kinds(spec: DeviceSpec, reg: Register) -> list[tuple[str, int]]:
    seen: dict[str, int] = {}
    for intid in range(reg.first_irq, reg.first_irq + reg.irqs):
        seen.setdefault(spec.interrupt_kind(intid), intid)
        if len(seen) == 3:
            break
    return list(seen.items())


def _machine(spec: DeviceSpec, kernel: str, intid: int, ops, values=None) -> Machine:
    sem = spec.semantics(kernel)
    cfg = Config(spec.max_cpus, max(spec.irq_counts), (intid,), held_vcpus(spec, spec.max_cpus, set()))
    return Machine(spec, sem, cfg, ops, make_state(spec, sem, cfg, ops, values))


def _prove_kind(spec: DeviceSpec, kernel: str, set_reg: Register, clear_reg: Register,
                kind: str, intid: int, budget: solver.Budget) -> KindResult:
    fname = set_reg.views[0]
    bits = set_reg.bits_per_irq
    ops = fresh_symbolic()  # a context of its own per proof (reproducible witnesses)

    def fv(scope: str, key: object, name: str, width: int):
        return ops.var(f"{scope}|{key}|{name}", width)

    bank = spec.max_cpus - 1 if intid < spec.private_irqs else SPI_BANK
    key = (bank, intid)
    vcpu = max(bank, 0)
    word = set_reg.word_of(intid)
    v = ops.var("value", bits)

    def run(with_clear: bool) -> tuple[Machine, list]:
        m = _machine(spec, kernel, intid, ops, fv)
        assumptions = [m.invariant()]
        if spec.clear_set_assumption is not None:
            assumptions.append(spec.clear_set_assumption(ops, "irq", m.state.irq[key]))
        if with_clear:
            m.write(clear_reg, word, vcpu, {intid: ops.const((1 << bits) - 1, bits)})
        m.write(set_reg, word, vcpu, {intid: v})
        return m, assumptions

    m, assumptions = run(True)
    # what a witness shows: the interrupt's fields before the writes, and the value written.
    # They are the least (in this order, from their reset values) that show the loss, so a
    # witness is the same from any process (solver.minimise_canonical)
    reset = _machine(spec, kernel, intid, CONCRETE).state.irq[key]
    preferred = [(fv("irq", key, nm, spec.field_spec(nm).width), int(reset[nm])) for nm in reset] + [(v, 0)]
    vac = solver.satisfiable(assumptions, budget)
    if vac.status != "sat":
        return KindResult(kind, intid, UNKNOWN, reason="assumptions unsatisfiable (vacuous)"
                          if vac.status == "unsat" else vac.reason)
    ans = solver.minimise_canonical(assumptions, [ops.not_(ops.eq(m.state.irq[key][fname], v), 1)],
                                    preferred, budget)
    if ans.status == "unknown":
        return KindResult(kind, intid, UNKNOWN, reason=ans.reason)
    kr = KindResult(kind, intid, PROVED if ans.status == "unsat" else COUNTEREXAMPLE)
    gap = spec.clear_set_gap(spec.semantics(kernel), set_reg.name, kind) if spec.clear_set_gap else ""
    if gap:
        kr.expected, kr.gap = COUNTEREXAMPLE, gap
    if ans.status == "sat":
        # replay the clear-then-set counterexample concretely before it is shown
        def cts_value(scope: str, k: object, name: str, width: int = 0) -> int:
            return ans.assignments.get(f"{scope}|{k}|{name}", 0)

        value0 = ans.assignments.get("value", 0)
        mc0 = _machine(spec, kernel, intid, CONCRETE, cts_value)
        kr.witness = {nm: v for nm, v in mc0.state.irq[key].items()} | {"value": value0}
        mc0.write(clear_reg, word, vcpu, {intid: (1 << bits) - 1})
        mc0.write(set_reg, word, vcpu, {intid: value0})
        kr.witness_result = mc0.state.irq[key][fname]
        kr.replayed = kr.witness_result != value0
    m2, assumptions2 = run(False)
    alone = solver.minimise_canonical(assumptions2, [ops.not_(ops.eq(m2.state.irq[key][fname], v), 1)],
                                      preferred, budget)
    kr.set_alone_status = alone.status
    if alone.status == "unknown":
        kr.reason = f"set view alone: {alone.reason}"
    if alone.status != "sat":
        return kr

    def model_value(scope: str, k: object, name: str, width: int = 0) -> int:
        return alone.assignments.get(f"{scope}|{k}|{name}", 0)

    value = alone.assignments.get("value", 0)
    prior = {nm: model_value("irq", key, nm) for nm in m2.state.irq[key]}
    # replay on the concrete backend, from the same prior state
    mc = _machine(spec, kernel, intid, CONCRETE, model_value)
    mc.write(set_reg, word, vcpu, {intid: value})
    got = mc.state.irq[key][fname]
    kr.set_alone_witness = dict(prior) | {"value": value}
    kr.set_alone_result = got
    kr.witness_replayed = got != value
    return kr


def prove_clear_then_set(spec: DeviceSpec, kernel: str, set_reg: Register, clear_reg: Register,
                         budget: solver.Budget = solver.DEFAULT_BUDGET) -> ClearSetResult:
    t0 = time.perf_counter()
    res = ClearSetResult(spec.name, kernel, set_reg.name, clear_reg.name, set_reg.views[0])
    for kind, intid in _kinds(spec, set_reg):
        res.kinds.append(_prove_kind(spec, kernel, set_reg, clear_reg, kind, intid, budget))
    res.seconds = time.perf_counter() - t0
    return res
