"""Real kernels' vCPU register lists (spec/cpregs/, models/kernel/reglist.py).

Without a boot: the index decoder against the UAPI encodings, and the shipped captures
checked (every index decodes to its recorded name and size, values as wide as the size
field says, the recorded sortedness of KVM's order true, the README's summary current).
With a boot (marked ``kernel``): a fresh capture on GICPROOF_KERNEL (default 6.12) against
the shipped file for that kernel.
"""

from __future__ import annotations

import copy
import os
import shutil
from pathlib import Path

import pytest

from models.kernel import reglist
from models.kernel.reglist import DecodeError, compare, compress_names, decode

CPREGS = Path(__file__).resolve().parent.parent / "spec" / "cpregs"
SHIPPED = sorted(CPREGS.glob("*.json"))


def _shipped() -> list[dict]:
    return [reglist.load(p) for p in SHIPPED]


# ---------------------------------------------------------------------------------------
# Decoding.


@pytest.mark.parametrize("index, name, cls, size, kind", [
    # KVM_REG_ARM64 | KVM_REG_SIZE_U64 | KVM_REG_ARM_CORE | KVM_REG_ARM_CORE_REG(...)
    (0x6030000000100000, "regs.regs[0]", "core", 64, "core"),
    (0x603000000010003C, "regs.regs[30]", "core", 64, "core"),
    (0x603000000010003E, "regs.sp", "core", 64, "core"),
    (0x6030000000100040, "regs.pc", "core", 64, "core"),
    (0x6030000000100042, "regs.pstate", "core", 64, "core"),
    (0x6030000000100044, "sp_el1", "core", 64, "core"),
    (0x6030000000100046, "elr_el1", "core", 64, "core"),
    (0x6030000000100050, "spsr[4]", "core", 64, "core"),
    # fp_regs at byte 336 (16-byte aligned), word 84 = 0x54
    (0x6040000000100054, "fp_regs.vregs[0]", "core", 128, "core"),
    (0x60400000001000D0, "fp_regs.vregs[31]", "core", 128, "core"),
    (0x60200000001000D4, "fp_regs.fpsr", "core", 32, "core"),
    (0x60200000001000D5, "fp_regs.fpcr", "core", 32, "core"),
    # ARM64_SYS_REG(op0, op1, CRn, CRm, op2)
    (0x603000000013C080, "SCTLR_EL1", "sysreg", 64, "state"),
    (0x603000000013C020, "ID_AA64PFR0_EL1", "sysreg", 64, "id"),
    (0x603000000013C01B, "S3_0_C0_C3_3", "sysreg", 64, "id"),  # unallocated ID space
    (0x603000000013C102, "TCR_EL1", "sysreg", 64, "state"),
    (0x6030000000138004, "DBGBVR0_EL1", "sysreg", 64, "state"),
    (0x603000000013807F, "DBGWCR15_EL1", "sysreg", 64, "state"),
    (0x603000000013DF40, "PMEVCNTR0_EL0", "sysreg", 64, "state"),
    (0x603000000013DF7E, "PMEVTYPER30_EL0", "sysreg", 64, "state"),
    (0x603000000013DF7F, "PMCCFILTR_EL0", "sysreg", 64, "state"),
    # the virtual timer as the UAPI defines it (CVAL and CNT swapped)
    (0x603000000013DF19, "CNTV_CTL_EL0", "sysreg", 64, "timer"),  # KVM_REG_ARM_TIMER_CTL
    (0x603000000013DF02, "CNTV_CVAL_EL0", "sysreg", 64, "timer"),  # KVM_REG_ARM_TIMER_CVAL
    (0x603000000013DF1A, "CNTVCT_EL0", "sysreg", 64, "counter"),  # KVM_REG_ARM_TIMER_CNT
    (0x603000000013DF01, "CNTPCT_EL0", "sysreg", 64, "counter"),  # KVM_REG_ARM_PTIMER_CNT
    (0x603000000013DF12, "CNTP_CVAL_EL0", "sysreg", 64, "timer"),  # KVM_REG_ARM_PTIMER_CVAL
    (0x603000000013FFFF, "S3_7_C15_C15_7", "sysreg", 64, "state"),  # no name: the S form
    # KVM_REG_ARM_FW_REG(r), KVM_REG_ARM_FW_FEAT_BMAP_REG(r)
    (0x6030000000140000, "PSCI_VERSION", "firmware", 64, "firmware"),
    (0x6030000000140003, "SMCCC_ARCH_WORKAROUND_3", "firmware", 64, "firmware"),
    (0x6030000000160000, "STD_BMAP", "firmware-bitmap", 64, "firmware"),
    (0x6030000000160003, "VENDOR_HYP_BMAP_2", "firmware-bitmap", 64, "firmware"),
    # KVM_REG_ARM_DEMUX | KVM_REG_ARM_DEMUX_ID_CCSIDR | CSSELR value, KVM_REG_SIZE_U32
    (0x6020000000110000, "CCSIDR_EL1[L1D]", "demux", 32, "id"),
    (0x6020000000110003, "CCSIDR_EL1[L2I]", "demux", 32, "id"),
    # KVM_REG_ARM64_SVE_ZREG(n, i), _PREG(n, i), _FFR(i), _VLS
    (0x6080000000150000 | 31 << 5 | 1, "SVE_ZREG(31,1)", "sve", 2048, "sve"),
    (0x6050000000150400 | 15 << 5, "SVE_PREG(15,0)", "sve", 256, "sve"),
    (0x6050000000150600, "SVE_FFR(0)", "sve", 256, "sve"),
    (0x606000000015FFFF, "SVE_VLS", "sve", 512, "sve"),
])
def test_decode(index, name, cls, size, kind):
    d = decode(index)
    assert (d.name, d.cls, d.size, d.kind) == (name, cls, size, kind)
    assert d.hex == f"0x{index:016x}"


@pytest.mark.parametrize("index, why", [
    (0x7030000000100000, "architecture"),  # not KVM_REG_ARM64
    (0x6030000010100000, "bits 51:28"),  # an unused bit
    (0x6030000000120000, "unknown register class"),  # KVM_REG_ARM_VFP is 32-bit Arm only
    (0x6030000000100001, "no core register"),  # the upper half of regs.regs[0]
    (0x6040000000100000, "size 128, not 64"),  # regs.regs[0] as 128 bits
    (0x6030000000100054, "size 64, not 128"),  # a V register as 64 bits
    (0x602000000013C080, "size 32, not 64"),  # a system register as 32 bits
    (0x6030000000110000, "size 64, not 32"),  # CCSIDR as 64 bits
    (0x6020000000110100, "demux id"),  # a demux id other than CCSIDR
    (0x6030000000140004, "unknown firmware register"),
    (0x6030000000160004, "unknown firmware bitmap"),
    (0x6050000000150700, "unknown SVE register"),  # P register 24
    (0x6030000000150000, "size 64, not 2048"),
])
def test_decode_refuses(index, why):
    with pytest.raises(DecodeError, match=why):
        decode(index)


def test_core_layout_is_struct_kvm_regs():
    """75 core registers, every 64-bit one at an even word, nothing overlapping, the last
    (fpcr) ending where struct user_fpsimd_state's reserved words start."""
    layout = reglist.CORE_REGS
    assert len(layout) == 31 + 3 + 2 + 5 + 32 + 2
    covered: set[int] = set()
    for off, (_, bits) in layout.items():
        words = set(range(off, off + bits // 32))
        assert not words & covered
        covered |= words
        assert off % (bits // 32) == 0  # naturally aligned
    assert max(covered) == 0xD5


def test_compress_names():
    assert compress_names(["DBGBVR0_EL1", "DBGBVR1_EL1", "DBGBVR2_EL1", "SCTLR_EL1",
                           "DBGBVR5_EL1", "CCSIDR_EL1[L2I]", "CCSIDR_EL1[L3D]",
                           "fp_regs.vregs[0]", "fp_regs.vregs[1]", "SVE_ZREG(0,0)",
                           "SVE_ZREG(1,0)", "SVE_VLS", "ID_AA64PFR0_EL1", "PIR_EL1",
                           "TCR_EL1", "TCR_EL2"]) == [
        "DBGBVR0..2_EL1", "DBGBVR5_EL1", "SCTLR_EL1", "CCSIDR_EL1[L2I L3D]",
        "fp_regs.vregs[0..1]", "SVE_ZREG(0..1,0)", "SVE_VLS", "ID_AA64PFR0_EL1", "PIR_EL1",
        "TCR_EL1", "TCR_EL2"]


def test_changed_fields():
    assert reglist.changed_fields("0x0000000010305409", "0x0000000010305009") == [
        "bits 11:8: 0x4 -> 0x0"]
    assert reglist.changed_fields("0x00", "0x00") == []


def test_parse_features():
    assert reglist.parse_features("none") == []
    assert reglist.parse_features("pmu_v3,psci_0_2,3") == [2, 3]
    with pytest.raises(ValueError, match="unknown vCPU feature"):
        reglist.parse_features("sve2")


# ---------------------------------------------------------------------------------------
# The shipped captures.


def test_one_capture_per_cached_kernel_label():
    labels = [d["kernel"]["label"] for d in _shipped()]
    assert sorted(labels) == sorted(["5.10", "6.1", "6.12", "sid"])
    for p, d in zip(SHIPPED, _shipped(), strict=True):
        assert p.name == f"linux-{d['kernel']['version'].split('-')[0]}.json"


@pytest.mark.parametrize("path", SHIPPED, ids=lambda p: p.name)
def test_shipped_capture_checks(path):
    data = reglist.load(path)
    assert reglist.check(data) == []
    # what the README says of every capture
    assert data["vcpu"]["features"] == [] and data["vcpu"]["vcpu_id"] == 0
    assert data["vcpu"]["preferred_target_name"] == "KVM_ARM_TARGET_GENERIC_V8"
    assert data["qemu"]["cpu"].startswith("max") and "virtualization=on" in data["qemu"]["machine"]
    assert data["kvm_order_sorted"] is False
    regs = data["registers"]
    # kvm_arm_copy_reg_indices (arch/arm64/kvm/guest.c): the core registers first, in
    # struct kvm_regs order, then the firmware registers, then the system registers
    assert [r["name"] for r in regs[:75]] == [n for _, (n, _) in sorted(reglist.CORE_REGS.items())]
    assert all(r["class"] in ("firmware", "firmware-bitmap") for r in regs[75:75 + 4])
    assert all("value" in r for r in regs), [r for r in regs if "value" not in r]


def test_kvm_orders_system_registers_by_architectural_encoding_on_7_2():
    """On 7.2 KVM lists its system registers in the order of their architectural encodings
    (its sys_reg_descs table is sorted so): with the UAPI's swapped virtual-timer indexes
    read back as their architectural encodings (the decoder's names) the order is sorted,
    and the indexes themselves are not. On 5.10 to 6.12 the timer registers come first."""
    caps = {d["kernel"]["label"]: d for d in _shipped()}
    swap = {(3, 3, 14, 0, 2): (3, 3, 14, 3, 2), (3, 3, 14, 3, 2): (3, 3, 14, 0, 2)}

    def sysregs(label):
        return [int(r["index"], 16) for r in caps[label]["registers"] if r["class"] == "sysreg"]

    arch = [swap.get(e, e) for e in map(reglist.sysreg_fields, sysregs("sid"))]
    assert arch == sorted(arch) and sysregs("sid") != sorted(sysregs("sid"))
    for label in ("5.10", "6.1", "6.12"):
        first = [r["kind"] for r in caps[label]["registers"] if r["class"] == "sysreg"][:3]
        assert set(first) <= {"timer", "counter"}


def test_check_catches_corrupted_captures():
    data = reglist.load(SHIPPED[0])
    assert reglist.check(data) == []

    def broken(change) -> list[str]:
        d = copy.deepcopy(data)
        change(d)
        return reglist.check(d)

    def resize(d):
        d["registers"][0]["size"] = 32

    def rename(d):
        d["registers"][100]["name"] = "SCTLR_EL2"

    def narrow(d):
        d["registers"][0]["value"] = "0x0"

    def sort(d):
        d["registers"].sort(key=lambda r: int(r["index"], 16))

    def drop(d):
        del d["registers"][5]

    def undecodable(d):
        d["registers"][3]["index"] = "0x7030000000100006"

    def twice(d):
        d["registers"][1] = dict(d["registers"][0])
        d["kvm_order_sorted"] = False

    def neither(d):
        del d["registers"][7]["value"]

    assert any("size" in m for m in broken(resize))
    assert any("name 'SCTLR_EL2'" in m for m in broken(rename))
    assert any("is not 64 bits" in m for m in broken(narrow))
    assert any("kvm_order_sorted" in m for m in broken(sort))
    assert any("count" in m for m in broken(drop))
    assert any("architecture" in m for m in broken(undecodable))
    assert any("twice" in m for m in broken(twice))
    assert any("neither a value nor an errno" in m for m in broken(neither))


def test_compare_and_summary_on_the_shipped_captures():
    caps = {d["kernel"]["label"]: d for d in _shipped()}
    c = compare(caps["6.12"], caps["sid"])
    assert [r["name"] for r in c.only_a] == ["TCR2_EL1", "PIRE0_EL1", "PIR_EL1"]  # by index
    assert [r["name"] for r in c.only_b] == ["VENDOR_HYP_BMAP_2"]
    # 5.10 lists the PMU registers without KVM_ARM_VCPU_PMU_V3; later kernels hide them
    c = compare(caps["5.10"], caps["6.1"])
    assert len(c.only_a) == 74 and all(r["name"].startswith("PM") for r in c.only_a)
    # the ID registers of one emulated CPU still differ between kernels
    assert "ID_AA64DFR0_EL1" in {a["name"] for a, _ in c.differ}


def test_readme_summary_is_current():
    """spec/cpregs/README.md holds `reglist summary` of the shipped files verbatim."""
    readme = (CPREGS / "README.md").read_text()
    start, end = reglist.SUMMARY_BEGIN, reglist.SUMMARY_END
    assert start in readme and end in readme
    shown = readme.split(start, 1)[1].split(end, 1)[0]
    assert shown == reglist.summary(_shipped()), (
        "regenerate with: python -m models.kernel.reglist summary --readme "
        "spec/cpregs/README.md spec/cpregs/*.json")


def test_cli_check_summary_and_decode(capsys):
    assert reglist.main(["check", *map(str, SHIPPED)]) == 0
    assert capsys.readouterr().out.count(": ok") == len(SHIPPED)
    assert reglist.main(["decode", "0x603000000013c080", "0x7"]) == 0
    out = capsys.readouterr().out
    assert "SCTLR_EL1" in out and "0x7:" in out


# ---------------------------------------------------------------------------------------
# One boot of a real kernel.

KERNEL = os.environ.get("GICPROOF_KERNEL", "6.12")


@pytest.mark.kernel
def test_capture_matches_the_shipped_list():
    from models.kernel import harness
    from models.kernel.harness import KernelOracleError
    if not shutil.which(harness.QEMU):
        pytest.skip(f"{harness.QEMU} is not installed (models/kernel/install-parts.sh installs it)")
    try:
        k = harness.find_kernel(KERNEL)
        fresh = reglist.capture(KERNEL)
    except KernelOracleError as e:
        pytest.fail(f"kernel oracle: {e}", pytrace=False)
    shipped = [d for d in _shipped() if d["kernel"]["label"] == k.label]
    assert len(shipped) == 1, f"no shipped capture for kernel label {k.label}"
    old = shipped[0]
    if old["kernel"]["version"] != fresh["kernel"]["version"]:
        pytest.skip(f"the cached {k.label} kernel is {fresh['kernel']['version']}, the shipped "
                    f"capture is of {old['kernel']['version']}: recapture (spec/cpregs/README.md)")
    assert reglist.check(fresh) == []
    assert fresh["kernel"]["uname_r"] == old["kernel"]["uname_r"]
    # the same indexes in the same order
    assert [r["index"] for r in fresh["registers"]] == [r["index"] for r in old["registers"]]
    # identification and firmware registers: equal values
    c = compare(old, fresh)
    fixed = [(a["name"], a.get("value"), b.get("value")) for a, b in c.differ
             if a["kind"] in ("id", "firmware")]
    assert fixed == []
