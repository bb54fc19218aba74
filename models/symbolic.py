"""The symbolic backend: values are Z3 bit-vectors (proofs). With ``proofs.solver`` this
is one of the two modules that import z3."""

from __future__ import annotations

import z3

from spec.algebra import Value


class SymbolicOps:
    """``spec.algebra.Ops`` over Z3 bit-vector terms. Conditions are 1-bit vectors.

    Each proof builds its terms in a context of its own (``fresh_symbolic``): Z3's choice
    of model depends on everything a context has seen, and reports must not depend on
    which proofs ran before."""

    symbolic = True

    def __init__(self, ctx: z3.Context | None = None):
        self.ctx = ctx if ctx is not None else z3.main_ctx()

    def const(self, value: int, width: int) -> Value:
        return z3.BitVecVal(value & ((1 << width) - 1), width, self.ctx)

    def var(self, name: str, width: int) -> Value:
        return z3.BitVec(name, width, self.ctx)

    def and_(self, a: Value, b: Value) -> Value:
        return a & b

    def or_(self, a: Value, b: Value) -> Value:
        return a | b

    def xor(self, a: Value, b: Value) -> Value:
        return a ^ b

    def not_(self, a: Value, width: int) -> Value:
        return ~a

    def ite(self, cond: Value, then: Value, other: Value) -> Value:
        if z3.is_bv_value(cond):
            return then if cond.as_long() else other
        return z3.If(cond == 1, then, other)

    def eq(self, a: Value, b: Value) -> Value:
        return z3.If(a == b, self.const(1, 1), self.const(0, 1))

    def extract(self, a: Value, hi: int, lo: int) -> Value:
        return z3.Extract(hi, lo, a)

    def concat(self, hi: Value, lo: Value, lo_width: int) -> Value:
        return z3.Concat(hi, lo)

    def zext(self, a: Value, from_width: int, to_width: int) -> Value:
        if to_width == from_width:
            return a
        return z3.ZeroExt(to_width - from_width, a)

    def ule(self, a: Value, b: Value) -> Value:
        return z3.If(z3.ULE(a, b), self.const(1, 1), self.const(0, 1))


def is_true(cond: Value) -> z3.BoolRef:
    """A 1-bit condition as a Z3 Boolean."""
    return cond == 1


SYMBOLIC = SymbolicOps()


def fresh_symbolic() -> SymbolicOps:
    """Symbolic operations in a new Z3 context (one per proof)."""
    return SymbolicOps(z3.Context())
