"""The concrete backend: values are Python ints (replay, fuzzing, reports)."""

from __future__ import annotations

from spec.algebra import Value


class ConcreteOps:
    """``spec.algebra.Ops`` over non-negative Python ints."""

    symbolic = False

    def const(self, value: int, width: int) -> Value:
        return value & ((1 << width) - 1)

    def and_(self, a: Value, b: Value) -> Value:
        return a & b

    def or_(self, a: Value, b: Value) -> Value:
        return a | b

    def xor(self, a: Value, b: Value) -> Value:
        return a ^ b

    def not_(self, a: Value, width: int) -> Value:
        return ~a & ((1 << width) - 1)

    def ite(self, cond: Value, then: Value, other: Value) -> Value:
        return then if cond else other

    def eq(self, a: Value, b: Value) -> Value:
        return 1 if a == b else 0

    def extract(self, a: Value, hi: int, lo: int) -> Value:
        return (a >> lo) & ((1 << (hi - lo + 1)) - 1)

    def concat(self, hi: Value, lo: Value, lo_width: int) -> Value:
        return (hi << lo_width) | lo

    def zext(self, a: Value, from_width: int, to_width: int) -> Value:
        return a

    def ule(self, a: Value, b: Value) -> Value:
        return 1 if a <= b else 0


CONCRETE = ConcreteOps()
