"""``gicproof conform gicv3``: the GICv3 model of the kernel (models/kernel/model.py,
KernelModelV3, over the GICV3 section of spec/lifecycle.py and spec/gicv3.py), its
generator and shrinker without a boot; then one boot of one cached kernel with a small
batch, which must give no disagreement.

The lifecycle scenarios below are what the oracle printed (Debian 5.10.223, 6.1.176,
6.12.117 and 7.2.13 under QEMU gic-version=3); the kernel test runs them again. The boot
test is marked ``kernel`` (as tests/test_conform.py): skipped only when
qemu-system-aarch64 is missing or no kernel is cached.
"""

from __future__ import annotations

import dataclasses
import re
import shutil

import pytest

from models.kernel import harness
from models.kernel.harness import (
    BatchResult,
    KernelInfo,
    Op,
    Result,
    gic_setup,
    redist_attr,
    sysreg_attr,
)
from models.kernel.harness import v3_mpidr_attr as mp
from models.kernel.model import KernelModelV3, find_region, rd_regions
from proofs import cli
from proofs.conform import Program, candidates, conform, generate_batch, is_lifecycle_op
from spec import lifecycle as lifecycle_table

RESULT = re.compile(r"^(ok|0x[0-9a-f]+|E[A-Z0-9]+|!no vcpu '0x0')$")
RELEASES = ("5.10.223", "6.1.176", "6.12.117", "7.2.13")
D, R, S, L = "DIST_REGS", "REDIST_REGS", "CPU_SYSREGS", "LEVEL_INFO"
VM3 = [Op.vm(), Op.vcpus(2), Op.device("v3")]
ADDRS = [Op.set(0, "ADDR", 2, harness.V3_DIST_BASE, 64), Op.set(0, "ADDR", 3, harness.V3_REDIST_BASE, 64)]

# (what, program, the last results per release: one string for every release, or a dict
# from the first release of a range to its answer). Each seen on the oracle.
SCENARIOS = [
    ("a register access before CTRL_INIT is EBUSY; from 6.17 GICD_IIDR and GICD_TYPER2 are allowed "
     "(reg_allowed_pre_init): IIDR reads rev 3, a rev 2 write is kept through INIT, a different "
     "TYPER2 is EINVAL before INIT",
     VM3 + [Op.get(0, D, 0x8), Op.set(0, D, 0x8, 0x4B00243B), Op.set(0, D, 0xC, 0x100), Op.get(0, D, 0xC),
            Op.get(0, D, 0x0), Op.get(0, R, redist_attr(0, 0x8)), Op.ctrl(0, "INIT"), Op.get(0, D, 0x8)],
     {"5.10": ["EBUSY"] * 6 + ["ok", "0x4b00243b"], "6.1": ["EBUSY"] * 6 + ["ok", "0x4b00343b"],
      "7.2": ["0x4b00343b", "ok", "EINVAL", "0x0", "EBUSY", "EBUSY", "ok", "0x4b00243b"]}),
    ("a vCPU named by an MPIDR it does not have yet (KVM_ARM_VCPU_INIT sets it) is EINVAL, "
     "before the EBUSY of an uninitialised vGIC",
     VM3 + [Op.get(0, R, mp(1, 0x8)), Op.get(0, R, mp(0, 0x8)), Op.vcpu_init(), Op.get(0, R, mp(1, 0x8))],
     ["EINVAL", "EBUSY", "ok", "EBUSY"]),
    ("an SPI line before CTRL_INIT is EBUSY (no lazy INIT for a GICv3); a private INTID is EINVAL "
     "first until 7.2",
     VM3 + [Op.irq("SPI", 0, 40, 1), Op.irq("SPI", 0, 0, 1), Op.ctrl(0, "INIT"), Op.irq("SPI", 0, 40, 1)],
     {"5.10": ["EBUSY", "EINVAL", "ok", "ok"], "7.2": ["EBUSY", "EBUSY", "ok", "ok"]}),
    ("SAVE_PENDING_TABLES before CTRL_INIT: ok on 5.10, ENXIO from 6.1; ok after INIT",
     VM3 + [Op.ctrl(0, "SAVE_PENDING_TABLES"), Op.ctrl(0, "INIT"), Op.ctrl(0, "SAVE_PENDING_TABLES")],
     {"5.10": ["ok", "ok", "ok"], "6.1": ["ENXIO", "ok", "ok"]}),
    ("KVM_RUN: ENOEXEC before KVM_ARM_VCPU_INIT",
     VM3 + ADDRS + [Op.run(0)], ["ok", "ok", "ENOEXEC"]),
    ("KVM_RUN before CTRL_INIT: EBUSY with both addresses set (vgic_v3_map_resources)",
     VM3 + ADDRS + [Op.vcpu_init(), Op.run(0)], ["ok", "ok", "ok", "EBUSY"]),
    ("KVM_RUN without a redistributor region: ENXIO",
     VM3 + [Op.vcpu_init(), Op.ctrl(0, "INIT"), Op.run(0)], ["ok", "ok", "ENXIO"]),
    ("KVM_RUN after CTRL_INIT with both addresses: EINTR (immediate_exit)",
     VM3 + ADDRS + [Op.vcpu_init(), Op.ctrl(0, "INIT"), Op.run(0)], ["ok", "ok", "ok", "ok", "EINTR"]),
    ("a second redistributor region: EINVAL on 5.10, EEXIST from 6.1 (vgic_v3_alloc_redist_region); "
     "REDIST_REGION index 0 reads the legacy region",
     VM3 + [Op.get(0, "ADDR", 5, 64)] + ADDRS + [Op.set(0, "ADDR", 3, harness.V3_REDIST_BASE, 64),
                                                 Op.get(0, "ADDR", 5, 64)],
     {"5.10": ["ENOENT", "ok", "ok", "EINVAL", "0x80a0000"], "6.1": ["ENOENT", "ok", "ok", "EEXIST", "0x80a0000"]}),
    ("a redistributor region near the top of the IPA space: from 6.1 the vCPUs that would not fit "
     "are refused, and a region the online vCPUs outgrew fails KVM_RUN with EINVAL",
     [Op.vm(), Op.vcpus(3), Op.device("v3"), Op.set(0, "ADDR", 3, (1 << 40) - 0x80000, 64), Op.vcpus(3),
      Op.set(0, "ADDR", 2, 0xFFFFFFFFFFFF0000, 64), Op.set(0, "ADDR", 2, harness.V3_DIST_BASE, 64),
      Op.vcpu_init(), Op.ctrl(0, "INIT"), Op.run(0)],
     {"5.10": ["ok", "ok", "E2BIG", "ok", "ok", "ok", "EINTR"],
      "6.1": ["ok", "EINVAL", "EINVAL", "ok", "ok", "ok", "EINVAL"]}),
    ("unknown CPU_SYSREGS encodings: ENXIO on 5.10, ENOENT from 6.1; ICC_AP0R1 on a 5-bit host EINVAL",
     gic_setup(3) + [Op.get(0, S, mp(0, 0xFFFF), 64), Op.get(0, S, sysreg_attr(0, "ICC_AP0R1_EL1"), 64),
                     Op.has(0, S, sysreg_attr(0, "ICC_AP0R1_EL1"))],
     {"5.10": ["ENXIO", "EINVAL", "ok"], "6.1": ["ENOENT", "EINVAL", "ok"]}),
    ("KVM_HAS_DEVICE_ATTR: GICR_STATUSR is never found (vgic_v3_rd_registers is not sorted for "
     "bsearch); GICR_INVLPIR exists from 6.1; PIDR2 reads 0x3b in both frames",
     gic_setup(3) + [Op.has(0, R, 0x10), Op.has(0, R, 0xA0), Op.has(0, R, 0x4), Op.get(0, D, 0xFFE8),
                     Op.get(0, R, 0xFFE8)],
     {"5.10": ["ENXIO", "ENXIO", "ok", "0x3b", "0x3b"], "6.1": ["ENXIO", "ok", "ok", "0x3b", "0x3b"]}),
    ("a failed ICC_CTLR_EL1 write keeps the PRIbits and IDbits it lowered (set_gic_ctlr)",
     gic_setup(3) + [Op.set(0, S, sysreg_attr(0, "ICC_CTLR_EL1"), 0, 64),
                     Op.get(0, S, sysreg_attr(0, "ICC_CTLR_EL1"), 64)], ["EINVAL", "0x8000"]),
    ("ICC_CTLR_EL1.PRIbits lowered from 4 to 2 (5 to 3 priority bits): ICC_AP0R0 stays reachable, "
     "ICC_AP<g>R1 stays EINVAL, read or write (vgic_v3_max_apr_idx() of the vCPU's num_pri_bits is 0 "
     "either way on QEMU's 5-bit emulated GICv3), PRIbits cannot be raised again, vCPU 1 keeps its own",
     gic_setup(3) + [Op.set(0, S, sysreg_attr(0, "ICC_CTLR_EL1"), 0x8A00, 64),
                     Op.get(0, S, sysreg_attr(0, "ICC_CTLR_EL1"), 64),
                     Op.set(0, S, sysreg_attr(0, "ICC_AP0R0_EL1"), 0x5, 64),
                     Op.get(0, S, sysreg_attr(0, "ICC_AP0R0_EL1"), 64),
                     Op.set(0, S, sysreg_attr(0, "ICC_AP1R1_EL1"), 0x1, 64),
                     Op.get(0, S, sysreg_attr(0, "ICC_AP0R1_EL1"), 64),
                     Op.set(0, S, sysreg_attr(0, "ICC_CTLR_EL1"), 0x8C00, 64),
                     Op.get(0, S, sysreg_attr(1, "ICC_CTLR_EL1"), 64)],
     ["ok", "0x8a00", "ok", "0x5", "EINVAL", "EINVAL", "EINVAL", "0x8c00"]),
]


def _expected(want, release: str) -> list[str]:
    if isinstance(want, list):
        return want
    key = lifecycle_table.release_key
    return want[max((r for r in want if key(r) <= key(release)), key=key)]


def _scenario_programs() -> list[Program]:
    return [Program(0, 0, tuple(prog), lifecycle=True, gic=3) for _, prog, _ in SCENARIOS]


@pytest.mark.parametrize("release", RELEASES)
def test_gicv3_lifecycle_scenarios_give_the_observed_errnos(release):
    model = KernelModelV3(release)
    for what, prog, want in SCENARIOS:
        exp = _expected(want, release)
        got = model.run(prog)
        assert got[-len(exp):] == exp, f"{what}: {release}"
        assert all(x == "ok" for x in got[:-len(exp)]), f"{what}: {release} setup {got}"


def test_every_gicv3_check_names_its_source_and_the_table_is_complete():
    lc = lifecycle_table.GICV3
    for name, check in lc.rules():
        assert check.source and check.rule, name
        assert re.search(r"\.(c|h)\b|kvm_main|arm\.c", check.source), (name, check.source)
    for op in ("create_vcpu", "vcpu_init", "create_device", "test_device", "set_nr_irqs", "get_nr_irqs",
               "set_address", "get_address", "KVM_DEV_ARM_VGIC_CTRL_INIT", "save_pending_tables",
               "register_access", "irq_line", "has_attr", "run"):
        assert op in lc.operations
    versioned = {c.since or c.until for _, c in lc.rules() if c.since or c.until}
    assert {"5.16", "6.1", "6.17", "7.2"} <= versioned


def test_gicr_statusr_is_hidden_by_the_kernels_bsearch():
    for release in ("5.10.223", "7.2.13"):
        regions = rd_regions(release)
        assert find_region(regions, 0x10) is None  # GICR_STATUSR
        for off in (0x0, 0x4, 0x8, 0xC, 0x14, 0x70, 0x78, 0x10080, 0x10400, 0x10E00):
            assert find_region(regions, off) is not None, hex(off)


def test_generated_gicv3_programs_are_valid_and_in_the_model_scope():
    progs = generate_batch(120, seed=3, device="gicv3")
    assert 30 < sum(p.lifecycle for p in progs) < 90 and all(p.gic == 3 for p in progs)
    seen = set()
    for release in ("5.10.223", "7.2.13"):
        model = KernelModelV3(release)
        for p in progs:
            assert p.valid()
            lines = model.run(p.ops())
            assert all(RESULT.match(x) for x in lines), lines
            seen |= {(op.name, r if not r.startswith("0x") else "value") for op, r in zip(p.ops(), lines, strict=True)
                     if is_lifecycle_op(op) or op.name == "irq"}
    for want in [("run", "ENOEXEC"), ("run", "ENXIO"), ("vcpus", "EBUSY"), ("device", "EEXIST"),
                 ("device", "ENODEV"), ("set64", "E2BIG"), ("set64", "EEXIST"), ("irq", "EBUSY"), ("irq", "ok"),
                 ("has", "ENXIO"), ("has", "ok"), ("ctrl", "ok")]:
        assert want in seen, want
    for c in candidates(progs[1])[:30]:
        assert c.valid() and c.gic == 3


def _buggy_lifecycle():
    """The GICv3 table with a planted bug: a register access before INIT succeeds (the
    EBUSY checks of vgic_v3_attr_regs_access are dropped)."""
    op = lifecycle_table.GICV3.operations["register_access"]
    steps = tuple(s for s in op.steps if not (isinstance(s, lifecycle_table.Check) and s.errno == "EBUSY"))
    ops = dict(lifecycle_table.GICV3.operations)
    ops["register_access"] = dataclasses.replace(op, steps=steps)
    return dataclasses.replace(lifecycle_table.GICV3, operations=ops)


class _Buggy(KernelModelV3):
    def _register(self, r, a):
        if r.machine is None:
            return "0x0" if a["value"] is None else "ok"
        return super()._register(r, a)


def test_planted_gicv3_lifecycle_bug_is_shrunk_without_a_boot():
    release = "6.12.117"
    truth = KernelModelV3(release)
    info = KernelInfo("fake", "none", "linux-image-fake", f"{release}-1", f"{release}-fake", harness.cache_dir())
    boots = []

    def run(progs):
        boots.append(len(progs))
        return BatchResult(kernel=info, gic=3, uname_r=info.uname_r, constants={}, dmesg=[], boot_seconds=1.0,
                           total_seconds=2.0, ioctls=1, ioctl_ns=1,
                           programs=[[Result(i, j + 1, t) for j, t in enumerate(truth.run(p))]
                                     for i, p in enumerate(progs)])
    buggy = _Buggy(release, lifecycle=_buggy_lifecycle())
    rep = conform(info, programs=60, seed=5, run=run, model=buggy, device="gicv3")
    assert rep.exit_code == 1 and rep.disagreements and rep.boots == len(boots) > 1
    d = min(rep.disagreements, key=lambda d: len(d.program.ops()))
    ops = d.program.ops()
    # minimal: the VM, a vCPU, the device, one register access before INIT
    assert len(ops) <= 4 and d.kernel[-1] == "EBUSY" and d.model[-1] != "EBUSY", "\n".join(d.render())
    assert "gicproof conform gicv3" in rep.render() and rep.json()["device"] == "gicv3"


def test_cli_conform_gicv3_bad_input(capsys):
    assert cli.main(["conform", "gicv3", "--kernel", "6.12", "--gic", "2"]) == 2
    assert "--gic 2" in capsys.readouterr().err
    assert cli.main(["conform", "gicv3", "--kernel", "6.12", "--gic", "4"]) == 2
    capsys.readouterr()
    assert cli.main(["conform", "gicv3", "--kernel", "no-such-kernel"]) == 2
    err = capsys.readouterr().err
    assert "no-such-kernel" in err or "install-parts.sh" in err
    assert cli.main(["conform", "gicv5-irs", "--kernel", "6.12"]) == 2


# ---------------------------------------------------------------------------------------
# A real kernel: one boot.

CACHED = [k.label for k in harness.list_kernels()]


@pytest.mark.kernel
@pytest.mark.skipif(not CACHED, reason="no cached kernel")
def test_real_kernel_agrees_with_the_gicv3_model():
    """120 random GICv3 programs (half lifecycle programs) and every scenario above, in one
    boot of one kernel (GICPROOF_KERNEL, else 6.12, else the first cached)."""
    if not shutil.which(harness.QEMU):
        pytest.skip(f"{harness.QEMU} is not installed (models/kernel/install-parts.sh installs it)")
    import os
    label = os.environ.get("GICPROOF_KERNEL") or ("6.12" if "6.12" in CACHED else CACHED[0])
    batch = generate_batch(120, seed=11, device="gicv3") + _scenario_programs()
    rep = conform(label, batch=batch, device="gicv3")
    assert rep.disagreeing_programs == 0, rep.render()
    assert rep.boots == 1 and rep.programs == len(batch)
    # the model gives every scenario's observed answers (the test above), so agreeing with
    # it line by line is the kernel giving them too
