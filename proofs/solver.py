"""The solver layer: the only module of ``proofs`` that imports z3.

Every query answers ``unsat`` / ``sat`` (with a model) / ``unknown`` (timeout, resource
limit, or the solver's own ``unknown``, with its reason). Callers turn ``unsat`` into
PROVED only after checking that the assumptions alone are satisfiable (``satisfiable``),
so a proof can never rest on contradictory assumptions.

Every query runs under a ``Budget``. By default that is Z3's deterministic resource limit
(``rlimit``, counted in the solver's own work units, the same on a loaded machine as on an
idle one), so a verdict cannot depend on how busy the machine is; a wall-clock limit is an
explicit option (``--timeout``). The default limit was calibrated on the shipped suite
(``bench/bench.py --rlimit-usage``): it is ``DEFAULT_RLIMIT``, far above the largest
query the suite makes (see the figure there).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import partial
from typing import Any

import z3

from models.symbolic import all_true, any_true, is_true

# Z3 resource units per query. Calibrated with ``bench/bench.py --rlimit-usage``: the
# largest query of ``gicproof check`` used about 45 thousand units, the largest of
# ``prove --encoding full --cpus 8 --irqs 992`` (the biggest encoding the CLI accepts)
# about 17.5 million (z3-solver 5.4.0.0, this suite, November 2026). The default is more
# than ten times that, so no shipped obligation turns UNKNOWN, while a runaway query
# still stops (after minutes, not hours).
DEFAULT_RLIMIT = 200_000_000


@dataclass(frozen=True)
class Budget:
    """The limits of one solver query: Z3's deterministic resource limit, and an optional
    wall-clock limit (milliseconds; None = none). Either running out is ``unknown``."""

    rlimit: int = DEFAULT_RLIMIT
    timeout_ms: int | None = None

    def __post_init__(self) -> None:
        # Z3 reads 0 as "no limit" for both: a budget must be a real limit
        if self.rlimit < 1:
            raise ValueError("the resource limit must be at least 1")
        if self.timeout_ms is not None and self.timeout_ms < 1:
            raise ValueError("the wall-clock limit must be at least 1 ms")

    def describe(self) -> str:
        out = f"rlimit {self.rlimit}"
        if self.timeout_ms is not None:
            out += f", timeout {self.timeout_ms / 1000:g} s"
        return out


DEFAULT_BUDGET = Budget()

# the largest resource count one query used in this process (for calibration)
USAGE = {"max_rlimit": 0, "queries": 0}


@dataclass
class Answer:
    status: str  # "unsat" | "sat" | "unknown"
    model: Any = None
    reason: str = ""
    seconds: float = 0.0
    assignments: dict[str, int] = field(default_factory=dict)


def _context(conds: list[Any]) -> z3.Context:
    for c in conds:
        if isinstance(c, z3.ExprRef):
            return c.ctx
    return z3.main_ctx()


# The logic of the device proofs: quantifier-free bit-vectors. The CPU register list
# proofs (proofs/cpregs.py) pass ``logic=None``: their loop invariants quantify over list
# positions (integers) and read 64-bit indexes and values from arrays, so they need Z3's
# general solver (quantifiers, arrays, integers and bit-vectors together).
DEFAULT_LOGIC = "QF_BV"


def _solver(budget: Budget, conds: list[Any], logic: str | None = DEFAULT_LOGIC) -> z3.Solver:
    ctx = _context(conds)
    s = z3.SolverFor(logic, ctx=ctx) if logic is not None else z3.Solver(ctx=ctx)
    # rlimit is relative to the context's count at each check (Z3 scoped_rlimit)
    s.set("rlimit", budget.rlimit)
    if budget.timeout_ms is not None:
        s.set("timeout", budget.timeout_ms)
    return s


def _loaded(assumptions: list[Any], query: list[Any], budget: Budget,
            logic: str | None = DEFAULT_LOGIC) -> z3.Solver:
    conds = list(assumptions) + list(query)
    s = _solver(budget, conds, logic)
    for c in conds:
        s.add(_as_bool(c))
    return s


def _run(s: z3.Solver, *literals: Any) -> Any:
    """``s.check``, recording the resource units it used (for calibration)."""
    r = s.check(*literals)
    try:
        count = int(s.statistics().get_key_value("rlimit count"))
    except (z3.Z3Exception, KeyError):
        return r
    # the count is the context's running total: remember it on the context itself
    used = count - getattr(s.ctx, "_gicproof_rlimit_seen", 0)
    s.ctx._gicproof_rlimit_seen = count
    USAGE["max_rlimit"] = max(USAGE["max_rlimit"], used)
    USAGE["queries"] += 1
    return r


def check(assumptions: list[Any], query: list[Any], budget: Budget = DEFAULT_BUDGET,
          logic: str | None = DEFAULT_LOGIC, canonical: bool = False) -> Answer:
    """Is ``assumptions and query`` satisfiable? Conditions are 1-bit vectors or Booleans.
    ``logic=None``: Z3's general solver (quantifiers, arrays, integers). ``canonical``: a
    model that is shown (a witness) has every bit-vector variable, in name order, at its
    smallest value (``minimise`` towards 0), so that it does not depend on the process."""
    s = _loaded(assumptions, query, budget, logic)
    t0 = time.perf_counter()
    r = _run(s)
    dt = time.perf_counter() - t0
    if r == z3.unsat:
        return Answer("unsat", seconds=dt)
    if r == z3.sat:
        m = s.model()
        if canonical:
            names = sorted((d for d in m.decls() if d.arity() == 0 and z3.is_bv_sort(d.range())), key=str)
            smallest = minimise_canonical(assumptions, query, [(d(), 0) for d in names], budget, logic)
            if smallest.status == "sat":
                return Answer("sat", smallest.model, seconds=time.perf_counter() - t0,
                              assignments=smallest.assignments)
        return Answer("sat", m, seconds=dt, assignments=_assignments(m))
    return Answer("unknown", reason=s.reason_unknown() or "unknown", seconds=dt)


def satisfiable(assumptions: list[Any], budget: Budget = DEFAULT_BUDGET,
                logic: str | None = DEFAULT_LOGIC) -> Answer:
    if logic == DEFAULT_LOGIC:  # the device proofs' call, as before the logic option
        return check(assumptions, [], budget)
    return check(assumptions, [], budget, logic)


def minimise(assumptions: list[Any], query: list[Any], preferred: list[tuple[Any, int]],
             budget: Budget = DEFAULT_BUDGET, logic: str | None = DEFAULT_LOGIC) -> Answer:
    """A model of ``assumptions and query`` that keeps as many of the ``preferred``
    (variable, value) pairs as it can, greedily (used to show small, readable witnesses:
    every field not involved keeps its reset value)."""
    s = _loaded(assumptions, query, budget, logic)
    t0 = time.perf_counter()
    r = _run(s)
    if r != z3.sat:
        status = "unsat" if r == z3.unsat else "unknown"
        return Answer(status, reason=s.reason_unknown() if status == "unknown" else "",
                      seconds=time.perf_counter() - t0)
    # Fix at once every preferred value the first model already has (it satisfies them
    # all, so they stay consistent). Then ask for all the others together, as assumption
    # literals: each unsat core names literals that cannot all hold, and dropping the
    # last of them (in the given order, so the result is reproducible) and asking again
    # converges in as many rounds as values that must differ, not as many as variables.
    first = m = s.model()
    rest = []
    for var, value in preferred:
        if m.eval(var, model_completion=True).as_long() == value:
            s.add(var == value)
        else:
            rest.append((var, value))
    literals = [var == value for var, value in rest]
    order = {lit.get_id(): i for i, lit in enumerate(literals)}
    while literals:
        r = _run(s, *literals)
        if r == z3.sat:
            break
        if r != z3.unsat:
            literals = []  # give up minimising; the first model still stands
            break
        core = s.unsat_core()
        drop = max((order[c.get_id()] for c in core if c.get_id() in order), default=None)
        if drop is None:
            literals = []
            break
        literals = [lit for lit in literals if order[lit.get_id()] != drop]
    for lit in literals:
        s.add(lit)
    # the final model (on a timeout here, the first model: still a witness, just not minimal)
    m = s.model() if _run(s) == z3.sat else first
    return Answer("sat", m, seconds=time.perf_counter() - t0, assignments=_assignments(m))


def minimise_canonical(assumptions: list[Any], query: list[Any], preferred: list[tuple[Any, int]],
                       budget: Budget = DEFAULT_BUDGET, logic: str | None = DEFAULT_LOGIC) -> Answer:
    """The lexicographically least model of ``assumptions and query`` in ``preferred``'s
    order: each variable keeps its preferred value if it can (given the earlier ones), else
    takes the smallest value it can. Unlike ``minimise``, whose result depends on the
    solver's first model, this one depends on the formulas only: Z3's choice among models
    can depend on what the process did before (its symbol table is shared by every
    context), and a witness that is shown must be the same from any process. Cost: about
    log2(len(preferred)) queries per variable that cannot keep its value, plus one per
    bit of its value; the variables that can are fixed together."""
    s = _loaded(assumptions, query, budget, logic)
    t0 = time.perf_counter()
    every = [var == value for var, value in preferred]
    rest = list(preferred)
    while rest:
        lits = every[len(every) - len(rest):]
        r = _run(s, *lits)
        if r == z3.sat:
            for lit in lits:
                s.add(lit)
            break
        if r != z3.unsat:
            break
        # the shortest prefix of lits that cannot all hold ends at the latest literal of
        # an unsat core at the most (with no core, the formula itself is unsat)
        at = {lit.get_id(): i for i, lit in enumerate(lits)}
        core = [at[c.get_id()] for c in s.unsat_core() if c.get_id() in at]
        if not core:
            break
        lo = _least(1, max(core) + 1, partial(_prefix_unsat, s, lits))
        if lo is None:
            break
        for lit in lits[:lo - 1]:
            s.add(lit)
        var, _ = rest[lo - 1]
        if z3.is_bv(var):
            if _run(s) != z3.sat:
                break
            # the smallest value var can take: a larger bound can only be easier
            small = _least(0, s.model().eval(var, model_completion=True).as_long(), partial(_bound_sat, s, var))
            if small is None:
                break
            s.add(var == small)
        rest = rest[lo:]
    r = _run(s)
    if r != z3.sat:
        # unsat only when the query itself is (no literal was kept that could not hold);
        # unknown when the budget ran out
        status = "unsat" if r == z3.unsat else "unknown"
        return Answer(status, reason=s.reason_unknown() if status == "unknown" else "",
                      seconds=time.perf_counter() - t0)
    m = s.model()
    return Answer("sat", m, seconds=time.perf_counter() - t0, assignments=_assignments(m))


def _answer(r: Any, wanted: Any) -> bool | None:
    """A solver result as the predicate of a search: None when the solver gave up."""
    return None if r not in (z3.sat, z3.unsat) else r == wanted


def _run_with(s: z3.Solver, cond: Any) -> Any:
    s.push()
    s.add(cond)
    r = _run(s)
    s.pop()
    return r


def _prefix_unsat(s: z3.Solver, lits: list[Any], k: int) -> bool | None:
    """Whether the first ``k`` literals cannot all hold (fewer can only be easier)."""
    return _answer(_run(s, *lits[:k]), z3.unsat)


def _bound_sat(s: z3.Solver, var: Any, v: int) -> bool | None:
    """Whether ``var`` can be at most ``v`` (a larger bound can only be easier)."""
    return _answer(_run_with(s, z3.ULE(var, v)), z3.sat)


def _least(lo: int, hi: int, holds: Callable[[int], bool | None]) -> int | None:
    """The least x in [lo, hi] for which ``holds`` (monotone, and true at ``hi``) is true,
    by binary search; None when ``holds`` cannot tell (the solver gave up)."""
    while lo < hi:
        mid = (lo + hi) // 2
        h = holds(mid)
        if h is None:
            return None
        if h:
            hi = mid
        else:
            lo = mid + 1
    return lo


def first_satisfiable(assumptions: list[Any], conds: list[Any], known: int,
                      budget: Budget = DEFAULT_BUDGET) -> tuple[str, int]:
    """The smallest ``i <= known`` such that ``assumptions and conds[i]`` is satisfiable,
    given that ``conds[known]`` is (a model showed it): ("sat", i), or ("unknown", known)
    when the solver gives up. Which of several conditions a model makes true depends on
    the model, and Z3's choice of model can depend on what the process did before (its
    symbol table is shared by every context); the first satisfiable one in a fixed order
    does not, so a report names the same loss from any process. One query when
    ``conds[known]`` is already the first (the usual case), else a binary search over the
    conditions before it, in one solver."""
    if known == 0:
        return "sat", 0
    s = _loaded(assumptions, [], budget)

    def any_sat(lo: int, hi: int) -> Any:
        s.push()
        s.add(_as_bool(any_of(conds[lo:hi])))
        r = _run(s)
        s.pop()
        return r

    r = any_sat(0, known)
    if r == z3.unsat:
        return "sat", known
    if r != z3.sat:
        return "unknown", known
    lo, hi = 0, known - 1  # the answer is in [lo, hi]: some condition there is satisfiable
    while lo < hi:
        mid = (lo + hi) // 2
        r = any_sat(lo, mid + 1)
        if r == z3.sat:
            hi = mid
        elif r == z3.unsat:
            lo = mid + 1
        else:
            return "unknown", known
    return "sat", lo


def value_in(answer: Answer, term: Any) -> int:
    """The value of a bit-vector term (or 1/0 for a Boolean) in the answer's model."""
    v = answer.model.eval(_as_bool(term) if isinstance(term, z3.BoolRef) else term, model_completion=True)
    if z3.is_true(v):
        return 1
    if z3.is_false(v):
        return 0
    return v.as_long()


def _as_bool(c: Any) -> Any:
    if isinstance(c, bool) or isinstance(c, z3.BoolRef):
        return c
    return is_true(c)


def _assignments(m: z3.ModelRef) -> dict[str, int]:
    out = {}
    for d in m.decls():
        v = m[d]
        if z3.is_bv_value(v):
            out[d.name()] = v.as_long()
    return out


def _terms(conds: list[Any]) -> list[Any] | None:
    """The conditions as Z3 Booleans, or None when one is a Python bool (then z3.Or /
    z3.And, which take both, build the term)."""
    out = [_as_bool(c) for c in conds]
    return None if any(isinstance(c, bool) for c in out) else out


def any_of(conds: list[Any]) -> Any:
    if not conds:
        return False
    terms = _terms(conds)
    return any_true(terms) if terms is not None else z3.Or([_as_bool(c) for c in conds])


def all_of(conds: list[Any]) -> Any:
    if not conds:
        return True
    terms = _terms(conds)
    return all_true(terms) if terms is not None else z3.And([_as_bool(c) for c in conds])


def none_of(conds: list[Any]) -> Any:
    return z3.Not(any_of(conds))
