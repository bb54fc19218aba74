"""``gicproof prove --on-kernel`` for GICv3 sequences (a vgic-v3 on QEMU's GICv3 host).

Without a boot: the phase programs of every counterexample of QEMU's current put/get
(``qemu-current-7.1-fresh.toml``), run on the model of the kernel alone (``OracleModelV3``
standing in for the kernel), confirm each of them; the builder's userspace writes reach
each witness's source state exactly, with the encodings of ``gicproof conform gicv3``
(BPR1 before ICC_CTLR_EL1.CBPR, line levels through LEVEL_INFO); a file whose host kind
QEMU cannot provide (GICv4.1) is refused with the reason.

With a boot (marked ``kernel``; GICPROOF_KERNEL picks the kernel, default 7.2.13 = sid):
the same file's counterexamples are confirmed on the real kernel, every line equal.
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
from proofs.on_kernel import (
    CONFIRMED,
    DISAGREED,
    GICV3_PARTS,
    NOT_RUN,
    OracleModelV3,
    WitnessRun,
    confirm,
    state_differences,
)
from spec.device import Accessor
from spec.devices import DEVICES, SEQUENCES_DIR
from spec.gicv3 import GICV3
from spec.sequence import load

SEQS = SEQUENCES_DIR / "gicv3"
FILE = SEQS / "qemu-current-7.1-fresh.toml"
RELEASE = "7.2.13"
LOSSES = {"bpr1", "line_level:1->0@spi", "mpidr@spi", "pendbaser", "propbaser"}


def _report(path=FILE, release: str = RELEASE):
    seq = load(path, DEVICES)
    return run_sequence(dataclasses.replace(seq, kernel=release, source_kernel=""))


@pytest.fixture(scope="module")
def report():
    return _report()


def _model_kernel(release: str, boots: list[tuple[int, int]]):
    """The model of ``release`` standing in for the kernel: every program, setup included."""
    info = KernelInfo("model", "none", "linux-image-model", f"{release}-1", f"{release}-model",
                      harness.cache_dir())

    def run(progs: list[list[Op]], gic: int) -> BatchResult:
        boots.append((gic, len(progs)))
        results = [[Result(i, j + 1, t) for j, t in enumerate(OracleModelV3(release).run(p))]
                   for i, p in enumerate(progs)]
        return BatchResult(kernel=info, gic=gic, programs=results, uname_r=info.uname_r, constants={},
                           dmesg=[], boot_seconds=0.0, total_seconds=0.0, ioctls=0, ioctl_ns=0)

    return info, run


def test_the_model_as_kernel_confirms_every_counterexample(report):
    assert {r.witness.label for r in report.replays} == LOSSES
    boots: list[tuple[int, int]] = []
    info, run = _model_kernel(RELEASE, boots)
    out = confirm([report], info, run=run)
    assert {o.label: o.status for o in out.outcomes} == dict.fromkeys(LOSSES, CONFIRMED), out.render()
    assert boots == [(3, 5), (3, 5)]  # one GICv3 boot per phase, every witness in it
    by = {o.label: o for o in out.outcomes}
    # hidden by a plain read, shown after the reveal writes
    assert "VGIC_LINE_LEVEL[1] at SPI 32 with every interrupt level-sensitive" in by["line_level:1->0@spi"].evidence
    assert "ICC_BPR1_EL1" in by["bpr1"].evidence and "CBPR clear" in by["bpr1"].evidence
    assert "GICD_IROUTER" in by["mpidr@spi"].evidence


def test_the_builder_reaches_each_source_exactly(report):
    model = OracleModelV3(RELEASE)
    for rep in report.replays:
        wr = WitnessRun(report.spec, report.seq, rep, RELEASE, model, GICV3_PARTS)
        handle, _ = model.begin(wr.cfg)
        ops = GICV3_PARTS.build(report.spec, model.semantics, rep.source, wr.cfg)
        for op, _ in ops:
            assert model.step_on(handle, op) == "ok", op.line()
        assert state_differences(report.spec, rep.source, model.machine_of(handle).state) == [], rep.witness.label
        if rep.witness.label == "bpr1":
            notes = [n for _, n in ops]
            bpr1 = next(i for i, n in enumerate(notes) if "ICC_BPR1_EL1" in n)
            ctlr = next(i for i, n in enumerate(notes) if "ICC_CTLR_EL1" in n)
            assert bpr1 < ctlr  # with CBPR set a userspace BPR1 write is ignored (set_gic_bpr1)
            assert all(op.name == "set64" for op, _ in ops if op.args[1] == "CPU_SYSREGS")
        if rep.witness.label == "line_level:1->0@spi":
            assert any(op.name == "set32" and op.args[1] == "LEVEL_INFO" for op, _ in ops)


def test_phase_one_decides_the_conditional_steps_on_the_saved_ctlr(report):
    """QEMU reads ICC_AP0R1..3 only for 6 or 7 priority bits; the kernel's 5 bits skip them,
    so phase 1 never asks the kernel for them in the save."""
    rep = report.replays[0]
    wr = WitnessRun(report.spec, report.seq, rep, RELEASE, OracleModelV3(RELEASE), GICV3_PARTS)
    assert wr.prepare()
    assert wr.phase1 is not None
    save_notes = [n for n in wr.phase1.notes if n.startswith("save line")]
    assert any("ICC_AP0R0_EL1" in n for n in save_notes)
    assert not any("ICC_AP0R1_EL1" in n for n in save_notes)
    assert {a.register.name for a in wr.save_skipped if a.register} >= {"ICC_AP0R1_EL1", "ICC_AP1R3_EL1"}


def _level_read_ignores_trigger():
    """GICV3 with a planted wrong prediction: a userspace LEVEL_INFO read shows the line
    level of an edge-triggered interrupt too (the kernel reads 0 there:
    vgic_read_irq_line_level_info 'if (irq->config == VGIC_CONFIG_LEVEL && irq->line_level)')."""
    planted = Accessor("planted", "read", lambda ops, ctx, f: f["line_level"], "planted", "planted bug")
    regs = tuple(dataclasses.replace(r, user_read=planted) if r.name == "VGIC_LINE_LEVEL" else r
                 for r in GICV3.registers)
    return dataclasses.replace(GICV3, registers=regs)


def test_a_planted_wrong_prediction_is_a_disagreement(report):
    """The truthful model plays the kernel; the planted model is judged against it."""
    info, run = _model_kernel(RELEASE, [])
    out = confirm([report], info, run=run, model=OracleModelV3(RELEASE, _level_read_ignores_trigger()))
    bad = {o.label: o for o in out.outcomes if o.status == DISAGREED}
    assert "line_level:1->0@spi" in bad, out.render()
    d = bad["line_level:1->0@spi"].difference
    assert d is not None and d.phase == "phase 1 (source)" and "VGIC_LINE_LEVEL" in d.note
    assert d.model != d.kernel and out.disagreed


def test_a_gicv41_host_is_not_run(capsys, monkeypatch):
    path = SEQS / "qemu-typer2-v2-gicv4.1-to-gicv4.1-7.1.toml"
    rep = _report(path)
    info, run = _model_kernel(RELEASE, [])
    out = confirm([rep], info, run=run)
    assert out.outcomes and all(o.status == NOT_RUN and "no GICv4.1 host" in o.detail for o in out.outcomes)
    assert out.boots == 0
    monkeypatch.setattr(harness, "missing_host_tools", lambda: [])
    code = cli.main(["prove", str(path), "--on-kernel", "6.12"])
    err = capsys.readouterr().err
    assert code == 2 and "gicv4.1 host" in err and "Traceback" not in err


# ---------------------------------------------------------------------------------------
# A real kernel.

CACHED = {k.label: k for k in harness.list_kernels()}
LABEL = os.environ.get("GICPROOF_KERNEL", "sid")


@pytest.mark.kernel
def test_qemu_current_losses_are_confirmed_on_a_real_kernel():
    if not shutil.which(harness.QEMU):
        pytest.skip(f"{harness.QEMU} is not installed (models/kernel/install-parts.sh installs it)")
    if LABEL not in CACHED:
        pytest.skip(f"kernel {LABEL} is not cached")
    from models.kernel.model import release_of
    k = harness.find_kernel(LABEL)
    out = confirm([_report(release=release_of(k))], k)
    assert out.boots == 2
    assert out.counts()[DISAGREED] == 0, out.render()
    assert {o.label: o.status for o in out.outcomes} == dict.fromkeys(LOSSES, CONFIRMED), out.render()
