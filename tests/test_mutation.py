"""The mutation suite (tests/mutants.py) as tests: mutants of the shipped sequences must
get the same losses from the solver as from concrete simulation, the device invariant
must hold on every reachable state, and the comparison must be able to fail.

The default run takes a deterministic sample of mutants (one per operator, about 2 s
each); GICPROOF_HYPOTHESIS=deep runs every mutant, 3580 of them (bench/mutate.py prints the
same with counts).
"""

from __future__ import annotations

import random

import pytest
from helpers import GICV2, deep, representatives, shipped
from mutants import (
    OPERATORS,
    all_mutants,
    compare,
    evaluate,
    exhaustive_configs,
    explored,
    make_pools,
    mutants_of,
    simulate,
)

from models.machine import Config
from models.reachable import apply_action, describe_path, new_machine

DEEP = deep()
SOURCES = 40 if DEEP else 12


def _sample() -> list:
    muts = all_mutants()
    if DEEP:
        return muts
    rng = random.Random(6)
    out = []
    for op in OPERATORS:
        group = [m for m in muts if m.operator == op]
        # the first of the two the sample used to take, so the random stream is unchanged
        out.extend(rng.sample(group, min(2, len(group)))[:1])
    return out


SAMPLE = _sample()


@pytest.fixture(scope="module")
def pools():
    return make_pools(0, 80 if DEEP else 24, 40)


def test_every_operator_applies():
    seq = shipped("qemu-current-6.12.toml")
    ms = mutants_of(seq)
    assert {m.operator for m in ms} == set(OPERATORS)
    names = [m.name for m in ms]
    assert len(names) == len(set(names))
    assert any(n.startswith("qemu-current-6.12: drop line ") for n in names)
    assert any("GICD_ICENABLER = zeros instead of ones" in n for n in names)


@pytest.mark.parametrize("mutant", SAMPLE, ids=[m.name for m in SAMPLE])
def test_mutant_symbolic_and_concrete_agree(mutant, pools):
    r = evaluate(mutant, pools, SOURCES)
    assert not r.proved_with_loss, f"PROVED but concretely lossy: {sorted(r.concrete)}"
    assert not r.disagreements, "the tool missed losses:\n" + "\n".join(d.describe() for d in r.disagreements)


# Default: the oldest revision (3.18, the original VGIC), 4.7 (the rewritten VGIC, with its
# soft_pending shadow), 4.11 (the single pending latch), 4.17 (active_source recorded for
# SGIs), 4.19 (interrupt groups, behind the GICD_IIDR gate) and the newest (7.1, every later
# change in userspace accessors included): the revisions where the state the invariant
# constrains changes shape. Deep adds the other six (4.1, 4.12, 4.16, 5.3, 5.7, 5.19),
# which change userspace accessors only; the invariant itself is proved inductive at every
# revision by `gicproof check` (tests/test_cli.py::test_check_runs_everything_and_exits_zero).
REACHABLE_KERNELS = representatives(list(GICV2.versions), ["3.18", "4.7", "4.11", "4.17", "4.19", "7.1"])


@pytest.mark.parametrize("kernel", REACHABLE_KERNELS)
def test_reachable_states_satisfy_invariant(kernel):
    """Breadth-first over guest and userspace actions on tiny machines: every reachable
    state must satisfy the invariant the proofs assume (at REACHABLE_KERNELS: six
    representative revisions by default, all twelve when deep)."""
    prios = None if DEEP else (0x00, 0xF8)
    breaks = []
    for cfg in exhaustive_configs():
        ex = explored(kernel, cfg, prios)
        assert ex.complete
        breaks += [f"{ex.broken} states, e.g. {b.describe()}" for b in ex.breaks]
    assert not breaks, "reachable states break the invariant:\n" + "\n".join(breaks)


@pytest.mark.parametrize("kernel", list(GICV2.versions))
def test_sgi_to_self_then_clear_pending_keeps_invariant(kernel):
    """The audit's path: a guest sends SGI 8 to itself (GICD_SGIR), then writes bit 8 of
    GICD_ICPENDR0."""
    path = [("sgi", 0, (2 << 24) | 8), ("guest", "GICD_ICPENDR", 0, 0, 1 << 8)]
    m = new_machine(GICV2, kernel, Config(1, 64))
    for a in path:
        apply_action(m, a)
    f = m.state.irq[(0, 8)]
    assert m.invariant() == 1, (f"after {describe_path(path)}: pending_latch={f['pending_latch']} "
                                f"sgi_sources={f['sgi_sources']:#x}")


def test_comparison_reports_missed_labels(pools):
    """The comparison can fail: against a deliberately wrong symbolic label set (a real
    concrete loss left out) it reports a disagreement, and a PROVED verdict with any
    concrete loss is reported too."""
    seq = shipped("qemu-with-iidr-6.12.toml")
    m = next(m for m in mutants_of(seq) if m.operator == "drop" and "(write GICD_CTLR = saved)" in m.name)
    concrete = simulate(m.seq, pools, SOURCES)
    assert "dist_enabled:1->0" in concrete
    wrong = set(concrete) - {"dist_enabled:1->0"}
    dis = compare(m.name, "COUNTEREXAMPLE", wrong, concrete)
    assert [d.label for d in dis] == ["dist_enabled:1->0"]
    assert "GICD_CTLR" in dis[0].witness.describe()  # the guest enabled the distributor
    assert not compare(m.name, "COUNTEREXAMPLE", set(concrete), concrete)
    proved = compare(m.name, "PROVED", [], concrete)
    assert {d.label for d in proved} == set(concrete) and all(d.why == "proved" for d in proved)
