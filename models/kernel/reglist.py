"""A real kernel's vCPU register list (KVM_GET_REG_LIST) and values (KVM_GET_ONE_REG), as data.

This is the "real register lists from real kernels" part of issue 10: QEMU migrates an Arm
vCPU's registers as the (index, value) list KVM gives it, so the list each kernel gives is
the input of every question about migrating a vCPU between kernels.

**Capture.** ``capture(kernel)`` boots a cached Debian kernel with the oracle harness
(``models.kernel.harness``: QEMU TCG, ``-M virt,virtualization=on``, ``-cpu max``) and runs
one runner program (``models/kernel/runner.c``): ``cpuinfo`` (the emulated CPU as the guest
kernel sees it), KVM_CREATE_VM, ``target`` (KVM_ARM_PREFERRED_TARGET), one
KVM_CREATE_VCPU, KVM_ARM_VCPU_INIT with the requested feature bits (default: none), and
``reg_dump`` (KVM_GET_REG_LIST twice: the count, then the list; then KVM_GET_ONE_REG on
every index in KVM's order, sized by the index's KVM_REG_SIZE field). The result is a
JSON-ready dict (``FORMAT``); ``python -m models.kernel.reglist capture --kernel 6.12``
prints it. The shipped captures are spec/cpregs/*.json (spec/cpregs/README.md).

**Decoding.** ``decode(index)`` names an index from its KVM encoding alone. Every constant
below is from the arm64 UAPI header, arch/arm64/include/uapi/asm/kvm.h (Linux 5.10.223,
6.1.176, 6.12.107 and 7.1.8 agree on every one they define: KVM_REG_ARM_FW_FEAT_BMAP is
new in 6.1, KVM_REG_ARM_VENDOR_HYP_BMAP_2 after 6.12), and from
include/uapi/linux/kvm.h (KVM_REG_ARM64, KVM_REG_SIZE_*). System-register names come from
the A64 encodings (op0, op1, CRn, CRm, op2) of the Arm ARM (DDI 0487), as transcribed in
Linux 7.1.8 arch/arm64/tools/sysreg and arch/arm64/include/asm/sysreg.h, except the
virtual-timer registers, named as the UAPI header defines them (their indexes are
swapped relative to the architectural encodings). An unknown system register keeps the
S<op0>_<op1>_C<n>_C<m>_<op2> form.

**Comparing.** ``compare(a, b)`` gives the indexes only in each of two captures and the
registers whose values differ; ``summary(captures)`` renders that for every pair as
Markdown (``python -m models.kernel.reglist summary spec/cpregs/*.json``).

Standard library only (and the harness).
"""

from __future__ import annotations

import argparse
import json
import re
import sys
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from itertools import combinations
from pathlib import Path
from typing import Any

FORMAT = "gicproof-cpregs/1"

# ---------------------------------------------------------------------------------------
# The index encoding. include/uapi/linux/kvm.h:
#   #define KVM_REG_ARCH_MASK   0xff00000000000000ULL
#   #define KVM_REG_ARM64       0x6000000000000000ULL
#   #define KVM_REG_SIZE_SHIFT  52
#   #define KVM_REG_SIZE_MASK   0x00f0000000000000ULL   (size in bytes = 1 << field)
# arch/arm64/include/uapi/asm/kvm.h:
#   #define KVM_REG_ARM_COPROC_MASK   0x000000000FFF0000
#   #define KVM_REG_ARM_COPROC_SHIFT  16

KVM_REG_ARCH_MASK = 0xFF00_0000_0000_0000
KVM_REG_ARM64 = 0x6000_0000_0000_0000
KVM_REG_SIZE_SHIFT = 52
KVM_REG_SIZE_MASK = 0x00F0_0000_0000_0000
KVM_REG_ARM_COPROC_MASK = 0x0FFF_0000
KVM_REG_ARM_COPROC_SHIFT = 16
# Bits no arm64 index uses: between the size field and the coprocessor field.
UNUSED_MASK = 0x000F_FFFF_F000_0000

# Coprocessor (register class) numbers, arch/arm64/include/uapi/asm/kvm.h
KVM_REG_ARM_CORE = 0x0010  # "Normal registers are mapped as coprocessor 16"
KVM_REG_ARM_DEMUX = 0x0011
KVM_REG_ARM64_SYSREG = 0x0013
KVM_REG_ARM_FW = 0x0014
KVM_REG_ARM64_SVE = 0x0015
KVM_REG_ARM_FW_FEAT_BMAP = 0x0016

CLASS_NAMES = {
    KVM_REG_ARM_CORE: "core",
    KVM_REG_ARM_DEMUX: "demux",
    KVM_REG_ARM64_SYSREG: "sysreg",
    KVM_REG_ARM_FW: "firmware",
    KVM_REG_ARM64_SVE: "sve",
    KVM_REG_ARM_FW_FEAT_BMAP: "firmware-bitmap",
}

# KVM_REG_ARM_DEMUX: KVM_REG_ARM_DEMUX_ID_MASK 0xFF00 (shift 8), KVM_REG_ARM_DEMUX_ID_CCSIDR
# 0x00, KVM_REG_ARM_DEMUX_VAL_MASK 0xFF: the CSSELR_EL1 value selecting the cache.
DEMUX_ID_MASK, DEMUX_ID_SHIFT, DEMUX_ID_CCSIDR, DEMUX_VAL_MASK = 0xFF00, 8, 0x00, 0xFF

# KVM_REG_ARM64_SYSREG fields (op0 15:14, op1 13:11, CRn 10:7, CRm 6:3, op2 2:0)
SYSREG_FIELDS = (("op0", 14, 0x3), ("op1", 11, 0x7), ("crn", 7, 0xF), ("crm", 3, 0xF),
                 ("op2", 0, 0x7))

# KVM_REG_ARM_FW_REG(r): r in the low 16 bits, always KVM_REG_SIZE_U64
FW_REGS = {
    0: "PSCI_VERSION",  # KVM_REG_ARM_PSCI_VERSION
    1: "SMCCC_ARCH_WORKAROUND_1",  # KVM_REG_ARM_SMCCC_ARCH_WORKAROUND_1
    2: "SMCCC_ARCH_WORKAROUND_2",  # KVM_REG_ARM_SMCCC_ARCH_WORKAROUND_2
    3: "SMCCC_ARCH_WORKAROUND_3",  # KVM_REG_ARM_SMCCC_ARCH_WORKAROUND_3
}
# KVM_REG_ARM_FW_FEAT_BMAP_REG(r): r in the low 16 bits, always KVM_REG_SIZE_U64
FW_BMAP_REGS = {
    0: "STD_BMAP",  # KVM_REG_ARM_STD_BMAP (bit 0: TRNG v1.0)
    1: "STD_HYP_BMAP",  # KVM_REG_ARM_STD_HYP_BMAP (bit 0: PV_TIME)
    2: "VENDOR_HYP_BMAP",  # KVM_REG_ARM_VENDOR_HYP_BMAP (bit 0: FUNC_FEAT, bit 1: PTP)
    3: "VENDOR_HYP_BMAP_2",  # KVM_REG_ARM_VENDOR_HYP_BMAP_2 (7.x: DISCOVER_IMPL_VER/_CPUS)
}

# KVM_REG_ARM64_SVE: KVM_REG_ARM64_SVE_ZREG_BASE 0 (KVM_REG_SIZE_U2048), _PREG_BASE 0x400 and
# _FFR_BASE 0x600 (KVM_REG_SIZE_U256); register n in bits 9:5 (32 Z, 16 P), slice i in
# bits 4:0 (KVM_ARM64_SVE_MAX_SLICES 32); KVM_REG_ARM64_SVE_VLS is 0xffff (KVM_REG_SIZE_U512).
SVE_ZREG_BASE, SVE_PREG_BASE, SVE_FFR_BASE, SVE_VLS = 0x000, 0x400, 0x600, 0xFFFF

# ---------------------------------------------------------------------------------------
# Core registers: KVM_REG_ARM_CORE_REG(name) = offsetof(struct kvm_regs, name) / 4.
# struct kvm_regs (uapi asm/kvm.h) = { struct user_pt_regs regs; __u64 sp_el1; __u64
# elr_el1; __u64 spsr[KVM_NR_SPSR = 5]; struct user_fpsimd_state fp_regs; }, with
# user_pt_regs = { __u64 regs[31], sp, pc, pstate } and user_fpsimd_state =
# { __uint128_t vregs[32]; __u32 fpsr, fpcr; } (uapi asm/ptrace.h). The 16-byte alignment
# of __uint128_t puts fp_regs at byte 336 (after 328 bytes of 64-bit fields).


def _core_layout() -> dict[int, tuple[str, int]]:
    """offset (in 32-bit words) -> (name, size in bits)."""
    layout: dict[int, tuple[str, int]] = {}
    off = 0
    for n in range(31):
        layout[off] = (f"regs.regs[{n}]", 64)
        off += 2
    for name in ("regs.sp", "regs.pc", "regs.pstate", "sp_el1", "elr_el1"):
        layout[off] = (name, 64)
        off += 2
    for n in range(5):  # KVM_SPSR_EL1 (0), KVM_SPSR_ABT, _UND, _IRQ, KVM_SPSR_FIQ (4)
        layout[off] = (f"spsr[{n}]", 64)
        off += 2
    off = (off + 3) // 4 * 4  # __uint128_t alignment: 16 bytes = 4 words
    for n in range(32):
        layout[off] = (f"fp_regs.vregs[{n}]", 128)
        off += 4
    layout[off] = ("fp_regs.fpsr", 32)
    layout[off + 1] = ("fp_regs.fpcr", 32)
    return layout


CORE_REGS = _core_layout()

# ---------------------------------------------------------------------------------------
# System registers, (op0, op1, CRn, CRm, op2) -> name. Source of every line: the Arm ARM
# (DDI 0487) encoding as Linux 7.1.8 transcribes it in arch/arm64/tools/sysreg ("Sysreg
# NAME op0 op1 CRn CRm op2") or arch/arm64/include/asm/sysreg.h ("#define SYS_NAME
# sys_reg(op0, op1, CRn, CRm, op2)"), noted per line as [t] or [h]. Families with a
# number (debug breakpoints/watchpoints, PMU event counters) are computed in
# ``sysreg_name``. The table holds every register the shipped captures list and a few
# more that a VMM commonly asks about.

SYSREG_NAMES: dict[tuple[int, int, int, int, int], str] = {
    # debug (op0 = 2)
    (2, 0, 0, 2, 0): "MDCCINT_EL1",  # [t]
    (2, 0, 0, 2, 2): "MDSCR_EL1",  # [t]
    (2, 0, 1, 0, 4): "OSLAR_EL1",  # [t]
    (2, 0, 1, 1, 4): "OSLSR_EL1",  # [h]
    (2, 0, 1, 3, 4): "OSDLR_EL1",  # [h]
    (2, 0, 1, 4, 4): "DBGPRCR_EL1",  # [h]
    (2, 0, 7, 8, 6): "DBGCLAIMSET_EL1",  # [h]
    (2, 0, 7, 9, 6): "DBGCLAIMCLR_EL1",  # [h]
    (2, 0, 7, 14, 6): "DBGAUTHSTATUS_EL1",  # [h]
    (2, 3, 0, 1, 0): "MDCCSR_EL0",  # [h]
    (2, 3, 0, 4, 0): "DBGDTR_EL0",  # [h]
    (2, 3, 0, 5, 0): "DBGDTRRX_EL0",  # [h] (DBGDTRTX_EL0 on writes)
    (2, 4, 0, 7, 0): "DBGVCR32_EL2",  # [h]
    # identification (op0 = 3, op1 = 0, CRn = 0): the ID register space
    (3, 0, 0, 0, 0): "MIDR_EL1",  # [h]
    (3, 0, 0, 0, 5): "MPIDR_EL1",  # [h]
    (3, 0, 0, 0, 6): "REVIDR_EL1",  # [h]
    (3, 0, 0, 1, 0): "ID_PFR0_EL1",  # [t]
    (3, 0, 0, 1, 1): "ID_PFR1_EL1",  # [t]
    (3, 0, 0, 1, 2): "ID_DFR0_EL1",  # [t]
    (3, 0, 0, 1, 3): "ID_AFR0_EL1",  # [t]
    (3, 0, 0, 1, 4): "ID_MMFR0_EL1",  # [t]
    (3, 0, 0, 1, 5): "ID_MMFR1_EL1",  # [t]
    (3, 0, 0, 1, 6): "ID_MMFR2_EL1",  # [t]
    (3, 0, 0, 1, 7): "ID_MMFR3_EL1",  # [t]
    (3, 0, 0, 2, 0): "ID_ISAR0_EL1",  # [t]
    (3, 0, 0, 2, 1): "ID_ISAR1_EL1",  # [t]
    (3, 0, 0, 2, 2): "ID_ISAR2_EL1",  # [t]
    (3, 0, 0, 2, 3): "ID_ISAR3_EL1",  # [t]
    (3, 0, 0, 2, 4): "ID_ISAR4_EL1",  # [t]
    (3, 0, 0, 2, 5): "ID_ISAR5_EL1",  # [t]
    (3, 0, 0, 2, 6): "ID_MMFR4_EL1",  # [t]
    (3, 0, 0, 2, 7): "ID_ISAR6_EL1",  # [t]
    (3, 0, 0, 3, 0): "MVFR0_EL1",  # [t]
    (3, 0, 0, 3, 1): "MVFR1_EL1",  # [t]
    (3, 0, 0, 3, 2): "MVFR2_EL1",  # [t]
    (3, 0, 0, 3, 4): "ID_PFR2_EL1",  # [t]
    (3, 0, 0, 3, 5): "ID_DFR1_EL1",  # [t]
    (3, 0, 0, 3, 6): "ID_MMFR5_EL1",  # [t]
    (3, 0, 0, 4, 0): "ID_AA64PFR0_EL1",  # [t]
    (3, 0, 0, 4, 1): "ID_AA64PFR1_EL1",  # [t]
    (3, 0, 0, 4, 2): "ID_AA64PFR2_EL1",  # [t]
    (3, 0, 0, 4, 4): "ID_AA64ZFR0_EL1",  # [t]
    (3, 0, 0, 4, 5): "ID_AA64SMFR0_EL1",  # [t]
    (3, 0, 0, 4, 7): "ID_AA64FPFR0_EL1",  # [t]
    (3, 0, 0, 5, 0): "ID_AA64DFR0_EL1",  # [t]
    (3, 0, 0, 5, 1): "ID_AA64DFR1_EL1",  # [t]
    (3, 0, 0, 5, 2): "ID_AA64DFR2_EL1",  # [t]
    (3, 0, 0, 5, 4): "ID_AA64AFR0_EL1",  # [t]
    (3, 0, 0, 5, 5): "ID_AA64AFR1_EL1",  # [t]
    (3, 0, 0, 6, 0): "ID_AA64ISAR0_EL1",  # [t]
    (3, 0, 0, 6, 1): "ID_AA64ISAR1_EL1",  # [t]
    (3, 0, 0, 6, 2): "ID_AA64ISAR2_EL1",  # [t]
    (3, 0, 0, 6, 3): "ID_AA64ISAR3_EL1",  # [t]
    (3, 0, 0, 7, 0): "ID_AA64MMFR0_EL1",  # [t]
    (3, 0, 0, 7, 1): "ID_AA64MMFR1_EL1",  # [t]
    (3, 0, 0, 7, 2): "ID_AA64MMFR2_EL1",  # [t]
    (3, 0, 0, 7, 3): "ID_AA64MMFR3_EL1",  # [t]
    (3, 0, 0, 7, 4): "ID_AA64MMFR4_EL1",  # [t]
    # EL1 system control, translation, exceptions
    (3, 0, 1, 0, 0): "SCTLR_EL1",  # [t]
    (3, 0, 1, 0, 1): "ACTLR_EL1",  # [t]
    (3, 0, 1, 0, 2): "CPACR_EL1",  # [t]
    (3, 0, 1, 2, 0): "ZCR_EL1",  # [t]
    (3, 0, 1, 2, 6): "SMCR_EL1",  # [t]
    (3, 0, 2, 0, 0): "TTBR0_EL1",  # [t]
    (3, 0, 2, 0, 1): "TTBR1_EL1",  # [t]
    (3, 0, 2, 0, 2): "TCR_EL1",  # [t]
    (3, 0, 2, 0, 3): "TCR2_EL1",  # [t]
    (3, 0, 2, 1, 0): "APIAKEYLO_EL1",  # [h]
    (3, 0, 2, 1, 1): "APIAKEYHI_EL1",  # [h]
    (3, 0, 2, 1, 2): "APIBKEYLO_EL1",  # [h]
    (3, 0, 2, 1, 3): "APIBKEYHI_EL1",  # [h]
    (3, 0, 2, 2, 0): "APDAKEYLO_EL1",  # [h]
    (3, 0, 2, 2, 1): "APDAKEYHI_EL1",  # [h]
    (3, 0, 2, 2, 2): "APDBKEYLO_EL1",  # [h]
    (3, 0, 2, 2, 3): "APDBKEYHI_EL1",  # [h]
    (3, 0, 2, 3, 0): "APGAKEYLO_EL1",  # [h]
    (3, 0, 2, 3, 1): "APGAKEYHI_EL1",  # [h]
    (3, 0, 4, 0, 0): "SPSR_EL1",  # [h]
    (3, 0, 4, 0, 1): "ELR_EL1",  # [h]
    (3, 0, 5, 1, 0): "AFSR0_EL1",  # [h]
    (3, 0, 5, 1, 1): "AFSR1_EL1",  # [h]
    (3, 0, 5, 2, 0): "ESR_EL1",  # [h]
    (3, 0, 6, 0, 0): "FAR_EL1",  # [t]
    (3, 0, 7, 4, 0): "PAR_EL1",  # [h]
    (3, 0, 9, 14, 1): "PMINTENSET_EL1",  # [h]
    (3, 0, 9, 14, 2): "PMINTENCLR_EL1",  # [h]
    (3, 0, 10, 2, 0): "MAIR_EL1",  # [h]
    (3, 0, 10, 2, 2): "PIRE0_EL1",  # [t]
    (3, 0, 10, 2, 3): "PIR_EL1",  # [t]
    (3, 0, 10, 2, 4): "POR_EL1",  # [t]
    (3, 0, 10, 3, 0): "AMAIR_EL1",  # [h]
    (3, 0, 12, 0, 0): "VBAR_EL1",  # [h]
    (3, 0, 12, 1, 1): "DISR_EL1",  # [h]
    (3, 0, 13, 0, 1): "CONTEXTIDR_EL1",  # [t]
    (3, 0, 13, 0, 4): "TPIDR_EL1",  # [t]
    (3, 0, 14, 1, 0): "CNTKCTL_EL1",  # [h]
    (3, 1, 0, 0, 0): "CCSIDR_EL1",  # [t]
    (3, 1, 0, 0, 1): "CLIDR_EL1",  # [t]
    (3, 1, 0, 0, 7): "AIDR_EL1",  # [h]
    (3, 2, 0, 0, 0): "CSSELR_EL1",  # [t]
    (3, 3, 0, 0, 1): "CTR_EL0",  # [t]
    (3, 3, 0, 0, 7): "DCZID_EL0",  # [t]
    # PMU (op0 = 3, op1 = 3, CRn = 9)
    (3, 3, 9, 12, 0): "PMCR_EL0",  # [h]
    (3, 3, 9, 12, 1): "PMCNTENSET_EL0",  # [h]
    (3, 3, 9, 12, 2): "PMCNTENCLR_EL0",  # [h]
    (3, 3, 9, 12, 3): "PMOVSCLR_EL0",  # [h]
    (3, 3, 9, 12, 4): "PMSWINC_EL0",  # [h]
    (3, 3, 9, 12, 5): "PMSELR_EL0",  # [t]
    (3, 3, 9, 12, 6): "PMCEID0_EL0",  # [h]
    (3, 3, 9, 12, 7): "PMCEID1_EL0",  # [h]
    (3, 3, 9, 13, 0): "PMCCNTR_EL0",  # [h]
    (3, 3, 9, 13, 1): "PMXEVTYPER_EL0",  # [h]
    (3, 3, 9, 13, 2): "PMXEVCNTR_EL0",  # [h]
    (3, 3, 9, 14, 0): "PMUSERENR_EL0",  # [h]
    (3, 3, 9, 14, 3): "PMOVSSET_EL0",  # [h]
    # thread ID, EL0
    (3, 3, 13, 0, 2): "TPIDR_EL0",  # [h]
    (3, 3, 13, 0, 3): "TPIDRRO_EL0",  # [h]
    (3, 3, 13, 0, 5): "TPIDR2_EL0",  # [t]
    # generic timer, EL0 (the virtual timer's CVAL/CNT: TIMER_NAMES below)
    (3, 3, 14, 0, 1): "CNTPCT_EL0",  # [h]; = KVM_REG_ARM_PTIMER_CNT
    (3, 3, 14, 2, 1): "CNTP_CTL_EL0",  # [h]; = KVM_REG_ARM_PTIMER_CTL
    (3, 3, 14, 2, 2): "CNTP_CVAL_EL0",  # [h]; = KVM_REG_ARM_PTIMER_CVAL
    (3, 3, 14, 3, 1): "CNTV_CTL_EL0",  # [h]; = KVM_REG_ARM_TIMER_CTL
    (3, 3, 14, 15, 7): "PMCCFILTR_EL0",  # [h]
    # AArch32 state held at EL2
    (3, 4, 3, 0, 0): "DACR32_EL2",  # [t]
    (3, 4, 5, 0, 1): "IFSR32_EL2",  # [h]
    (3, 4, 5, 3, 0): "FPEXC32_EL2",  # [h]
}

# The virtual timer in the UAPI (arch/arm64/include/uapi/asm/kvm.h): "KVM_REG_ARM_TIMER_CVAL
# and KVM_REG_ARM_TIMER_CNT are not defined with the appropriate register encodings. Their
# values have been accidentally swapped." KVM_REG_ARM_TIMER_CVAL = ARM64_SYS_REG(3, 3, 14,
# 0, 2), the architectural encoding of CNTVCT_EL0, holds CNTV_CVAL_EL0, and
# KVM_REG_ARM_TIMER_CNT = ARM64_SYS_REG(3, 3, 14, 3, 2), CNTV_CVAL_EL0's encoding, holds the
# virtual count. Names here follow the UAPI, which is what the value is.
TIMER_NAMES: dict[tuple[int, int, int, int, int], tuple[str, str]] = {
    (3, 3, 14, 0, 2): ("CNTV_CVAL_EL0", "KVM_REG_ARM_TIMER_CVAL (index has CNTVCT_EL0's "
                       "encoding: swapped in the UAPI)"),
    (3, 3, 14, 3, 2): ("CNTVCT_EL0", "KVM_REG_ARM_TIMER_CNT (index has CNTV_CVAL_EL0's "
                       "encoding: swapped in the UAPI)"),
}
# Registers whose value is a running count: they differ between any two reads.
LIVE_COUNTERS = {(3, 3, 14, 3, 2), (3, 3, 14, 0, 1)}


def sysreg_name(op0: int, op1: int, crn: int, crm: int, op2: int) -> str | None:
    """The architectural name of a system register, or None when this module has none."""
    enc = (op0, op1, crn, crm, op2)
    if enc in TIMER_NAMES:
        return TIMER_NAMES[enc][0]
    if enc in SYSREG_NAMES:
        return SYSREG_NAMES[enc]
    # DBGB{V,C}R<n>_EL1, DBGW{V,C}R<n>_EL1 = (2, 0, 0, n, 4..7), n = 0..15 (sysreg.h:
    # SYS_DBGBVRn_EL1(n) sys_reg(2, 0, 0, n, 4) and the three following it)
    if op0 == 2 and op1 == 0 and crn == 0 and op2 >= 4:
        return f"DBG{('BVR', 'BCR', 'WVR', 'WCR')[op2 - 4]}{crm}_EL1"
    # PMEVCNTR<n>_EL0 = (3, 3, 14, 0b10:n[4:3], n[2:0]), PMEVTYPER<n>_EL0 = (3, 3, 14,
    # 0b11:n[4:3], n[2:0]), n = 0..30 (sysreg.h: SYS_PMEVCNTRn_EL0, SYS_PMEVTYPERn_EL0);
    # n = 31 of the PMEVTYPER space is PMCCFILTR_EL0, in the table above.
    if op0 == 3 and op1 == 3 and crn == 14 and crm >= 8:
        n = (crm & 3) << 3 | op2
        return f"{'PMEVCNTR' if crm < 12 else 'PMEVTYPER'}{n}_EL0"
    return None


def is_id_space(op0: int, op1: int, crn: int, crm: int, op2: int) -> bool:
    """op0 = 3, op1 = 0, CRn = 0, CRm = 0..7: the ID register space (Arm ARM, "Op0 == 0b11,
    Op1 == 0b000, CRn == 0b0000"); the unallocated encodings with CRm 1..7 read as zero
    (KVM: ID_UNALLOCATED in arch/arm64/kvm/sys_regs.c)."""
    return op0 == 3 and op1 == 0 and crn == 0 and crm <= 7


# Identification registers outside that space whose value is fixed for a vCPU.
OTHER_ID_REGS = {(3, 1, 0, 0, 1), (3, 1, 0, 0, 7), (3, 3, 0, 0, 1), (3, 3, 0, 0, 7)}  # CLIDR, AIDR, CTR, DCZID

# ---------------------------------------------------------------------------------------
# Decoding.


class DecodeError(ValueError):
    """An index that is not a valid arm64 KVM register index."""


@dataclass(frozen=True)
class Decoded:
    index: int
    cls: str  # CLASS_NAMES value
    size: int  # bits, from the KVM_REG_SIZE field
    name: str
    kind: str  # core | id | firmware | timer | counter | sve | state
    note: str = ""

    @property
    def hex(self) -> str:
        return f"0x{self.index:016x}"


def index_size(index: int) -> int:
    """The size in bits the index's KVM_REG_SIZE field gives."""
    return 8 << ((index & KVM_REG_SIZE_MASK) >> KVM_REG_SIZE_SHIFT)


def sysreg_fields(index: int) -> tuple[int, int, int, int, int]:
    low = index & 0xFFFF
    op0, op1, crn, crm, op2 = ((low >> shift) & mask for _, shift, mask in SYSREG_FIELDS)
    return op0, op1, crn, crm, op2


def decode(index: int) -> Decoded:
    """Name an arm64 KVM register index; DecodeError when it is not one (wrong architecture,
    unused bits set, an unknown class, a size the class does not have)."""
    if not 0 <= index < 1 << 64:
        raise DecodeError(f"{index:#x} is not a 64-bit index")
    if index & KVM_REG_ARCH_MASK != KVM_REG_ARM64:
        raise DecodeError(f"{index:#018x}: architecture field is not KVM_REG_ARM64")
    if index & UNUSED_MASK:
        raise DecodeError(f"{index:#018x}: bits 51:28 are set")
    size = index_size(index)
    coproc = (index & KVM_REG_ARM_COPROC_MASK) >> KVM_REG_ARM_COPROC_SHIFT
    low = index & 0xFFFF
    cls = CLASS_NAMES.get(coproc)
    if cls is None:
        raise DecodeError(f"{index:#018x}: unknown register class {coproc:#x}")

    def want(bits: int) -> None:
        if size != bits:
            raise DecodeError(f"{index:#018x}: {cls} register with size {size}, not {bits}")

    if coproc == KVM_REG_ARM_CORE:
        if low not in CORE_REGS:
            raise DecodeError(f"{index:#018x}: no core register at word offset {low:#x}")
        name, bits = CORE_REGS[low]
        want(bits)
        return Decoded(index, cls, size, name, "core")
    if coproc == KVM_REG_ARM64_SYSREG:
        want(64)
        enc = sysreg_fields(index)
        op0, op1, crn, crm, op2 = enc
        sform = f"S{op0}_{op1}_C{crn}_C{crm}_{op2}"
        known = sysreg_name(*enc)
        note = TIMER_NAMES[enc][1] if enc in TIMER_NAMES else ""
        if known is None:
            name = sform
        else:
            name = known
            note = f"{sform}" + (f"; {note}" if note else "")
        if enc in LIVE_COUNTERS:
            kind = "counter"
        elif op0 == 3 and op1 == 3 and crn == 14 and crm < 8:
            kind = "timer"
        elif is_id_space(*enc) or enc in OTHER_ID_REGS:
            kind = "id"
        else:
            kind = "state"
        return Decoded(index, cls, size, name, kind, note)
    if coproc == KVM_REG_ARM_DEMUX:
        want(32)
        if low & DEMUX_ID_MASK != DEMUX_ID_CCSIDR << DEMUX_ID_SHIFT:
            raise DecodeError(f"{index:#018x}: unknown demux id {(low >> 8) & 0xFF:#x}")
        csselr = low & DEMUX_VAL_MASK
        # CSSELR_EL1 (Arm ARM): InD bit 0 (1: instruction cache), Level bits 3:1 (level - 1),
        # TnD bit 4 (separate tag cache)
        level = ((csselr >> 1) & 7) + 1
        which = "I" if csselr & 1 else "D"
        tag = "T" if csselr & 0x10 else ""
        return Decoded(index, cls, size, f"CCSIDR_EL1[L{level}{which}{tag}]", "id",
                       f"KVM_REG_ARM_DEMUX_ID_CCSIDR, CSSELR_EL1 = {csselr:#x}")
    if coproc == KVM_REG_ARM_FW:
        want(64)
        if low not in FW_REGS:
            raise DecodeError(f"{index:#018x}: unknown firmware register {low}")
        return Decoded(index, cls, size, FW_REGS[low], "firmware", f"KVM_REG_ARM_FW_REG({low})")
    if coproc == KVM_REG_ARM_FW_FEAT_BMAP:
        want(64)
        if low not in FW_BMAP_REGS:
            raise DecodeError(f"{index:#018x}: unknown firmware bitmap register {low}")
        return Decoded(index, cls, size, FW_BMAP_REGS[low], "firmware",
                       f"KVM_REG_ARM_FW_FEAT_BMAP_REG({low})")
    # SVE
    if low == SVE_VLS:
        want(512)
        return Decoded(index, cls, size, "SVE_VLS", "sve")
    base, n, i = low & 0xFC00, (low >> 5) & 0x1F, low & 0x1F
    if base == SVE_ZREG_BASE:
        want(2048)
        return Decoded(index, cls, size, f"SVE_ZREG({n},{i})", "sve")
    if base == SVE_PREG_BASE and n < 16:
        want(256)
        return Decoded(index, cls, size, f"SVE_PREG({n},{i})", "sve")
    if low & ~0x1F == SVE_FFR_BASE:
        want(256)
        return Decoded(index, cls, size, f"SVE_FFR({i})", "sve")
    raise DecodeError(f"{index:#018x}: unknown SVE register {low:#x}")


# ---------------------------------------------------------------------------------------
# Capture.

# KVM_ARM_VCPU_INIT feature bits (uapi asm/kvm.h, KVM_ARM_VCPU_*)
VCPU_FEATURES = {
    "power_off": 0, "el1_32bit": 1, "psci_0_2": 2, "pmu_v3": 3, "sve": 4,
    "ptrauth_address": 5, "ptrauth_generic": 6, "has_el2": 7, "has_el2_e2h0": 8,
}
# KVM_ARM_TARGET_* (uapi asm/kvm.h)
TARGETS = {0: "KVM_ARM_TARGET_AEM_V8", 1: "KVM_ARM_TARGET_FOUNDATION_V8",
           2: "KVM_ARM_TARGET_CORTEX_A57", 3: "KVM_ARM_TARGET_XGENE_POTENZA",
           4: "KVM_ARM_TARGET_CORTEX_A53", 5: "KVM_ARM_TARGET_GENERIC_V8"}

GIC_VERSION = 3  # QEMU's gic-version for the capture boot (no vGIC is created)


def parse_features(text: str) -> list[int]:
    """'psci_0_2,pmu_v3' or '2,3' -> sorted bit numbers; '' or 'none' -> []."""
    bits = set()
    for part in filter(None, (p.strip() for p in text.split(","))):
        if part == "none":
            continue
        if part in VCPU_FEATURES:
            bits.add(VCPU_FEATURES[part])
        elif part.isdigit() and int(part) < 32 * 7:
            bits.add(int(part))
        else:
            raise ValueError(f"unknown vCPU feature {part!r} (known: {', '.join(VCPU_FEATURES)})")
    return sorted(bits)


def capture_program(features: Sequence[int] = ()) -> list[Any]:
    """The runner program; an SVE vCPU is finalized first (KVM_ARM_VCPU_FINALIZE with
    KVM_ARM_VCPU_SVE), without which KVM_GET_REG_LIST fails with EPERM."""
    from models.kernel.harness import Op
    ops = [Op.cpuinfo(), Op.vm(), Op.target(), Op.vcpus(1), Op.vcpu_init(*features)]
    if VCPU_FEATURES["sve"] in features:
        ops.append(Op.finalize(0, VCPU_FEATURES["sve"]))
    return [*ops, Op.reg_dump(0)]


def label(data: dict[str, Any]) -> str:
    """The kernel's label, with the vCPU features when there are any (6.12+pmu_v3)."""
    return "+".join([data["kernel"]["label"], *data["vcpu"]["feature_names"]])


def _feature_names(bits: Iterable[int]) -> list[str]:
    by_bit = {v: k for k, v in VCPU_FEATURES.items()}
    return [by_bit.get(b, str(b)) for b in bits]


def build_capture(res: Any, features: Sequence[int], command: str) -> dict[str, Any]:
    """The JSON document for one ``capture_program`` run (a harness BatchResult)."""
    from models.kernel import harness
    prog = res.programs[0]
    ops = capture_program(features)
    for op, r in zip(ops, prog, strict=True):
        if not r.ok:
            raise harness.KernelOracleError(f"{op.line()} failed: {r}")
    dump_op = len(ops)
    count = prog[dump_op - 1].value
    dump = res.reg_dumps.get((0, dump_op), [])
    if count is None or len(dump) != count:
        raise harness.KernelOracleError(f"reg_dump: KVM listed {count} registers but "
                                        f"{len(dump)} value lines arrived (console garbled?)")
    target = prog[2].values
    info = res.info.get((0, 1), [])
    cpuinfo = [line.removeprefix("cpuinfo ") for line in info if line.startswith("cpuinfo ")]
    extra = dict(line.split(" ", 1) for line in info
                 if line.split(" ", 1)[0] in ("midr_el1", "revidr_el1", "hwcap", "hwcap2"))
    features_line: list[str] = next((line.split(":", 1)[1].split() for line in cpuinfo
                                     if line.startswith("Features")), [])
    qemu_cmd = harness.qemu_command(Path("Image"), Path("initrd"), GIC_VERSION)
    regs = []
    for index, text in dump:
        d = decode(index)
        entry: dict[str, Any] = {"index": d.hex, "name": d.name, "class": d.cls,
                                 "kind": d.kind, "size": d.size}
        if text.startswith("0x"):
            if len(text) != 2 + d.size // 4:
                raise harness.KernelOracleError(f"{d.hex}: value {text} is not {d.size} bits")
            entry["value"] = text
        else:
            entry["errno"] = text
        regs.append(entry)
    indexes = [int(r["index"], 16) for r in regs]
    return {
        "format": FORMAT,
        "kernel": {"label": res.kernel.label, "uname_r": res.uname_r,
                   "package": res.kernel.package, "version": res.kernel.version,
                   "suite": res.kernel.suite},
        "qemu": {"version": harness.qemu_version(),
                 "machine": qemu_cmd[qemu_cmd.index("-M") + 1],
                 "cpu": qemu_cmd[qemu_cmd.index("-cpu") + 1],
                 "accel": qemu_cmd[qemu_cmd.index("-accel") + 1],
                 "smp": int(qemu_cmd[qemu_cmd.index("-smp") + 1]),
                 "memory_mb": int(qemu_cmd[qemu_cmd.index("-m") + 1])},
        "guest_cpu": {"midr_el1": extra.get("midr_el1", ""),
                      "revidr_el1": extra.get("revidr_el1", ""),
                      "hwcap": extra.get("hwcap", ""), "hwcap2": extra.get("hwcap2", ""),
                      "features": " ".join(features_line), "cpuinfo": cpuinfo},
        "vcpu": {"preferred_target": target[0] if target else None,
                 "preferred_target_name": TARGETS.get(target[0], "?") if target else None,
                 "preferred_features": [f"{w:#x}" for w in target[1:]],
                 "features": list(features), "feature_names": _feature_names(features),
                 "vcpu_id": 0},
        "captured": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "command": command,
        "runner_script": [op.line() for op in ops],
        "boot_seconds": round(res.total_seconds, 1),
        "count": len(regs),
        "kvm_order_sorted": indexes == sorted(indexes),
        "registers": regs,
    }


def capture(kernel: str, features: Sequence[int] = (), timeout: float = 600.0,
            command: str = "") -> dict[str, Any]:
    """Boot ``kernel`` (a cached label, uname -r or version) and capture its register list."""
    from models.kernel import harness
    res = harness.run_batch(kernel, GIC_VERSION, [capture_program(features)], timeout)
    return build_capture(res, features, command)


# ---------------------------------------------------------------------------------------
# Loading, checking and comparing captures.


def dumps(data: dict[str, Any]) -> str:
    """JSON with one line per register (and per cpuinfo line), so that a diff of two
    captures reads register by register."""
    head = {k: v for k, v in data.items() if k != "registers"}
    text = json.dumps(head, indent=1)
    regs = ",\n".join("  " + json.dumps(r) for r in data["registers"])
    return text[:-2] + ',\n "registers": [\n' + regs + "\n ]\n}\n"


def load(path: Path | str) -> dict[str, Any]:
    data = json.loads(Path(path).read_text())
    if data.get("format") != FORMAT:
        raise ValueError(f"{path}: not a {FORMAT} file")
    return data


def check(data: dict[str, Any]) -> list[str]:
    """What is wrong with a capture: every index decodes to the recorded name, class and
    size; every value has the size's width; the count and the sortedness flag are true
    of the list; no index twice."""
    bad = []
    regs = data["registers"]
    if data["count"] != len(regs):
        bad.append(f"count {data['count']} but {len(regs)} registers")
    indexes = []
    for r in regs:
        try:
            index = int(r["index"], 16)
            d = decode(index)
        except (ValueError, KeyError) as e:
            bad.append(f"{r.get('index')}: {e}")
            continue
        indexes.append(index)
        if r["index"] != d.hex:
            bad.append(f"{r['index']}: not written as {d.hex}")
        for key, want in (("name", d.name), ("class", d.cls), ("kind", d.kind), ("size", d.size)):
            if r.get(key) != want:
                bad.append(f"{r['index']}: {key} {r.get(key)!r}, decoded {want!r}")
        if "value" in r:
            v = r["value"]
            if not re.fullmatch(r"0x[0-9a-f]+", v) or len(v) != 2 + d.size // 4:
                bad.append(f"{r['index']} ({d.name}): value {v} is not {d.size} bits of hex")
        elif not re.fullmatch(r"E[A-Z0-9]+", r.get("errno", "")):
            bad.append(f"{r['index']} ({d.name}): neither a value nor an errno")
    if len(set(indexes)) != len(indexes):
        bad.append("an index is listed twice")
    if data.get("kvm_order_sorted") != (indexes == sorted(indexes)):
        bad.append(f"kvm_order_sorted is {data.get('kvm_order_sorted')} but the list is "
                   f"{'' if indexes == sorted(indexes) else 'not '}sorted")
    return bad


def registers(data: dict[str, Any]) -> dict[int, dict[str, Any]]:
    return {int(r["index"], 16): r for r in data["registers"]}


@dataclass
class Comparison:
    a: str
    b: str
    only_a: list[dict[str, Any]]
    only_b: list[dict[str, Any]]
    # (register of a, register of b) for indexes in both whose values (or errnos) differ
    differ: list[tuple[dict[str, Any], dict[str, Any]]]


def compare(a: dict[str, Any], b: dict[str, Any]) -> Comparison:
    ra, rb = registers(a), registers(b)
    differ = [(ra[i], rb[i]) for i in sorted(ra.keys() & rb.keys())
              if (ra[i].get("value"), ra[i].get("errno")) != (rb[i].get("value"), rb[i].get("errno"))]
    return Comparison(label(a), label(b),
                      [ra[i] for i in sorted(ra.keys() - rb.keys())],
                      [rb[i] for i in sorted(rb.keys() - ra.keys())], differ)


def compress_names(names: Iterable[str]) -> list[str]:
    """Collapse numbered families, in order of first appearance: DBGBVR0_EL1, DBGBVR1_EL1,
    DBGBVR2_EL1 -> DBGBVR0..2_EL1; fp_regs.vregs[0], fp_regs.vregs[1] -> fp_regs.vregs[0..1];
    CCSIDR_EL1[L2I], CCSIDR_EL1[L3D] -> CCSIDR_EL1[L2I L3D]. A family is the names equal
    but for their first number (an exception level's is not one: PIR_EL1 is no family)."""
    families: dict[tuple[str, str], list[str]] = {}  # insertion order = first appearance
    for name in names:
        d = re.fullmatch(r"CCSIDR_EL1\[(\w+)\]", name)
        m = re.fullmatch(r"(\D*?)(?<!_EL)(\d+)(.*)", name)  # not an _ELn
        if d:
            families.setdefault(("CCSIDR_EL1[", "]"), []).append(d.group(1))
        elif m:
            families.setdefault((m.group(1), m.group(3)), []).append(m.group(2))
        else:
            families.setdefault((name, ""), [])
    out: list[str] = []
    for (pre, suf), members in families.items():
        if not members:
            out.append(pre)
        elif pre == "CCSIDR_EL1[":
            out.append(f"{pre}{' '.join(members)}{suf}")
        else:
            nums = sorted(int(n) for n in members)
            runs: list[list[int]] = []
            for n in nums:
                if runs and n == runs[-1][-1] + 1:
                    runs[-1].append(n)
                else:
                    runs.append([n])
            for run in runs:
                out.append(f"{pre}{run[0]}{suf}" if len(run) == 1
                           else f"{pre}{run[0]}..{run[-1]}{suf}")
    return out


def _value(r: dict[str, Any]) -> str:
    return r.get("value") or r.get("errno") or "?"


def changed_fields(a: str, b: str) -> list[str]:
    """The 4-bit fields in which two values differ, most significant first:
    ["bits 11:8: 0x4 -> 0x0", ...]. The feature ID registers (op0 3, op1 0, CRn 0, CRm 1..7)
    are made of 4-bit fields (Arm ARM, "the ID scheme for fields in ID registers")."""
    va, vb = int(a, 16), int(b, 16)
    width = max(len(a), len(b)) - 2
    out = []
    for nib in reversed(range(width)):
        x, y = (va >> 4 * nib) & 0xF, (vb >> 4 * nib) & 0xF
        if x != y:
            out.append(f"bits {4 * nib + 3}:{4 * nib}: {x:#x} -> {y:#x}")
    return out


SUMMARY_BEGIN, SUMMARY_END = "<!-- summary: begin -->\n", "<!-- summary: end -->"


def summary(captures: Sequence[dict[str, Any]]) -> str:
    """Markdown: counts per kernel, then for every pair the indexes only in each and the
    registers whose values differ (by kind)."""
    lines = ["| kernel | uname -r | Debian version | registers | core | sysreg | firmware "
             "| demux (CCSIDR) | KVM's order sorted |",
             "| --- | --- | --- | --- | --- | --- | --- | --- | --- |"]
    for c in captures:
        by_cls: dict[str, int] = {}
        for r in c["registers"]:
            by_cls[r["class"]] = by_cls.get(r["class"], 0) + 1
        fw = by_cls.get("firmware", 0) + by_cls.get("firmware-bitmap", 0)
        lines.append(f"| {label(c)} | {c['kernel']['uname_r']} | "
                     f"{c['kernel']['version']} | {c['count']} | {by_cls.get('core', 0)} | "
                     f"{by_cls.get('sysreg', 0)} | {fw} | {by_cls.get('demux', 0)} | "
                     f"{'yes' if c['kvm_order_sorted'] else 'no'} |")
    for a, b in combinations(captures, 2):
        cmp = compare(a, b)
        lines += ["", f"### {cmp.a} and {cmp.b}", ""]
        for src, dst, only in ((cmp.a, cmp.b, cmp.only_a), (cmp.b, cmp.a, cmp.only_b)):
            names = ", ".join(compress_names(r["name"] for r in only)) or "none"
            lines.append(f"- only in {src} ({len(only)}; a {src} → {dst} migration carries "
                         f"them to a destination without them): {names}")
        live = [p for p in cmp.differ if p[0]["kind"] == "counter"]
        rest = [p for p in cmp.differ if p[0]["kind"] != "counter"]
        if rest:
            lines.append(f"- values differ ({len(rest)}):")
            for ra, rb in rest:
                fields = ""
                enc = sysreg_fields(int(ra["index"], 16))
                if (ra["class"] == "sysreg" and is_id_space(*enc) and enc[3] >= 1
                        and "value" in ra and "value" in rb):
                    fields = " (" + "; ".join(changed_fields(ra["value"], rb["value"])) + ")"
                lines.append(f"  - {ra['name']} ({ra['kind']}): {cmp.a} {_value(ra)}, "
                             f"{cmp.b} {_value(rb)}{fields}")
        else:
            lines.append("- values differ: none")
        if live:
            lines.append(f"- running counters (differ on every read, not compared): "
                         f"{', '.join(p[0]['name'] for p in live)}")
    return "\n".join(lines) + "\n"


# ---------------------------------------------------------------------------------------
# Command line.


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m models.kernel.reglist",
                                 description="Capture, check and compare real kernels' "
                                 "vCPU register lists (KVM_GET_REG_LIST).")
    sub = ap.add_subparsers(dest="cmd", required=True)
    c = sub.add_parser("capture", help="boot a kernel and print its register list as JSON")
    c.add_argument("--kernel", required=True, help="cached kernel: label, uname -r or version")
    c.add_argument("--features", default="none",
                   help="KVM_ARM_VCPU_INIT features, names or bit numbers, comma-separated "
                   f"({', '.join(VCPU_FEATURES)}; default: none)")
    c.add_argument("--timeout", type=float, default=600.0)
    c.add_argument("-o", "--output", help="write here instead of standard output")
    s = sub.add_parser("summary", help="counts and pairwise differences as Markdown")
    s.add_argument("files", nargs="+")
    s.add_argument("--readme", help="write it into this file, between its summary markers")
    k = sub.add_parser("check", help="check captures (decodable, sizes, sortedness)")
    k.add_argument("files", nargs="+")
    d = sub.add_parser("decode", help="decode register indexes")
    d.add_argument("indexes", nargs="+")
    args = ap.parse_args(argv)
    if args.cmd == "capture":
        from models.kernel.harness import KernelOracleError
        try:
            features = parse_features(args.features)
        except ValueError as e:
            ap.error(str(e))
        command = "python -m models.kernel.reglist capture --kernel " + args.kernel
        if features:
            command += " --features " + ",".join(_feature_names(features))
        try:
            data = capture(args.kernel, features, args.timeout, command)
        except KernelOracleError as e:
            print(f"gicproof reglist: {e}", file=sys.stderr)
            return 2
        text = dumps(data)
        if args.output:
            Path(args.output).write_text(text)
        else:
            sys.stdout.write(text)
        return 0
    if args.cmd == "summary":
        text = summary([load(f) for f in args.files])
        if args.readme:
            readme = Path(args.readme)
            old = readme.read_text()
            if SUMMARY_BEGIN not in old or SUMMARY_END not in old:
                print(f"{readme}: no {SUMMARY_BEGIN.strip()} ... {SUMMARY_END} markers",
                      file=sys.stderr)
                return 2
            head, rest = old.split(SUMMARY_BEGIN, 1)
            readme.write_text(head + SUMMARY_BEGIN + text + SUMMARY_END
                              + rest.split(SUMMARY_END, 1)[1])
        else:
            sys.stdout.write(text)
        return 0
    if args.cmd == "check":
        status = 0
        for f in args.files:
            bad = check(load(f))
            print(f"{f}: {'ok' if not bad else '; '.join(bad)}")
            status |= bool(bad)
        return status
    for text in args.indexes:
        try:
            dd = decode(int(text, 0))
        except ValueError as e:
            print(f"{text}: {e}")
            continue
        print(f"{dd.hex} {dd.cls} {dd.size} {dd.kind} {dd.name}" + (f" ({dd.note})" if dd.note else ""))
    return 0


if __name__ == "__main__":
    sys.exit(main())
