"""The device invariant is an obligation, not an assumption: proved inductive for every
kernel revision, and a conjunct that excludes a reachable state is reported with the
action that reaches it (replayed concretely)."""

from __future__ import annotations

import dataclasses

import pytest
from helpers import GICV2, representatives

from proofs.invariant import COUNTEREXAMPLE, PROVED, prove_invariant, render
from spec.algebra import implies, nonzero


# `gicproof check` proves the invariant at every revision, with the same assertions
# (tests/test_cli.py::test_check_runs_everything_and_exits_zero): here, by default, the
# oldest (3.18, the original VGIC), 4.7 (the rewritten VGIC), 4.11 (the single pending
# latch), 4.19 (interrupt groups) and the newest (7.1); deep adds the other seven.
@pytest.mark.parametrize("kernel", representatives(list(GICV2.versions), ["3.18", "4.7", "4.11", "4.19", "7.1"]))
def test_gicv2_invariant_is_inductive(kernel):
    r = prove_invariant(GICV2, kernel)
    assert r.verdict == PROVED, render(r)
    assert not r.breaks and not r.reset_failures
    assert r.actions > 1000  # every register, both accessors, every bank, every event


def with_extra_conjunct(name, extra):
    base = GICV2.invariant_conjuncts

    def conjuncts(ops, ctx, scope, f):
        out = base(ops, ctx, scope, f)
        if scope == "irq":
            out = out + [(name, extra(ops, ctx, f))]
        return out

    return dataclasses.replace(GICV2, invariant_conjuncts=conjuncts)


def test_the_audits_conjunct_is_refuted_on_4_19():
    """The conjunct gicproof used to assume on 4.7/4.19: 'an SGI with a source is
    pending'. A guest sends itself an SGI, then clears it through GICD_ICPENDR0 (not WI
    before 5.3): the latch clears, the source stays."""
    name = "an SGI with a source is pending"

    def extra(ops, ctx, f):
        if ctx.kind != "sgi":
            return ops.const(1, 1)
        return implies(ops, nonzero(ops, f["sgi_sources"], 8), f["pending_latch"])

    for kernel in ("4.7", "4.19"):
        r = prove_invariant(with_extra_conjunct(name, extra), kernel, cpu_counts=[1, 2])
        assert r.verdict == COUNTEREXAMPLE, render(r)
        breakers = {b.action.split(" (")[0] for b in r.breaks if b.conjunct == name}
        assert "guest write GICD_ICPENDR[0] on cpu0" in breakers, breakers
        assert all(b.replayed for b in r.breaks)
        b = next(b for b in r.breaks if b.action.startswith("guest write GICD_ICPENDR[0] on cpu0"))
        assert b.before["sgi_sources"] != 0 and b.before["pending_latch"] == 1
        assert b.after["sgi_sources"] != 0 and b.after["pending_latch"] == 0
    # from 5.3 the guest write is ignored and the conjunct holds
    assert prove_invariant(with_extra_conjunct(name, extra), "6.12", cpu_counts=[1, 2]).verdict == PROVED


def test_a_conjunct_the_reset_state_breaks_is_reported():
    r = prove_invariant(with_extra_conjunct("every interrupt enabled", lambda ops, ctx, f: f["enabled"]),
                        "6.12", cpu_counts=[1])
    assert r.verdict == COUNTEREXAMPLE
    assert any("every interrupt enabled" in f for f in r.reset_failures)
    # and a guest GICD_ICENABLER write breaks it too
    assert any(b.action.startswith("guest write GICD_ICENABLER") for b in r.breaks)
