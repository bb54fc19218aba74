"""The ordering constraints of a file's save steps (proofs/save_order.py), which
``gicproof review`` prints: seed 003's rules for the simplified GICv5 save ("a) & b) could
happen in either order"; guest memory after the IST save) and the ITS's flushes before
the memory save, each derived and replayed; the footprints that skip independent pairs."""

from __future__ import annotations

import dataclasses

import pytest
from helpers import DEVICES

from proofs.save_order import save_order
from spec.devices import SEQUENCES_DIR
from spec.sequence import load

V5 = SEQUENCES_DIR / "gicv5-irs"
ITS = SEQUENCES_DIR / "gicv3-its"


def constraints(path):
    seq = load(path, DEVICES)
    return save_order(DEVICES[seq.device], seq)


def pairs_of(so):
    return {(c.before.split(" (")[0], c.after.split(" (")[0], c.respected) for c in so.constraints}


@pytest.mark.parametrize("name,respected", [("simplified-qemu.toml", True), ("simplified-save-mmio-first.toml", True),
                                            ("simplified-save-memory-first.toml", False)])
def test_the_ist_save_must_precede_the_memory_save_and_nothing_else_is_ordered(name, respected):
    """Seed 003 L229-L231: the IST save writes the LPI IST into guest memory, so memory is
    saved after it; the IST save and the bulk MMIO reads commute ("a) & b) could happen in
    either order"). A file with memory first violates the one constraint."""
    so = constraints(V5 / name)
    assert pairs_of(so) == {("KVM_DEV_ARM_VGIC_GRP_IST_GET", "save_memory", respected)}
    assert all(c.replayed for c in so.constraints) and not so.conflicts and not so.unresolved
    # the reads of the MMIO frame change nothing, and only the IST save changes state:
    # every pair but the one with the memory save is told apart by footprints
    assert so.pairs == 25 and so.independent == 24


def test_the_merged_save_has_no_order():
    """The final ABI's IST save "does not update guest memory" (FACTS §2.4): no step of
    its save depends on another."""
    so = constraints(V5 / "merged-save-memory-first.toml")
    assert so.pairs and not so.constraints and not so.conflicts


def test_the_its_flushes_precede_the_memory_save():
    """QEMU's ITS pre_save and the VM stop handler write the pending and ITS tables to
    guest memory before RAM is sent (arm-vgic-its.rst: KVM_DEV_ARM_ITS_SAVE_TABLES 'saves
    the ITS table data into guest RAM'): both before save_memory, each replayed."""
    got = pairs_of(constraints(ITS / "qemu-current-7.1-fresh.toml"))
    assert got == {("KVM_DEV_ARM_VGIC_SAVE_PENDING_TABLES", "save_memory", True),
                   ("KVM_DEV_ARM_ITS_SAVE_TABLES", "save_memory", True)}


def test_a_moved_memory_save_is_a_violation_with_replayed_witnesses():
    """The same file with its memory save moved first violates "pending tables before
    memory". The ITS tables' save against the memory save is then a conflict, found in
    that context: with the tables in the stream the restored LPI reads its pending bit
    from the stale pending table (lpi_pending lost), without them the translation is lost
    (cte_valid): each order loses something, since the pending flush already comes too
    late. Every witness replayed."""
    seq = load(ITS / "qemu-current-7.1-fresh.toml", DEVICES)
    save = list(seq.save)
    mem = next(s for s in save if s.target == "save_memory")
    moved = dataclasses.replace(seq, save=tuple([mem] + [s for s in save if s is not mem]))
    so = save_order(DEVICES[seq.device], moved)
    assert pairs_of(so) == {("KVM_DEV_ARM_VGIC_SAVE_PENDING_TABLES", "save_memory", False)}
    assert {(c.before.split(" (")[0], c.after.split(" (")[0]) for c in so.conflicts} == {
        ("save_memory", "KVM_DEV_ARM_ITS_SAVE_TABLES"), ("KVM_DEV_ARM_ITS_SAVE_TABLES", "save_memory")}
    assert all(c.replayed for c in so.constraints + so.conflicts)


def test_a_file_without_a_save_of_its_own_has_nothing_to_order():
    so = constraints(SEQUENCES_DIR / "gicv2" / "qemu-current-6.12.toml")
    assert so.pairs == 0 and not so.constraints


def test_a_starved_solver_leaves_pairs_unresolved_not_ordered():
    """With a budget too small for any query, no constraint is claimed and the review does
    not say the steps may run in any order."""
    from proofs import solver
    from proofs.review import _save_ordering

    seq = load(V5 / "simplified-qemu.toml", DEVICES)
    so = save_order(DEVICES[seq.device], seq, solver.Budget(rlimit=1))
    assert so.unresolved and not so.constraints
    text = " ".join(_save_ordering(so))
    assert "may run in any order" not in text and "unresolved" in text
