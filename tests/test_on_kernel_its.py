"""``gicproof prove --on-kernel`` for gicv3-its files (a vgic-v3 and its ITS on QEMU's GICv3).

Without a boot: the phase programs of every counterexample of the shipped files, run on
the model of the kernel alone (``OracleModelIts`` standing in for the kernel): every ITS
loss is confirmed (the tables' entries and the LPI's pending bit written out by
SAVE_TABLES / SAVE_PENDING_TABLES, GITS_CTLR, GITS_CBASER and GICR_PROPBASER/PENDBASER read
back; the last two lost through GICR_CTLR.EnableLPIs), the refusal of
qemu-current-5.10-fresh at KVM_DEV_ARM_ITS_RESTORE_TABLES too, and the GICv3 part's losses
run on a vgic-v3 without an ITS (GICV3_PARTS) and are confirmed too; the builder reaches each source's ITS fields exactly; a
planted model error is reported as a disagreement.

With a boot (marked ``kernel``; GICPROOF_KERNEL picks the kernel, default 7.2.13):
memory-after-its-tables-7.1.toml's eight losses are confirmed on the real kernel.
"""

from __future__ import annotations

import dataclasses
import os
import shutil

import pytest

from models.kernel import harness
from models.kernel.harness import BatchResult, KernelInfo, Op, Result
from proofs import cli
from proofs.cli import run_sequence
from proofs.on_kernel import CONFIRMED, DISAGREED, PARTS, OracleModelV3, confirm
from proofs.on_kernel_its import (
    GICV3_ITS_PARTS,
    ITS_FIELDS,
    Layout,
    OracleModelIts,
    abstract,
    build_ops_its,
    relocate,
)
from spec.devices import DEVICES, SEQUENCES_DIR
from spec.sequence import load

SEQS = SEQUENCES_DIR / "gicv3-its"
RELEASE = "7.2.13"
GICV3_PART = {"bpr1", "line_level:1->0@spi", "mpidr@spi"}  # run on a vgic-v3 without an ITS
ITS_LOSSES = {
    "memory-after-its-tables-7.1.toml": {"cte_target", "cte_valid:1->0", "dte_valid:1->0", "ite_valid:1->0",
                                         "its_cbaser", "lpi_pending:1->0"},
    "its-ctlr-first-7.1.toml": {"its_cbaser", "its_enabled:1->0"},
    "no-pending-flush-7.1.toml": {"its_cbaser", "lpi_pending:0->1", "lpi_pending:1->0"},
    "redistributors-after-its-tables-7.1.toml": {"its_cbaser", "lpi_pending:1->0", "pendbaser", "propbaser"},
    "kernel-documented-order-7.1.toml": {"its_cbaser"},
    "qemu-current-7.1-fresh.toml": {"its_cbaser"},
}


def _report(name: str, release: str = RELEASE):
    seq = load(SEQS / name, DEVICES)
    return run_sequence(dataclasses.replace(seq, kernel=release, source_kernel=""))


def _model_kernel(release: str, boots: list[tuple[int, int]], model: type = OracleModelIts):
    info = KernelInfo("model", "none", "linux-image-model", f"{release}-1", f"{release}-model",
                      harness.cache_dir())

    def run(progs: list[list[Op]], gic: int) -> BatchResult:
        boots.append((gic, len(progs)))
        def one(p: list[Op]) -> list[str]:  # a VM with an ITS, or a plain vgic-v3 (the GICv3 part's losses)
            its = any(op.name == "device" and op.args[0] == "its" for op in p)
            return (model if its else OracleModelV3)(release).run(p)

        results = [[Result(i, j + 1, t) for j, t in enumerate(one(p))] for i, p in enumerate(progs)]
        return BatchResult(kernel=info, gic=gic, programs=results, uname_r=info.uname_r, constants={},
                           dmesg=[], boot_seconds=0.0, total_seconds=0.0, ioctls=0, ioctl_ns=0)

    return info, run


@pytest.mark.parametrize("name", sorted(ITS_LOSSES))
def test_the_model_as_kernel_confirms_every_its_loss(name):
    report = _report(name)
    boots: list[tuple[int, int]] = []
    info, run = _model_kernel(RELEASE, boots)
    out = confirm([report], info, run=run)
    got = {o.label: o.status for o in out.outcomes}
    assert set(got.values()) == {CONFIRMED}, out.render()
    assert set(got) - GICV3_PART == ITS_LOSSES[name]
    assert boots == [(3, len(got))] * 2  # one boot per phase, every witness in it
    by = {o.label: o for o in out.outcomes}
    for label in set(got) & GICV3_PART:  # the GICv3 part's: on a vgic-v3 without an ITS
        assert any("run on a vgic-v3 without an ITS" in n for n in by[label].notes), by[label].notes
    if "bpr1" in by:
        assert "ICC_BPR1_EL1" in by["bpr1"].evidence and "CBPR clear" in by["bpr1"].evidence
    if "lpi_pending:1->0" in by:
        assert "SAVE_PENDING_TABLES" in by["lpi_pending:1->0"].evidence
    if "cte_valid:1->0" in by:
        assert "CTE after KVM_DEV_ARM_ITS_SAVE_TABLES" in by["cte_valid:1->0"].evidence
    if "its_enabled:1->0" in by:
        assert "GITS_CTLR" in by["its_enabled:1->0"].evidence
    if "propbaser" in by:  # lost through GICR_CTLR.EnableLPIs written before the bases
        assert "GICR_PROPBASER cpu0" in by["propbaser"].evidence


def test_the_refusal_of_old_tables_on_5_10_is_confirmed():
    report = _report("qemu-current-5.10-fresh.toml", "5.10.223")
    info, run = _model_kernel("5.10.223", [])
    out = confirm([report], info, run=run)
    by = {o.label: o for o in out.outcomes}
    assert by["refused:KVM_DEV_ARM_ITS_RESTORE_TABLES"].status == CONFIRMED, out.render()
    assert "EINVAL" in by["refused:KVM_DEV_ARM_ITS_RESTORE_TABLES"].evidence
    assert {k for k, o in by.items() if o.status == CONFIRMED} == {
        "dte_valid:0->1", "ite_valid:0->1", "its_cbaser", "lpi_pending:0->1", "refused:KVM_DEV_ARM_ITS_RESTORE_TABLES",
        "bpr1", "line_level:1->0@spi", "mpidr@spi"}


def test_the_builder_reaches_each_source_exactly():
    for name in ITS_LOSSES:
        report = _report(name)
        for rep in report.replays:
            cfg = rep.config
            model = OracleModelIts(RELEASE)
            h, _ = model.begin(cfg)
            for op, note in build_ops_its(report.spec, rep.source, cfg):
                assert model.step_on(h, op) == "ok", (name, note)
            built = abstract(h, cfg)
            want = relocate(Layout(cfg.cpus), rep.source)
            for f in ITS_FIELDS:
                assert built[f] == int(want.glob[f]), (name, rep.witness.label, f)


def test_a_planted_model_error_is_a_disagreement():
    """A model whose KVM_DEV_ARM_VGIC_SAVE_PENDING_TABLES writes nothing disagrees with the
    real model standing in for the kernel: the engine reports the first differing line, the
    first peek of the pending table word the kernel wrote (the file's save_memory after its
    SAVE_PENDING_TABLES, or the source's reveal when the save reads no memory)."""

    class Forgets(OracleModelIts):
        def _save_pending_tables(self, r):
            return None

    report = _report("memory-after-its-tables-7.1.toml")
    info, run = _model_kernel(RELEASE, [])
    out = confirm([report], info, run=run, model=Forgets(RELEASE))
    by = {o.label: o for o in out.outcomes}
    assert by["lpi_pending:1->0"].status == DISAGREED, out.render()
    diff = by["lpi_pending:1->0"].difference
    assert diff is not None and diff.phase.startswith("phase 1") and diff.op.startswith("peek"), diff
    assert "pending cpu0" in diff.note and (diff.model, diff.kernel) == ("0x0", "0x1"), diff


def test_gicv3_its_files_are_accepted_by_prove_on_kernel():
    assert PARTS["gicv3-its"] is GICV3_ITS_PARTS


KERNEL = os.environ.get("GICPROOF_KERNEL", RELEASE)


@pytest.mark.kernel
def test_memory_after_its_tables_is_confirmed_on_a_real_kernel(capsys):
    if not shutil.which(harness.QEMU):
        pytest.skip(f"{harness.QEMU} is not installed (models/kernel/install-parts.sh installs it)")
    code = cli.main(["prove", str(SEQS / "memory-after-its-tables-7.1.toml"), "--on-kernel", KERNEL])
    out = capsys.readouterr().out
    assert code == 1, out  # a counterexample, and no disagreement (5)
    tail = out[out.index("on the real kernel:"):]
    for label in ITS_LOSSES["memory-after-its-tables-7.1.toml"] | {"bpr1", "line_level:1->0@spi"}:
        assert f": {label} (" in tail and "confirmed on Linux" in tail.split(f": {label} (")[1].split("\n")[0], tail
    assert "kernel disagreed" not in tail
