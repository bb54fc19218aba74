"""The symbolic backend: values are Z3 bit-vectors (proofs). With ``proofs.solver`` this
is one of the two modules that import z3."""

from __future__ import annotations

from typing import Any

import z3

from spec.algebra import Value


def _num(v: Any) -> bool:
    """A numeral: every constant is made by ``SymbolicOps.const`` (a BitVecNumRef), and the
    C-API terms below are never numerals (Z3_mk_* does not simplify)."""
    return type(v) is z3.BitVecNumRef


class SymbolicOps:
    """``spec.algebra.Ops`` over Z3 bit-vector terms. Conditions are 1-bit vectors.

    Each proof builds its terms in a context of its own (``fresh_symbolic``): Z3's choice
    of model depends on everything a context has seen, and reports must not depend on
    which proofs ran before."""

    symbolic = True

    def __init__(self, ctx: z3.Context | None = None):
        self.ctx = ctx if ctx is not None else z3.main_ctx()
        # Terms are immutable, so one numeral per (value, width) serves every use: building
        # a Z3 numeral costs more than the rest of most operations (a GICv3 round trip
        # made a million of them)
        self._consts: dict[tuple[int, int], Value] = {}
        self._one = self.const(1, 1)
        self._zero = self.const(0, 1)

    def const(self, value: int, width: int) -> Value:
        key = (value & ((1 << width) - 1), width)
        got = self._consts.get(key)
        if got is None:
            got = self._consts[key] = z3.BitVecVal(key[0], width, self.ctx)
        return got

    def var(self, name: str, width: int) -> Value:
        return z3.BitVec(name, width, self.ctx)

    # The operations below call Z3's C API directly, and fold what is decided without a
    # solver (both operands numerals, or the same term): the Python layer's coercions and
    # sort checks cost more than the terms themselves (most of a GICv3 round trip's time
    # went there), and operands here always have matching sorts.

    def _bv(self, ast: Any) -> Value:
        return z3.BitVecRef(ast, self.ctx)

    def and_(self, a: Value, b: Value) -> Value:
        if _num(a) and _num(b):
            return self.const(a.as_long() & b.as_long(), a.size())
        return self._bv(z3.Z3_mk_bvand(self.ctx.ref(), a.as_ast(), b.as_ast()))

    def or_(self, a: Value, b: Value) -> Value:
        if _num(a) and _num(b):
            return self.const(a.as_long() | b.as_long(), a.size())
        return self._bv(z3.Z3_mk_bvor(self.ctx.ref(), a.as_ast(), b.as_ast()))

    def xor(self, a: Value, b: Value) -> Value:
        if _num(a) and _num(b):
            return self.const(a.as_long() ^ b.as_long(), a.size())
        return self._bv(z3.Z3_mk_bvxor(self.ctx.ref(), a.as_ast(), b.as_ast()))

    def not_(self, a: Value, width: int) -> Value:
        if _num(a):
            return self.const(~a.as_long(), a.size())
        return self._bv(z3.Z3_mk_bvnot(self.ctx.ref(), a.as_ast()))

    def ite(self, cond: Value, then: Value, other: Value) -> Value:
        if _num(cond):
            return then if cond.as_long() else other
        if then.eq(other):
            return then
        c = z3.Z3_mk_eq(self.ctx.ref(), cond.as_ast(), self._one.as_ast())
        return self._bv(z3.Z3_mk_ite(self.ctx.ref(), c, then.as_ast(), other.as_ast()))

    def eq(self, a: Value, b: Value) -> Value:
        if a.eq(b):
            return self._one
        if _num(a) and _num(b):
            return self._one if a.as_long() == b.as_long() else self._zero
        c = z3.Z3_mk_eq(self.ctx.ref(), a.as_ast(), b.as_ast())
        return self._bv(z3.Z3_mk_ite(self.ctx.ref(), c, self._one.as_ast(), self._zero.as_ast()))

    def extract(self, a: Value, hi: int, lo: int) -> Value:
        if _num(a):
            return self.const(a.as_long() >> lo, hi - lo + 1)
        return self._bv(z3.Z3_mk_extract(self.ctx.ref(), hi, lo, a.as_ast()))

    def concat(self, hi: Value, lo: Value, lo_width: int) -> Value:
        if _num(hi) and _num(lo):
            return self.const((hi.as_long() << lo_width) | lo.as_long(), hi.size() + lo_width)
        return self._bv(z3.Z3_mk_concat(self.ctx.ref(), hi.as_ast(), lo.as_ast()))

    def zext(self, a: Value, from_width: int, to_width: int) -> Value:
        if to_width == from_width:
            return a
        if _num(a):
            return self.const(a.as_long(), to_width)
        return self._bv(z3.Z3_mk_zero_ext(self.ctx.ref(), to_width - from_width, a.as_ast()))

    def ule(self, a: Value, b: Value) -> Value:
        if _num(a) and _num(b):
            return self._one if a.as_long() <= b.as_long() else self._zero
        c = z3.Z3_mk_bvule(self.ctx.ref(), a.as_ast(), b.as_ast())
        return self._bv(z3.Z3_mk_ite(self.ctx.ref(), c, self._one.as_ast(), self._zero.as_ast()))


def is_true(cond: Value) -> z3.BoolRef:
    """A 1-bit condition as a Z3 Boolean."""
    if _num(cond):
        return z3.BoolVal(cond.as_long() == 1, cond.ctx)
    ctx = cond.ctx
    one = z3.Z3_mk_unsigned_int(ctx.ref(), 1, z3.Z3_get_sort(ctx.ref(), cond.as_ast()))
    return z3.BoolRef(z3.Z3_mk_eq(ctx.ref(), cond.as_ast(), one), ctx)


def free_variables(terms: list[Value]) -> set[str]:
    """The names of the variables the terms are built from. Walked through Z3's C API
    (ast pointers, no Python term objects per node: the wrapper's objects cost more than
    the walk); the children stay alive through ``terms``, which hold their roots."""
    out: set[str] = set()
    roots = [t for t in terms if not _num(t) and isinstance(t, z3.ExprRef)]
    if not roots:
        return out
    c = roots[0].ctx.ref()
    seen: set[int] = set()
    stack = [t.as_ast() for t in roots]
    app, uninterpreted = z3.Z3_APP_AST, z3.Z3_OP_UNINTERPRETED
    while stack:
        a = stack.pop()
        i = z3.Z3_get_ast_id(c, a)
        if i in seen:
            continue
        seen.add(i)
        if z3.Z3_get_ast_kind(c, a) != app:
            continue
        n = z3.Z3_get_app_num_args(c, a)
        if n == 0:
            d = z3.Z3_get_app_decl(c, a)
            if z3.Z3_get_decl_kind(c, d) == uninterpreted:
                out.add(z3.Z3_get_symbol_string(c, z3.Z3_get_decl_name(c, d)))
            continue
        stack.extend(z3.Z3_get_app_arg(c, a, k) for k in range(n))
    return out


def _nary(mk: Any, conds: list[z3.BoolRef]) -> z3.BoolRef:
    """Z3 Booleans of one context joined in one C call (z3.Or / z3.And's coercions cost
    more than the term on long lists)."""
    ctx = conds[0].ctx
    arr = (z3.Ast * len(conds))()
    for i, c in enumerate(conds):
        arr[i] = c.as_ast()
    return z3.BoolRef(mk(ctx.ref(), len(conds), arr), ctx)


def any_true(conds: list[z3.BoolRef]) -> z3.BoolRef:
    return _nary(z3.Z3_mk_or, conds)


def all_true(conds: list[z3.BoolRef]) -> z3.BoolRef:
    return _nary(z3.Z3_mk_and, conds)


SYMBOLIC = SymbolicOps()


def fresh_symbolic() -> SymbolicOps:
    """Symbolic operations in a new Z3 context (one per proof)."""
    return SymbolicOps(z3.Context())


class SymbolicListOps:
    """``models.cpregs.ListOps`` over Z3 terms, for the CPU register list proofs: positions
    are integers, indexes and values 64-bit bit-vectors, arrays Z3 arrays from positions,
    conditions Booleans. Also the quantifiers and fresh variables the proofs state their
    invariants with (``proofs.cpregs`` imports no z3)."""

    symbolic = True

    def __init__(self, ctx: z3.Context | None = None, words_as_ints: bool = False):
        """``words_as_ints``: indexes and values as integers instead of 64-bit bit-vectors
        (the merge only compares indexes, with ``ult`` and ``weq``, and copies values; the
        integers with ``<`` order any 64-bit values exactly as ULT does, so a proof over
        integers covers them, and Z3 decides integer order much faster than bit-blasted
        64-bit comparisons)."""
        self.ctx = ctx if ctx is not None else z3.Context()
        self.ints = words_as_ints
        self._n = 0

    def _wsort(self) -> z3.SortRef:
        return z3.IntSort(self.ctx) if self.ints else z3.BitVecSort(64, self.ctx)

    # ListOps
    def pos(self, p: int) -> z3.ArithRef:
        return z3.IntVal(p, self.ctx)

    def word(self, x: int) -> Value:
        if self.ints:
            return z3.IntVal(x & (2**64 - 1), self.ctx)
        return z3.BitVecVal(x & (2**64 - 1), 64, self.ctx)

    def true(self) -> z3.BoolRef:
        return z3.BoolVal(True, self.ctx)

    def false(self) -> z3.BoolRef:
        return z3.BoolVal(False, self.ctx)

    def plt(self, a: Value, b: Value) -> z3.BoolRef:
        return a < b

    def peq(self, a: Value, b: Value) -> z3.BoolRef:
        return a == b

    def add(self, a: Value, k: int) -> Value:
        return a + k

    def ult(self, a: Value, b: Value) -> z3.BoolRef:
        return a < b if self.ints else z3.ULT(a, b)

    def weq(self, a: Value, b: Value) -> z3.BoolRef:
        return a == b

    def and_(self, *cs: Value) -> z3.BoolRef:
        return z3.And(*cs) if cs else self.true()

    def or_(self, *cs: Value) -> z3.BoolRef:
        return z3.Or(*cs) if cs else self.false()

    def not_(self, c: Value) -> z3.BoolRef:
        return z3.Not(c)

    def ite(self, c: Value, a: Value, b: Value) -> Value:
        if z3.is_true(c):
            return a
        if z3.is_false(c):
            return b
        return z3.If(c, a, b)

    def read(self, arr: Value, p: Value) -> Value:
        return z3.Select(arr, p)

    def write(self, arr: Value, p: Value, x: Value) -> Value:
        return z3.Store(arr, p, x)

    # for the proofs
    def fresh(self, stem: str) -> str:
        self._n += 1
        return f"{stem}!{self._n}"

    def pos_var(self, name: str) -> z3.ArithRef:
        return z3.Int(name, self.ctx)

    def word_var(self, name: str) -> Value:
        return z3.Const(name, self._wsort())

    def words(self, name: str) -> z3.ArrayRef:
        """An array of 64-bit words indexed by position."""
        return z3.Array(name, z3.IntSort(self.ctx), self._wsort())

    def positions(self, name: str) -> z3.ArrayRef:
        """An array of positions indexed by position (the ghost arrays)."""
        return z3.Array(name, z3.IntSort(self.ctx), z3.IntSort(self.ctx))

    def const_positions(self, p: int) -> z3.ArrayRef:
        return z3.K(z3.IntSort(self.ctx), z3.IntVal(p, self.ctx))

    def word_array(self, values: list[int]) -> z3.ArrayRef:
        """A concrete array (0 past the end), for pinning a witness state."""
        arr = z3.K(z3.IntSort(self.ctx), self.word(0))
        for p, x in enumerate(values):
            arr = z3.Store(arr, z3.IntVal(p, self.ctx), self.word(x))
        return arr

    def pos_array(self, values: list[int], default: int = 0) -> z3.ArrayRef:
        arr = self.const_positions(default)
        for p, x in enumerate(values):
            arr = z3.Store(arr, z3.IntVal(p, self.ctx), z3.IntVal(x, self.ctx))
        return arr

    def word_set(self, name: str) -> z3.ArrayRef:
        """A set of 64-bit words (x-mig-safe-missing-regs), as a Boolean array."""
        return z3.Array(name, self._wsort(), z3.BoolSort(self.ctx))

    def word_set_of(self, values: list[int]) -> z3.ArrayRef:
        """A concrete set of words (for pinning a witness state)."""
        arr = z3.K(self._wsort(), z3.BoolVal(False, self.ctx))
        for x in values:
            arr = z3.Store(arr, self.word(x), z3.BoolVal(True, self.ctx))
        return arr

    def member(self, s: Value, x: Value) -> z3.BoolRef:
        return z3.Select(s, x)

    def implies(self, a: Value, b: Value) -> z3.BoolRef:
        return z3.Implies(a, b)

    def forall(self, vs: list[Value], body: Value) -> z3.BoolRef:
        return z3.ForAll(vs, body)

    def exists(self, vs: list[Value], body: Value) -> z3.BoolRef:
        return z3.Exists(vs, body)

    def eval_pos(self, model: z3.ModelRef, term: Value) -> int:
        return model.eval(term, model_completion=True).as_long()
