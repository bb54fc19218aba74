"""``gicproof conform``: the model of the kernel (models/kernel/model.py), the program
generator and the shrinker without a boot; then one boot per cached kernel with a few
hundred random programs, which must give no disagreement, and a planted model bug,
which must be reported with a minimal program.

The boot tests are marked ``kernel`` (as tests/test_kernel_oracle.py): skipped only when
qemu-system-aarch64 is missing or no kernel is cached.
"""

from __future__ import annotations

import dataclasses
import random
import re
import shutil

import pytest
from hypothesis import given
from hypothesis import strategies as st

from models.kernel import harness
from models.kernel.harness import BatchResult, KernelInfo, Op, Result, v2_attr
from models.kernel.model import KernelModel, OutOfScope, register_at, release_of
from proofs import cli
from proofs.conform import (
    Program,
    RandomChooser,
    candidates,
    conform,
    generate,
    generate_batch,
    generate_lifecycle,
    is_lifecycle_op,
)
from spec import lifecycle as lifecycle_table
from spec.device import Accessor, Effect
from spec.gicv2 import CPUIF, DIST, GICV2

D, C = "DIST_REGS", "CPU_REGS"
RESULT = re.compile(r"^(ok|0x[0-9a-f]+|E[A-Z0-9]+)$")

# ---------------------------------------------------------------------------------------
# The model of the kernel, without a boot.

# Observed on Debian 5.10.223 and 7.2.13 (gicproof conform's first runs, and a probe
# program): the answers after gic_setup(2) (2 vCPUs, 128 interrupts).
OBSERVED = [
    (Op.get(0, D, 0xFFC), "0x0"),                       # no region: read as zero
    (Op.set(0, D, 0xFFC, 1), "ok"),                     # ... write ignored
    (Op.get(0, D, 0x101), "0x0"),                       # unaligned: no region
    (Op.set(0, D, 0x101, 0xFF), "ok"),
    (Op.get(0, D, 0x100), "0xffff"),                    # (SGIs enabled; the write above ignored)
    (Op.get(0, C, 0x0C), "0x0"),                        # GICC_IAR is not a userspace register
    (Op.set(0, D, v2_attr(1, 0xF00), (1 << 16) | 5), "ok"),  # GICD_SGIR from vCPU 1 to vCPU 0
    (Op.get(0, D, v2_attr(0, 0xF14)), "0x200"),         # SGI 5 on vCPU 0, source vCPU 1
    (Op.get(0, D, v2_attr(0, 0x200)), "0x20"),
    (Op.get(0, D, 0xF00), "0x0"),
    (Op.irq("SPI", 0, 40, 1), "ok"),                    # SPI 40 is edge-triggered
    (Op.get(0, D, 0x204), "0x100"),
    (Op.set(0, D, 0x284, 0xFFFFFFFF), "ok"),
    (Op.get(0, D, 0x204), "0x0"),
    (Op.irq("SPI", 0, 40, 1), "ok"),                    # level 1 again: latched again
    (Op.get(0, D, 0x204), "0x100"),
    (Op.set(0, D, 0x284, 0xFFFFFFFF), "ok"),
    (Op.set(0, D, 0xC08, 0), "ok"),                     # SPI 40 level-sensitive: its line is low
    (Op.get(0, D, 0x204), "0x0"),
    (Op.irq("SPI", 0, 31, 1), "EINVAL"),                # not an SPI
    (Op.irq("SPI", 0, 128, 1), "EINVAL"),               # beyond the interrupts
    (Op.irq("SPI", 0, 127, 2), "ok"),                   # a level is a bool
    (Op.get(0, D, 0x20C), "0x80000000"),
    (Op.irq("SPI", 5, 41, 0), "ok"),                    # an SPI ignores the vCPU field
    (Op.get(0, D, v2_attr(0x100, 0x800)), "0x1010101"),  # bits above the CPUID mask ignored
    (Op.get(0, D, v2_attr(3, 0x800)), "EINVAL"),        # no vCPU 3
    (Op.get(0, D, 0x10000), "0x0"),
    (Op.set(0, C, 0x04, 0xFFFFFFFF), "ok"),
    (Op.get(0, C, 0x04), "0x1f"),                       # GICC_PMR: VMPriMask, 5 bits
    (Op.set(0, C, 0x00, 0xFFFFFFFF), "ok"),
    (Op.get(0, C, 0x00), "0x21f"),
    (Op.set(0, C, 0xD0, 0x12345678), "ok"),
    (Op.get(0, C, 0xD0), "0x12345678"),
    (Op.get(0, C, 0xFC), "0x4b2043b"),
    (Op.set(0, C, 0x08, 0xFF), "ok"),
    (Op.get(0, C, 0x08), "0x7"),
]


@pytest.mark.parametrize("release", ["5.10.223", "7.2.13"])
def test_model_of_the_kernel_gives_the_observed_answers(release):
    ops = harness.gic_setup(2) + [op for op, _ in OBSERVED]
    got = KernelModel(release).run(ops)
    setup = len(harness.gic_setup(2))
    assert got[:setup] == ["ok"] * setup
    for (op, want), have in zip(OBSERVED, got[setup:], strict=True):
        assert have == want, f"{op.line()}: model {have}, kernel {want}"


def test_model_of_the_kernel_iidr_follows_the_release():
    prog = harness.gic_setup(2) + [Op.get(0, D, 0x008), Op.set(0, D, 0x008, 0x4B00243B),
                                   Op.get(0, D, 0x008)]
    assert KernelModel("5.10.223").run(prog)[-3:] == ["0x4b00243b", "ok", "0x4b00243b"]
    # a0e6ae45af17 (7.1; 6.1.175): the written revision 2 is stored
    assert KernelModel("6.1.176").run(prog)[-3:] == ["0x4b00343b", "ok", "0x4b00243b"]
    assert KernelModel("6.1.170").run(prog)[-3:] == ["0x4b00343b", "ok", "0x4b00343b"]


def test_model_of_the_kernel_refuses_what_it_does_not_model():
    for extra in ([Op.irq("PPI", 0, 27, 1)], [Op.get_reg(0, 0x6030000000100000)],
                  [Op.vcpu_init(1)], [Op.device("9")], [Op.get(0, D, 0x0, 64)], [Op.vm()]):
        with pytest.raises(OutOfScope):
            KernelModel("6.12").run(harness.gic_setup(2) + extra)
    with pytest.raises(OutOfScope):
        KernelModel("6.12").run([Op.vcpus(2)])  # before the VM


def test_register_lookup_by_offset():
    reg, word = register_at(DIST, 0x208)
    assert (reg.name, word) == ("GICD_ISPENDR", 2)
    assert register_at(DIST, 0x209) is None and register_at(DIST, 0xF00) is None
    assert register_at(CPUIF, 0x08)[0].name == "GICC_BPR" and register_at(CPUIF, 0x0C) is None


def test_release_of_a_cached_kernel():
    def k(version, uname):
        return KernelInfo("x", "s", "p", version, uname, harness.cache_dir())
    assert release_of(k("5.10.223-1", "5.10.0-32-arm64")) == "5.10.223"
    assert release_of(k("6.12.107-1", "6.12.107+deb13-arm64")) == "6.12.107"
    assert release_of(k("weird", "6.12.107+deb13-arm64")) == "6.12.107"


# ---------------------------------------------------------------------------------------
# The generator (through Hypothesis, as the command line through random.Random).


class DrawChooser:
    def __init__(self, data):
        self.data = data

    def integer(self, lo, hi):
        return self.data.draw(st.integers(lo, hi))


@st.composite
def programs(draw):
    return generate(DrawChooser(type("D", (), {"draw": staticmethod(draw)})()))


@given(programs())
def test_generated_programs_are_in_the_model_scope(p):
    lines = KernelModel("6.12.107").run(p.ops())
    assert len(lines) == len(p.ops())
    assert all(RESULT.match(x) for x in lines), lines
    for op in p.body:  # every operation renders as a runner script line
        assert op.line()


@st.composite
def lifecycle_programs(draw):
    return generate_lifecycle(DrawChooser(type("D", (), {"draw": staticmethod(draw)})()))


@given(lifecycle_programs())
def test_lifecycle_programs_are_valid_scripts_in_the_model_scope(p):
    assert p.lifecycle and p.valid() and p.ops()[0].name == "vm"
    lines = KernelModel("5.10.223").run(p.ops())
    assert all(RESULT.match(x) for x in lines), lines
    for c in candidates(p)[:40]:  # what the shrinker tries is a valid script too
        assert c.valid() and all(RESULT.match(x) for x in KernelModel("5.10.223").run(c.ops()))


def test_lifecycle_generator_covers_the_lifecycle():
    progs = [p for p in generate_batch(300, seed=1) if p.lifecycle]
    assert 100 < len(progs) < 200  # the default mix: half and half
    seen = {(op.name, str(op.args[1]) if len(op.args) > 1 else "", res)
            for p in progs for op, res in zip(p.ops(), KernelModel("6.12.107").run(p.ops()), strict=True)
            if is_lifecycle_op(op)}
    for want in [("vcpus", "", "EBUSY"), ("vcpus", "", "EINVAL"), ("device", "", "EEXIST"),
                 ("device", "", "ENODEV"), ("set32", "NR_IRQS", "EINVAL"), ("set32", "NR_IRQS", "EBUSY"),
                 ("set32", "NR_IRQS", "ok"), ("set64", "ADDR", "EEXIST"), ("set64", "ADDR", "E2BIG"),
                 ("set64", "ADDR", "EINVAL"), ("set64", "ADDR", "ENXIO"), ("ctrl", "INIT", "ok"),
                 ("has", "DIST_REGS", "ENXIO"), ("has", "DIST_REGS", "EINVAL"), ("vcpu_init", "", "ok")]:
        assert want in seen, want
    kinds = {(op.name, res.startswith("0x") or res) for p in progs
             for op, res in zip(p.ops(), KernelModel("6.12.107").run(p.ops()), strict=True)
             if not is_lifecycle_op(op)}
    assert ("irq", "ENXIO") in kinds and ("irq", "ok") in kinds and ("get32", True) in kinds
    # accesses and lines before INIT: a program whose first INIT comes after one
    early = [p for p in progs if any(op.name in ("get32", "set32", "irq") and op.args[1] in ("DIST_REGS", "CPU_REGS", "SPI")
                                     for op in p.body[:next((i for i, o in enumerate(p.body) if o.name == "ctrl"),
                                                            len(p.body))])]
    assert len(early) > 50
    assert any(not any(op.name == "device" for op in p.body) for p in progs)  # sometimes no device
    assert generate_batch(300, seed=1, lifecycle=0) == [p for p in generate_batch(300, seed=1, lifecycle=0)
                                                        if not p.lifecycle]


def test_generator_covers_the_table():
    progs = generate_batch(300, seed=1, lifecycle=0)
    body = [op for p in progs for op in p.body]
    offsets = {(op.args[1], int(op.args[2]) & 0xFFFFFFFF) for op in body if op.name in ("get32", "set32")}
    for reg in GICV2.registers:
        group = {DIST: D, CPUIF: C}[reg.group]
        assert any(g == group and reg.offset <= o < reg.offset + reg.size for g, o in offsets), reg.name
    assert any(op.name == "irq" for op in body)
    assert any(op.name == "get32" and (int(op.args[2]) >> 32) >= 8 for op in body)  # bad vCPUs
    beyond = [op for p in progs for op in p.body if op.name == "get32" and op.args[1] == D
              and (r := register_at(DIST, int(op.args[2]) & 0xFFFFFFFF)) is not None
              and r[0].scope == "irq" and r[0].word_irqs(r[1]).start >= p.irqs]
    assert beyond  # words beyond the configured interrupts
    assert generate_batch(5, seed=3) == generate_batch(5, seed=3)


def test_candidates_are_smaller():
    p = generate(RandomChooser(random.Random(4)))
    for c in candidates(p):
        assert len(c.body) < len(p.body) or c.vcpus < p.vcpus or c.irqs < p.irqs or c.body != p.body


# ---------------------------------------------------------------------------------------
# Comparing and shrinking against a stand-in kernel (the correct model).


def _buggy_priority_spec():
    """GICV2 with a planted bug: GICD_IPRIORITYR writes keep all eight bits."""
    def keep_all(ops, ctx, f, d):
        return Effect({"priority": d})
    regs = []
    for r in GICV2.registers:
        if r.name == "GICD_IPRIORITYR":
            acc = Accessor("write_priority", "write", keep_all, "planted", "planted bug")
            r = dataclasses.replace(r, user_write=acc, guest_write=acc)
        regs.append(r)
    return dataclasses.replace(GICV2, registers=tuple(regs))


def _fake_kernel(release):
    truth = KernelModel(release)
    info = KernelInfo("fake", "none", "linux-image-fake", f"{release}-1", f"{release}-fake",
                      harness.cache_dir())
    boots = []

    def run(progs):
        boots.append(len(progs))
        results = [[Result(i, j + 1, t) for j, t in enumerate(truth.run(p))] for i, p in enumerate(progs)]
        return BatchResult(kernel=info, gic=2, programs=results, uname_r=info.uname_r, constants={},
                           dmesg=[], boot_seconds=1.0, total_seconds=2.0, ioctls=1, ioctl_ns=1)
    return info, run, boots


def test_planted_bug_is_shrunk_to_a_minimal_program_without_a_boot():
    info, run, boots = _fake_kernel("6.12.107")
    buggy = KernelModel("6.12.107", _buggy_priority_spec())
    rep = conform(info, programs=150, seed=2, run=run, model=buggy)
    assert rep.exit_code == 1 and rep.disagreeing_programs > 0 and rep.disagreements
    d = rep.disagreements[0]
    # minimal: one write of a priority with a low bit set, and the read that shows it
    assert len(d.program.body) == 2, d.render()
    w, r = d.program.body
    assert w.name == "set32" and r.name == "get32" and w.args[2] == r.args[2]
    assert 0x400 <= int(r.args[2]) & 0xFFFFFFFF < 0x800
    assert d.kernel[-1] != d.model[-1]
    assert 1 < rep.boots == len(boots) and d.shrink_boots < rep.boots
    text = rep.render()
    assert "disagreement 1" in text and "kernel" in text and ">>" in text


def _buggy_lifecycle():
    """The lifecycle table with a planted bug: NR_IRQS never answers EBUSY (the check
    'already set, or initialised' of vgic_set_common_attr is dropped)."""
    op = lifecycle_table.GICV2.operations["set_nr_irqs"]
    steps = tuple(st for st in op.steps if not (isinstance(st, lifecycle_table.Check) and st.errno == "EBUSY"))
    assert len(steps) == len(op.steps) - 1
    ops = dict(lifecycle_table.GICV2.operations)
    ops["set_nr_irqs"] = dataclasses.replace(op, steps=steps)
    return dataclasses.replace(lifecycle_table.GICV2, operations=ops)


def _check_lifecycle_bug_shrunk(rep):
    assert rep.exit_code == 1 and rep.disagreements
    d = min(rep.disagreements, key=lambda d: len(d.program.body))
    ops = d.program.ops()
    # minimal: the VM, the device, one step that sets the count (NR_IRQS, INIT, or a line
    # or an access that initialises lazily, with the vCPU it needs), then NR_IRQS
    assert d.program.lifecycle and d.program.valid() and 4 <= len(ops) <= 5, d.render()
    assert ops[0].name == "vm" and ops[-1].name == "set32" and ops[-1].args[1] == "NR_IRQS"
    assert d.kernel[-1] == "EBUSY" and d.model[-1] == "ok"
    assert "lifecycle program" in "\n".join(d.render())


def test_planted_lifecycle_bug_is_shrunk_without_a_boot():
    info, run, boots = _fake_kernel("6.1.176")
    buggy = KernelModel("6.1.176", lifecycle=_buggy_lifecycle())
    rep = conform(info, programs=120, seed=7, run=run, model=buggy)
    _check_lifecycle_bug_shrunk(rep)
    assert rep.boots == len(boots) > 1


def test_no_disagreement_against_itself():
    info, run, _ = _fake_kernel("5.10.223")
    rep = conform(info, programs=50, seed=5, run=run)
    assert rep.exit_code == 0 and rep.operations > 50 * 8 and rep.boots == 1
    assert 0 < rep.lifecycle_programs < 50 and 0 < rep.lifecycle_operations < rep.operations
    assert "lifecycle operations" in rep.render() and rep.json()["lifecycle_programs"] == rep.lifecycle_programs


def test_cli_bad_input(capsys):
    assert cli.main(["conform", "gicv2", "--kernel", "no-such-kernel"]) in (2,)
    err = capsys.readouterr().err
    assert "--kernel no-such-kernel" in err or "install-parts.sh" in err
    assert cli.main(["conform", "nosuch", "--kernel", "6.12"]) == 2
    assert cli.main(["conform", "gicv2", "--kernel", "6.12", "--gic", "3"]) == 2
    assert cli.main(["conform", "gicv2", "--kernel", "6.12", "--programs", "0"]) == 2
    for bad in ("1.5", "-0.1", "half"):
        assert cli.main(["conform", "gicv2", "--kernel", "6.12", "--lifecycle", bad]) == 2
        assert "--lifecycle" in capsys.readouterr().err
    assert cli.main(["conform", "--help"]) == 0
    assert "conform DEVICE --kernel" in cli.__doc__


# ---------------------------------------------------------------------------------------
# Real kernels: one boot each.

CACHED = [k.label for k in harness.list_kernels()]


def _need_qemu():
    if not shutil.which(harness.QEMU):
        pytest.skip(f"{harness.QEMU} is not installed (models/kernel/install-parts.sh installs it)")


@pytest.mark.kernel
@pytest.mark.parametrize("label", CACHED or [pytest.param("none", marks=pytest.mark.skip("no cached kernel"))])
def test_real_kernel_agrees_with_the_model(label):
    """250 random programs (half of them lifecycle programs) and every lifecycle
    scenario of tests/test_lifecycle.py, in one boot."""
    _need_qemu()
    from tests.test_lifecycle import SCENARIOS
    batch = generate_batch(250, seed=11) + [Program(0, 0, tuple(p), lifecycle=True) for _, _, p, _ in SCENARIOS]
    rep = conform(label, batch=batch)
    assert rep.disagreeing_programs == 0, rep.render()
    assert rep.programs == len(batch) and rep.boots == 1 and rep.lifecycle_programs > len(SCENARIOS)


@pytest.mark.kernel
@pytest.mark.skipif(not CACHED, reason="no cached kernel")
def test_real_kernel_reports_a_planted_bug_with_a_minimal_program():
    _need_qemu()
    label = "6.12" if "6.12" in CACHED else CACHED[0]
    k = harness.find_kernel(label)
    buggy = KernelModel(release_of(k), _buggy_priority_spec())
    rep = conform(label, programs=60, seed=2, model=buggy)
    assert rep.exit_code == 1 and rep.disagreements
    d = rep.disagreements[0]
    assert len(d.program.body) == 2, d.render()
    assert d.program.body[0].name == "set32" and d.program.body[1].name == "get32"


@pytest.mark.kernel
@pytest.mark.skipif(not CACHED, reason="no cached kernel")
def test_real_kernel_reports_a_planted_lifecycle_bug_with_a_minimal_program():
    _need_qemu()
    label = "6.12" if "6.12" in CACHED else CACHED[0]
    buggy = KernelModel(release_of(harness.find_kernel(label)), lifecycle=_buggy_lifecycle())
    _check_lifecycle_bug_shrunk(conform(label, programs=60, seed=7, model=buggy))
