"""The real-kernel oracle (models/kernel/): output parsing and script rendering without a
boot, and one boot of a real Debian arm64 kernel (GICv2 host) that checks values the
model relies on.

The boot test is marked ``kernel``: it is skipped only when qemu-system-aarch64 is not
installed; a missing cross compiler or kernel is a failure with the harness's message
(run models/kernel/install-parts.sh). GICPROOF_KERNEL picks the kernel (default 6.12).
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess

import pytest

from models.kernel import harness
from models.kernel.harness import (
    EXPECTED_CONSTANTS,
    KernelOracleError,
    Op,
    check_constants,
    parse_output,
    render_batch,
    v2_attr,
)
from spec.gicv2 import IMPLEMENTER_ARM, PRODUCT_ID_KVM, VERSIONS

# ---------------------------------------------------------------------------------------
# Without a boot.

SAMPLE = (
    "[    0.000000] Booting Linux on physical CPU 0x0000000000 [0x000f0510]\r\n"
    "gicproof-guest uname=6.12.107+deb13-arm64\r\n"
    "gicproof-guest kvm=yes\r\n"
    "gicproof-dmesg [    1.119582] kvm [1]: VHE mode initialized successfully\r\n"
    "gicproof-guest ready\r\n"
    "const KVM_DEV_ARM_VGIC_GRP_DIST_REGS 0x1\r\n"
    "gicproof-runner constants-done\r\n"
    "gicproof-runner start\r\n"
    "R 0 1 ok\r\n"
    "R 0 2 0x4b00343b\r\n"
    "[    3.000000] some kernel message\r\n"
    "R 0 3 ENXIO\r\n"
    "R 1 1 !no device '3'\r\n"
    "R 1 2 0x3 0x6030000000100000 0x6030000000100002 0x6030000000100004\r\n"
    "gicproof-runner done programs=2 ops=5 ioctls=9 ns=123456\r\n"
    "gicproof-guest end\r\n"
)


def test_parse_output():
    p = parse_output(SAMPLE)
    assert p.uname_r == "6.12.107+deb13-arm64"
    assert p.has_kvm is True and p.ready_seen
    assert p.dmesg == ["[    1.119582] kvm [1]: VHE mode initialized successfully"]
    assert p.constants == {"KVM_DEV_ARM_VGIC_GRP_DIST_REGS": 1}
    assert p.done == (2, 5, 9, 123456)
    r0, r1 = p.results[0], p.results[1]
    assert [r.index for r in r0] == [1, 2, 3]
    assert r0[0].ok and r0[0].value is None and r0[0].errno is None
    assert r0[1].ok and r0[1].value == 0x4B00343B
    assert not r0[2].ok and r0[2].errno == "ENXIO" and r0[2].value is None
    assert r1[0].error == "no device '3'" and r1[0].errno is None and not r1[0].ok
    assert r1[1].values == (3, 0x6030000000100000, 0x6030000000100002, 0x6030000000100004)


def test_parse_output_reg_dump_and_info_lines():
    text = ("gicproof-guest ready\r\n"
            "I 0 1 cpuinfo Features\t: fp asimd\r\n"
            "I 0 1 midr_el1 0x00000000000f0510\r\n"
            "R 0 1 ok\r\n"
            "G 0 6 0x6030000000100000 0x0000000000000000\r\n"
            "G 0 6 0x6040000000100054 0x000000000000000000000000000000ff\r\n"
            "G 0 6 0x603000000013c080 ENOENT\r\n"
            "R 0 6 0x3\r\n")
    p = parse_output(text)
    assert p.info == {(0, 1): ["cpuinfo Features\t: fp asimd", "midr_el1 0x00000000000f0510"]}
    assert p.regs == {(0, 6): [(0x6030000000100000, "0x0000000000000000"),
                               (0x6040000000100054, "0x" + "00" * 15 + "ff"),
                               (0x603000000013C080, "ENOENT")]}
    assert [r.text for r in p.results[0]] == ["ok", "0x3"]


def test_parse_output_incomplete_run_has_no_done_line():
    p = parse_output("gicproof-guest ready\r\nR 0 1 ok\r\nKernel panic - not syncing\r\n")
    assert p.done is None and len(p.results[0]) == 1


def test_render_batch_and_op_lines():
    progs = [[Op.vm(), Op.vcpus(2), Op.set(0, "DIST_REGS", v2_attr(1, 0x200), 0x8)],
             [Op.get(0, 2, 0xFC, 64), Op.ctrl(0, "INIT"), Op.irq("SPI", 0, 40, 1)]]
    assert render_batch(progs) == (
        "program 0\nvm 0x0\nvcpus 0x2\nset32 0x0 DIST_REGS 0x100000200 0x8\n"
        "program 1\nget64 0x0 0x2 0xfc\nctrl 0x0 INIT\nirq SPI 0x0 0x28 0x1\n")
    with pytest.raises(ValueError):
        Op("set32", ("a b",)).line()
    with pytest.raises(ValueError):
        Op("set32", ("#",)).line()


def test_every_operation_is_documented_and_handled_by_the_runner():
    source = harness.RUNNER_SOURCE.read_text()
    header = source.split("*/", 1)[0]
    names = {"vm", "vcpus", "vcpu_init", "device", "test_device", "set32", "set64", "get32",
             "get64", "has", "ctrl", "irq", "irq_raw", "cap", "reg_list", "get_reg",
             "set_reg", "finalize", "reg_dump", "target", "cpuinfo", "run", "mem", "peek",
             "poke", "end", "program"}
    for name in names:
        assert re.search(rf"^ \*   {name}\b", header, re.M), f"{name} not documented"
        assert f'"{name}"' in source, f"{name} not handled"
    for ctor in ("vm", "vcpus", "vcpu_init", "device", "test_device", "has", "ctrl", "irq",
                 "cap", "reg_list", "get_reg", "set_reg", "finalize", "reg_dump", "target",
                 "cpuinfo", "run", "mem", "peek", "poke"):
        assert getattr(Op, ctor)  # a constructor for each


def test_check_constants_reports_mismatches():
    assert check_constants(dict(EXPECTED_CONSTANTS)) == []
    bad = dict(EXPECTED_CONSTANTS, KVM_DEV_ARM_VGIC_GRP_CTRL=9)
    del bad["KVM_DEV_TYPE_ARM_VGIC_V2"]
    msgs = check_constants(bad)
    assert len(msgs) == 2
    assert any("KVM_DEV_ARM_VGIC_GRP_CTRL: runner 0x9, harness 0x4" in m for m in msgs)


@pytest.mark.skipif(not shutil.which(harness.CROSS_CC) or not harness.UAPI_HEADER.is_file(),
                    reason="the arm64 cross compiler or UAPI headers are not installed")
def test_expected_constants_match_the_uapi_headers():
    """The harness's numbers against the real arm64 headers': compiled to assembly (an
    arm64 program cannot run here), the values read back from the data directives."""
    names = list(EXPECTED_CONSTANTS)
    src = ("#include <linux/kvm.h>\nconst unsigned long long gicproof_values[] = {\n"
           + "".join(f"  (unsigned long long)({n}),\n" for n in names) + "};\n")
    asm = subprocess.run([harness.CROSS_CC, "-S", "-O0", "-x", "c", "-o", "-", "-"], input=src,
                         text=True, capture_output=True, check=True).stdout
    # the assembler prints a value with bit 63 set as a negative number
    values = [int(v, 0) & (1 << 64) - 1 for v in re.findall(r"^\s*\.xword\s+(\S+)$", asm, re.M)]
    assert len(values) == len(names), asm
    assert dict(zip(names, values, strict=True)) == EXPECTED_CONSTANTS


# GICv3 attribute encodings (Documentation/virt/kvm/devices/arm-vgic-v3.rst)


def test_vcpu_mpidr_follows_reset_mpidr():
    assert harness.vcpu_mpidr(0) == 0x80000000
    assert harness.vcpu_mpidr(15) == 0x8000000F
    assert harness.vcpu_mpidr(16) == 0x80000100  # Aff0 holds 16 vCPUs, then Aff1
    assert harness.vcpu_mpidr(17) == 0x80000101
    assert harness.vcpu_mpidr(0x1234) == 0x80012304  # Aff0 bits 3:0, Aff1 11:4, Aff2 19:12
    with pytest.raises(ValueError):
        harness.vcpu_mpidr(1 << 20)


def test_mpidr_packing_in_the_attribute():
    # Aff3 (MPIDR bits 39:32) goes to attr bits 63:56, Aff2..Aff0 to 55:32; bit 31 dropped
    assert harness.mpidr_affinity(0x12_8034_5678) == 0x1234_5678
    assert harness.redist_attr(0, 0x8) == 0x8
    assert harness.redist_attr(17, 0x10200) == 0x0000_0101_0001_0200
    assert harness.dist_attr(0x6140) == 0x6140
    with pytest.raises(ValueError):
        harness.v3_mpidr_attr(0, 1 << 32)


def test_sysreg_encoding():
    # ICC_CTLR_EL1 is op0=3 op1=0 CRn=12 CRm=12 op2=4
    assert harness.sysreg_instr(3, 0, 12, 12, 4) == 0xC664
    assert harness.sysreg_attr(0, "ICC_PMR_EL1") == 0xC230
    assert harness.sysreg_attr(1, "ICC_CTLR_EL1") == 1 << 32 | 0xC664
    assert harness.sysreg_attr(0, "ICC_AP1R3_EL1") == harness.sysreg_instr(3, 0, 12, 9, 3)
    assert all(harness.sysreg_attr(0, n) & 0xFFFF0000 == 0 for n in harness.ICC_SYSREGS)
    with pytest.raises(ValueError):
        harness.sysreg_instr(4, 0, 0, 0, 0)


def test_level_info_encoding():
    assert harness.level_info_attr(0, 32) == 32
    assert harness.level_info_attr(1, 0) == 1 << 32
    assert harness.level_info_attr(0, 32, info=1) == 1 << 10 | 32
    c = EXPECTED_CONSTANTS
    assert harness.level_info_attr(0, 0, info=0x3FFFFF) == c["KVM_DEV_ARM_VGIC_LINE_LEVEL_INFO_MASK"]
    with pytest.raises(ValueError):
        harness.level_info_attr(0, 1024)


def test_redist_region_value():
    v = harness.redist_region(0, harness.V3_REDIST_BASE, 3)
    assert v >> 52 == 3 and v & 0xFFF == 0 and v & ((1 << 52) - 1) & ~0xFFFF == harness.V3_REDIST_BASE
    with pytest.raises(ValueError):
        harness.redist_region(0, 0x1000, 1)  # not 64 KiB aligned


def test_v3_setup_reuses_gic_setup_and_adds_the_its():
    assert harness.v3_setup() == harness.gic_setup(3)
    ops = harness.v3_setup(3, its=True, redist_region_attr=True)
    lines = [op.line() for op in ops]
    assert lines[:4] == ["vm 0x0", "vcpus 0x3", "vcpu_init", "device v3"]
    assert "set64 0x0 ADDR 0x5 0x300000080a0000" in lines  # count 3, base, index 0
    assert lines[-4:] == ["ctrl 0x0 INIT", "device its", "set64 0x1 ADDR 0x4 0x8080000",
                          "ctrl 0x1 INIT"]
    assert harness.v3_setup(init=False, its=True)[-1].line() == "set64 0x1 ADDR 0x4 0x8080000"
    assert harness.v3_setup(its=True, its_init=False)[-1].name == "set64"


def test_probe_battery_programs_render_and_stand_alone():
    from models.kernel import probes_v3
    probes = probes_v3.battery()
    keys = [p.key for p in probes]
    assert len(keys) == len(set(keys))
    for letter in "abcdefghijl":
        assert any(k.startswith(letter) for k in keys), letter
    for p in probes:
        assert p.ops[0].line() == "vm 0x0", p.key  # a fresh VM for every probe
        assert p.steps, p.key
    render_batch([p.ops for p in probes])  # every operand can be written


def test_probe_values_and_discovery_parsing():
    from models.kernel import probes_v3
    assert probes_v3.with_revision(0x4B00343B, 2) == 0x4B00243B
    f = probes_v3.decode_icc_ctlr(0x8C00)
    assert (f["PRIbits"], f["IDbits"], f["A3V"], f["SEIS"]) == (4, 1, 1, 0)
    # the written-back values follow what the kernel read
    d = probes_v3.Discovered(gicd_iidr=0x4B00243B, gicd_typer2=0x100)
    probes = {p.key: p for p in probes_v3.battery(d)}
    assert probes["a2"].steps[6].op.args[-1] == 0x4B00243B  # "set GICD_IIDR = as read"
    assert probes["c.after.same"].steps[0].op.args[-1] == 0x100
    assert probes["c.after.nassgi"].steps[0].op.args[-1] == 0
    out = parse_output("gicproof-guest ready\n" + "".join(
        f"R 0 {i} {t}\n" for i, t in enumerate(
            ["ok"] * (len(probes_v3.discovery_programs()[0]) - 4)
            + ["0x4b00243b", "0x0", "0x8c00", "EINVAL"], 1)))
    res = harness.BatchResult(kernel=None, gic=3, programs=[out.results[0]], uname_r="",  # type: ignore[arg-type]
                              constants={}, dmesg=[], boot_seconds=0, total_seconds=0,
                              ioctls=0, ioctl_ns=0)
    got = probes_v3.parse_discovery(res)
    assert (got.gicd_iidr, got.icc_ctlr) == (0x4B00243B, 0x8C00)
    assert got.gits_iidr == probes_v3.Discovered().gits_iidr  # an error keeps the default


def test_probe_table_and_markdown_side_by_side():
    from models.kernel import probes_v3
    from models.kernel.harness import Result
    probes = probes_v3.battery()[:2]

    def fake(label: str, text: str) -> probes_v3.KernelRun:
        res = [[Result(i, j + 1, "ok" if j < len(p.setup) else text) for j in range(len(p.ops))]
               for i, p in enumerate(probes)]
        return probes_v3.KernelRun(label, f"{label}-arm64", f"{label}: manifest", probes_v3.Discovered(),
                                   probes, res)

    runs = [fake("5.10", "EBUSY"), fake("sid", "0x0")]
    table = probes_v3.format_table(runs)
    assert "[a1] DIST_REGS before CTRL_INIT" in table and "EBUSY" in table and "0x0" in table
    md = probes_v3.format_markdown(runs, {"a1": "differs"})
    assert "**Reading:** differs" in md and "| 5.10 | 5.10: manifest | 5.10-arm64 |" in md
    assert "**≠**" in md


def test_cpio_archive_layout():
    data = harness._cpio_newc([("init", 0o100755, b"#!/bin/sh\n", 0),
                               ("dev/console", 0o020600, b"", (5 << 8) | 1)])
    assert data.startswith(b"070701") and len(data) % 4 == 0
    assert b"init\0" in data and b"dev/console\0" in data and data.rstrip(b"\0").endswith(b"TRAILER!!!")
    # the console's rdev major/minor fields (headers are 13 8-digit hex fields after the magic)
    second = data.index(b"070701", 6)
    fields = [int(data[second + 6 + 8 * i: second + 14 + 8 * i], 16) for i in range(13)]
    assert fields[1] == 0o020600 and (fields[9], fields[10]) == (5, 1)


def test_missing_kernel_is_a_clear_error(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    with pytest.raises(KernelOracleError, match="install-parts.sh"):
        harness.find_kernel("6.12")
    assert harness.main(["--kernel", "6.12", "--probe"]) == 2
    err = capsys.readouterr().err
    assert "Traceback" not in err and ("is not in the cache" in err or "not installed" in err)


# ---------------------------------------------------------------------------------------
# One boot of a real kernel.

KERNEL = os.environ.get("GICPROOF_KERNEL", "6.12")
DIST = "DIST_REGS"


@pytest.fixture(scope="module")
def gicv2_boot():
    if not shutil.which(harness.QEMU):
        pytest.skip(f"{harness.QEMU} is not installed (models/kernel/install-parts.sh installs it)")
    programs = [
        # 0: the first measurement, then round trips and refusals on an initialised device
        harness.gic_setup(2) + [
            Op.get(0, DIST, 0x008),                         # 1  GICD_IIDR
            Op.get(0, DIST, 0x004),                         # 2  GICD_TYPER
            Op.set(0, DIST, 0x104, 0x5),                    # 3  GICD_ISENABLER1 = 0x5
            Op.get(0, DIST, 0x104),                         # 4
            Op.set(0, DIST, 0x184, 0x1),                    # 5  GICD_ICENABLER1 = 0x1
            Op.get(0, DIST, 0x104),                         # 6
            Op.set(0, DIST, v2_attr(0, 0x200), 1 << 3),     # 7  GICD_ISPENDR0 bit 3, vCPU 0
            Op.get(0, DIST, v2_attr(0, 0x200)),             # 8
            Op.get(0, DIST, v2_attr(0, 0xF10)),             # 9  GICD_CPENDSGIR0
            Op.has(0, DIST, 0xFFC),                         # 10 no register at 0xFFC
            Op.get(0, DIST, 0xFFC),                         # 11
            Op.get(0, DIST, v2_attr(2, 0x200)),             # 12 vCPU 2 of 2
            Op.set(0, "NR_IRQS", 0, 128),                   # 13 after INIT
            Op.irq("SPI", 0, 40, 1),                        # 14 KVM_IRQ_LINE SPI 40
            Op.get(0, DIST, 0x204),                         # 15 GICD_ISPENDR1
            Op.get(0, DIST, v2_attr(1, 0x800)),             # 16 GICD_ITARGETSR0, vCPU 1
        ],
        # 1: before INIT
        harness.gic_setup(2, init=False)[:-1] + [
            Op.set(0, "NR_IRQS", 0, 100),                   # not a multiple of 32
            Op.get(0, DIST, 0x104),                         # a register access initialises
            Op.set(0, "NR_IRQS", 0, 128),
            Op.get(0, "NR_IRQS", 0),
        ],
        # 2: device kinds on a GICv2 host
        [Op.vm(), Op.vcpus(2), Op.vcpu_init(), Op.test_device("v3"), Op.device("v2"),
         Op.device("v2")],
    ]
    try:
        return harness.run_batch(KERNEL, 2, programs)
    except KernelOracleError as e:
        pytest.fail(f"kernel oracle: {e}", pytrace=False)


def _after_setup(res, program: int, n: int):
    setup = len(harness.gic_setup(2))
    assert all(r.ok for r in res[program][:setup]), res[program][:setup]
    return res[program][setup + n - 1]


@pytest.mark.kernel
def test_kernel_reports_its_release_and_constants(gicv2_boot):
    assert gicv2_boot.uname_r == gicv2_boot.kernel.uname_r
    assert check_constants(gicv2_boot.constants) == []


@pytest.mark.kernel
def test_kernel_gicv2_identification(gicv2_boot):
    iidr = _after_setup(gicv2_boot, 0, 1).value
    assert iidr is not None
    assert iidr >> 24 == PRODUCT_ID_KVM and iidr & 0xFFF == IMPLEMENTER_ARM
    model = VERSIONS.get(KERNEL)
    if model is not None:
        assert iidr == model.iidr(), f"{KERNEL}: kernel {iidr:#x}, model {model.iidr():#x}"
    typer = _after_setup(gicv2_boot, 0, 2).value
    assert typer is not None
    assert typer & 0x1F == 128 // 32 - 1  # ITLinesNumber
    assert (typer >> 5) & 0x7 == 2 - 1  # CPUNumber: 2 vCPUs


@pytest.mark.kernel
def test_kernel_gicv2_round_trips(gicv2_boot):
    r = [_after_setup(gicv2_boot, 0, n) for n in range(1, 17)]
    assert r[2].text == "ok" and r[3].value == 0x5
    assert r[4].text == "ok" and r[5].value == 0x4
    assert r[6].text == "ok" and r[7].value == 1 << 3
    # SGI 3 made pending from userspace on vCPU 0 has vCPU 0 as its source (5.7+ uaccess)
    assert r[8].value == 0x01 << 24
    assert r[13].text == "ok" and r[14].value == 1 << (40 - 32)
    assert r[15].value == 0x02020202  # SGIs/PPIs target their own CPU (vCPU 1)


@pytest.mark.kernel
def test_kernel_gicv2_refusals(gicv2_boot):
    r = [_after_setup(gicv2_boot, 0, n) for n in range(1, 17)]
    assert r[9].errno == "ENXIO"  # KVM_HAS_DEVICE_ATTR: no register at 0xFFC
    assert r[10].value == 0  # ...but a userspace read of an unknown offset reads as zero
    assert r[11].errno == "EINVAL"  # vCPU index out of range
    assert r[12].errno == "EBUSY"  # the interrupt count is fixed once initialised
    before = gicv2_boot[1][-4:]
    assert before[0].errno == "EINVAL"
    assert before[1].value == 0 and before[2].errno == "EBUSY" and before[3].value == 256
    kinds = gicv2_boot[2]
    assert kinds[3].errno == "ENODEV" and kinds[4].text == "ok" and kinds[5].errno == "EEXIST"


@pytest.mark.kernel
def test_kernel_without_el2_is_a_clear_error(gicv2_boot):
    """Booted at EL1 (virtualization=off) the guest has no KVM: the harness says so."""
    with pytest.raises(KernelOracleError, match="has no /dev/kvm"):
        harness.run_batch(KERNEL, 2, [[Op.vm()]], virtualization=False)


# ---------------------------------------------------------------------------------------
# GICv3 differences between the kernels (models/kernel/probes_v3.py has the whole battery;
# /work/notes/gicv3-oracle.md the observations). One boot per cached kernel, gic-version=3.

V3_KERNELS = ("5.10", "6.1", "6.12", "sid")


def _v3_programs() -> list[list[Op]]:
    from models.kernel.harness import redist_attr, v3_setup
    r = "REDIST_REGS"
    return [
        # 0: before CTRL_INIT
        v3_setup(init=False) + [
            Op.get(0, DIST, 0x008),                          # 1 GICD_IIDR
            Op.get(0, DIST, 0x00C),                          # 2 GICD_TYPER2
            Op.get(0, DIST, 0x000),                          # 3 GICD_CTLR
            Op.ctrl(0, "SAVE_PENDING_TABLES"),               # 4
        ],
        # 1: after CTRL_INIT, 2 vCPUs
        v3_setup() + [
            Op.get(0, DIST, 0x008),                          # 1 GICD_IIDR
            Op.get(0, r, redist_attr(0, 0x0)),               # 2 GICR_CTLR
            Op.get(0, r, redist_attr(0, 0x8)),               # 3 GICR_TYPER vCPU 0
            Op.get(0, r, redist_attr(1, 0x8)),               # 4 GICR_TYPER vCPU 1 (the last)
            Op.set(0, DIST, 0x008, 0x4B00343B),              # 5 IIDR Revision 3
            Op.set(0, DIST, 0x008, 0x4B00243B),              # 6 IIDR Revision 2
            Op.get(0, DIST, 0x008),                          # 7
            Op.get(0, r, redist_attr(0, 0x0)),               # 8 GICR_CTLR at Revision 2
            Op.set(0, DIST, 0x00C, 0x100),                   # 9 GICD_TYPER2.nASSGIcap
        ],
    ]


@pytest.fixture(scope="module")
def v3_boots():
    if not shutil.which(harness.QEMU):
        pytest.skip(f"{harness.QEMU} is not installed (models/kernel/install-parts.sh installs it)")
    return {}


def _v3_boot(boots: dict, label: str):
    if label not in boots:
        if label not in {k.label for k in harness.list_kernels()}:
            pytest.skip(f"kernel {label} is not cached (models/kernel/install-parts.sh)")
        try:
            boots[label] = harness.run_batch(label, 3, _v3_programs())
        except KernelOracleError as e:
            pytest.fail(f"kernel oracle ({label}): {e}", pytrace=False)
    res = boots[label]
    for i, prog in enumerate(_v3_programs()):
        setup = len(prog) - (4 if i == 0 else 9)
        assert all(r.ok for r in res[i][:setup]), (label, res[i][:setup])
    return [res[0][-4:], res[1][-9:]]


@pytest.mark.kernel
@pytest.mark.parametrize("label", V3_KERNELS)
def test_kernel_v3_iidr_revision_and_gicr_typer_last(v3_boots, label):
    """GICD_IIDR Revision 2 on 5.10 (Revision 3 refused), 3 from 6.1 (KVM_VGIC_IMP_REV_3:
    GICR_CTLR.{IR,CES} read as set; Revision 2 may be restored, and hides them);
    GICR_TYPER.Last reported to userspace from 6.1 (5.10 has 23bde34771f1 'Drop the
    reporting of GICR_TYPER.Last for userspace'; 28e9d4bce3be restored it in 5.13)."""
    _, after = _v3_boot(v3_boots, label)
    iidr, ctlr, typer0, typer1, set3, set2, iidr2, ctlr2, typer2 = after
    assert typer0.value == 0x0  # vCPU 0: processor 0, not the last
    if label == "5.10":
        assert iidr.value == 0x4B00243B and ctlr.value == 0x0
        assert typer1.value == 0x100  # processor 1, no Last bit
        assert set3.errno == "EINVAL"
    else:
        assert iidr.value == 0x4B00343B and ctlr.value == 0x6  # CES | IR
        assert typer1.value == 0x110  # processor 1, Last
        assert set3.text == "ok"
    assert set2.text == "ok" and iidr2.value == 0x4B00243B and ctlr2.value == 0x0
    assert typer2.errno == ("EBUSY" if label == "sid" else "EINVAL")


@pytest.mark.kernel
@pytest.mark.parametrize("label", V3_KERNELS)
def test_kernel_v3_before_ctrl_init(v3_boots, label):
    """Before CTRL_INIT every GICv3 register access is EBUSY up to 6.12; the newer kernel
    (reg_allowed_pre_init() in vgic-kvm-device.c) lets GICD_IIDR and GICD_TYPER2 through.
    SAVE_PENDING_TABLES before INIT succeeds on 5.10 only (ENXIO from 6.1)."""
    before, _ = _v3_boot(v3_boots, label)
    iidr, typer2, ctlr, save = before
    assert ctlr.errno == "EBUSY"
    if label == "sid":
        assert iidr.value == 0x4B00343B and typer2.value == 0x0
    else:
        assert iidr.errno == "EBUSY" and typer2.errno == "EBUSY"
    assert save.text == ("ok" if label == "5.10" else "ENXIO")


@pytest.mark.kernel
def test_qemu_gicv3_irouter_stride_loses_the_upper_spis_on_a_real_kernel():
    """QEMU's kvm_arm_gicv3_get/put walk GICD_IROUTER at 'GICD_IROUTER + (sizeof(uint32_t) * i)'
    and '+ 4' (4 bytes per interrupt; the register has 8), so with 64 interrupts they reach
    the routes of SPIs 32..64/2 only, and SPI 33 upward keeps the destination's route.
    The model says so (spec/sequences/gicv3/qemu-current-7.1-fresh.toml, mpidr@spi); here
    the real kernel: a source VM routes SPIs 32 and 33 to vCPU 1, QEMU's reads are replayed
    on it, its words written at the same offsets into a fresh VM, and the routes read back."""
    if not shutil.which(harness.QEMU):
        pytest.skip(f"{harness.QEMU} is not installed (models/kernel/install-parts.sh installs it)")
    from spec.gicv3 import GICV3

    irqs = 64
    offsets = [w for i in range(32, irqs) for w in (0x6000 + 4 * i, 0x6000 + 4 * i + 4)]
    # the model's own strided walk reaches the same words
    reg = GICV3.register("GICD_IROUTER")
    model_words = {reg.offset + 4 * w for r, w in GICV3.strided_words(reg, 4, irqs) if r is reg}
    assert model_words == {o for o in offsets if o >= 0x6100}
    setup = harness.v3_setup(vcpus=2, nr_irqs=irqs)
    source = setup + [Op.set(0, DIST, 0x6100, 1), Op.set(0, DIST, 0x6108, 1)] + \
        [Op.get(0, DIST, o) for o in offsets]
    res = harness.run_batch(KERNEL, 3, [source])[0]
    saved = [r.value for r in res[len(setup) + 2:]]
    assert all(v is not None for v in saved), [str(r) for r in res]
    dest = setup + [Op.set(0, DIST, o, v) for o, v in zip(offsets, saved, strict=True)] + \
        [Op.get(0, DIST, 0x6100), Op.get(0, DIST, 0x6108)]
    back = harness.run_batch(KERNEL, 3, [dest])[0]
    assert [r.value for r in back[-2:]] == [1, 0]   # SPI 32 keeps vCPU 1, SPI 33 falls back to vCPU 0


def _its_tables_program(memory_first: bool) -> tuple[list[Op], int]:
    """A VM with a GICv3 and an ITS whose tables (one collection on vCPU 1, one device with
    one event translated to LPI 8192, which is pending) are written into guest RAM before or
    after KVM_DEV_ARM_ITS_RESTORE_TABLES; then the table images are zeroed and
    KVM_DEV_ARM_ITS_SAVE_TABLES writes back whatever the ITS holds. Returns the program and
    the index of its first peek."""
    from models.kernel.probes_v3 import (
        BASER_CT,
        BASER_DT,
        CBASER,
        ITS_CT,
        ITS_DT,
        PENDBASE,
        PROPBASE,
        RAM,
        RAM_SIZE,
    )

    itt = RAM + 0x70000
    cte = 1 << 63 | 1 << 16 | 0                    # Valid, RDBase = vCPU 1, ICID 0
    dte = 1 << 63 | (itt >> 8) << 5 | 1            # Valid, ITT address, 2 EventID bits
    ite = 8192 << 16 | 0                           # pINTID 8192, ICID 0
    memory = [Op.poke(ITS_CT, cte), Op.poke(ITS_DT, dte), Op.poke(itt, ite),
              Op.poke(PROPBASE, 0xA1), Op.poke(PENDBASE + 8192 // 8, 1)]
    r, it = "REDIST_REGS", "ITS_REGS"
    regs = [Op.set(0, r, harness.redist_attr(0, 0x70), PROPBASE | 1 << 10 | 3 << 7 | 15, 64),
            Op.set(0, r, harness.redist_attr(1, 0x78), PENDBASE | 1 << 10 | 3 << 7, 64),
            Op.set(1, it, 0x80, CBASER, 64), Op.set(1, it, 0x100, BASER_DT, 64), Op.set(1, it, 0x108, BASER_CT, 64)]
    restore = [Op.ctrl(1, "ITS_RESTORE_TABLES")]
    body = regs + (memory + restore if memory_first else restore + memory)
    prog = harness.v3_setup(vcpus=2, nr_irqs=64, its=True) + [Op.mem(RAM, RAM_SIZE)] + body + \
        [Op.poke(ITS_CT, 0), Op.poke(ITS_DT, 0), Op.ctrl(1, "ITS_SAVE_TABLES"),
         Op.peek(ITS_CT), Op.peek(ITS_DT), Op.peek(PENDBASE + 8192 // 8)]
    return prog, len(prog) - 3


@pytest.mark.kernel
def test_its_tables_restored_before_guest_memory_are_lost_on_a_real_kernel():
    """spec/sequences/gicv3-its/memory-after-its-tables-7.1.toml: KVM_DEV_ARM_ITS_RESTORE_TABLES
    reads the tables from guest memory, so with the memory restored after it the mappings and
    the LPI's pending state are lost (cte_valid, dte_valid, ite_valid, lpi_pending: 1->0), and
    with the memory first they come back (kernel-documented-order-7.1.toml). On the real
    kernel: the ITS saves back the collection and device entries only when it restored them,
    and consumes the pending bit ('clear consumed data', vgic_v3_lpi_sync_pending_status)."""
    if not shutil.which(harness.QEMU):
        pytest.skip(f"{harness.QEMU} is not installed (models/kernel/install-parts.sh installs it)")
    good, at = _its_tables_program(memory_first=True)
    bad, at_bad = _its_tables_program(memory_first=False)
    res_good, res_bad = harness.run_batch(KERNEL, 3, [good, bad])
    assert all(r.ok for r in res_good[:at]) and all(r.ok for r in res_bad[:at_bad]), \
        ([str(r) for r in res_good], [str(r) for r in res_bad])
    cte, dte = 1 << 63 | 1 << 16, 1 << 63 | ((0x40000000 + 0x70000) >> 8) << 5 | 1
    assert [r.value for r in res_good[at:]] == [cte, dte, 0]      # mapped, and the pending bit consumed
    assert [r.value for r in res_bad[at_bad:]] == [0, 0, 1]       # nothing mapped, nothing consumed


@pytest.mark.kernel
def test_a_never_written_gits_cbaser_does_not_round_trip_on_a_real_kernel():
    """Every spec/sequences/gicv3-its file loses its_cbaser (computed): an ITS whose guest
    never wrote GITS_CBASER reads 0 (vgic_its_create leaves it zeroed), and writing that 0
    back stores the sanitised value, inner cacheability nCnB turned into RaWb
    (vgic_sanitise_its_cbaser -> vgic_sanitise_inner_cacheability), 0x1800000000000000."""
    if not shutil.which(harness.QEMU):
        pytest.skip(f"{harness.QEMU} is not installed (models/kernel/install-parts.sh installs it)")
    setup = harness.v3_setup(vcpus=1, nr_irqs=64, its=True)
    prog = setup + [Op.get(1, "ITS_REGS", 0x80, 64), Op.set(1, "ITS_REGS", 0x80, 0, 64),
                    Op.get(1, "ITS_REGS", 0x80, 64)]
    res = harness.run_batch(KERNEL, 3, [prog])[0]
    assert [r.text for r in res[len(setup):]] == ["0x0", "ok", "0x1800000000000000"], [str(r) for r in res]


@pytest.mark.kernel
def test_save_tables_after_the_collection_table_is_invalidated_on_a_real_kernel():
    """A GITS_BASER1 write with Valid clear frees every collection
    (vgic_mmio_write_its_baser -> vgic_its_free_collection_list), and vgic_its_free_collection
    leaves each event of the collection with 'ite->collection = NULL', which
    vgic_its_save_ite then dereferences ('ite->collection->collection_id'; the 5.10.223,
    6.1.176, 6.12.107 and 7.1.8 sources). The fuzzed invariant proof of gicv3-its reaches
    this state (its conjunct "a mapped event's collection is mapped" breaks on a BASER1
    write). On Debian 5.10.223 and 6.1.176 KVM_DEV_ARM_ITS_SAVE_TABLES then oopses
    (vgic_its_save_tables_v0 on the console; a guest can clear BASER1 itself, and QEMU saves
    the tables whenever the VM stops). Debian 6.12.117 and 7.2.13 return 0 and write a zero
    ITE (spec/gicv3.py its_save_unmapped_ite; gicproof conform gicv3-its models both).
    Run with GICPROOF_KERNEL=5.10 to see the oops (the boot fails, reported below)."""
    if not shutil.which(harness.QEMU):
        pytest.skip(f"{harness.QEMU} is not installed (models/kernel/install-parts.sh installs it)")
    prog, at = _its_tables_program(memory_first=True)
    itt, dt = 0x40070000, 0x40040000
    prog = prog[:at - 3] + [Op.set(1, "ITS_REGS", 0x108, 0, 64), Op.poke(itt, 0x1234), Op.poke(dt, 0),
                            Op.ctrl(1, "ITS_SAVE_TABLES"), Op.peek(itt), Op.peek(dt)]
    release = harness.find_kernel(KERNEL).version  # the Debian version, e.g. 6.12.117-1
    try:
        res = harness.run_batch(KERNEL, 3, [prog], timeout=120)[0]
    except harness.KernelOracleError as e:
        assert "vgic_its_save_tables_v0" in str(e), str(e)
        assert release.startswith(("5.10.", "6.1.")), (release, str(e))  # seen on 5.10.223 and 6.1.176
        return
    assert [r.text for r in res[-3:]] == ["ok", "0x0", hex(1 << 63 | (itt >> 8) << 5 | 1)], [str(r) for r in res]
