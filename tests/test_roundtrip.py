"""The round-trip obligation: shipped verdicts, encodings agreeing, deliberately broken
sequences caught and explained, a real PROVED, and never PROVED from nothing."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest
from helpers import (
    DEVICES,
    GICV2,
    GICV2_DIR,
    no_held_lines,
    representatives,
    shipped,
    write_variant,
)

from proofs import roundtrip, solver
from proofs.classes import cpu_counts, held_vcpus
from proofs.cli import run_sequence
from proofs.replay import replay
from proofs.roundtrip import prove_roundtrip
from spec.sequence import load

SHIPPED = sorted(p.name for p in GICV2_DIR.glob("*.toml"))
# `gicproof check` proves every shipped file against its expectation, with the same
# assertions (tests/test_cli.py::test_check_runs_everything_and_exits_zero). Here, by
# default: the oldest kernel (3.18, the original VGIC), the rewritten VGIC (4.7), groups
# behind the GICD_IIDR gate (4.19), the newest file kernel (6.12) with and without the
# IIDR write-back, a migration across kernels to a stable point release (4.7 ->
# 6.12.107), a refused one (6.12 -> 4.19) and one across host kinds (GICv3 hosts); deep
# adds the other seven files.
MATCH_REPRESENTATIVES = representatives(SHIPPED, [
    "qemu-rfc-v2-2013-3.18.toml", "qemu-current-4.7.toml", "qemu-current-4.19.toml", "qemu-current-6.12.toml",
    "qemu-with-iidr-6.12.toml", "qemu-with-iidr-4.7-to-6.12.107.toml", "qemu-with-iidr-6.12-to-4.19.toml",
    "qemu-with-iidr-gicv3-pri7-to-gicv3.toml"])
# The two encodings at one size: by default one file per kernel boundary that changes what
# an interrupt class holds: 3.18 (the original VGIC: SGI sources, irq_level re-latching),
# QEMU's pre-2015 order on 4.1 (ICFGR after the pending state, which the original VGIC
# re-derives), 4.7 (the rewritten VGIC), 4.19 (groups), 6.12 (the newest file kernel), a
# migration across kernels (4.7 -> 6.12) and across host kinds; deep adds the other eight.
ENCODING_REPRESENTATIVES = representatives(SHIPPED, [
    "qemu-rfc-v2-2013-3.18.toml", "qemu-before-74fdb781c1-4.1.toml", "qemu-current-4.7.toml",
    "qemu-current-4.19.toml", "qemu-current-6.12.toml", "qemu-with-iidr-4.7-to-6.12.toml",
    "qemu-with-iidr-gicv3-pri7-to-gicv3.toml"])


@pytest.mark.parametrize("name", MATCH_REPRESENTATIVES)
def test_shipped_sequence_matches_its_expectation(name):
    rep = run_sequence(shipped(name))
    assert rep.matches, (rep.verdict, rep.result.labels)
    assert all(r.confirmed for r in rep.replays)
    assert rep.result.covers.startswith("all configurations")


@pytest.mark.parametrize("name", ENCODING_REPRESENTATIVES)
def test_class_encoding_agrees_with_every_interrupt_symbolic(name):
    """At an exact size, one representative per class finds exactly the losses that a
    model with every interrupt symbolic finds (ENCODING_REPRESENTATIVES: 7 of the 15
    shipped files by default, all of them when deep)."""
    seq = shipped(name)
    classes = prove_roundtrip(GICV2, seq, cpus=2, irqs=64, encoding="classes")
    full = prove_roundtrip(GICV2, seq, cpus=2, irqs=64, encoding="full")
    assert classes.verdict == full.verdict
    assert classes.labels == full.labels


def test_qemu_with_iidr_write_back_is_proved_when_no_line_is_held():
    seq = shipped("qemu-with-iidr-6.12.toml")
    r = prove_roundtrip(no_held_lines(GICV2), seq)
    assert r.verdict == roundtrip.PROVED
    assert r.covers.startswith("all configurations")
    # and the QEMU sequence without the IIDR write is still not proved under that assumption
    r2 = prove_roundtrip(no_held_lines(GICV2), shipped("qemu-current-6.12.toml"))
    assert r2.verdict == roundtrip.COUNTEREXAMPLE
    assert all(label.startswith("group:") for label in r2.labels)


@pytest.mark.parametrize("kernel", ["4.7", "4.19"])
def test_a_graph_order_is_proved_on_old_kernels_without_held_lines(kernel):
    """Before 5.3 QEMU's order loses SGI state (pending_latch:0->1@sgi, 1->0@sgi); the
    order the ordering graph derives for that kernel does not, for every size."""
    seq = load(Path(__file__).parent / "data" / f"graph-order-{kernel}.toml", DEVICES)
    assert run_sequence(seq).matches
    r = prove_roundtrip(no_held_lines(GICV2), seq)
    if kernel == "4.7":
        # GICC_APRn is RAZ/WI for userspace before 4.12: no order restores it
        assert r.labels == ["apr"], r.labels
    else:
        assert r.verdict == roundtrip.PROVED, r.labels
    assert r.covers.startswith("all configurations")
    qemu = prove_roundtrip(no_held_lines(GICV2), shipped(f"qemu-current-{kernel}.toml"))
    assert {"pending_latch:0->1@sgi", "pending_latch:1->0@sgi"} <= set(qemu.labels)


def test_a_removed_clear_is_caught_and_explained(tmp_path):
    path = write_variant(tmp_path, "qemu-with-iidr-6.12.toml", lambda t: t.replace(
        '[[restore]]\nwrite = "GICD_ICENABLER"                  # translate_clear: all ones\nvalue = "ones"\n', ""))
    seq = load(path, DEVICES)
    rep = run_sequence(seq)
    assert rep.verdict == roundtrip.COUNTEREXAMPLE
    assert {"enabled:0->1@sgi", "enabled:0->1@ppi", "enabled:0->1@spi"} <= set(rep.result.labels)
    cex = next(r for r in rep.replays if r.witness.label == "enabled:0->1@spi")
    assert cex.confirmed
    assert cex.diverging is not None and cex.diverging.register.name == "GICD_ISENABLER"
    assert "no effect" in cex.diverging_note
    assert cex.rule == "write_one_to_set on enabled"
    # on a fresh destination only SGIs (enabled at reset) show it
    fresh = run_sequence(seq, destination="fresh")
    assert [label for label in fresh.result.labels if label.startswith("enabled")] == ["enabled:0->1@sgi"]


def test_swapping_icfgr_after_the_pending_state_loses_latches_on_4_7(tmp_path):
    cfg = '[[restore]]\nwrite = "GICD_ICFGR"                      # "restore configuration registers before pending IRQs"\n'

    def swap(text):
        text = text.replace(cfg, "")
        anchor = '[[restore]]\nwrite = "GICD_ICACTIVER"'
        return text.replace(anchor, cfg + anchor)

    path = write_variant(tmp_path, "qemu-current-4.7.toml", swap)
    rep = run_sequence(load(path, DEVICES))
    assert "pending_latch:1->0@spi" in rep.result.labels
    cex = next(r for r in rep.replays if r.witness.label == "pending_latch:1->0@spi")
    assert cex.confirmed and cex.diverging.register.name == "GICD_ICFGR"
    assert cex.source.irq[cex.witness.where[1]]["edge"] == 0  # a level-sensitive SPI
    # the same swap is harmless from 4.11 on: 'pending_latch is set irrespective of irq type'
    path612 = write_variant(tmp_path, "qemu-with-iidr-6.12.toml", swap, "v612.toml")
    assert "pending_latch:1->0@spi" not in run_sequence(load(path612, DEVICES)).result.labels


def test_vacuous_assumptions_are_never_proved():
    def never(ops, ctx, scope, f):
        return ops.const(0, 1)

    r = prove_roundtrip(dataclasses.replace(GICV2, invariant=never), shipped("qemu-with-iidr-6.12.toml"))
    assert r.verdict == roundtrip.UNKNOWN
    assert "vacuous" in r.unknown_reason


def test_solver_unknown_is_unknown_not_proved(monkeypatch):
    real = solver.check

    def flaky(assumptions, query, timeout_ms=0):
        if query:
            return solver.Answer("unknown", reason="timeout")
        return real(assumptions, query, timeout_ms)

    monkeypatch.setattr(roundtrip.solver, "check", flaky)
    r = prove_roundtrip(no_held_lines(GICV2), shipped("qemu-with-iidr-6.12.toml"))
    assert r.verdict == roundtrip.UNKNOWN
    assert "timeout" in r.unknown_reason


def test_a_witness_that_does_not_replay_is_a_tool_bug_not_a_counterexample():
    seq = shipped("qemu-current-6.12.toml")
    r = prove_roundtrip(GICV2, seq, cpus=1)
    w = next(w for w in r.witnesses if w.label == "group:1->0@spi")
    forged = dataclasses.replace(w, values={k: 0 for k in w.values})  # source group 0: nothing lost
    rp = replay(GICV2, seq, forged, "any")
    assert not rp.confirmed
    from proofs.report import SequenceReport

    rep = SequenceReport(seq, GICV2, seq.kernel, "any", r, [rp])
    assert rep.tool_bug and rep.verdict == roundtrip.UNKNOWN and rep.exit_code() == 3


def test_counterexamples_use_the_smallest_configuration():
    rep = run_sequence(shipped("qemu-current-6.12.toml"))
    for r in rep.replays:
        assert r.config.cpus == 1 and r.config.irqs == 64


def test_maximum_configuration_is_proved_exactly():
    """8 CPUs and the largest interrupt count KVM accepts (992), as one exact size."""
    r = prove_roundtrip(no_held_lines(GICV2), shipped("qemu-with-iidr-6.12.toml"), cpus=8, irqs=992)
    assert r.verdict == roundtrip.PROVED
    assert r.covers.startswith("8 CPU(s) x 992 interrupts")


def test_a_constant_check_of_a_size_dependent_register_is_proved_per_size(tmp_path):
    """GICD_TYPER encodes the interrupt count: checking it against a constant passes for
    one size only, so the 'all sizes' proof must not assume the largest count stands for
    all (a refusal at every other size)."""
    path = write_variant(tmp_path, "qemu-with-iidr-6.12.toml", lambda t: t.replace(
        'check = "GICD_TYPER"                      # num_irq / num_cpu sanity check, abort() on mismatch',
        'check = "GICD_TYPER"\nvalue = 0x1e'))  # ITLinesNumber 30 (992 interrupts), 1 CPU
    seq = load(path, DEVICES)
    spec = no_held_lines(GICV2)
    # right at 992 interrupts only: every other count refuses
    r = prove_roundtrip(spec, seq, cpus=1)
    assert r.verdict == roundtrip.REFUSED and r.labels == ["refused:GICD_TYPER"]
    assert r.covers.startswith("1 CPU(s) x 64-992 interrupts")
    assert r.witnesses[0].config.irqs < 992
    assert prove_roundtrip(spec, seq, cpus=1, irqs=992).verdict == roundtrip.PROVED


# -- interrupts mapped to hardware and the host kind (issue 7) ---------------------------

def test_a_mapped_timer_ppi_loses_its_active_state_only_on_a_destination_whose_vcpus_ran():
    """From 4.16 a userspace active write to an interrupt mapped to hardware is ignored
    (vgic_hw_irq_change_active 'if (is_uaccess) return;'); kvm_timer_enable maps the timer
    PPIs at the first KVM_RUN, so only a destination whose vCPUs ran ('any') has them."""
    seq = shipped("qemu-with-iidr-6.12.toml")
    anyd = run_sequence(seq, cpus=1, irqs=64)
    assert {"active:1->0@ppi", "active:0->1@ppi"} <= set(anyd.result.labels)
    rp = next(r for r in anyd.replays if r.witness.label == "active:1->0@ppi")
    assert rp.confirmed and "vgic_hw_irq_change_active" in rp.rule_source
    assert rp.prior.irq[rp.witness.where[1]]["hw_mapped"] == 1
    fresh = run_sequence(seq, destination="fresh", cpus=1, irqs=64)
    assert not any(label.startswith("active:") for label in fresh.result.labels)
    assert "none mapped on the destination" in fresh.result.covers
    before = run_sequence(seq, kernel="4.12", cpus=1, irqs=64)  # before 4.16: stored
    assert not any(label.startswith("active:") for label in before.result.labels)


def test_pending_writes_to_a_mapped_ppi_are_ignored_only_from_4_16_to_5_6():
    seq = shipped("qemu-current-4.19.toml")
    assert "pending_latch:1->0@ppi" in run_sequence(seq, cpus=1, irqs=64).result.labels
    assert "pending_latch:1->0@ppi" not in run_sequence(seq, kernel="5.7", cpus=1, irqs=64).result.labels


def test_gicc_aprn_follow_the_hosts_priority_bits():
    """vgic_mmio_write_apr: APRn reach ICH_AP1Rn up to vgic_v3_max_apr_idx() on a GICv3
    host; nothing checks the hosts agree for a GICv2 guest."""
    same = run_sequence(shipped("qemu-with-iidr-6.12.toml"), host="gicv3-pri7", cpus=1, irqs=64)
    assert not any(label.startswith("apr") for label in same.result.labels)
    cross = run_sequence(shipped("qemu-with-iidr-gicv3-pri7-to-gicv3.toml"), cpus=1, irqs=64)
    assert {"apr1", "apr2", "apr3"} <= set(cross.result.labels) and "apr" not in cross.result.labels
    rp = next(r for r in cross.replays if r.witness.label == "apr3")
    assert rp.confirmed and rp.diverging is not None and rp.diverging.name.startswith("GICC_APR3")
    six = run_sequence(shipped("qemu-with-iidr-gicv3-pri7-to-gicv3.toml"), host="gicv3-pri6", cpus=1, irqs=64)
    assert {"apr2", "apr3"} <= set(six.result.labels) and "apr1" not in six.result.labels


def test_prove_refuses_an_unknown_host(capsys):
    from proofs.cli import main
    assert main(["prove", str(GICV2_DIR / "qemu-current-6.12.toml"), "--host", "gicv4"]) == 2
    err = capsys.readouterr().err
    assert "gicv2, gicv3, gicv3-pri6, gicv3-pri7" in err and "Traceback" not in err


def _no_stray_pending_bits(spec):
    """The model restricted to original-VGIC states with no pending bit a guest GICD_ICFGR
    write left apart from the line and soft-pend (soft_pending == 0, see
    spec.gicv2.original_bits), no held line and no active SGI source."""
    base = no_held_lines(spec)
    from spec.algebra import bool_and

    def invariant(ops, ctx, scope, f):
        inv = base.invariant(ops, ctx, scope, f)
        if scope != "irq":
            return inv
        return bool_and(ops, inv, ops.eq(f["soft_pending"], ops.const(0, 1)))

    return dataclasses.replace(base, invariant=invariant)


def test_restoring_icfgr_first_matters_on_the_original_vgic():
    """QEMU 74fdb781c1 ('restore configuration registers before pending IRQs') on a 4.1
    kernel: from ordinary states (no held line, no pending bit left by a trigger change)
    the 2014 order loses a level SPI's soft-pend latch on the reset path and the order after
    the fix does not; the 2014 report's witness is that loss, at the GICD_ICFGR step."""
    spec = _no_stray_pending_bits(GICV2)
    before = prove_roundtrip(spec, shipped("qemu-before-74fdb781c1-4.1.toml"))
    after = prove_roundtrip(spec, shipped("qemu-74fdb781c1-4.1.toml"))
    assert "pending_latch:1->0@spi" in before.labels
    assert not [label for label in after.labels if label.endswith("@spi")], after.labels
    assert "pending_latch:1->0@spi" not in prove_roundtrip(
        spec, shipped("qemu-before-74fdb781c1-4.1.toml"), destination="fresh").labels  # SPIs reset level
    rep = run_sequence(shipped("qemu-before-74fdb781c1-4.1.toml"))
    cex = next(r for r in rep.replays if r.witness.label == "pending_latch:1->0@spi")
    assert cex.confirmed and cex.diverging.register.name == "GICD_ICFGR"
    where = cex.witness.where[1]
    # a level-sensitive SPI latched through GICD_ISPENDR, met by an edge-triggered one
    assert cex.source.irq[where]["edge"] == 0 and cex.source.irq[where]["soft_pending"] == 0
    assert cex.prior.irq[where]["edge"] == 1


# vCPU classes (proofs/classes.py, points 5-6): a GICv3 proof at N vCPUs holds vCPUs 0, 1,
# the named ones and N - 1 only. Against a machine holding every vCPU, at counts where the
# generic class has 2-3 members, the same losses must be found (by default two files: QEMU's
# put/get with its strided walk and named vCPU 0, and a TYPER2 migration; deep: every file).
V3_DIR = GICV2_DIR.parent / "gicv3"
V3_CLASS_FILES = representatives(sorted(p.name for p in V3_DIR.glob("*.toml")), [
    "qemu-current-7.1.toml", "qemu-typer2-v2-gicv4.1-to-gicv4.1-7.1.toml"])


@pytest.mark.parametrize("name", V3_CLASS_FILES)
@pytest.mark.parametrize("cpus", [4, 6])
def test_one_vcpu_per_class_finds_what_every_vcpu_finds(name, cpus):
    seq = load(V3_DIR / name, DEVICES)
    spec = DEVICES["gicv3"]
    every = dataclasses.replace(spec, vcpu_classes=False)
    held = roundtrip.configs_for(spec, seq, cpus, 64, "classes")[0][0]
    assert held.vcpus is not None and len(held.vcpus) < cpus  # the class encoding is in use
    by_class = prove_roundtrip(spec, seq, cpus=cpus, irqs=64)
    by_vcpu = prove_roundtrip(every, seq, cpus=cpus, irqs=64)
    assert by_class.verdict == by_vcpu.verdict
    assert by_class.labels == by_vcpu.labels


def test_the_largest_vcpu_count_stands_for_the_counts_above_the_explicit_ones():
    spec = DEVICES["gicv3"]
    assert cpu_counts(spec, {0}) == [1, 2, 3, 512]
    assert cpu_counts(spec, {0, 5}) == [1, 2, 3, 4, 5, 6, 7, 512]
    assert held_vcpus(spec, 512, {0}) == (0, 1, 511)
    assert held_vcpus(spec, 3, {0}) is None
    assert cpu_counts(GICV2, {0}) == list(range(1, 9))  # GICv2: SGI sources tell vCPUs apart
