"""The solver layer: the only module of ``proofs`` that imports z3.

Every query answers ``unsat`` / ``sat`` (with a model) / ``unknown`` (timeout, resource
limit, or the solver's own ``unknown``, with its reason). Callers turn ``unsat`` into
PROVED only after checking that the assumptions alone are satisfiable (``satisfiable``),
so a proof can never rest on contradictory assumptions.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

import z3

from models.symbolic import is_true

DEFAULT_TIMEOUT_MS = 30_000


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


def _solver(timeout_ms: int, conds: list[Any]) -> z3.Solver:
    s = z3.SolverFor("QF_BV", ctx=_context(conds))
    s.set("timeout", timeout_ms)
    return s


def _loaded(assumptions: list[Any], query: list[Any], timeout_ms: int) -> z3.Solver:
    conds = list(assumptions) + list(query)
    s = _solver(timeout_ms, conds)
    for c in conds:
        s.add(_as_bool(c))
    return s


def check(assumptions: list[Any], query: list[Any], timeout_ms: int = DEFAULT_TIMEOUT_MS) -> Answer:
    """Is ``assumptions and query`` satisfiable? Conditions are 1-bit vectors or Booleans."""
    s = _loaded(assumptions, query, timeout_ms)
    t0 = time.perf_counter()
    r = s.check()
    dt = time.perf_counter() - t0
    if r == z3.unsat:
        return Answer("unsat", seconds=dt)
    if r == z3.sat:
        m = s.model()
        return Answer("sat", m, seconds=dt, assignments=_assignments(m))
    return Answer("unknown", reason=s.reason_unknown() or "unknown", seconds=dt)


def satisfiable(assumptions: list[Any], timeout_ms: int = DEFAULT_TIMEOUT_MS) -> Answer:
    return check(assumptions, [], timeout_ms)


def minimise(assumptions: list[Any], query: list[Any], preferred: list[tuple[Any, int]],
             timeout_ms: int = DEFAULT_TIMEOUT_MS) -> Answer:
    """A model of ``assumptions and query`` that keeps as many of the ``preferred``
    (variable, value) pairs as it can, greedily (used to show small, readable witnesses:
    every field not involved keeps its reset value)."""
    s = _loaded(assumptions, query, timeout_ms)
    t0 = time.perf_counter()
    r = s.check()
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
        r = s.check(*literals)
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
    m = s.model() if s.check() == z3.sat else first
    return Answer("sat", m, seconds=time.perf_counter() - t0, assignments=_assignments(m))


def value_in(answer: Answer, term: Any) -> int:
    return answer.model.eval(term, model_completion=True).as_long()


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


def any_of(conds: list[Any]) -> Any:
    if not conds:
        return False
    return z3.Or([_as_bool(c) for c in conds])


def none_of(conds: list[Any]) -> Any:
    return z3.Not(any_of(conds))
