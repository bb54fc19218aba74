"""arm-cpregs: what must hold of the CPU register list protocol, proved or refuted.

Three kinds of obligation, each ending PROVED, COUNTEREXAMPLE or UNKNOWN (never PROVED on
a timeout, never from assumptions that cannot hold):

* **Every length** (the merge of cpu_post_load): a loop invariant over the loop's state,
  with quantifiers over list positions, checked by Z3 as verification conditions (VCs):
  the invariant holds before the loop; one step of ``models.cpregs.step`` (the same step
  the concrete interpreter runs) keeps it, one VC per branch of the loop body; the loop
  stops (i + v grows at every step that does not stop it, and is at most n + m); and at
  a stopped state the invariant gives the claim. Lists are arrays of 64-bit indexes and
  values of any lengths n, m >= 0, strictly ascending (the seed's precondition: QEMU
  sorts them, kvm_arm_init_cpreg_list). Each VC's assumptions are shown satisfiable by a
  concrete state the concrete interpreter reaches on a small example (a vacuous proof
  would be caught there).
* **Witnesses** (what goes wrong): a bounded search on the loop unrolled for lists of up
  to ``BOUND`` entries each, smallest first, minimised; every witness is replayed on the
  concrete interpreter before it is shown (one that does not replay is reported as a
  bug in gicproof, UNKNOWN).
* **Per register** (the write phase, and put levels): one symbolic register of each kind,
  64-bit values, quantifier-free; the write phase treats every register on its own
  (write_list_to_kvmstate writes them one by one with KVM_SET_ONE_REG, not stopping at a
  failure), so a per-register proof covers lists of every length.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from models import cpregs as M
from models.concrete import CONCRETE
from models.kernel.reglist import compress_names  # the decoder's family folding (CCSIDR, PMU...)
from models.symbolic import SymbolicListOps, fresh_symbolic
from proofs import solver
from spec import cpregs as S

PROVED, COUNTEREXAMPLE, UNKNOWN = "PROVED", "COUNTEREXAMPLE", "UNKNOWN"
BOUND = 3  # witnesses: lists of up to this many entries each

# QEMU's put levels (include/system/kvm.h: KVM_PUT_RUNTIME_STATE 1, KVM_PUT_RESET_STATE 2,
# KVM_PUT_FULL_STATE 3)
RUNTIME_STATE, RESET_STATE, FULL_STATE = 1, 2, 3


@dataclass
class Query:
    name: str
    status: str  # unsat | sat | unknown
    seconds: float
    reason: str = ""


@dataclass
class Witness:
    """A concrete counterexample: the lists, what the loop (or a write) did, what it should
    have done, and whether the concrete interpreter agreed."""

    dest: list[int]
    dest_val: list[int]
    inc: list[int]
    inc_val: list[int]
    outcome: str
    expected: str
    replayed: bool
    extra: dict[str, int] = field(default_factory=dict)

    def json(self) -> dict[str, Any]:
        return {"destination": {"indexes": [hex(x) for x in self.dest], "values": [hex(x) for x in self.dest_val]},
                "incoming": {"indexes": [hex(x) for x in self.inc], "values": [hex(x) for x in self.inc_val]},
                "outcome": self.outcome, "expected": self.expected, "replayed": self.replayed,
                **({"extra": {k: hex(v) for k, v in self.extra.items()}} if self.extra else {})}


@dataclass
class Obligation:
    name: str
    claim: str
    variant: str
    expected: str  # the documented expectation (PROVED, or COUNTEREXAMPLE where the claim fails)
    covers: str
    rule: str  # the source that explains the verdict
    verdict: str = UNKNOWN
    seconds: float = 0.0
    queries: list[Query] = field(default_factory=list)
    witness: Witness | None = None
    note: str = ""

    @property
    def as_expected(self) -> bool:
        return self.verdict == self.expected

    def json(self) -> dict[str, Any]:
        return {"name": self.name, "claim": self.claim, "variant": self.variant, "verdict": self.verdict,
                "expected": self.expected, "as_expected": self.as_expected, "covers": self.covers,
                "rule": self.rule, "seconds": round(self.seconds, 3),
                "queries": [{"name": q.name, "status": q.status, "seconds": round(q.seconds, 3),
                             **({"reason": q.reason} if q.reason else {})} for q in self.queries],
                "witness": self.witness.json() if self.witness else None,
                **({"note": self.note} if self.note else {})}


# ---------------------------------------------------------------------------------------
# Every length: the loop invariant.


class MergeSystem:
    """The loop of one variant over symbolic lists of any length, with its invariant."""

    def __init__(self, loop: str, safe: bool):
        self.loop, self.safe = loop, safe
        L = self.L = SymbolicListOps(words_as_ints=True)
        self.n, self.m = L.pos_var("n"), L.pos_var("m")
        self.D, self.S, self.SV, self.DV = L.words("D"), L.words("S"), L.words("SV"), L.words("DV")
        self.safe_set = L.word_set("Safe")
        self.inp = M.MergeInputs(self.D, self.n, self.S, self.SV, self.m,
                                 (lambda x: L.member(self.safe_set, x)) if safe else (lambda x: L.false()))
        self.st = M.MergeState(i=L.pos_var("i"), v=L.pos_var("v"), values=L.words("R"), took=L.positions("W"),
                               at=L.positions("P"), status=L.pos_var("status"), unexpected=L.pos_var("u"),
                               first_bad=L.pos_var("fb"))
        self.j, self.k, self.a, self.b = (L.pos_var(x) for x in ("j", "k", "a", "b"))

    def sorted_(self, arr: Any, ln: Any) -> Any:
        L, a, b = self.L, self.a, self.b
        return L.forall([a, b], L.implies(L.and_(0 <= a, a < b, b < ln), L.ult(L.read(arr, a), L.read(arr, b))))

    def pre(self) -> list[Any]:
        return [self.n >= 0, self.m >= 0, self.sorted_(self.D, self.n), self.sorted_(self.S, self.m)]

    def not_in_dest(self, x: Any) -> Any:
        L, j = self.L, self.j
        return L.forall([j], L.implies(L.and_(0 <= j, j < self.n), L.read(self.D, j) != x))

    def core(self, st: M.MergeState) -> list[Any]:
        """The invariant, as named conjuncts (a list, so a failing VC can be split)."""
        L, D, S_, j, k, n, m = self.L, self.D, self.S, self.j, self.k, self.n, self.m
        R, W, P = st.values, st.took, st.at
        i, v = st.i, st.v
        rd = L.read
        inv = [
            L.and_(0 <= i, i <= n, 0 <= v, v <= m),
            # incoming entries consumed so far: matched in the destination before i ...
            L.forall([k], L.implies(L.and_(0 <= k, k < v, rd(P, k) >= 0),
                                    L.and_(rd(P, k) < i, rd(D, rd(P, k)) == rd(S_, k)))),
            # ... or (traces) in no position of the destination
            L.forall([k, j], L.implies(L.and_(0 <= k, k < v, rd(P, k) < 0, 0 <= j, j < n),
                                       rd(D, j) != rd(S_, k))),
            # destination entries done: kept their value ...
            L.forall([j], L.implies(L.and_(0 <= j, j < i, rd(W, j) == 0), rd(R, j) == rd(self.DV, j))),
            # ... and then no incoming index equals theirs ...
            L.forall([j, k], L.implies(L.and_(0 <= j, j < i, rd(W, j) == 0, 0 <= k, k < m),
                                       rd(S_, k) != rd(D, j))),
            # ... or took the incoming value of the same index
            L.forall([j], L.implies(L.and_(0 <= j, j < i, rd(W, j) != 0),
                                    L.and_(1 <= rd(W, j), rd(W, j) <= v,
                                           rd(S_, rd(W, j) - 1) == rd(D, j),
                                           rd(R, j) == rd(self.SV, rd(W, j) - 1)))),
            # incoming entries not reached: not matched yet
            L.forall([k], L.implies(v <= k, rd(P, k) == -1)),
            # destination entries not reached: untouched
            L.forall([j], L.implies(L.and_(i <= j, j < n), L.and_(rd(R, j) == rd(self.DV, j), rd(W, j) == 0))),
            # the two walks are in step: everything before i is below the next incoming index
            L.implies(L.and_(v < m, i > 0), L.ult(rd(D, i - 1), rd(S_, v))),
            L.or_(st.status == M.RUNNING, st.status == M.OK, st.status == M.FAIL),
        ]
        if self.loop == "qemu":
            inv += [
                L.forall([k], L.implies(L.and_(0 <= k, k < v), L.read(P, k) >= 0)),
                L.implies(st.status != M.FAIL, st.first_bad == -1),
                L.implies(st.status == M.FAIL, L.and_(st.first_bad == v, i < n, v < m,
                                                      L.ult(L.read(S_, v), L.read(D, i)))),
                L.implies(st.status == M.OK, L.or_(i == n, v == m)),
            ]
        else:
            safe = self.inp.safe
            inv += [
                st.unexpected >= 0,
                L.implies(st.unexpected == 0, st.first_bad == -1),
                L.forall([k], L.implies(L.and_(st.unexpected == 0, 0 <= k, k < v, L.read(P, k) < 0),
                                        safe(L.read(S_, k)))),
                L.implies(st.unexpected > 0, L.and_(0 <= st.first_bad, st.first_bad < v,
                                                    L.read(P, st.first_bad) < 0,
                                                    L.not_(safe(L.read(S_, st.first_bad))))),
                L.implies(st.status != M.RUNNING, L.and_(i == n, v == m)),
                L.implies(st.status == M.OK, st.unexpected == 0),
                L.implies(st.status == M.FAIL, st.unexpected > 0),
            ]
        return inv

    def initial(self) -> M.MergeState:
        L = self.L
        return M.initial(L, self.DV, L.const_positions(0), L.const_positions(-1))

    def step(self, st: M.MergeState) -> M.MergeState:
        return M.step(self.L, self.loop, self.inp, st)

    def branches(self) -> list[tuple[str, Any]]:
        """The cases of one step from a running state (they cover every running state)."""
        L, st, inp = self.L, self.st, self.inp
        in_i, in_v = st.i < inp.n, st.v < inp.m
        ours, theirs = L.read(inp.dest, st.i), L.read(inp.inc, st.v)
        out = [("skip (ours below theirs)", L.and_(in_i, in_v, L.ult(ours, theirs))),
               ("match (same index)", L.and_(in_i, in_v, ours == theirs)),
               ("unknown incoming index", L.and_(in_i, in_v, L.ult(theirs, ours)))]
        if self.loop == "qemu":
            out.append(("a list ends", L.not_(L.and_(in_i, in_v))))
        else:
            out += [("destination tail (missing from the stream)", L.and_(in_i, L.not_(in_v))),
                    ("incoming tail (unexpected)", L.and_(L.not_(in_i), in_v)),
                    ("both ended", L.and_(L.not_(in_i), L.not_(in_v)))]
        return out

    # the claims at a stopped state
    def post_ok(self, st: M.MergeState) -> Any:
        """OK: every destination entry holds the incoming value of its index, or its own when
        no incoming index equals it; every incoming entry was applied, or (qemu) lies above
        the destination's last index, or (traces) is safe to miss."""
        L, D, S_, j, k, n, m = self.L, self.D, self.S, self.j, self.k, self.n, self.m
        R, W, P = st.values, st.took, st.at
        dest_ok = L.forall([j], L.implies(L.and_(0 <= j, j < n), L.and_(
            L.implies(L.read(W, j) == 0, L.and_(L.read(R, j) == L.read(self.DV, j),
                                                 L.forall([k], L.implies(L.and_(0 <= k, k < m),
                                                                         L.read(S_, k) != L.read(D, j))))),
            L.implies(L.read(W, j) != 0, L.and_(1 <= L.read(W, j), L.read(W, j) <= m,
                                                L.read(S_, L.read(W, j) - 1) == L.read(D, j),
                                                L.read(R, j) == L.read(self.SV, L.read(W, j) - 1))))))
        applied = L.and_(0 <= L.read(P, k), L.read(P, k) < n, L.read(D, L.read(P, k)) == L.read(S_, k))
        if self.loop == "qemu":
            other = L.or_(n == 0, L.ult(L.read(D, n - 1), L.read(S_, k)))
        else:
            other = L.and_(self.inp.safe(L.read(S_, k)), self.not_in_dest(L.read(S_, k)))
        inc_ok = L.forall([k], L.implies(L.and_(0 <= k, k < m), L.or_(applied, other)))
        return L.and_(dest_ok, inc_ok)

    def post_fail(self, st: M.MergeState) -> Any:
        """FAIL: the incoming index named (first_bad) is in no position of the destination's
        list (and, traces, is not safe to miss)."""
        L = self.L
        fb = st.first_bad
        parts = [0 <= fb, fb < self.m, self.not_in_dest(L.read(self.S, fb))]
        if self.loop != "qemu":
            parts.append(L.not_(self.inp.safe(L.read(self.S, fb))))
        return L.and_(*parts)


def _ask(name: str, hyps: list[Any], goal: Any, budget: solver.Budget) -> Query:
    """Is ``hyps => goal`` valid? (unsat of hyps and not goal; the negation through the
    solver layer, which owns z3)"""
    ans = solver.check(hyps, [solver.none_of([goal])], budget, logic=None)
    return Query(name, ans.status, ans.seconds, ans.reason)


def _sat(name: str, hyps: list[Any], budget: solver.Budget) -> Query:
    ans = solver.check(hyps, [], budget, logic=None)
    return Query(name, ans.status, ans.seconds, ans.reason)


# Small examples that reach every branch of the loop (for the vacuity checks): (dest,
# incoming, safe). Their values are arbitrary.
_EXAMPLES: list[tuple[list[int], list[int], tuple[int, ...]]] = [
    ([1, 3], [1, 3], ()),  # match, match, end
    ([1, 2, 3], [1, 3], ()),  # skip in the middle
    ([1, 3], [1, 2, 3], ()),  # unknown in the middle
    ([1, 2], [1, 3], ()),  # unknown above the last destination index (tail)
    ([2, 3], [1], ()),
    ([1, 2], [1, 2, 3], (3,)),
    ([1, 3], [1, 2, 3], (2,)),
    ([], [], ()),
    ([1], [], ()),
]


def _concrete_states(loop: str, safe_on: bool) -> list[tuple[M.MergeInputs, M.MergeState, tuple[int, ...]]]:
    """Every state the concrete loop passes through on the examples (with its inputs)."""
    L = M.CONCRETE_LISTS
    out = []
    for dest, inc, safe in _EXAMPLES:
        if safe and not safe_on:
            continue
        dv = tuple(0x100 + x for x in dest)
        sv = tuple(0x200 + x for x in inc)
        safe_set = frozenset(safe)
        inp = M.MergeInputs(tuple(dest), len(dest), tuple(inc), sv, len(inc), safe_set.__contains__)
        st = M.initial(L, dv, (0,) * len(dest), (-1,) * len(inc))
        out.append((inp, st, safe))
        for _ in range(len(dest) + len(inc) + 2):
            st = M.step(L, loop, inp, st)
            out.append((inp, st, safe))
    return out


def _pin(sys_: MergeSystem, inp: M.MergeInputs, st: M.MergeState, safe: tuple[int, ...], dv: tuple) -> list[Any]:
    """Equalities fixing the symbolic system to one concrete state (for vacuity checks)."""
    L = sys_.L
    safe_arr = sys_.safe_set
    pins = [sys_.n == inp.n, sys_.m == inp.m, sys_.D == L.word_array(list(inp.dest)),
            sys_.S == L.word_array(list(inp.inc)), sys_.SV == L.word_array(list(inp.inc_val)),
            sys_.DV == L.word_array(list(dv)), sys_.st.i == st.i, sys_.st.v == st.v,
            sys_.st.values == L.word_array(list(st.values)), sys_.st.took == L.pos_array(list(st.took), 0),
            sys_.st.at == L.pos_array(list(st.at), -1), sys_.st.status == st.status,
            sys_.st.unexpected == st.unexpected, sys_.st.first_bad == st.first_bad]
    if sys_.safe:
        pins.append(safe_arr == L.word_set_of(list(safe)))
    return pins


def _witness_pin(sys_: MergeSystem, cond: Callable[[M.MergeInputs, M.MergeState], bool],
                 budget: solver.Budget, extra_hyps: list[Any], name: str) -> Query:
    """Show ``hyps`` (the VC's assumptions) satisfiable: pin them to a concrete reachable
    state for which ``cond`` holds, and ask the solver."""
    for inp, st, safe in _concrete_states(sys_.loop, sys_.safe):
        if cond(inp, st):
            dv = tuple(0x100 + x for x in inp.dest)
            return _sat(name, extra_hyps + _pin(sys_, inp, st, safe, dv), budget)
    return Query(name, "no-example", 0.0, "no example state reaches this case")


def _concrete_branch(loop: str, name: str) -> Callable[[M.MergeInputs, M.MergeState], bool]:
    def f(inp: M.MergeInputs, st: M.MergeState) -> bool:
        if st.status != M.RUNNING:
            return False
        in_i, in_v = st.i < inp.n, st.v < inp.m
        ours = inp.dest[st.i] if in_i else 0
        theirs = inp.inc[st.v] if in_v else 0
        return {
            "skip (ours below theirs)": in_i and in_v and ours < theirs,
            "match (same index)": in_i and in_v and ours == theirs,
            "unknown incoming index": in_i and in_v and theirs < ours,
            "a list ends": not (in_i and in_v),
            "destination tail (missing from the stream)": in_i and not in_v,
            "incoming tail (unexpected)": in_v and not in_i,
            "both ended": not in_i and not in_v,
        }[name]
    return f


def _verdict(queries: list[Query], vacuity: list[Query]) -> tuple[str, str]:
    if any(q.status == "sat" for q in queries):
        bad = next(q.name for q in queries if q.status == "sat")
        return UNKNOWN, (f"a verification condition does not hold ({bad}): the invariant or the claim fails "
                         "for some state, which need not be reachable; no concrete witness, so not a counterexample")
    if any(q.status == "unknown" for q in queries + vacuity):
        return UNKNOWN, "a solver query ran out of its budget or answered unknown"
    if any(q.status != "sat" for q in vacuity):
        return UNKNOWN, "assumptions not shown satisfiable: a proof could be vacuous"
    return PROVED, ""


# Which invariant conjuncts (MergeSystem.core, by position) the step VC of each conjunct
# rests on: the conjunct itself and the facts its new entry needs (see core's comments).
_COMMON_DEPS = {0: [0], 1: [0, 1, 6], 2: [0, 2, 6, 8], 3: [0, 3, 7], 4: [0, 1, 2, 4, 7, 8], 5: [0, 5, 7],
                6: [0, 6], 7: [0, 7], 8: [0, 8], 9: [9]}
DEPS: dict[str, dict[int, list[int]]] = {
    "qemu": _COMMON_DEPS | {10: [0, 10], 11: [9, 11], 12: [0, 11, 12], 13: [0, 13]},
    "traces": _COMMON_DEPS | {10: [10], 11: [10, 11], 12: [0, 6, 10, 12], 13: [0, 6, 10, 11, 13],
                              14: [0, 14], 15: [10, 15], 16: [10, 16]},
}


HINT_MISSES: list[tuple[str, str, int, str, float]] = []  # for calibration (tests, bench)


def hint_budget(budget: solver.Budget) -> solver.Budget:
    """The budget of a first try with fewer assumptions: a tenth of the full one."""
    return solver.Budget(max(1, budget.rlimit // 10),
                         None if budget.timeout_ms is None else max(1, budget.timeout_ms // 10))


def prove_merge(variant: S.Variant, budget: solver.Budget) -> tuple[Obligation, MergeSystem]:
    """The loop invariant of ``variant``'s loop: init, every branch, termination, OK and FAIL."""
    loop = variant.loop
    safe = variant.safe_missing
    sys_ = MergeSystem(loop, safe)
    L, st = sys_.L, sys_.st
    t0 = time.perf_counter()
    tail = ("every incoming entry not applied lies above the destination's last index (it is "
            "dropped without an error)" if loop == "qemu" else
            "every incoming entry is applied, or listed as safe to miss (then dropped)" if safe else
            "every incoming entry is applied")
    ob = Obligation(
        "merge", "for sorted lists of any length the merge stops; when it succeeds every destination register "
        "holds the incoming value of its index, or keeps its own when the stream has no such index, and "
        f"{tail}; when it fails, the incoming index it stops at is in no position of the destination's list",
        variant.name, PROVED,
        "strictly ascending lists of every length n, m >= 0: a loop invariant (initiation, each branch of one "
        "step, termination, the claims at OK and at FAIL), checked by Z3 with indexes and values as integers "
        "(the loop only compares indexes, < and =, and copies values, and integers order every pair of 64-bit "
        "values as ULT does, so this covers all of them)" + (", with any set of safe-to-miss indexes" if safe else ""),
        variant.source)
    pre = sys_.pre()
    queries, vacuity = [], []
    s0 = sys_.initial()
    for c, goal in enumerate(sys_.core(s0)):
        queries.append(_ask(f"initiation: conjunct {c}", pre, goal, budget))
    vacuity.append(_witness_pin(sys_, lambda inp, s: s.i == 0 and s.v == 0 and s.status == M.RUNNING,
                                budget, pre, "initiation: assumptions satisfiable"))
    core = sys_.core(st)
    running = st.status == M.RUNNING
    nxt = sys_.step(st)
    for name, cond in sys_.branches():
        for c, goal in enumerate(sys_.core(nxt)):
            # first with the conjuncts this one rests on (fewer quantified assumptions keep
            # Z3's instantiation small), then, unless that proved it, with all of them;
            # fewer assumptions can only make a proof harder, never wrong
            deps = [core[d] for d in DEPS[loop].get(c, range(len(core)))]
            q = _ask(f"step: {name}: conjunct {c}", pre + deps + [running, cond], goal, hint_budget(budget))
            if q.status != "unsat":
                HINT_MISSES.append((loop, name, c, q.status, q.seconds))
                q = _ask(f"step: {name}: conjunct {c} (all conjuncts)", pre + core + [running, cond], goal, budget)
            queries.append(q)
        vacuity.append(_witness_pin(sys_, _concrete_branch(loop, name), budget, pre + core + [running, cond],
                                    f"step: {name}: assumptions satisfiable"))
    queries.append(_ask("termination (i + v grows at every step that does not stop the loop)",
                        pre + core + [running],
                        L.or_(nxt.status != M.RUNNING, nxt.i + nxt.v > st.i + st.v), budget))
    stopped_ok = st.status == M.OK
    queries.append(_ask("claim at OK", pre + core + [stopped_ok], sys_.post_ok(st), budget))
    vacuity.append(_witness_pin(sys_, lambda inp, s: s.status == M.OK, budget, pre + core + [stopped_ok],
                                "claim at OK: assumptions satisfiable"))
    queries.append(_ask("claim at FAIL", pre + core + [st.status == M.FAIL], sys_.post_fail(st), budget))
    vacuity.append(_witness_pin(sys_, lambda inp, s: s.status == M.FAIL, budget, pre + core + [st.status == M.FAIL],
                                "claim at FAIL: assumptions satisfiable"))
    ob.queries = queries + vacuity
    ob.verdict, why = _verdict(queries, vacuity)
    ob.note = why
    ob.seconds = time.perf_counter() - t0
    return ob, sys_


def prove_consequence(sys_: MergeSystem, variant: S.Variant, name: str, claim: str, hyp: Callable[[MergeSystem], list[Any]],
                      goal: Callable[[MergeSystem], list[Any]], example: Callable[[M.MergeInputs, M.MergeState], bool],
                      covers: str, rule: str, budget: solver.Budget, merge_ok: bool) -> Obligation:
    """A claim at every stopped state of the loop, from the invariant (which holds at every
    reachable state, ``prove_merge``)."""
    t0 = time.perf_counter()
    ob = Obligation(name, claim, variant.name, PROVED, covers, rule)
    st, L = sys_.st, sys_.L
    # the lemmas prove_merge proved of every stopped state: the claims at OK and at FAIL
    stopped = [L.or_(st.status == M.OK, st.status == M.FAIL),
               L.implies(st.status == M.OK, sys_.post_ok(st)),
               L.implies(st.status == M.FAIL, sys_.post_fail(st))]
    hyps = sys_.pre() + stopped + hyp(sys_)
    goals = goal(sys_)
    qs = [_ask(f"claim at every stopped state: part {g}", hyps, c, budget) for g, c in enumerate(goals)]
    v = _witness_pin(sys_, example, budget, hyps, "assumptions satisfiable")
    ob.queries = qs + [v]
    if not merge_ok:
        ob.verdict, ob.note = UNKNOWN, "rests on the loop invariant, which was not proved"
    else:
        ob.verdict, ob.note = _verdict(qs, [v])
    ob.seconds = time.perf_counter() - t0
    return ob


# ---------------------------------------------------------------------------------------
# Witnesses: the loop unrolled on lists of bounded lengths.


@dataclass
class Unrolled:
    L: SymbolicListOps
    n: int
    m: int
    D: Any
    S: Any
    SV: Any
    DV: Any
    final: M.MergeState
    safe_set: Any


def unroll(loop: str, n: int, m: int, safe: bool) -> Unrolled:
    L = SymbolicListOps()
    D, S_, SV, DV = L.words("D"), L.words("S"), L.words("SV"), L.words("DV")
    safe_set = L.word_set("Safe")
    inp = M.MergeInputs(D, L.pos(n), S_, SV, L.pos(m),
                        (lambda x: L.member(safe_set, x)) if safe else (lambda x: L.false()))
    st = M.initial(L, DV, L.const_positions(0), L.const_positions(-1))
    for _ in range(n + m + 1):
        st = M.step(L, loop, inp, st)
    return Unrolled(L, n, m, D, S_, SV, DV, st, safe_set)


def _read(u: Unrolled, arr: Any, p: int) -> Any:
    return u.L.read(arr, u.L.pos(p))


def _sorted_bounded(u: Unrolled, arr: Any, ln: int) -> list[Any]:
    return [u.L.ult(_read(u, arr, a), _read(u, arr, a + 1)) for a in range(ln - 1)]


def _distinct_bounded(u: Unrolled, arr: Any, ln: int) -> list[Any]:
    return [_read(u, arr, a) != _read(u, arr, b) for a in range(ln) for b in range(a + 1, ln)]


def _in_dest(u: Unrolled, x: Any) -> Any:
    return u.L.or_(*[_read(u, u.D, j) == x for j in range(u.n)])


def _extract(u: Unrolled, ans: solver.Answer) -> tuple[list[int], list[int], list[int], list[int]]:
    return ([solver.value_in(ans, _read(u, u.D, j)) for j in range(u.n)],
            [solver.value_in(ans, _read(u, u.DV, j)) for j in range(u.n)],
            [solver.value_in(ans, _read(u, u.S, k)) for k in range(u.m)],
            [solver.value_in(ans, _read(u, u.SV, k)) for k in range(u.m)])


def _preferred(u: Unrolled) -> list[tuple[Any, int]]:
    """Readable witnesses: indexes 1, 2, 3..., destination values 0xd0.., incoming 0x50.."""
    out = []
    for j in range(u.n):
        out += [(_read(u, u.D, j), j + 1), (_read(u, u.DV, j), 0xD0 + j)]
    for k in range(u.m):
        out += [(_read(u, u.S, k), k + 1), (_read(u, u.SV, k), 0x50 + k)]
    return out


def search(loop: str, safe: bool, query: Callable[[Unrolled], list[Any]], budget: solver.Budget,
           sizes: list[tuple[int, int]] | None = None) -> tuple[Unrolled | None, solver.Answer | None, list[Query]]:
    """The smallest lists (by n + m, then n) for which ``query`` is satisfiable."""
    sizes = sizes or sorted(((n, m) for n in range(BOUND + 1) for m in range(BOUND + 1)),
                            key=lambda s: (s[0] + s[1], s[0]))
    queries = []
    for n, m in sizes:
        u = unroll(loop, n, m, safe)
        q = query(u)
        ans = solver.check([], q, budget, logic=None)
        queries.append(Query(f"n={n}, m={m}", ans.status, ans.seconds, ans.reason))
        if ans.status == "sat":
            # small numbers first: every index below 16 and every value below 0x100 if possible,
            # then the preferred ones (indexes 1, 2, 3..., values 0xd0.., 0x50..)
            small = [u.L.ult(_read(u, arr, p), u.L.word(16)) for arr, ln in ((u.D, n), (u.S, m)) for p in range(ln)]
            small += [u.L.ult(_read(u, arr, p), u.L.word(0x100)) for arr, ln in ((u.DV, n), (u.SV, m)) for p in range(ln)]
            tight = solver.check(small, q, budget, logic=None)
            base = small if tight.status == "sat" else []
            best = solver.minimise(base, q, _preferred(u), budget, logic=None)
            return u, (best if best.status == "sat" else ans), queries
        if ans.status == "unknown":
            return None, ans, queries
    return None, None, queries


def _replay_merge(loop: str, d: list[int], dv: list[int], s: list[int], sv: list[int],
                  safe: tuple[int, ...] = ()) -> tuple[M.MergeResult, list[int], list[int]]:
    res = M.run_merge(loop, d, dv, s, sv, safe)
    want, unknown = M.spec_merge(d, dv, s, sv)
    return res, want, unknown


def _describe_run(res: M.MergeResult, s: list[int], d: list[int]) -> str:
    if res.status == "fail":
        return f"refused at incoming index {s[res.first_bad]:#x}"
    dropped = [s[k] for k in range(len(s)) if res.at[k] < 0]
    vals = ", ".join(f"{x:#x}={y:#x}" for x, y in zip(d, res.values, strict=True))
    return f"loaded [{vals}]" + (f"; dropped without an error: {', '.join(hex(x) for x in dropped)}" if dropped else "")


def witness_obligation(name: str, claim: str, variant: S.Variant, covers: str, rule: str, safe: bool,
                       query: Callable[[Unrolled], list[Any]],
                       check: Callable[[list[int], list[int], list[int], list[int], tuple[int, ...]], tuple[bool, str, str]],
                       budget: solver.Budget, sizes: list[tuple[int, int]] | None = None,
                       safe_of: Callable[[Unrolled, solver.Answer, list[int]], tuple[int, ...]] | None = None,
                       expected: str = COUNTEREXAMPLE) -> Obligation:
    """A claim refuted by the smallest witness of ``query`` (the claim's negation on the
    unrolled loop), replayed by ``check`` (which returns whether the concrete interpreter
    shows the same failure, and the outcome and expectation to print)."""
    t0 = time.perf_counter()
    ob = Obligation(name, claim, variant.name, expected, covers, rule)
    u, ans, queries = search(variant.loop, safe, query, budget, sizes)
    ob.queries = queries
    if u is None or ans is None or ans.status != "sat":
        if ans is not None and ans.status == "unknown":
            ob.verdict, ob.note = UNKNOWN, f"solver: {ans.reason}"
        else:
            ob.verdict = PROVED
            ob.note = f"no witness with lists of up to {BOUND} entries each (bounded: not a proof for every length)"
        ob.seconds = time.perf_counter() - t0
        return ob
    d, dv, s, sv = _extract(u, ans)
    safe_vals = safe_of(u, ans, s) if safe_of else ()
    replayed, outcome, expected_txt = check(d, dv, s, sv, safe_vals)
    ob.witness = Witness(d, dv, s, sv, outcome, expected_txt, replayed,
                         {f"safe[{k}]": x for k, x in enumerate(safe_vals)})
    ob.verdict = COUNTEREXAMPLE if replayed else UNKNOWN
    if not replayed:
        ob.note = "the witness did not replay on the concrete interpreter: a bug in gicproof"
    ob.seconds = time.perf_counter() - t0
    return ob


# ---------------------------------------------------------------------------------------
# Per register: the write phase and put levels (spec.cpregs.write, quantifier-free).


def _reg_obligation(name: str, claim: str, covers: str, rule: str, expected: str,
                    build: Callable[[Any], tuple[list[Any], Any, dict[str, Any]]],
                    replay: Callable[[dict[str, int]], tuple[bool, str, str]], budget: solver.Budget) -> Obligation:
    """``build(ops)`` -> (assumptions, goal condition, named variables): PROVED when the
    assumptions are satisfiable and imply the goal; otherwise the smallest witness,
    replayed by ``replay(values)``."""
    t0 = time.perf_counter()
    ob = Obligation(name, claim, "all", expected, covers, rule)
    ops = fresh_symbolic()
    hyps, goal, names = build(ops)
    vac = solver.satisfiable(hyps, budget)
    ans = solver.check(hyps, [ops.not_(goal, 1)], budget)
    ob.queries = [Query("claim", ans.status, ans.seconds, ans.reason),
                  Query("assumptions satisfiable", vac.status, vac.seconds, vac.reason)]
    if ans.status == "unknown" or vac.status == "unknown":
        ob.verdict, ob.note = UNKNOWN, "a solver query ran out of its budget or answered unknown"
    elif vac.status != "sat":
        ob.verdict, ob.note = UNKNOWN, "assumptions unsatisfiable: the proof would be vacuous"
    elif ans.status == "unsat":
        ob.verdict = PROVED
    else:
        best = solver.minimise(hyps, [ops.not_(goal, 1)], [(v, 0) for v in names.values()], budget)
        vals = {k: solver.value_in(best, v) for k, v in names.items()}
        ok, outcome, exp = replay(vals)
        ob.witness = Witness([], [], [], [], outcome, exp, ok, vals)
        ob.verdict = COUNTEREXAMPLE if ok else UNKNOWN
        if not ok:
            ob.note = "the witness did not replay on the concrete interpreter: a bug in gicproof"
    ob.seconds = time.perf_counter() - t0
    return ob


def put(ops: Any, rule: S.RegRule, level: int, current: Any, value: Any, accel: str = "kvm") -> tuple[Any, Any]:
    """write_list_to_kvmstate at ``level`` for one register: (accepted, value afterwards).
    A full-state register is skipped below KVM_PUT_FULL_STATE (kvm_arm_cpreg_level)."""
    if rule.kind == S.FULL_STATE and level < FULL_STATE:
        return ops.const(1, 1), current
    return S.write(ops, rule, current, value, accel)


_KIND_RULES: dict[str, S.RegRule] = {
    S.PLAIN: S.RegRule(S.PLAIN, source=S.KINDS[S.PLAIN][1]),
    S.CONSTANT: S.RegRule(S.CONSTANT, source=S.KINDS[S.CONSTANT][1]),
    S.PARTLY_RO: S.RegRule(S.PARTLY_RO, ro_mask=0x4, derived=True, source=S.KINDS[S.PARTLY_RO][1]),
    S.FULL_STATE: S.RegRule(S.FULL_STATE, source=S.KINDS[S.FULL_STATE][1]),
}


def register_obligations(budget: solver.Budget) -> list[Obligation]:
    out = []
    for accel in ("kvm", "tcg"):
        for kind, rule in _KIND_RULES.items():
            if kind == S.PARTLY_RO and accel == "tcg":
                continue

            def build(ops: Any, rule: S.RegRule = rule, accel: str = accel) -> tuple[list[Any], Any, dict[str, Any]]:
                src, dst = ops.var("source", 64), ops.var("dest_reset", 64)
                hyps = []
                if rule.kind == S.CONSTANT:  # the same constant on both sides
                    hyps.append(ops.eq(src, dst))
                ok, after = put(ops, rule, FULL_STATE, dst, src, accel)
                cmp = ops.const(rule.compared, 64)
                goal = ops.and_(ok, ops.eq(ops.and_(after, cmp), ops.and_(src, cmp)))
                return hyps, goal, {"source": src, "dest_reset": dst}

            def replay(vals: dict[str, int], rule: S.RegRule = rule, accel: str = accel) -> tuple[bool, str, str]:
                ok, after = put(CONCRETE, rule, FULL_STATE, vals["dest_reset"], vals["source"], accel)
                cmp = rule.compared
                bad = not ok or (after & cmp) != (vals["source"] & cmp)
                return bad, f"accepted={bool(ok)}, reads {after:#x}", "accepted, reads the source's value"

            extra = " whose value is the same constant on both sides" if kind == S.CONSTANT else ""
            extra += " (the read-only bits are derived, not compared)" if kind == S.PARTLY_RO else ""
            out.append(_reg_obligation(
                f"write-{kind}-{accel}",
                f"a {kind} register{extra} written with the source's value by the incoming migration's put "
                f"({'KVM_SET_ONE_REG' if accel == 'kvm' else 'TCG raw write, then read-back'}) is accepted and "
                "reads back the source's value",
                f"one register, every 64-bit source and destination value ({accel}); the write phase handles "
                "registers one by one, so this covers lists of every length", rule.source, PROVED,
                build, replay, budget))
    # constants that differ: refused on both paths
    for accel in ("kvm", "tcg"):
        def build_c(ops: Any, accel: str = accel) -> tuple[list[Any], Any, dict[str, Any]]:
            src, dst = ops.var("source", 64), ops.var("dest_constant", 64)
            ok, _ = S.write(ops, _KIND_RULES[S.CONSTANT], dst, src, accel)
            return [ops.not_(ops.eq(src, dst), 1)], ops.not_(ok, 1), {"source": src, "dest_constant": dst}

        def replay_c(vals: dict[str, int], accel: str = accel) -> tuple[bool, str, str]:
            ok, _ = S.write(CONCRETE, _KIND_RULES[S.CONSTANT], vals["dest_constant"], vals["source"], accel)
            return bool(ok), f"accepted={bool(ok)}", "refused"

        out.append(_reg_obligation(
            f"constant-differs-{accel}",
            "a constant register whose source value differs from the destination's constant is refused "
            f"({'KVM_SET_ONE_REG fails with EINVAL' if accel == 'kvm' else 'the read-back differs'}), so the "
            "load fails",
            f"one register, every pair of different 64-bit values ({accel})", _KIND_RULES[S.CONSTANT].source,
            PROVED, build_c, replay_c, budget))

    # partly read-only under TCG: the read-back check refuses a value whose read-only bits differ
    def build_ro(ops: Any) -> tuple[list[Any], Any, dict[str, Any]]:
        src, dst = ops.var("source", 64), ops.var("dest_reset", 64)
        rule = S.RegRule(S.PARTLY_RO, ro_mask=0x4)
        ok, _ = S.write(ops, rule, dst, src, "tcg")
        ro = ops.const(0x4, 64)
        return [ops.not_(ops.eq(ops.and_(src, ro), ops.and_(dst, ro)), 1)], ops.not_(ok, 1), {"source": src, "dest_reset": dst}

    out.append(_reg_obligation(
        "partly-ro-differs-tcg",
        "a partly read-only register whose read-only bits differ between the source's value and the "
        "destination is refused by the TCG read-back check",
        "one register (read-only mask 0x4), every 64-bit pair (tcg)", S.KINDS[S.PARTLY_RO][1], PROVED,
        build_ro, lambda vals: (False, "", ""), budget))

    # put levels: a runtime put leaves a full-state register alone
    def build_rt(ops: Any) -> tuple[list[Any], Any, dict[str, Any]]:
        src, dst = ops.var("list_value", 64), ops.var("kvm_value", 64)
        _, after = put(ops, _KIND_RULES[S.FULL_STATE], RUNTIME_STATE, dst, src)
        return [], ops.eq(after, src), {"list_value": src, "kvm_value": dst}

    def replay_rt(vals: dict[str, int]) -> tuple[bool, str, str]:
        _, after = put(CONCRETE, _KIND_RULES[S.FULL_STATE], RUNTIME_STATE, vals["kvm_value"], vals["list_value"])
        return after != vals["list_value"], f"KVM keeps {after:#x}", f"KVM holds the list's {vals['list_value']:#x}"

    out.append(_reg_obligation(
        "full-state-runtime-put",
        "a put at KVM_PUT_RUNTIME_STATE writes every register of the list (including the full-state ones)",
        "one full-state register, every 64-bit pair", S.KINDS[S.FULL_STATE][1] + " (by design: the counter is not "
        "rewound while the VM runs; only the incoming migration's and reset's puts write it)",
        COUNTEREXAMPLE, build_rt, replay_rt, budget))

    # not migrated: the destination keeps its own value
    def build_nm(ops: Any) -> tuple[list[Any], Any, dict[str, Any]]:
        src, dst = ops.var("source", 64), ops.var("dest_reset", 64)
        return [], ops.eq(dst, src), {"source": src, "dest_reset": dst}

    out.append(_reg_obligation(
        "not-migrated",
        "a register left out of the list (ARM_CP_NO_RAW / ARM_CP_ALIAS, or a core/SVE register) ends with "
        "the source's value",
        "one register: it is neither sent nor written, so the destination keeps its own value",
        S.KINDS[S.NO_MIGRATE][1] + " (not a loss when the register has no state of its own, or is an alias "
        "of one that is migrated, or is migrated by another vmstate field: QEMU's rule for NO_RAW)",
        COUNTEREXAMPLE, build_nm,
        lambda vals: (vals["dest_reset"] != vals["source"], f"destination keeps {vals['dest_reset']:#x}",
                      f"the source's {vals['source']:#x}"), budget))
    return out


# ---------------------------------------------------------------------------------------
# All obligations.


def _sorted_distinct(u: Unrolled) -> list[Any]:
    return _sorted_bounded(u, u.D, u.n) + _sorted_bounded(u, u.S, u.m)


def merge_obligations(variant: S.Variant, budget: solver.Budget) -> list[Obligation]:
    out = []
    merge, sys_ = prove_merge(variant, budget)
    out.append(merge)
    ok = merge.verdict == PROVED
    L = sys_.L
    rule_merge = variant.source
    every = "every length (from the loop invariant at a stopped state)"

    # identical sets
    def same(s: MergeSystem) -> list[Any]:
        k = s.k
        return [s.m == s.n, L.forall([k], L.implies(L.and_(0 <= k, k < s.n), L.read(s.S, k) == L.read(s.D, k)))]

    def all_carried(s: MergeSystem) -> list[Any]:
        j = s.j
        return [s.st.status == M.OK, L.forall([j], L.implies(L.and_(0 <= j, j < s.n),
                                                             L.read(s.st.values, j) == L.read(s.SV, j)))]

    out.append(prove_consequence(
        sys_, variant, "identical", "identical register sets: the merge succeeds and every register takes the "
        "source's value (with the per-register write obligations: a round trip)", same, all_carried,
        lambda inp, st: st.status == M.OK and list(inp.dest) == list(inp.inc), every, rule_merge, budget, ok))

    # destination with extra registers
    def subset(s: MergeSystem) -> list[Any]:
        pos = L.positions("pos")
        k = s.k
        return [L.forall([k], L.implies(L.and_(0 <= k, k < s.m), L.and_(0 <= L.read(pos, k), L.read(pos, k) < s.n,
                                                                         L.read(s.D, L.read(pos, k)) == L.read(s.S, k))))]

    def kept_and_carried(s: MergeSystem) -> list[Any]:
        j, k, st = s.j, s.k, s.st
        return [st.status == M.OK,
                L.forall([k], L.implies(L.and_(0 <= k, k < s.m), L.and_(0 <= L.read(st.at, k), L.read(st.at, k) < s.n))),
                L.forall([j], L.implies(L.and_(0 <= j, j < s.n, L.read(st.took, j) == 0),
                                        L.read(st.values, j) == L.read(s.DV, j)))]

    out.append(prove_consequence(
        sys_, variant, "dest-extra", "a destination with extra registers: the merge succeeds, every incoming "
        "value is applied, and each register only the destination has keeps its current (reset) value",
        subset, kept_and_carried,
        lambda inp, st: st.status == M.OK and set(inp.inc) < set(inp.dest), every, rule_merge, budget, ok))

    def dest_extra_query(u: Unrolled) -> list[Any]:
        # S ⊂ D strictly, and the source's own state of a destination-only register (hidden from
        # its list) differs from the destination's reset value
        hidden_state = u.L.word_var("source_state")
        conds = _sorted_distinct(u) + [_in_dest(u, _read(u, u.S, k)) for k in range(u.m)]
        only = [u.L.and_(*[_read(u, u.S, k) != _read(u, u.D, j) for k in range(u.m)]) for j in range(u.n)]
        pick = [u.L.and_(only[j], _read(u, u.final.values, j) != hidden_state,
                         hidden_state == u.L.word(0x5E)) for j in range(u.n)]
        return conds + [u.final.status == M.OK, u.L.or_(*pick)] if pick else [u.L.false()]

    def dest_extra_check(d: list[int], dv: list[int], s: list[int], sv: list[int], _s: tuple) -> tuple[bool, str, str]:
        res, want, _ = _replay_merge(variant.loop, d, dv, s, sv)
        kept = [(x, y) for x, y, t in zip(d, res.values, res.took, strict=True) if t == 0]
        ok = res.status == "ok" and bool(kept) and all(y != 0x5E for _, y in kept)
        return ok, (_describe_run(res, s, d) + "; the source's own (unlisted) state 0x5e of "
                    + ", ".join(hex(x) for x, _ in kept) + " is not carried"), \
            "the destination-only register holds the source's state 0x5e"

    out.append(witness_obligation(
        "dest-extra-differs", "a register only the destination lists ends with the source's state for it",
        variant, f"lists of up to {BOUND} entries, smallest witness (the source's state of a register its kernel does not "
        "list is an extra variable)", "cpu_post_load: 'anything we know about but the incoming data doesn't "
        "specify retains its current (reset) value'", False, dest_extra_query, dest_extra_check, budget))

    # source with extra registers
    def unknown_below_last(s: MergeSystem) -> list[Any]:
        k0 = L.pos_var("k0")
        return [0 <= k0, k0 < s.m, s.not_in_dest(L.read(s.S, k0)),
                s.n > 0, L.ult(L.read(s.S, k0), L.read(s.D, s.n - 1))] + \
            ([L.not_(s.inp.safe(L.read(s.S, k0)))] if variant.safe_missing else [])

    def unknown_any(s: MergeSystem) -> list[Any]:
        k0 = L.pos_var("k0")
        return [0 <= k0, k0 < s.m, s.not_in_dest(L.read(s.S, k0))] + \
            ([L.not_(s.inp.safe(L.read(s.S, k0)))] if variant.safe_missing else [])

    refused = lambda s: [s.st.status == M.FAIL]  # noqa: E731
    if variant.loop == "qemu":
        out.append(prove_consequence(
            sys_, variant, "source-extra-below",
            "a source with an extra register whose index is below the destination's last index: the merge "
            "fails, at an incoming index the destination lacks", unknown_below_last, refused,
            lambda inp, st: st.status == M.FAIL, every, rule_merge, budget, ok))

    def src_extra_query(u: Unrolled) -> list[Any]:
        unknown = [u.L.not_(_in_dest(u, _read(u, u.S, k))) for k in range(u.m)]
        if variant.safe_missing:
            unknown = [u.L.and_(c, u.L.not_(u.L.member(u.safe_set, _read(u, u.S, k)))) for k, c in enumerate(unknown)]
        return _sorted_distinct(u) + [u.L.pos(u.m) <= u.L.pos(u.n + variant.extra_capacity),
                                      u.final.status == M.OK, u.L.or_(*unknown) if unknown else u.L.false()]

    def src_extra_check(d: list[int], dv: list[int], s: list[int], sv: list[int], _s: tuple) -> tuple[bool, str, str]:
        res, _, unknown = _replay_merge(variant.loop, d, dv, s, sv)
        return res.status == "ok" and bool(unknown), _describe_run(res, s, d), \
            "refused, naming " + ", ".join(hex(s[k]) for k in unknown)

    if variant.loop == "qemu":
        out.append(witness_obligation(
            "source-extra", "a source with a register the destination lacks (and a length the destination "
            "accepts) is refused, naming the register", variant,
            f"lists of up to {BOUND} entries, smallest witness", "cpu_post_load: the loop condition 'i < "
            "cpu->cpreg_array_len && v < cpu->cpreg_vmstate_array_len' ends the walk at the destination's last "
            "index; nothing checks v afterwards", False, src_extra_query, src_extra_check, budget))
    else:
        out.append(prove_consequence(
            sys_, variant, "source-extra", "a source with a register the destination lacks "
            + ("and does not list as safe to miss " if variant.safe_missing else "")
            + "is refused, naming the register", unknown_any, refused,
            lambda inp, st: st.status == M.FAIL, every, rule_merge, budget, ok))

    # unsorted lists
    def unsorted_query(u: Unrolled) -> list[Any]:
        # distinct indexes on each side, any order; the merge's result differs from the set
        # semantics (spec_merge): a wrong value, a refusal though every incoming index is known,
        # or an incoming index neither applied nor refused
        L2 = u.L
        conds = _distinct_bounded(u, u.D, u.n) + _distinct_bounded(u, u.S, u.m)
        known = [_in_dest(u, _read(u, u.S, k)) for k in range(u.m)]
        want = []
        for j in range(u.n):
            w = _read(u, u.DV, j)
            for k in range(u.m):
                w = L2.ite(_read(u, u.S, k) == _read(u, u.D, j), _read(u, u.SV, k), w)
            want.append(w)
        wrong_value = L2.or_(*[_read(u, u.final.values, j) != want[j] for j in range(u.n)])
        all_known = L2.and_(*known) if known else L2.true()
        ok_but = L2.and_(u.final.status == M.OK, L2.or_(wrong_value, L2.not_(all_known)))
        fail_but = L2.and_(u.final.status == M.FAIL, all_known)
        # not both ascending (else it is the sorted case), and every incoming index known (so the
        # failure is the order's, not the tail's of "source-extra")
        unsorted = L2.not_(L2.and_(*_sorted_distinct(u))) if u.n + u.m > 2 else L2.false()
        return conds + [unsorted, all_known, L2.or_(ok_but, fail_but)]

    def unsorted_check(d: list[int], dv: list[int], s: list[int], sv: list[int], _s: tuple) -> tuple[bool, str, str]:
        res, want, unknown = _replay_merge(variant.loop, d, dv, s, sv)
        exp = ("loaded [" + ", ".join(f"{x:#x}={y:#x}" for x, y in zip(d, want, strict=True)) + "]"
               if not unknown else "refused, naming " + ", ".join(hex(s[k]) for k in unknown))
        broke = (res.status == "ok" and (list(res.values) != want or bool(unknown))) or \
            (res.status == "fail" and not unknown)
        return broke, _describe_run(res, s, d), exp

    out.append(witness_obligation(
        "unsorted", "without the sort, a migration whose incoming indexes the destination all knows still "
        "loads exactly the incoming values", variant,
        f"lists of up to {BOUND} entries, distinct indexes in any order, smallest witness",
        f"{SEED_SORTED}; the loop compares only the current pair, so it relies on both lists ascending",
        False, unsorted_query, unsorted_check, budget))
    return out


SEED_SORTED = ("seed 004 init_cpreg_list: 'Note that we require cpreg_tuples[] to be sorted by key ID'; QEMU "
               "kvm_arm_init_cpreg_list: qsort, 'since cpreg_tuples must be in strictly ascending order'")


def mitigation_obligations(budget: solver.Budget) -> list[Obligation]:
    """Whether a mitigation can turn a refusal into a silent change (witnesses)."""
    out = []
    hv = S.VARIANTS["hidden"]

    # hidden: a register both sides have, hidden on both, is never carried
    def build_h(ops: Any) -> tuple[list[Any], Any, dict[str, Any]]:
        src, dst = ops.var("source", 64), ops.var("dest_reset", 64)
        return [], ops.eq(dst, src), {"source": src, "dest_reset": dst}

    out.append(_reg_obligation(
        "hidden-silent", "a register both kernels expose, hidden on both sides (x-mig-hidden-regs), ends with "
        "the source's value", "one register; hidden registers are left out of both lists, so it is neither "
        "sent, checked nor written (every 64-bit pair)", hv.source + " — and Sebastian Ott's review: hide "
        "KVM_REG_ARM_VENDOR_HYP_BMAP_2 only while its value is 0 (or impl-cpu is unused)", COUNTEREXAMPLE, build_h,
        lambda vals: (vals["dest_reset"] != vals["source"], f"destination keeps {vals['dest_reset']:#x}",
                      f"the source's {vals['source']:#x}"), budget))
    out[-1].variant = "hidden"

    sv = S.VARIANTS["safe-missing"]

    def sm_query(u: Unrolled) -> list[Any]:
        # an incoming index the destination lacks, listed safe to miss, with a non-zero value:
        # the load succeeds and drops it
        drops = [u.L.and_(u.L.not_(_in_dest(u, _read(u, u.S, k))), u.L.member(u.safe_set, _read(u, u.S, k)),
                          _read(u, u.SV, k) != u.L.word(0)) for k in range(u.m)]
        return _sorted_distinct(u) + [u.final.status == M.OK, u.L.or_(*drops) if drops else u.L.false()]

    def sm_safe(u: Unrolled, ans: solver.Answer, s: list[int]) -> tuple[int, ...]:
        return tuple(x for x in s if solver.value_in(ans, u.L.member(u.safe_set, u.L.word(x))))

    def sm_check(d: list[int], dv: list[int], s: list[int], sv_: list[int], safe: tuple) -> tuple[bool, str, str]:
        res = M.run_merge("traces", d, dv, s, sv_, safe)
        dropped = [k for k in range(len(s)) if res.at[k] < 0]
        ok = res.status == "ok" and any(sv_[k] != 0 for k in dropped)
        return ok, _describe_run(res, s, d) + f" (safe to miss: {', '.join(hex(x) for x in safe)})", \
            "the value reaches the destination, or the load fails"

    out.append(witness_obligation(
        "safe-missing-silent", "an incoming register the destination lacks but lists as safe to miss "
        "(x-mig-safe-missing-regs) either reaches the destination or fails the load", sv,
        f"lists of up to {BOUND} entries, smallest witness with a non-zero value", sv.source, True,
        sm_query, sm_check, budget, safe_of=sm_safe))
    return out


def run(variants: list[str], budget: solver.Budget, progress: Callable[[str], None] | None = None) -> list[Obligation]:
    """Every obligation, for the given variants (names of spec.cpregs.VARIANTS)."""
    out: list[Obligation] = []
    say = progress or (lambda s: None)
    done_loops: set[tuple[str, bool]] = set()
    for name in variants:
        v = S.VARIANTS[name]
        key = (v.loop, v.safe_missing)
        if key in done_loops:
            continue  # hidden and v6-compat share the traces loop: its proofs cover them
        done_loops.add(key)
        say(f"merge, {name}")
        out += merge_obligations(v, budget)
    say("per register")
    out += register_obligations(budget)
    if any(S.VARIANTS[n].hidden or S.VARIANTS[n].safe_missing for n in variants):
        say("mitigations")
        out += mitigation_obligations(budget)
    return out


__all__ = ["PROVED", "COUNTEREXAMPLE", "UNKNOWN", "Obligation", "Witness", "run"]


# ---------------------------------------------------------------------------------------
# Real lists: every ordered pair of the shipped kernels, and what KVM's selftest
# "blessed list" approach would say of the same pair.


@dataclass
class Blessed:
    """tools/testing/selftests/kvm/get-reg-list.c (Linux 7.1.8) run on the destination's
    kernel with the source's list as its blessed list: a blessed register missing from the
    destination's list fails the test; a new one is only printed ("Consider adding them to
    the blessed reg list"); every present blessed register is read and written back with
    the destination's own value (never another kernel's)."""

    missing: list[str]
    new: list[str]

    @property
    def verdict(self) -> str:
        return "fails" if self.missing else "passes"


def blessed(src: S.RegList, dst: S.RegList) -> Blessed:
    s = {r.index: r.name for r in src.registers}
    d = {r.index: r.name for r in dst.registers}
    return Blessed([s[i] for i in sorted(s.keys() - d.keys())], [d[i] for i in sorted(d.keys() - s.keys())])


@dataclass
class Matrix:
    variant: S.Variant
    accel: str
    lists: list[S.RegList]
    cells: dict[tuple[str, str], M.Migration]
    blessed: dict[tuple[str, str], Blessed]
    seconds: float = 0.0
    sort: bool = True

    def exit_code(self) -> int:
        """0: no silent change and nothing unknown; 1: a silent change; 3: unknown (none silent)."""
        verdicts = [c.verdict for c in self.cells.values()]
        if M.SILENT in verdicts:
            return 1
        if M.UNKNOWN in verdicts:
            return 3
        return 0


def real_matrix(lists: list[S.RegList], variant: S.Variant, accel: str = "kvm",
                hidden: list[int] | None = None, safe_missing: list[int] | None = None,
                sort: bool = True) -> Matrix:
    t0 = time.perf_counter()
    cells, bl = {}, {}
    for a in lists:
        for b in lists:
            cells[(a.label, b.label)] = M.migrate(a, b, variant, accel, hidden, safe_missing, sort)
            bl[(a.label, b.label)] = blessed(a, b)
    return Matrix(variant, accel, lists, cells, bl, time.perf_counter() - t0, sort)


def _names(entries: list[M.Entry], limit: int = 6) -> str:
    names = compress_names(e.name for e in entries)
    more = f", +{len(names) - limit} more" if len(names) > limit else ""
    return ", ".join(names[:limit]) + more


def _first(entries: list[M.Entry]) -> str:
    return entries[0].name + (f" +{len(entries) - 1}" if len(entries) > 1 else "") if entries else ""


def cell_text(mig: M.Migration) -> str:
    """One short line for a table cell."""
    if mig.source == mig.destination and mig.verdict == M.ROUND_TRIP:
        return "round trip (same kernel)"
    if mig.verdict == M.REFUSED:
        if mig.stage == "length":
            return f"refused: length {mig.sent} > {mig.capacity}"
        if mig.stage == "merge":
            return f"refused: merge, {_first(mig.by('refused'))}"
        return f"refused: write, {_first(mig.by('write-refused'))}"
    if mig.verdict == M.SILENT:
        parts = []
        lost = mig.by("dropped") + mig.by("hidden-dropped") + mig.by("hidden-differs")
        if lost:
            parts.append("dropped " + _first(lost))
        if mig.by("changed"):
            parts.append("changed " + _first(mig.by("changed")))
        if mig.by("kept-reset"):
            parts.append(f"{len(mig.by('kept-reset'))} at reset")
        return "SILENT: " + "; ".join(parts)
    if mig.verdict == M.UNKNOWN:
        return "unknown: " + _first(mig.by("unknown-rule"))
    return "round trip"


def _table(rows: list[list[str]]) -> str:
    widths = [max(len(r[c]) for r in rows) for c in range(len(rows[0]))]
    out = []
    for n, r in enumerate(rows):
        out.append("  ".join(x.ljust(w) for x, w in zip(r, widths, strict=True)).rstrip())
        if n == 0:
            out.append("  ".join("-" * w for w in widths))
    return "\n".join(out)


def render_matrix(mx: Matrix, details: bool = True) -> str:
    labels = [x.label for x in mx.lists]
    v = mx.variant
    head = [f"gicproof cpregs matrix: one vCPU migrated QEMU-style between the shipped kernels' register "
            f"lists ({mx.accel.upper()}; variant {v.name}: {v.title}{'' if mx.sort else '; lists NOT sorted'})",
            "rows: source kernel, columns: destination kernel"]
    rows = [["source \\ destination"] + labels]
    for a in labels:
        rows.append([a] + [cell_text(mx.cells[(a, b)]) for b in labels])
    out = head + ["", _table(rows)]
    out += ["", "KVM's get-reg-list selftest with the source's list as the blessed list, run on the destination "
                "(tools/testing/selftests/kvm/get-reg-list.c: missing registers fail it, new ones are only printed, "
                "values are only written back to the kernel they came from):", ""]
    rows = [["source \\ destination"] + labels]
    for a in labels:
        row = [a]
        for b in labels:
            bl = mx.blessed[(a, b)]
            row.append("passes" if not bl.missing and not bl.new else
                       f"{bl.verdict} ({len(bl.missing)} missing, {len(bl.new)} new)")
        rows.append(row)
    out.append(_table(rows))
    if details:
        out += ["", "Details (every pair that is not a round trip):"]
        for a in labels:
            for b in labels:
                mig = mx.cells[(a, b)]
                if mig.verdict != M.ROUND_TRIP:
                    out += [""] + render_pair(mig, mx.blessed[(a, b)])
    return "\n".join(out)


_TITLES = (("refused", "refused, only in the source's list"),
           ("unknown-incoming", "only in the source's list"),
           ("write-refused", "KVM_SET_ONE_REG refuses the source's value"),
           ("dropped", "dropped without an error"),
           ("hidden", "hidden on both sides, the same value"),
           ("hidden-dropped", "hidden, not carried"),
           ("hidden-differs", "hidden, the destination keeps another value"),
           ("changed", "accepted but reads back another value"),
           ("kept-reset", "only in the destination's list, left at its reset value"),
           ("unknown-rule", "no KVM write rule modelled"))


def render_pair(mig: M.Migration, bl: Blessed) -> list[str]:
    """Every register whose fate is not 'carried', grouped, with values and reasons."""
    out = [f"{mig.source} -> {mig.destination}: {mig.verdict.upper()}" + (f" at the {mig.stage}" if mig.stage else "")
           + (f": {mig.reason}" if mig.reason else "")]
    for what, title in _TITLES:
        es = mig.by(what)
        if not es:
            continue
        out.append(f"  {title} ({len(es)}): {_names(es, 40)}")
        if what in ("write-refused", "dropped", "changed", "hidden-dropped", "hidden-differs", "unknown-rule"):
            for e in es[:5]:
                vals = []
                if e.source_value is not None:
                    vals.append(f"source {e.source_value:#x}")
                if e.dest_value is not None:
                    vals.append(f"destination {e.dest_value:#x}")
                if e.final is not None and e.final != e.dest_value:
                    vals.append(f"after {e.final:#x}")
                out.append(f"    {e.name} ({e.index:#018x}): {', '.join(vals)}; {e.why}")
    out.append(f"  blessed-list check: {bl.verdict}"
               + (f"; missing {_names_str(bl.missing)}" if bl.missing else "")
               + (f"; new (printed only) {_names_str(bl.new)}" if bl.new else ""))
    return out


def _names_str(names: list[str], limit: int = 8) -> str:
    ns = compress_names(names)
    return ", ".join(ns[:limit]) + (f", +{len(ns) - limit} more" if len(ns) > limit else "")


def matrix_json(mx: Matrix) -> dict[str, Any]:
    cells = []
    for (a, b), mig in mx.cells.items():
        bl = mx.blessed[(a, b)]
        cells.append({
            "source": a, "destination": b, "verdict": mig.verdict, "stage": mig.stage or None,
            "reason": mig.reason, "sent": mig.sent, "capacity": mig.capacity,
            "registers": [{"index": f"{e.index:#018x}", "name": e.name, "what": e.what,
                           "source_value": None if e.source_value is None else f"{e.source_value:#x}",
                           "destination_value": None if e.dest_value is None else f"{e.dest_value:#x}",
                           "after": None if e.final is None else f"{e.final:#x}", "why": e.why}
                          for e in mig.entries if e.what != "carried" or e.why],
            "blessed_list": {"verdict": bl.verdict, "missing": bl.missing, "new": bl.new}})
    return {"variant": mx.variant.name, "accel": mx.accel, "sorted": mx.sort,
            "kernels": [{"label": x.label, "release": ".".join(map(str, x.release)), "file": x.source}
                        for x in mx.lists],
            "hidden": [f"{i:#018x}" for i in next(iter(mx.cells.values())).hidden] if mx.cells else [],
            "safe_missing": [f"{i:#018x}" for i in next(iter(mx.cells.values())).safe_missing] if mx.cells else [],
            "cells": cells, "exit": mx.exit_code()}


# ---------------------------------------------------------------------------------------
# The mitigations on small migrations of each kind (the concrete protocol, one register
# kind: plain): which refusals each variant turns into a load, and what the load loses.

_A, _B, _C, _D = 0x6030000000130001, 0x6030000000130002, 0x6030000000130003, 0x6030000000130004


def _rl(label: str, regs: list[tuple[int, int]], const: tuple[int, ...] = ()) -> S.RegList:
    names = {_A: "A", _B: "B", _C: "C", _D: "D"}
    return S.RegList(label, (0,), tuple(S.Register(i, names[i], S.RegRule(S.CONSTANT if i in const else S.PLAIN), v)
                                        for i, v in regs))


# (name, description, source list, destination list, hidden, safe-missing)
CLASSES: list[tuple[str, str, S.RegList, S.RegList, tuple[int, ...], tuple[int, ...]]] = [
    ("identical", "the same registers on both sides", _rl("src", [(_A, 1), (_B, 2)]), _rl("dst", [(_A, 0), (_B, 0)]),
     (), ()),
    ("dest-extra", "the destination also has B (the source's kernel does not list it)",
     _rl("src", [(_A, 1)]), _rl("dst", [(_A, 0), (_B, 0)]), (), ()),
    ("source-extra (inside)", "the source has B, the destination C instead (same count)",
     _rl("src", [(_A, 1), (_B, 2), (_D, 4)]), _rl("dst", [(_A, 0), (_C, 0), (_D, 0)]), (_B,), (_B,)),
    ("source-extra (after the last)", "the source has C, above the destination's last index B (same count)",
     _rl("src", [(_A, 1), (_C, 3)]), _rl("dst", [(_A, 0), (_B, 0)]), (_C,), (_C,)),
    ("source-longer", "the source has one register more (C)", _rl("src", [(_A, 1), (_B, 2), (_C, 3)]),
     _rl("dst", [(_A, 0), (_B, 0)]), (_C,), (_C,)),
    ("hidden, both have it", "both kernels have B; hidden on both sides", _rl("src", [(_A, 1), (_B, 2)]),
     _rl("dst", [(_A, 0), (_B, 0)]), (_B,), ()),
    ("constant differs", "A is constant on the destination with another value",
     _rl("src", [(_A, 1)]), _rl("dst", [(_A, 0)], const=(_A,)), (), ()),
]


def variant_table() -> list[tuple[str, str, dict[str, M.Migration]]]:
    out = []
    for name, desc, src, dst, hid, safe in CLASSES:
        row = {}
        for v in S.VARIANTS.values():
            row[v.name] = M.migrate(src, dst, v, "kvm", list(hid), list(safe))
        out.append((name, desc, row))
    return out


def render_variant_table(rows: list[tuple[str, str, dict[str, M.Migration]]]) -> str:
    names = list(S.VARIANTS)
    head = [["migration"] + names]
    for name, _, row in rows:
        head.append([name] + [_short(row[n]) for n in names])
    lines = [_table(head), ""]
    for name, desc, _ in rows:
        lines.append(f"{name}: {desc}")
    lines.append("")
    lines.append("hidden / safe-missing list the extra register of each migration (B or C); 'SILENT' means the load "
                 "succeeds and the listed register's value does not reach the destination.")
    return "\n".join(lines)


def _short(mig: M.Migration) -> str:
    if mig.verdict == M.REFUSED:
        return f"refused ({mig.stage})"
    if mig.verdict == M.SILENT:
        lost = [e.name for e in mig.entries if e.what in M.SILENT_KINDS]
        return "SILENT (" + ",".join(lost) + ")"
    return mig.verdict


def variants_json(rows: list[tuple[str, str, dict[str, M.Migration]]]) -> list[dict[str, Any]]:
    return [{"migration": name, "description": desc,
             "outcomes": {v: {"verdict": mig.verdict, "stage": mig.stage or None,
                              "lost": [e.name for e in mig.entries if e.what in M.SILENT_KINDS]}
                          for v, mig in row.items()}} for name, desc, row in rows]
