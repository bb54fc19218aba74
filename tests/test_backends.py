"""One semantics, two interpretations: every accessor of every register, and every field
behaviour, gives the same result on Python ints and on Z3 terms (random states)."""

from __future__ import annotations

import z3
from hypothesis import given
from hypothesis import strategies as st

from models.concrete import CONCRETE
from models.symbolic import SYMBOLIC
from spec import behaviours
from spec.algebra import mask
from spec.device import AccessContext
from spec.gicv2 import GICV2, VERSIONS


def sym(v: int, width: int):
    return SYMBOLIC.const(v, width)


def as_int(term) -> int:
    t = z3.simplify(term)
    assert z3.is_bv_value(t), f"not a constant: {t}"
    return t.as_long()


def field_values(scope: str):
    fs = [f for f in GICV2.fields if f.scope == scope]
    return st.fixed_dictionaries({f.name: st.integers(0, mask(f.width)) for f in fs})


def _sym_fields(d):
    return {k: sym(v, GICV2.field_spec(k).width) for k, v in d.items()}


def _check_effect(ce, se):
    assert set(ce.updates) == set(se.updates)
    for k, v in ce.updates.items():
        assert as_int(se.updates[k]) == v, k
    if ce.error is None:
        assert se.error is None
    else:
        assert as_int(se.error) == ce.error


@given(kernel=st.sampled_from(list(VERSIONS)), intid=st.sampled_from([0, 7, 16, 31, 32, 100]),
       cpus=st.integers(1, 8), user=st.booleans(), irq=field_values("irq"),
       glob=field_values("global"), data=st.integers(0, 0xFF),
       reg=st.sampled_from([r for r in GICV2.registers if r.scope == "irq"]))
def test_irq_accessors_agree(kernel, intid, cpus, user, irq, glob, data, reg):
    if not reg.first_irq <= intid < reg.first_irq + reg.irqs:
        return
    kind = GICV2.interrupt_kind(intid)
    if kind != "sgi":
        irq.pop("sgi_sources")
    vcpu = cpus - 1
    data &= mask(reg.bits_per_irq)
    sem = VERSIONS[kernel]
    cctx = AccessContext(sem, cpus, 992, vcpu, intid, kind, glob, None, user)
    sctx = AccessContext(sem, cpus, 992, vcpu, intid, kind, _sym_fields(glob), None, user)
    for acc in (reg.guest_read, reg.user_read):
        assert as_int(acc.fn(SYMBOLIC, sctx, _sym_fields(irq))) == acc.fn(CONCRETE, cctx, dict(irq))
    for acc in (reg.guest_write, reg.user_write):
        ce = acc.fn(CONCRETE, cctx, dict(irq), data)
        se = acc.fn(SYMBOLIC, sctx, _sym_fields(irq), sym(data, reg.bits_per_irq))
        _check_effect(ce, se)


@given(kernel=st.sampled_from(list(VERSIONS)), cpus=st.integers(1, 8), cpu=field_values("cpu"),
       glob=field_values("global"), data=st.integers(0, 0xFFFFFFFF),
       reg=st.sampled_from([r for r in GICV2.registers if r.scope != "irq"]))
def test_scalar_accessors_agree(kernel, cpus, cpu, glob, data, reg):
    sem = VERSIONS[kernel]
    fields = glob if reg.scope == "global" else cpu
    cctx = AccessContext(sem, cpus, 992, 0, -1, "", glob, None, True)
    sctx = AccessContext(sem, cpus, 992, 0, -1, "", _sym_fields(glob), None, True)
    for acc in (reg.guest_read, reg.user_read):
        assert as_int(acc.fn(SYMBOLIC, sctx, _sym_fields(fields))) == acc.fn(CONCRETE, cctx, dict(fields))
    for acc in (reg.guest_write, reg.user_write):
        _check_effect(acc.fn(CONCRETE, cctx, dict(fields), data),
                      acc.fn(SYMBOLIC, sctx, _sym_fields(fields), sym(data, 32)))


@given(width=st.sampled_from([1, 2, 8, 32]), old=st.integers(0, 0xFFFFFFFF), data=st.integers(0, 0xFFFFFFFF),
       name=st.sampled_from(sorted(behaviours.FIELD_BEHAVIOURS)))
def test_field_behaviours_agree(width, old, data, name):
    b = behaviours.FIELD_BEHAVIOURS[name]
    old &= mask(width)
    data &= mask(width)
    assert as_int(b(SYMBOLIC, sym(old, width), sym(data, width), width)) == b(CONCRETE, old, data, width)


@given(v=st.integers(0, 0xFFFFFFFF), amount=st.integers(-40, 40))
def test_shift_modifier_agrees(v, amount):
    from models.machine import _shift

    c = _shift(CONCRETE, v, amount, 32)
    s = as_int(_shift(SYMBOLIC, sym(v, 32), amount, 32))
    assert c == s
    expected = (v << amount) & 0xFFFFFFFF if amount >= 0 else v >> -amount
    assert c == expected


def test_field_behaviours_mean_what_their_names_say():
    assert behaviours.write_one_to_set(CONCRETE, 0b0101, 0b0011, 4) == 0b0111
    assert behaviours.write_one_to_clear(CONCRETE, 0b0101, 0b0011, 4) == 0b0100
    assert behaviours.write_ignored(CONCRETE, 0b0101, 0b0011, 4) == 0b0101
    assert behaviours.write_read_write(CONCRETE, 0b0101, 0b0011, 4) == 0b0011
