"""Ordering dependencies as a graph, derived from the semantics and confirmed by the solver.

Nodes are the steps of a device's restore interface, taken from its table: every register
that views some state, written with its saved value, or with all ones for the clear view
of a set/clear pair; and every operation. Nothing lists edges by hand.

For each pair of nodes:

1. **Local commutation.** ``A;B`` and ``B;A`` are run from the same symbolic destination
   state (any reachable one) with the same saved data, comparing every field and the
   failure flags:  for all D, saved:  (A;B)(D) = (B;A)(D).  When that is proved, the pair
   commutes and gets no edge.
2. **In context.** A pair that does not commute locally is checked inside a full restore
   in a reference order R (a topological order of the edges found so far): moving the
   later step just before the earlier one gives R'. The edge X -> Y ("Y after X") is
   confirmed by a witness:  exists S, D, field f:  R restores f (R(D).f = S.f) and
   R' does not (R'(D).f != S.f), or R' fails where R does not. The witness is replayed on
   the concrete backend, and the step of R' at which f went wrong, with its rule, is the
   edge's reason. If the witness says R itself is the wrong way round, the edge is
   reversed and R recomputed. A pair for which neither order loses anything is proved
   equivalent in context (both orders give the same architectural state); such a proof
   holds for the R of its time, so after a round that reversed an edge those pairs are
   settled again in the new R. A witness for a refusal names the step that fails: the
   moved step itself, or the step it now precedes (GITS_CTLR enabling the ITS, then
   GITS_CREADR refused with EBUSY).

Proofs use one interrupt per class (as the round trip does) and ``cpus`` CPUs.
"""

from __future__ import annotations

import math
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from functools import cache
from typing import Any

import networkx as nx

from models.machine import (
    Config,
    Machine,
    MissingSaved,
    carry_environment,
    ideal_save_steps,
    if_it_exists,
    make_state,
    run_restore,
    run_save,
)
from models.symbolic import SymbolicOps, free_variables, fresh_symbolic
from proofs import solver
from proofs.classes import class_of, representatives
from proofs.replay import candidate_configs, replay, replay_at
from proofs.roundtrip import Encoding, Witness, assumption_conds, encode
from spec.algebra import Value
from spec.device import ARCHITECTURAL, DeviceSpec
from spec.sequence import Sequence, Step, ValueSpec

DEFAULT_CPUS = 2


@dataclass(frozen=True)
class Node:
    name: str  # e.g. "GICD_ICENABLER=ones", "GICD_ISENABLER", "KVM_DEV_ARM_VGIC_CTRL_INIT"
    step: Step

    @property
    def register(self) -> str:
        return self.step.target


def interface_nodes(spec: DeviceSpec) -> list[Node]:
    """The restore interface's steps, from the table (rows that view state) and the
    operations, in table order. A register the kernel may refuse (an active-priority
    register beyond the vCPU's priority bits) is written where it exists."""
    # the VM's set-up first (a register access before it fails): the first reference order
    nodes = [Node(op.name, Step(0, "op", op.name)) for op in spec.operations if op.side == "setup"]
    for reg in spec.registers:
        if not reg.views:
            continue  # ID and RAZ/WI rows: nothing to restore (checked, not written)
        if reg.pair_role == "clear":
            nodes.append(Node(f"{reg.name}=ones", if_it_exists(spec, Step(0, "write", reg.name, ValueSpec("ones")))))
        else:
            nodes.append(Node(reg.name, if_it_exists(spec, Step(0, "write", reg.name))))
    for op in spec.operations:
        if op.side == "restore":  # not the save side's flushes, not a reset
            nodes.append(Node(op.name, Step(0, "op", op.name)))
    return nodes


def node_of_step(spec: DeviceSpec, step: Step) -> str | None:
    """The interface node a sequence step performs (None for checks, and for a clear view
    written with anything but all ones, which is not the clear step: ``irregular``)."""
    if step.action == "op":
        return step.target
    if step.action != "write" or step.unmapped:
        return None
    reg = spec.register(step.target)
    if not reg.views:
        return None
    if reg.pair_role == "clear":
        v = step.value
        plain_ones = v.kind == "ones" and v.and_mask is None and v.or_mask is None and not v.shift
        return f"{reg.name}=ones" if plain_ones else None
    return reg.name


def irregular(spec: DeviceSpec, step: Step) -> str:
    """Why a write step of a state-viewing register is not the interface step it names
    ("" when it is)."""
    if step.action != "write" or step.unmapped:
        return ""
    reg = spec.register(step.target)
    if reg.views and reg.pair_role == "clear" and node_of_step(spec, step) is None:
        return (f"{reg.name} is written with {step.value.describe()}, not all ones: it is not the clear "
                "step the graph orders, and clears what the value's ones say only")
    return ""


def step_kinds(spec: DeviceSpec, step: Step) -> set[str]:
    """The interrupt kinds a step writes ("" stands for a CPU-interface or distributor
    register, or an operation)."""
    if step.action == "op" or step.unmapped:
        return {""}
    reg = spec.register(step.target)
    if reg.scope != "irq":
        return {""}
    words = step.index if step.index is not None else range(reg.words)
    return {spec.interrupt_kind(i) for w in words for i in reg.word_irqs(w)
            if reg.first_irq <= i < reg.first_irq + reg.irqs and i < max(spec.irq_counts)}


def _sequence(spec: DeviceSpec, kernel: str, order: list[Node], destination: str, host: str = "") -> Sequence:
    return Sequence(path="<interface order>", name="interface order", device=spec.name, kernel=kernel, host=host,
                    reference="", expect="proved", why="", destination=destination,
                    restore=tuple(n.step for n in order), save=None)


@dataclass
class Edge:
    before: str
    after: str
    field: str
    where: str  # e.g. "SPI 32"
    reason: str  # in words
    rule: str
    rule_source: str
    rule_name: str  # the accessor at the step where the state went wrong
    witness: dict[str, Any]  # source / destination-before values of the witness scope
    replayed: bool
    config: Config
    full_witness: Any = None  # the solver's whole witness, to run through a sequence file
    kind: str = ""  # the interrupt kind the witness is on ("" for a CPU/global one or a failure)


@dataclass
class OrderingGraph:
    device: str
    kernel: str
    destination: str
    cpus: int
    nodes: list[Node]
    graph: nx.DiGraph
    edges: dict[tuple[str, str], Edge]
    commuting: list[tuple[str, str]]  # proved to commute locally
    equivalent: list[tuple[str, str]]  # do not commute locally, proved equivalent in context
    unresolved: list[tuple[str, str, str]]  # (a, b, why): unknown
    cycle: list[tuple[str, str]] | None
    reference: list[str]
    seconds: float = 0.0
    queries: int = 0

    def reduction(self) -> nx.DiGraph:
        if not nx.is_directed_acyclic_graph(self.graph):
            return self.graph.copy()  # a cycle (a conflict, reported as such) has no reduction
        red = nx.transitive_reduction(self.graph)
        red.add_nodes_from(self.graph.nodes)
        return red

    def valid_orders(self) -> str:
        return valid_orders_text(self.graph)


# ---------------------------------------------------------------------------------------
# Local commutation.


def _machines(spec: DeviceSpec, kernel: str, config: Config, ops: SymbolicOps,
              host: str = "") -> tuple[list[Value], dict, Any]:
    sem = spec.semantics(kernel, host)

    def fv(side: str):
        def f(scope: str, key: Any, name: str, width: int) -> Value:
            return ops.var(f"{side}|{scope}|{key}|{name}", width)

        return f

    src = Machine(spec, sem, config, ops, make_state(spec, sem, config, ops, fv("src")))
    assumptions = [src.invariant()] + assumption_conds(spec, src, spec.premises)
    saved = run_save(src, ideal_save_steps(spec))

    def fresh_dst() -> Machine:
        d = Machine(spec, sem, config, ops, make_state(spec, sem, config, ops, fv("dst")))
        carry_environment(spec, src.state, d.state, sem)
        return d

    probe = fresh_dst()
    assumptions.append(probe.invariant())
    return assumptions, saved, fresh_dst


def _all_equal(ops: SymbolicOps, a: Machine, b: Machine) -> Value:
    eq = ops.const(1, 1)
    for x, y in [(a.state.glob, b.state.glob)] + list(zip(a.state.cpu, b.state.cpu, strict=True)) + \
            [(a.state.irq[k], b.state.irq[k]) for k in a.state.irq]:
        for name in x:
            eq = ops.and_(eq, ops.eq(x[name], y[name]))
    return eq


class Commutation:
    """The local commutation proofs of one graph, over one source, one ideal save and one
    destination state built once (a pair's proof only runs its two steps, twice).

    Only the answer's status is used (sat pairs go on to the in-context check, in a
    context of their own), so sharing a Z3 context here cannot change a report.

    Most pairs are told apart without the solver: a step's *footprint* is the destination
    fields it changes (W) and the destination fields its results and its failure are
    terms of (R). If W_A meets neither R_B nor W_B, and W_B does not meet R_A, each step
    computes the same results whichever runs first, and neither touches what the other
    writes: A;B = B;A on every state, which is what the solver would prove (a term's value
    depends only on the variables in it)."""

    def __init__(self, spec: DeviceSpec, kernel: str, config: Config, host: str = ""):
        self.spec, self.kernel, self.config, self.host = spec, kernel, config, host
        self.ops = fresh_symbolic()
        self.assumptions, self.saved, fresh_dst = _machines(spec, kernel, config, self.ops, host)
        self.sem = spec.semantics(kernel, host)
        self.base = fresh_dst().state
        self._footprints: dict[str, tuple[frozenset, frozenset]] = {}

    def _machine(self) -> Machine:
        return Machine(self.spec, self.sem, self.config, self.ops, self.base.copy())

    def footprint(self, n: Node) -> tuple[frozenset, frozenset]:
        """(W, R) of ``n`` as sets of destination field keys (scope, key, field)."""
        if n.name not in self._footprints:
            m = self._machine()
            r = run_restore(m, [n.step], self.saved)
            written, terms = set(), [r.failed]
            for (scope, key), before, after in _scopes(self.base, m.state):
                for name, v in after.items():
                    if not v.eq(before[name]):
                        written.add(f"{scope}|{key}|{name}")
                        terms.append(v)
            # a variable is named side|scope|key|field (``_machines``); the side is dropped:
            # a source field in a term is a saved value or an environment field carried to
            # the destination, and counting it as read of that field is merely cautious
            read = frozenset(v.split("|", 1)[1] for v in free_variables(terms))
            self._footprints[n.name] = (frozenset(written), read)
        return self._footprints[n.name]

    def independent(self, a: Node, b: Node) -> bool:
        wa, ra = self.footprint(a)
        wb, rb = self.footprint(b)
        return not (wa & (rb | wb)) and not (wb & ra)

    def check(self, a: Node, b: Node, budget: solver.Budget) -> solver.Answer:
        """unsat: A;B and B;A agree on every field and on failure from every reachable
        state (without a query when the footprints are disjoint)."""
        if self.independent(a, b):
            return solver.Answer("unsat", seconds=0.0, reason="independent footprints")
        return self.prove(a, b, budget)

    def prove(self, a: Node, b: Node, budget: solver.Budget) -> solver.Answer:
        """The solver's answer for the pair, whatever the footprints."""
        m1, m2 = self._machine(), self._machine()
        r1 = run_restore(m1, [a.step, b.step], self.saved)
        r2 = run_restore(m2, [b.step, a.step], self.saved)
        ops = self.ops
        same = ops.and_(_all_equal(ops, m1, m2), ops.eq(r1.failed, r2.failed))
        return solver.check(self.assumptions, [ops.not_(same, 1)], budget)


def _scopes(a: Any, b: Any) -> Iterable[tuple[tuple[str, Any], dict, dict]]:
    yield ("global", None), a.glob, b.glob
    for (c, x), y in zip(a.cpu.items(), b.cpu, strict=True):
        yield ("cpu", c), x, y
    for k in a.irq:
        yield ("irq", k), a.irq[k], b.irq[k]


# ---------------------------------------------------------------------------------------
# In context.


def _swapped_order(order: list[Node], edges: Any, x: str, y: str) -> list[Node] | None:
    """The order closest to ``order`` that puts ``y`` before ``x`` and keeps every other
    known edge (so a witness isolates this pair). None when the other edges already force
    ``x`` before ``y`` (the edge is implied)."""
    others = {e for e in edges if e not in ((x, y), (y, x))}
    others.add((y, x))
    return _topological(order, others)


@dataclass
class Loss:
    field: str
    where: tuple[str, Any]
    witness: Witness
    refused: bool = False


class Orders:
    """The round trips of the orders one graph derivation compares, encoded once each, in
    one Z3 context: the reference order is compared with many swapped ones, and every
    comparison needs both (two encodings in one context share their source and
    destination variables, so they can be compared)."""

    def __init__(self, spec: DeviceSpec, kernel: str, config: Config, destination: str, host: str = "",
                 ops: SymbolicOps | None = None):
        self.spec, self.kernel, self.config, self.destination, self.host = spec, kernel, config, destination, host
        self.ops = ops if ops is not None else fresh_symbolic()
        self._done: dict[tuple[str, ...], Encoding] = {}

    def encode(self, order: list[Node]) -> Encoding:
        key = tuple(n.name for n in order)
        if key not in self._done:
            seq = _sequence(self.spec, self.kernel, order, self.destination, self.host)
            self._done[key] = encode(self.spec, seq, self.config, self.destination, self.ops)
        return self._done[key]


def context_loss(orders: Orders, good: list[Node], bad: list[Node],
                 budget: solver.Budget) -> tuple[str, Loss | None]:
    """Is there a state that ``good`` restores and ``bad`` does not? ("sat", loss) /
    ("unsat", None) / ("unknown", None)."""
    e_good = orders.encode(good)
    return loss_between(orders.spec, orders.ops, orders.config, e_good, orders.encode(bad), budget,
                        _order_assumptions(orders.spec, orders.ops, e_good))


def loss_between(spec: DeviceSpec, ops: SymbolicOps, config: Config, e_good: Encoding, e_bad: Encoding,
                 budget: solver.Budget, extra: list[Value] | None = None) -> tuple[str, Loss | None]:
    """Is there a state (under ``e_good``'s assumptions and ``extra``) that ``e_good``
    restores and ``e_bad`` does not, or that ``e_bad`` refuses and ``e_good`` does not?
    The two encodings share their source variables (one ``ops``). The smallest such state
    the solver finds: ("sat", loss) / ("unsat", None) / ("unknown", None)."""
    arch = {f.name for f in spec.fields if f.classification == ARCHITECTURAL}
    conds: list[tuple[Value, str, tuple[str, Any]]] = []

    def scopes(enc):
        yield ("global", None), enc.source.glob, enc.after.glob
        for c in config.held:
            yield ("cpu", c), enc.source.cpu[c], enc.after.cpu[c]
        for k in enc.source.irq:
            yield ("irq", k), enc.source.irq[k], enc.after.irq[k]

    bad_after = {where: after for where, _, after in scopes(e_bad)}
    for where, src, after in scopes(e_good):
        for name in src:
            if name not in arch:
                continue
            ok_good = ops.eq(after[name], src[name])
            lost_bad = ops.not_(ops.eq(bad_after[where][name], src[name]), 1)
            conds.append((ops.and_(ok_good, lost_bad), name, where))
    refused = ops.and_(e_bad.failed, ops.not_(e_good.failed, 1))
    assumptions = e_good.assumptions + (extra or [])
    items = [refused] + [c for c, _, _ in conds]
    ans = solver.minimise(assumptions, [solver.any_of(items)], e_good.variables, budget)
    if ans.status != "sat":
        return ans.status, None
    shown = next((i for i, c in enumerate(items) if solver.value_in(ans, c) == 1), None)
    if shown is None:
        return "unknown", None
    # the loss reported is the first in a fixed order that some state shows (refusal, then
    # the fields scope by scope), not whichever the model happened to show
    status, first = solver.first_satisfiable(assumptions, items, shown, budget)
    if status == "sat" and first != shown:
        again = solver.minimise(assumptions, [items[first]], e_good.variables, budget)
        if again.status == "sat":
            ans, shown = again, first
    values = {info: ans.assignments.get(vname, 0) for vname, info in e_good.var_names.items()}
    if shown == 0:
        w = Witness("refused", config, ("step", 0), "", values, ans.seconds)
        return "sat", Loss("", ("step", 0), w, refused=True)
    _, name, where = conds[shown - 1]
    src_v = _lookup(values, "src", where, name)
    bad_v = solver.value_in(ans, _after_term(e_bad, where, name))
    width = spec.field_spec(name).width
    label = f"{name}:{src_v}->{bad_v}" if width == 1 else name
    return "sat", Loss(name, where, Witness(label, config, where, name, values, ans.seconds))


def _order_assumptions(spec: DeviceSpec, ops: SymbolicOps, enc: Any) -> list[Value]:
    if spec.order_assumption is None:
        return []
    src = enc.source
    conds = [spec.order_assumption(ops, "global", src.glob)]
    conds += [spec.order_assumption(ops, "cpu", f) for f in src.cpu]
    conds += [spec.order_assumption(ops, "irq", f) for f in src.irq.values()]
    return conds


def _lookup(values: dict, side: str, where: tuple[str, Any], name: str) -> int:
    scope, key = where
    return int(values.get((side, scope, key, name), 0))


def _after_term(enc: Any, where: tuple[str, Any], name: str) -> Value:
    scope, key = where
    if scope == "global":
        return enc.after.glob[name]
    if scope == "cpu":
        return enc.after.cpu[key][name]
    return enc.after.irq[key][name]


def equivalent_in_context(orders: Orders, first: list[Node], second: list[Node], budget: solver.Budget) -> str:
    """unsat when both orders give the same architectural state and failure everywhere."""
    spec, ops = orders.spec, orders.ops
    e1 = orders.encode(first)
    e2 = orders.encode(second)
    arch = {f.name for f in spec.fields if f.classification == ARCHITECTURAL}
    diffs = [ops.not_(ops.eq(e1.failed, e2.failed), 1)]
    for a, b in [(e1.after.glob, e2.after.glob)] + list(zip(e1.after.cpu, e2.after.cpu, strict=True)) + \
            [(e1.after.irq[k], e2.after.irq[k]) for k in e1.after.irq]:
        diffs += [ops.not_(ops.eq(a[n], b[n]), 1) for n in a if n in arch]
    return solver.check(e1.assumptions + _order_assumptions(spec, ops, e1), [solver.any_of(diffs)],
                        budget).status


# ---------------------------------------------------------------------------------------
# Building the graph.


def _topological(nodes: list[Node], edges: Iterable[tuple[str, str]]) -> list[Node] | None:
    g = nx.DiGraph()
    g.add_nodes_from(n.name for n in nodes)
    g.add_edges_from(edges)
    if not nx.is_directed_acyclic_graph(g):
        return None
    pos = {n.name: i for i, n in enumerate(nodes)}
    by_name = {n.name: n for n in nodes}
    return [by_name[x] for x in nx.lexicographical_topological_sort(g, key=lambda x: pos[x])]


def _initial_order(spec: DeviceSpec, nodes: list[Node]) -> list[Node]:
    """Table order with each clear view just before its set view (a starting point only:
    every edge is then derived and confirmed, and the order recomputed from them)."""
    out: list[Node] = []
    for n in nodes:
        if n.name.endswith("=ones"):
            continue
        reg = spec.register(n.register) if n.step.action == "write" else None
        if reg is not None and reg.pair and reg.pair_role == "set":
            out.extend(m for m in nodes if m.name == f"{reg.pair}=ones")
        out.append(n)
    out.extend(n for n in nodes if n not in out)
    if spec.interface_order:
        # the device's documented order, where it names the nodes (a starting point only)
        rank = {name: i for i, name in enumerate(spec.interface_order)}
        out.sort(key=lambda n: rank.get(n.name, len(rank)))
    return out


def _describe_where(spec: DeviceSpec, where: tuple[str, Any]) -> str:
    scope, key = where
    if scope == "irq":
        bank, intid = key
        return f"{spec.interrupt_kind(intid).upper()} {intid}" + (f" (cpu{bank})" if bank >= 0 else "")
    if scope in ("cpu", "global"):
        return spec.scope_label(scope, key)
    return "the restore"


def build_graph(spec: DeviceSpec, kernel: str | None = None, destination: str = "any",
                cpus: int = DEFAULT_CPUS, budget: solver.Budget = solver.DEFAULT_BUDGET,
                progress: Any = None, host: str = "") -> OrderingGraph:
    t0 = time.perf_counter()
    kernel = kernel or spec.default_kernel
    nodes = interface_nodes(spec)
    steps = tuple(n.step for n in nodes)
    reps = tuple(representatives(spec, None, steps, max(spec.irq_counts)))
    config = Config(cpus, max(spec.irq_counts), reps)
    queries = 0
    commuting: list[tuple[str, str]] = []
    candidates: list[tuple[str, str]] = []
    unresolved: list[tuple[str, str, str]] = []
    # No proof from nothing: the assumptions of the commutation proofs (reachable source
    # and destination) and of the in-context ones (plus the ordering assumption) must be
    # satisfiable, or every pair would "commute".
    ops = fresh_symbolic()
    local_assumptions, _, _ = _machines(spec, kernel, config, ops, host)
    orders = Orders(spec, kernel, config, destination, host, ops)
    ref_enc = orders.encode(nodes)
    for what, conds in (("commutation", local_assumptions),
                        ("in-context", ref_enc.assumptions + _order_assumptions(spec, ops, ref_enc))):
        vac = solver.satisfiable(conds, budget)
        queries += 1
        if vac.status != "sat":
            why = "unsatisfiable (a vacuous proof)" if vac.status == "unsat" else vac.reason
            g = nx.DiGraph()
            g.add_nodes_from(n.name for n in nodes)
            return OrderingGraph(spec.name, kernel, destination, cpus, nodes, g, {}, [], [],
                                 [("*", "*", f"the {what} assumptions are {why}")], None,
                                 [n.name for n in nodes], time.perf_counter() - t0, queries)
    commutation = Commutation(spec, kernel, config, host)
    for i, a in enumerate(nodes):
        for b in nodes[i + 1:]:
            if progress:
                progress(f"commutation {a.name} / {b.name}")
            ans = commutation.check(a, b, budget)
            queries += ans.reason != "independent footprints"
            if ans.status == "unsat":
                commuting.append((a.name, b.name))
            elif ans.status == "sat":
                candidates.append((a.name, b.name))
            else:
                unresolved.append((a.name, b.name, f"commutation: {ans.reason}"))

    edges: dict[tuple[str, str], Edge] = {}
    order = _initial_order(spec, nodes)
    cycle: list[tuple[str, str]] | None = None
    conflicts: dict[tuple[str, str], Edge] = {}  # pairs each of whose orders loses something
    equivalent: list[tuple[str, str]] = []
    undecided: dict[tuple[str, str], tuple[str, str, str]] = {}  # neither order loses, states differ
    settled: set[tuple[str, str]] = set()
    # Settle each non-commuting pair in the context of the current reference order: the
    # edge goes the way of the order that dominates (restores everything the other does,
    # and more somewhere). A reversal changes the reference order, so repeat until stable.
    for _round in range(len(candidates) + 1):
        changed = False
        for a_name, b_name in candidates:
            if (a_name, b_name) in settled:
                continue
            pos = {n.name: i for i, n in enumerate(order)}
            x, y = (a_name, b_name) if pos[a_name] < pos[b_name] else (b_name, a_name)
            if progress:
                progress(f"in context {x} / {y}")
            swapped = _swapped_order(order, edges, x, y)
            if swapped is None:
                settled.add((a_name, b_name))  # implied by edges already found
                continue
            s1, keep_x_first = context_loss(orders, order, swapped, budget)
            s2, keep_y_first = context_loss(orders, swapped, order, budget)
            queries += 2
            if "unknown" in (s1, s2):
                unresolved.append((x, y, "in-context check: solver unknown"))
                settled.add((a_name, b_name))
                continue
            settled.add((a_name, b_name))
            if keep_x_first and not keep_y_first:
                edges[(x, y)] = _edge(spec, kernel, x, y, swapped, keep_x_first, destination, host)
            elif keep_y_first and not keep_x_first:
                edges[(y, x)] = _edge(spec, kernel, y, x, order, keep_y_first, destination, host)
                new_order = _topological(order, edges)
                if new_order is None:
                    cycle = _find_cycle(edges)
                    break
                order = new_order
                changed = True
            elif keep_x_first and keep_y_first:
                # each order loses something the other keeps: no valid order for this pair.
                # Kept apart from the edges while the other pairs are settled (in the
                # reference order, which keeps x before y), so that they are settled too
                conflicts[(x, y)] = _edge(spec, kernel, x, y, swapped, keep_x_first, destination, host)
                conflicts[(y, x)] = _edge(spec, kernel, y, x, order, keep_y_first, destination, host)
                if cycle is None:
                    cycle = [(x, y), (y, x)]
            else:
                eq = equivalent_in_context(orders, order, swapped, budget)
                queries += 1
                if eq == "unsat":
                    equivalent.append((a_name, b_name))
                else:
                    undecided[(a_name, b_name)] = (x, y, "do not commute; neither order restores more, "
                                                   "but they end in different states")
        if (cycle is not None and not conflicts) or not changed:
            break
        # "Equivalent in context" was proved against the reference order of its time; a
        # reversal since then changes the context, so such pairs are settled again (a
        # pair implied by edges stays implied: edges are only ever added).
        settled -= set(equivalent) | set(undecided)
        equivalent, undecided = [], {}
    unresolved += undecided.values()
    if cycle is None or conflicts:
        # Confirm every edge once more in the final reference order: moving the later step
        # just before the earlier one must lose state (the witness shown is this one).
        for (x, y) in list(edges):
            swapped = _swapped_order(order, edges, x, y)
            if swapped is None:
                continue  # implied by the others; the transitive reduction drops it
            status, loss = context_loss(orders, order, swapped, budget)
            queries += 1
            if status == "sat" and loss is not None:
                edges[(x, y)] = _edge(spec, kernel, x, y, swapped, loss, destination, host)
            elif conflicts and status == "unsat" and edges[(x, y)].replayed:
                # With a conflict (a pair with no valid order) the final reference order
                # takes one side of it, which can make another edge's loss unobservable
                # (on 5.10, with the tables restored before guest memory, where GITS_BASER0
                # stands no longer matters): the edge keeps the witness, replayed, that
                # confirmed it in the reference order of its time
                continue
            else:
                del edges[(x, y)]
                unresolved.append((x, y, "an edge found earlier was not confirmed in the final order"))
    edges.update(conflicts)
    g = nx.DiGraph()
    g.add_nodes_from(n.name for n in nodes)
    g.add_edges_from(edges)
    return OrderingGraph(spec.name, kernel, destination, cpus, nodes, g, edges, commuting, equivalent,
                         unresolved, cycle, [n.name for n in order], time.perf_counter() - t0, queries)


def _first_covering(first_of_kind: dict[tuple[str, str], int], node: str, kind: str) -> int | None:
    """The flat index of the first step performing ``node`` on interrupts of ``kind`` (any
    kind for an edge whose witness is not on an interrupt)."""
    hits = [i for (n, k), i in first_of_kind.items() if n == node and (not kind or k in (kind, ""))]
    return min(hits) if hits else None


def _no_loss_on_file(spec: DeviceSpec, seq: Sequence, e: Edge) -> str:
    """"" when the edge's witness, saved and restored through ``seq`` itself, loses what
    the edge says (the same label, confirmed by concrete replay); else why it does not."""
    w = e.full_witness
    if w is None:
        return "the edge has no witness to run through the file"
    try:
        rep = replay(spec, seq, w, seq.destination)
    except MissingSaved:
        return "the file does not save what the witness needs"
    if rep.confirmed:
        return ""
    if rep.failed_at is not None:
        return ("the file's save refuses that state" if rep.in_save
                else f"the file's restore fails first ({rep.failed_at.label(spec)}: {rep.errno})")
    return "the file's own steps restore it"


def _find_cycle(edges: dict[tuple[str, str], Any]) -> list[tuple[str, str]]:
    g = nx.DiGraph()
    g.add_edges_from(edges)
    return [(u, v) for u, v in nx.find_cycle(g)]


def _edge(spec: DeviceSpec, kernel: str, before: str, after: str, wrong: list[Node], loss: Loss,
          destination: str, host: str = "") -> Edge:
    """Explain and replay the witness that ``after`` must follow ``before``."""
    seq = _sequence(spec, kernel, wrong, destination, host)
    w = loss.witness
    cfg = w.config
    if loss.refused:
        # the step moved early may fail itself (a write refused before what it needs), make
        # the step it now precedes fail (GITS_CTLR enabling the ITS, then a GITS_CREADR write
        # refused with EBUSY), or, as the known edges move other steps along with it, one of
        # those may be the first to fail: the replay names the failing step, so try each
        # (which step fails is found at the smallest configuration, then the witness is
        # replayed as every witness is: a wrong guess would be replayed at every size)
        first = candidate_configs(spec, w)[0]
        classes = class_of(spec, seq.save, seq.restore, max(spec.irq_counts))
        failing = after
        for name in [after, before] + [n.name for n in wrong if n.name not in (after, before)]:
            probe = Witness(f"refused:{name}", cfg, ("step", 0), "", w.values, w.seconds)
            if replay_at(spec, seq, probe, destination, first, classes).confirmed:
                failing = name
                break
        w2 = Witness(f"refused:{failing}", cfg, ("step", 0), "", w.values, w.seconds)
        rep = replay(spec, seq, w2, destination)
        if not rep.confirmed:
            reason = "refused"
        elif failing == after:
            reason = f"{after} fails before {before}: {rep.errno}"
        elif failing == before:
            reason = f"{before} fails after {after}: {rep.errno}"
        else:
            reason = (f"{after} before {before} (with {failing}, which must precede {after}): "
                      f"{failing} fails: {rep.errno}")
        name = rep.failed_at.register.user_write.name if rep.failed_at and rep.failed_at.register else ""
        return Edge(before, after, "(failure)", "the restore", reason, rep.rule, rep.rule_source,
                    name, {}, rep.confirmed, rep.config, w2)
    rep = replay(spec, seq, w, destination)
    where = _describe_where(spec, loss.where)
    step_name = ""
    if rep.diverging is not None:
        step_name = rep.diverging.step.target
    if step_name == after:
        reason = f"{after} before {before} loses {loss.field} of {where}: {after}'s effect depends on state {before} sets"
    elif step_name == before:
        reason = f"{before} after {after} undoes what {after} restored ({loss.field} of {where})"
    else:
        reason = f"with {after} before {before}, {loss.field} of {where} is not restored"
    scope_vals = {k[3]: v for k, v in w.values.items() if k[1] == loss.where[0] and k[2] == loss.where[1]
                  and k[0] == "src"}
    name = rep.diverging.register.user_write.name if rep.diverging and rep.diverging.register else ""
    kind = spec.interrupt_kind(loss.where[1][1]) if loss.where[0] == "irq" else ""
    return Edge(before, after, loss.field, where, reason, rep.rule, rep.rule_source, name,
                {"source": scope_vals, "label": w.label}, rep.confirmed, rep.config, w, kind)


# ---------------------------------------------------------------------------------------
# Orders.


EXACT_COMPONENT_LIMIT = 20  # nodes; the DP visits up to 2**n sets of placed nodes


def count_linear_extensions(g: nx.DiGraph) -> int:
    """The number of valid orders, exactly: components are counted separately (DP over
    the sets of placed nodes) and interleaved (multinomial). See ``valid_orders_text``
    for components too large to count."""
    total_nodes = 0
    product = 1
    denominator = 1
    for comp in nx.weakly_connected_components(g):
        sub = g.subgraph(comp)
        n = len(comp)
        total_nodes += n
        denominator *= math.factorial(n)
        product *= _count_component(sub)
    return product * math.factorial(total_nodes) // denominator


def valid_orders_count(g: nx.DiGraph) -> tuple[int, bool]:
    """(count, exact). Exact when every connected component has at most
    EXACT_COMPONENT_LIMIT nodes; otherwise an upper bound, n!/prod(n_i!) x prod(c_i) with
    c_i = n_i! for a component too large to count (every order of it assumed valid)."""
    if all(len(c) <= EXACT_COMPONENT_LIMIT for c in nx.weakly_connected_components(g)):
        return count_linear_extensions(g), True
    total, product, denominator = 0, 1, 1
    for comp in nx.weakly_connected_components(g):
        n = len(comp)
        total += n
        denominator *= math.factorial(n)
        product *= math.factorial(n) if n > EXACT_COMPONENT_LIMIT else _count_component(g.subgraph(comp))
    return product * math.factorial(total) // denominator, False


def valid_orders_text(g: nx.DiGraph) -> str:
    count, exact = valid_orders_count(g)
    if exact:
        return f"{count} (exact)"
    return f"at most {count} (bound: a component has more than {EXACT_COMPONENT_LIMIT} steps)"


def _count_component(g: nx.DiGraph) -> int:
    names = sorted(g.nodes)
    idx = {x: i for i, x in enumerate(names)}
    preds = [0] * len(names)
    for u, v in g.edges:
        preds[idx[v]] |= 1 << idx[u]
    full = (1 << len(names)) - 1

    @cache
    def count(placed: int) -> int:
        if placed == full:
            return 1
        out = 0
        for i in range(len(names)):
            if not placed & (1 << i) and preds[i] & ~placed == 0:
                out += count(placed | (1 << i))
        return out

    return count(0)


@dataclass
class SequenceCheck:
    order: list[str] = field(default_factory=list)  # the interface steps the sequence performs, in order
    violated: list[tuple[int, int, Edge]] = field(default_factory=list)  # (line of before, line of after, edge)
    missing: list[str] = field(default_factory=list)  # interface nodes the sequence never performs
    # in the wrong order, but the edge's witness, run through the file, loses nothing there
    # (the file's steps cover other interrupts or save other values than the interface's)
    unconfirmed: list[tuple[int, int, Edge, str]] = field(default_factory=list)  # ..., why no loss
    irregular: list[tuple[int, str]] = field(default_factory=list)  # (line, why) of steps that are no node
    moved: list[str] = field(default_factory=list)
    suggestion: list[str] = field(default_factory=list)


def check_sequence(og: OrderingGraph, spec: DeviceSpec, seq: Sequence) -> SequenceCheck:
    """Each violated edge (a step that must come after another comes first), the nearest
    valid order (fewest moved steps) and the interface steps the sequence never performs.

    What each step really writes counts: a clear view written with anything but all ones
    is not the clear step (``irregular``), and an edge is compared on the steps that write
    the interrupt kind of its witness (by their first occurrence). A wrong order is
    reported VIOLATED only when the edge's witness, run through the file itself (its
    save, its values, its words), loses what the edge says: then ``prove`` finds the same
    loss. Otherwise it is listed as ``unconfirmed``."""
    flat: list[Step] = []
    for s in seq.restore:
        flat.extend(s.steps if s.action == "each" else [s])
    first: dict[str, Step] = {}
    first_of_kind: dict[tuple[str, str], int] = {}
    res = SequenceCheck()
    for i, s in enumerate(flat):
        n = node_of_step(spec, s)
        if n is None:
            why = irregular(spec, s)
            if why:
                res.irregular.append((s.line, why))
            continue
        first.setdefault(n, s)
        for k in step_kinds(spec, s):
            first_of_kind.setdefault((n, k), i)
    present = list(first)
    pos = {n: i for i, n in enumerate(present)}
    res.order = present
    reach = {n: nx.descendants(og.graph, n) for n in og.graph.nodes}
    for (u, v), e in og.edges.items():
        iu, iv = _first_covering(first_of_kind, u, e.kind), _first_covering(first_of_kind, v, e.kind)
        if iu is None or iv is None or iv > iu:
            continue
        why_not = _no_loss_on_file(spec, seq, e)
        if why_not:
            res.unconfirmed.append((flat[iu].line, flat[iv].line, e, why_not))
        else:
            res.violated.append((flat[iu].line, flat[iv].line, e))
    res.missing = [n.name for n in og.nodes if n.name not in first]
    # the largest set of steps with no pair in the wrong order stays; the rest move
    agree = nx.Graph()
    agree.add_nodes_from(present)
    for i, a in enumerate(present):
        for b in present[i + 1:]:
            if a not in reach.get(b, set()):  # b does not have to come before a
                agree.add_edge(a, b)
    kept, _ = nx.max_weight_clique(agree, weight=None)
    kept_set = set(kept)
    res.moved = [n for n in present if n not in kept_set]
    g = og.graph.subgraph(present).copy()
    chain = [n for n in present if n in kept_set]
    g.add_edges_from(zip(chain, chain[1:], strict=False))
    if nx.is_directed_acyclic_graph(g):
        res.suggestion = list(nx.lexicographical_topological_sort(g, key=lambda x: pos[x]))
    # else the graph has a cycle (two steps each of whose orders loses something): no
    # order is valid, so none is suggested; the violated edges are still reported
    return res
