"""The value algebra every semantic rule is written in.

A rule in ``spec/`` never touches a Python ``int`` operator directly: it receives an
``Ops`` object and builds its result with ``and_``, ``or_``, ``not_``, ``ite``, ``eq``,
``extract`` and ``concat``. The same rule therefore runs on Python integers (the concrete
backend in ``models.concrete``: replay, fuzzing) and on Z3 bit-vectors (the symbolic
backend in ``models.symbolic``: proofs). A differential test keeps the two in agreement.

Conventions
-----------
* A *value* is a bit-vector of a known width. Concrete values are non-negative ints below
  ``2**width``; symbolic values carry their width.
* A *condition* is a 1-bit value (1 = true). ``eq`` returns one, ``ite`` takes one.
* Widths are passed explicitly wherever a concrete int cannot know its own width
  (``const``, ``not_``, ``concat``).
"""

from __future__ import annotations

from typing import Any, Protocol

Value = Any  # an int (concrete) or a z3 BitVecRef (symbolic)


class Ops(Protocol):
    """The operations of the value algebra (see the module docstring)."""

    symbolic: bool

    def const(self, value: int, width: int) -> Value: ...
    def and_(self, a: Value, b: Value) -> Value: ...
    def or_(self, a: Value, b: Value) -> Value: ...
    def xor(self, a: Value, b: Value) -> Value: ...
    def not_(self, a: Value, width: int) -> Value: ...
    def ite(self, cond: Value, then: Value, other: Value) -> Value: ...
    def eq(self, a: Value, b: Value) -> Value: ...
    def extract(self, a: Value, hi: int, lo: int) -> Value: ...
    def concat(self, hi: Value, lo: Value, lo_width: int) -> Value: ...
    def zext(self, a: Value, from_width: int, to_width: int) -> Value: ...
    def ule(self, a: Value, b: Value) -> Value: ...  # unsigned a <= b, as a 1-bit condition


# ---------------------------------------------------------------------------------------
# Helpers built only from the operations above (so they too run on both backends).


def true(ops: Ops) -> Value:
    return ops.const(1, 1)


def false(ops: Ops) -> Value:
    return ops.const(0, 1)


def nonzero(ops: Ops, v: Value, width: int) -> Value:
    """1 when ``v != 0``."""
    return ops.not_(ops.eq(v, ops.const(0, width)), 1)


def bool_and(ops: Ops, *conds: Value) -> Value:
    out = true(ops)
    for c in conds:
        out = ops.and_(out, c)
    return out


def implies(ops: Ops, a: Value, b: Value) -> Value:
    return ops.or_(ops.not_(a, 1), b)


def mask(width: int) -> int:
    return (1 << width) - 1


def subset(ops: Ops, v: Value, allowed: int, width: int) -> Value:
    """1 when every set bit of ``v`` is also set in the constant ``allowed``."""
    return ops.eq(ops.and_(v, ops.const(~allowed & mask(width), width)), ops.const(0, width))
