"""The invariant obligation: the device invariant is proved, not assumed.

Every round-trip, clear-then-set and ordering proof considers only states that satisfy
the device invariant. An invariant that excludes a reachable state hides every loss from
that state, so it is an obligation of its own, for every kernel revision and CPU count:

* **base**: the reset state satisfies every conjunct;
* **step**: from any state satisfying every conjunct, each action the model has keeps
  every conjunct: every register write of the table through the guest accessor and the
  userspace accessor (any data, any word that holds an interrupt of each kind, on every
  vCPU's bank), every operation, and every guest/device event of ``models.guest``
  (lines, GICD_SGIR from every sender, acknowledge, deactivate, the APR updates).

The step is checked on a machine holding one interrupt of each kind (on every CPU's bank
for private ones): each per-interrupt accessor sees only its own interrupt's fields
(``proofs.classes``, point 1), so one interrupt of a kind stands for all of them. A
failing conjunct is reported with the action that breaks it and a state it breaks it
from, replayed on the concrete backend first.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

from models.concrete import CONCRETE
from models.guest import Event, events_for
from models.machine import SPI_BANK, Config, DeviceState, Machine, make_state
from models.symbolic import SymbolicOps, fresh_symbolic
from proofs import classes, solver
from proofs.roundtrip import assumption_conds
from spec.algebra import Value, bool_and
from spec.device import DeviceSpec, Register

PROVED = "PROVED"
COUNTEREXAMPLE = "COUNTEREXAMPLE"
UNKNOWN = "UNKNOWN"


@dataclass
class Break:
    """A conjunct an action breaks: ``state`` (scope fields, concrete) satisfies every
    conjunct, and after ``action`` the conjunct ``conjunct`` at ``where`` is false."""

    action: str
    conjunct: str
    where: str
    cpus: int
    before: dict[str, int]
    after: dict[str, int]
    replayed: bool


@dataclass
class InvariantResult:
    device: str
    kernel: str
    verdict: str = PROVED
    breaks: list[Break] = field(default_factory=list)
    reset_failures: list[str] = field(default_factory=list)
    actions: int = 0
    queries: int = 0
    unknown_reason: str = ""
    seconds: float = 0.0

    # the breaks the device documents for this kernel (DeviceSpec.invariant_breaks)
    expected: tuple[str, ...] = ()

    @property
    def found(self) -> tuple[str, ...]:
        """Each break as "ACTION / CONJUNCT", the action without its data."""
        return tuple(sorted({f"{b.action.split(' (')[0]} / {b.conjunct}" for b in self.breaks}))

    @property
    def matches(self) -> bool:
        if self.verdict == UNKNOWN or self.reset_failures:
            return False
        return self.found == tuple(sorted(self.expected))


@dataclass(frozen=True)
class Action:
    """One transition: a register write (guest or userspace) on one word and vCPU, an
    operation, or an event on one scope."""

    name: str
    register: Register | None = None
    word: int = 0
    vcpu: int = 0
    user: bool = True
    operation: str = ""
    event: Event | None = None
    key: Any = None  # the irq key (bank, intid) or cpu number of an event
    param: int = -1  # an event's constant parameter (sender)


def sample_intids(spec: DeviceSpec, irqs: int) -> tuple[int, ...]:
    """The first interrupt of each kind."""
    seen: dict[str, int] = {}
    for i in range(irqs):
        seen.setdefault(spec.interrupt_kind(i), i)
    return tuple(sorted(seen.values()))


def actions(spec: DeviceSpec, config: Config) -> list[Action]:
    out: list[Action] = []
    m_keys = [k for k in _irq_keys(spec, config)]
    for reg in spec.registers:
        words = list(range(reg.words))  # a 64-bit register: each half
        if reg.scope == "irq":
            words = sorted({reg.word_of(i) for i in config.intids or ()
                            if reg.first_irq <= i < reg.first_irq + reg.irqs})
        for w in words:
            banked = reg.scope == "cpu" or (reg.scope == "irq" and reg.word_irqs(w).start < spec.private_irqs)
            for vcpu in (config.held if banked else [0]):
                for user in (False, True):
                    who = "userspace" if user else "guest"
                    where = f"[{w}]" if reg.words > 1 else ""
                    on = f" on cpu{vcpu}" if banked else ""
                    out.append(Action(f"{who} write {reg.name}{where}{on}", reg, w, vcpu, user))
    for op in spec.operations:
        if op.kind != "device":
            continue  # the memory steps move RAM between VMs: no action on one VM's state
        out.append(Action(f"userspace {op.name}", operation=op.name))
    for ev in events_for(spec.name):
        if ev.scope == "vm":
            out.append(Action(ev.name, event=ev))
            continue
        if ev.scope == "cpu":
            out += [Action(f"{ev.name} on cpu{c}", event=ev, key=c) for c in config.held]
            continue
        for key in m_keys:
            bank, intid = key
            kind = spec.interrupt_kind(intid)
            where = f"{kind.upper()} {intid}" + (f" cpu{bank}" if bank >= 0 else "")
            if ev.param == "sender":
                out += [Action(f"{ev.name} from cpu{s} to {where}", event=ev, key=key, param=s)
                        for s in config.held]
            else:
                out.append(Action(f"{ev.name} {where}", event=ev, key=key))
    return out


def _irq_keys(spec: DeviceSpec, config: Config) -> list[tuple[int, int]]:
    keys = []
    for intid in config.intids or ():
        if intid < spec.private_irqs:
            keys += [(c, intid) for c in config.held]
        else:
            keys.append((SPI_BANK, intid))
    return keys


def apply(m: Machine, a: Action, data: Any) -> None:
    """Perform ``a`` on ``m`` with ``data`` (the written word, or an event's value)."""
    if a.register is not None:
        m.write(a.register, a.word, a.vcpu, data, a.user)
    elif a.operation:
        m.operation(a.operation)
    elif a.event is not None and a.event.scope == "vm":
        # an ITS command: the device's global fields, reading every CPU's
        for name, v in a.event.fn(m.ops, m.ctx(0, user=False), m.state.glob, m.state.cpu, data).items():
            m.state.glob[name] = v
    elif a.event is not None:
        ev = a.event
        if ev.scope == "cpu":
            fields = m.state.cpu[a.key]
            ctx = m.ctx(a.key, user=False)
        else:
            bank, intid = a.key
            fields = m.state.irq[a.key]
            ctx = m.ctx(max(bank, 0), intid, user=False)
        param = a.param if ev.param == "sender" else data
        for name, v in ev.fn(m.ops, ctx, fields, param).items():
            if name in fields:
                fields[name] = v


def _data(ops: SymbolicOps, m: Machine, a: Action, n: int) -> Any:
    """Symbolic data for action number ``n``."""
    if a.register is not None:
        reg = a.register
        if reg.scope == "irq":
            return {intid: ops.var(f"d{n}|{intid}", reg.slice_bits) for _, intid in m.word_keys(reg, a.word, a.vcpu)}
        return ops.var(f"d{n}", reg.width)
    if a.event is not None and a.event.param == "level":
        return ops.var(f"d{n}", 1)
    if a.event is not None and a.event.param in ("priority", "byte"):
        return ops.var(f"d{n}", 8)
    if a.event is not None and a.event.param == "valid":
        return ops.var(f"d{n}", 1)
    if a.event is not None and a.event.param == "target":
        return ops.var(f"d{n}", 3)
    return None


def conjuncts(m: Machine, since: DeviceState | None = None) -> list[tuple[str, str, Value]]:
    """(where, name, condition) for every conjunct of every scope of ``m``; with ``since``,
    only of the scopes whose fields are not the very same values as there (an action's
    untouched scopes keep their conjuncts, which the assumptions already hold)."""
    spec, ops = m.spec, m.ops
    fn = spec.invariant_conjuncts
    if fn is None:
        return [("device", "invariant", m.invariant())]

    def changed(a: dict[str, Value], b: dict[str, Value] | None) -> bool:
        return b is None or any(a[k] is not b.get(k) for k in a)

    out = []
    st = m.state
    # the global conjuncts are checked whenever anything changed: accessors of every
    # scope read the global fields (ctx.device)
    if since is None or changed(st.glob, since.glob):
        out += [(spec.scope_label("global"), n, c) for n, c in fn(ops, m.ctx(0), "global", st.glob)]
    glob_changed = since is not None and changed(st.glob, since.glob)
    for cpu, f in st.cpu.items():
        if since is None or glob_changed or changed(f, since.cpu[cpu]):
            out += [(spec.scope_label("cpu", cpu), n, c) for n, c in fn(ops, m.ctx(cpu), "cpu", f)]
    for (bank, intid), f in st.irq.items():
        if since is None or glob_changed or changed(f, since.irq[(bank, intid)]):
            where = f"{spec.interrupt_kind(intid).upper()} {intid}" + (f" (cpu{bank})" if bank >= 0 else "")
            out += [(where, n, c) for n, c in fn(ops, m.ctx(max(bank, 0), intid), "irq", f)]
    if spec.cross_invariant is not None:
        # conjuncts that relate the device to its CPUs: checked whenever anything changed
        out += [(spec.scope_label("global"), n, c) for n, c in spec.cross_invariant(ops, m.ctx(0), st.glob, st.cpu)]
    return out


def prove_invariant(spec: DeviceSpec, kernel: str, budget: solver.Budget = solver.DEFAULT_BUDGET,
                    cpu_counts: list[int] | None = None, progress: Any = None) -> InvariantResult:
    """Prove the invariant inductive for ``kernel`` at every CPU count."""
    t0 = time.perf_counter()
    res = InvariantResult(spec.name, kernel, expected=tuple(spec.invariant_breaks.get(kernel, {})))
    sem = spec.semantics(kernel)
    irqs = min(spec.irq_counts)
    intids = sample_intids(spec, irqs)
    seen: set[tuple[str, str]] = set()
    for cpus in cpu_counts or classes.cpu_counts(spec, set()):
        if progress:
            progress(f"invariant {spec.name} {kernel}: {cpus} CPU(s)")
        cfg = Config(cpus, irqs, intids, classes.held_vcpus(spec, cpus, set()))
        # base: the reset state, concretely
        m0 = Machine(spec, sem, cfg, CONCRETE, make_state(spec, sem, cfg, CONCRETE))
        for where, name, c in conjuncts(m0):
            if not c:
                res.reset_failures.append(f"{cpus} CPU(s): {where}: {name}")
        # step: one query for all actions; each break found is blocked and the query asked
        # again, so every (action, conjunct) pair that breaks is found
        ops = fresh_symbolic()
        names: dict[str, tuple[str, Any, str]] = {}
        base = make_state(spec, sem, cfg, ops, _variables(ops, names))
        m_base = Machine(spec, sem, cfg, ops, base)
        assumptions = [c for _, _, c in conjuncts(m_base)]
        vac = solver.satisfiable(assumptions, budget)
        res.queries += 1
        if vac.status != "sat":
            res.verdict = UNKNOWN
            res.unknown_reason = (f"{cpus} CPU(s): the invariant is unsatisfiable (no state satisfies it)"
                                  if vac.status == "unsat" else f"{cpus} CPU(s): solver {vac.reason}")
            continue
        candidates: list[tuple[Action, str, str, Value, Any]] = []
        acts = actions(spec, cfg)
        res.actions += len(acts)
        # A guest runs only in a VM that runs: its actions are taken from states that also
        # satisfy the device's premises (gicv5-irs: set up and initialised, seed 003
        # L127-L131; before CTRL_INIT no vCPU has entered the guest). Userspace's are taken
        # from every state the invariant allows.
        running = bool_and(ops, *assumption_conds(spec, m_base, tuple(spec.premises)))
        for n, a in enumerate(acts):
            m = Machine(spec, sem, cfg, ops, base.copy())
            data = _data(ops, m, a, n)
            apply(m, a, data)
            by_guest = a.event is not None or (a.register is not None and not a.user)
            for where, name, c in conjuncts(m, base):
                broken = ops.not_(c, 1)
                candidates.append((a, where, name, ops.and_(running, broken) if by_guest else broken, data))
        while candidates:
            ans = solver.check(assumptions, [solver.any_of([c[3] for c in candidates])], budget, canonical=True)
            res.queries += 1
            if ans.status == "unsat":
                break
            if ans.status != "sat":
                res.verdict = UNKNOWN
                res.unknown_reason = f"{cpus} CPU(s): solver {ans.reason}"
                break
            hit = [c for c in candidates if solver.value_in(ans, c[3]) == 1]
            for a, where, name, _, data in hit:
                if (a.name, name) not in seen:
                    seen.add((a.name, name))
                    res.breaks.append(_replay_break(spec, sem, cfg, a, where, name, ans, names, data, ops))
            blocked = {(h[0].name, h[1], h[2]) for h in hit}
            candidates = [c for c in candidates if (c[0].name, c[1], c[2]) not in blocked]
    if res.reset_failures or res.breaks:
        res.verdict = COUNTEREXAMPLE
    if any(not b.replayed for b in res.breaks):
        res.verdict = UNKNOWN
        res.unknown_reason = "TOOL BUG: a break did not replay on the concrete model"
    res.seconds = time.perf_counter() - t0
    return res


def _variables(ops: SymbolicOps, names: dict[str, tuple[str, Any, str]]) -> Any:
    def fv(scope: str, key: Any, fname: str, width: int) -> Value:
        vname = f"{scope}|{key}|{fname}"
        names[vname] = (scope, key, fname)
        return ops.var(vname, width)

    return fv


def _replay_break(spec: DeviceSpec, sem: Any, cfg: Config, a: Action, where: str, name: str,
                  ans: solver.Answer, names: dict[str, tuple[str, Any, str]], data: Any,
                  ops: SymbolicOps) -> Break:
    """Rebuild the solver's state concretely, perform the action, and check that the
    conjunct really fails (and that every conjunct held before)."""
    vals = {info: ans.assignments.get(v, 0) for v, info in names.items()}

    def fv(scope: str, key: Any, fname: str, width: int) -> int:
        return vals.get((scope, key, fname), 0)

    m = Machine(spec, sem, cfg, CONCRETE, make_state(spec, sem, cfg, CONCRETE, fv))
    held_before = all(bool(c) for _, _, c in conjuncts(m))
    before = _scope_of(m, where)
    if isinstance(data, dict):
        cdata: Any = {k: solver.value_in(ans, v) for k, v in data.items()}
    elif data is None:
        cdata = None
    else:
        cdata = solver.value_in(ans, data)
    apply(m, a, cdata)
    after = _scope_of(m, where)
    broken = any(w == where and n == name and not c for w, n, c in conjuncts(m))
    if isinstance(cdata, dict):
        shown = " ".join(f"{k}:{v:#x}" for k, v in cdata.items())
        action = f"{a.name} (data {shown})"
    elif cdata is not None:
        action = f"{a.name} (value {cdata:#x})"
    else:
        action = a.name
    return Break(action, name, where, cfg.cpus, before, after, held_before and broken)


def _scope_of(m: Machine, where: str) -> dict[str, int]:
    if where == m.spec.scope_label("global"):
        return dict(m.state.glob)
    if where.startswith(m.spec.scope_label("cpu") + " "):
        return dict(m.state.cpu[int(where.split()[-1])])
    intid = int(where.split()[1])
    bank = int(where.split("cpu")[1].rstrip(")")) if "(cpu" in where else SPI_BANK
    return dict(m.state.irq[(bank, intid)])


def render(r: InvariantResult) -> str:
    out = [f"invariant {r.device} kernel {r.kernel}: {r.verdict} "
           f"(the reset state, and {r.actions} actions from any state satisfying it, at every CPU count)"]
    for f in r.reset_failures:
        out.append(f"  the reset state breaks: {f}")
    for b in r.breaks:
        out.append(f"  {b.action} breaks \"{b.conjunct}\" at {b.where} ({b.cpus} CPU(s))"
                   + ("" if b.replayed else "  (DID NOT REPLAY: tool bug)"))
        out.append("    before: " + " ".join(f"{k}={v:#x}" for k, v in b.before.items()))
        out.append("    after:  " + " ".join(f"{k}={v:#x}" for k, v in b.after.items()))
    if r.unknown_reason:
        out.append(f"  unknown: {r.unknown_reason}")
    if r.expected:
        out.append("  expected (documented in the device's invariant_breaks): " + "; ".join(r.expected))
        if r.verdict != UNKNOWN:
            out.append("  as expected" if r.matches else "  NOT as expected: found " + ("; ".join(r.found) or "none"))
    return "\n".join(out)


def result_json(r: InvariantResult) -> dict[str, Any]:
    return {"obligation": "invariant", "device": r.device, "kernel": r.kernel, "verdict": r.verdict,
            "matches": r.matches, "expected_breaks": list(r.expected), "actions": r.actions, "queries": r.queries,
            "reset_failures": r.reset_failures, "unknown_reason": r.unknown_reason,
            "seconds": round(r.seconds, 3),
            "breaks": [{"action": b.action, "conjunct": b.conjunct, "where": b.where, "cpus": b.cpus,
                        "before": b.before, "after": b.after, "replayed": b.replayed} for b in r.breaks]}
