"""The real-kernel oracle: run KVM device-attribute programs on real Debian arm64 kernels.

A batch of programs (each a list of ``Op``, run on a fresh VM) is written as the script of
``runner.c`` (see the format at the top of that file), packed into an initramfs with a
static busybox, the runner and an ``/init`` script, and run by booting a Debian arm64
kernel under ``qemu-system-aarch64 -accel tcg`` with ``virtualization=on``: the guest
kernel starts at EL2, so KVM initialises and ``/dev/kvm`` exists inside the guest. The
runner's result lines come back on the serial console and are parsed into ``Result``s.

The parts live in a cache outside the repository (``$XDG_CACHE_HOME/gicproof``, else
``~/.cache/gicproof``):

  apt/                 a private apt configuration (arm64 only; the mirror URI is read
                       from the host's apt configuration); the host's apt is not changed
  kernels/LABEL/       Image (uncompressed), config, manifest.json (suite, package,
                       Debian version, uname -r)
  busybox/             busybox (static, arm64) and manifest.json
  runner/HASH/runner   the runner, compiled once per source/compiler/header hash

``install_parts()`` fills the cache (``install-parts.sh`` installs the host tools first);
``run_batch()`` runs programs; ``list_kernels()`` says what is cached. The command line
(``python -m models.kernel.harness``) does the same: ``--install``, ``--list``,
``--probe``; ``--probe-v3`` runs the GICv3/ITS battery of ``probes_v3.py`` on every cached
kernel. GICv3 attributes are built with ``redist_attr``, ``sysreg_attr``,
``level_info_attr`` (the vCPU's MPIDR from ``vcpu_mpidr``) and a VM with ``v3_setup``.
Standard library only.
"""

from __future__ import annotations

import argparse
import functools
import gzip
import hashlib
import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import tarfile
import tempfile
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

HERE = Path(__file__).resolve().parent
RUNNER_SOURCE = HERE / "runner.c"

QEMU = "qemu-system-aarch64"
CROSS_CC = "aarch64-linux-gnu-gcc"
UAPI_HEADER = Path("/usr/aarch64-linux-gnu/include/linux/kvm.h")
HOST_PACKAGES = ("qemu-system-arm", "gcc-aarch64-linux-gnu", "libc6-dev-arm64-cross",
                 "linux-libc-dev-arm64-cross")

# Kernel label -> the Debian suite it comes from. Within a suite the newest plain
# ``linux-image-<abi>-arm64`` package is taken (not -cloud, not -rt).
KERNEL_SUITES = {
    "5.10": "bullseye",
    "6.1": "bookworm",
    "6.12": "trixie",
    "sid": "sid",
}
DEFAULT_KERNELS = tuple(KERNEL_SUITES)
BUSYBOX_SUITE = "bookworm"
KERNEL_PACKAGE = re.compile(r"^linux-image-\d+\.\d+[^ ]*-arm64$")
OTHER_FLAVOURS = re.compile(r"-(cloud|rt)-arm64$")

# The constants the Python side encodes attributes with; every boot cross-checks them
# against the runner's --constants output (the values its UAPI headers gave it).
GROUPS = {
    "KVM_DEV_ARM_VGIC_GRP_ADDR": 0,
    "KVM_DEV_ARM_VGIC_GRP_DIST_REGS": 1,
    "KVM_DEV_ARM_VGIC_GRP_CPU_REGS": 2,
    "KVM_DEV_ARM_VGIC_GRP_NR_IRQS": 3,
    "KVM_DEV_ARM_VGIC_GRP_CTRL": 4,
    "KVM_DEV_ARM_VGIC_GRP_REDIST_REGS": 5,
    "KVM_DEV_ARM_VGIC_GRP_CPU_SYSREGS": 6,
    "KVM_DEV_ARM_VGIC_GRP_LEVEL_INFO": 7,
    "KVM_DEV_ARM_VGIC_GRP_ITS_REGS": 8,
}
EXPECTED_CONSTANTS = {
    **GROUPS,
    "KVM_DEV_ARM_VGIC_CPUID_SHIFT": 32,
    "KVM_DEV_ARM_VGIC_CPUID_MASK": 0xFF << 32,
    "KVM_DEV_ARM_VGIC_V3_MPIDR_SHIFT": 32,
    "KVM_DEV_ARM_VGIC_OFFSET_MASK": 0xFFFFFFFF,
    "KVM_DEV_ARM_VGIC_CTRL_INIT": 0,
    "KVM_VGIC_V2_ADDR_TYPE_DIST": 0,
    "KVM_VGIC_V2_ADDR_TYPE_CPU": 1,
    "KVM_VGIC_V3_ADDR_TYPE_DIST": 2,
    "KVM_VGIC_V3_ADDR_TYPE_REDIST": 3,
    "KVM_DEV_TYPE_ARM_VGIC_V2": 5,
    "KVM_DEV_TYPE_ARM_VGIC_V3": 7,
    "KVM_DEV_TYPE_ARM_VGIC_ITS": 8,
    # GICv3 attribute encodings (the helpers below build attributes with them)
    "KVM_DEV_ARM_VGIC_V3_MPIDR_MASK": 0xFFFFFFFF << 32,
    "KVM_DEV_ARM_VGIC_SYSREG_INSTR_MASK": 0xFFFF,
    "KVM_DEV_ARM_VGIC_LINE_LEVEL_INFO_SHIFT": 10,
    "KVM_DEV_ARM_VGIC_LINE_LEVEL_INFO_MASK": 0xFFFFFC00,
    "KVM_DEV_ARM_VGIC_LINE_LEVEL_INTID_MASK": 0x3FF,
    "VGIC_LEVEL_INFO_LINE_LEVEL": 0,
    "KVM_VGIC_ITS_ADDR_TYPE": 4,
    "KVM_VGIC_V3_ADDR_TYPE_REDIST_REGION": 5,
    "KVM_DEV_ARM_ITS_SAVE_TABLES": 1,
    "KVM_DEV_ARM_ITS_RESTORE_TABLES": 2,
    "KVM_DEV_ARM_VGIC_SAVE_PENDING_TABLES": 3,
    "KVM_DEV_ARM_ITS_CTRL_RESET": 4,
}
CPUID_SHIFT = EXPECTED_CONSTANTS["KVM_DEV_ARM_VGIC_CPUID_SHIFT"]

# Guest-physical addresses for the device regions (those of QEMU's virt board).
V2_DIST_BASE = 0x08000000
V2_CPU_BASE = 0x08010000
V3_DIST_BASE = 0x08000000
V3_REDIST_BASE = 0x080A0000
V3_ITS_BASE = 0x08080000

DEFAULT_TIMEOUT = 180.0
READY = "gicproof-guest ready"


class KernelOracleError(Exception):
    """A part is missing or a boot failed; the message says which and what to do."""


# ---------------------------------------------------------------------------------------
# Operations and results.


@dataclass(frozen=True)
class Op:
    """One runner operation: its name and operands, rendered as one script line."""

    name: str
    args: tuple[str | int, ...] = ()

    def line(self) -> str:
        parts = [self.name]
        for a in self.args:
            s = hex(a) if isinstance(a, int) else a
            if not s or any(c.isspace() or c == "#" for c in s):
                raise ValueError(f"operand {a!r} of {self.name} cannot be written in a script")
            parts.append(s)
        return " ".join(parts)

    # Constructors, one per runner operation.
    @staticmethod
    def vm(vm_type: int = 0) -> Op:
        return Op("vm", (vm_type,))

    @staticmethod
    def vcpus(n: int) -> Op:
        return Op("vcpus", (n,))

    @staticmethod
    def vcpu_init(*features: int) -> Op:
        return Op("vcpu_init", features)

    @staticmethod
    def device(kind: str) -> Op:
        return Op("device", (kind,))

    @staticmethod
    def test_device(kind: str) -> Op:
        return Op("test_device", (kind,))

    @staticmethod
    def set(dev: int, group: str | int, attr: int, value: int, bits: int = 32) -> Op:
        return Op(f"set{bits}", (dev, group, attr, value))

    @staticmethod
    def get(dev: int, group: str | int, attr: int, bits: int = 32) -> Op:
        return Op(f"get{bits}", (dev, group, attr))

    @staticmethod
    def has(dev: int, group: str | int, attr: int) -> Op:
        return Op("has", (dev, group, attr))

    @staticmethod
    def ctrl(dev: int, attr: str | int) -> Op:
        return Op("ctrl", (dev, attr))

    @staticmethod
    def irq(irq_type: str | int, vcpu: int, num: int, level: int) -> Op:
        return Op("irq", (irq_type, vcpu, num, level))

    @staticmethod
    def cap(cap: str | int) -> Op:
        return Op("cap", (cap,))

    @staticmethod
    def reg_list(vcpu: int) -> Op:
        return Op("reg_list", (vcpu,))

    @staticmethod
    def get_reg(vcpu: int, reg_id: int) -> Op:
        return Op("get_reg", (vcpu, reg_id))

    @staticmethod
    def set_reg(vcpu: int, reg_id: int, value: int) -> Op:
        return Op("set_reg", (vcpu, reg_id, value))

    @staticmethod
    def finalize(vcpu: int, feature: int) -> Op:
        return Op("finalize", (vcpu, feature))

    @staticmethod
    def reg_dump(vcpu: int) -> Op:
        return Op("reg_dump", (vcpu,))

    @staticmethod
    def target() -> Op:
        return Op("target")

    @staticmethod
    def cpuinfo() -> Op:
        return Op("cpuinfo")

    @staticmethod
    def run(vcpu: int) -> Op:
        return Op("run", (vcpu,))

    @staticmethod
    def mem(gpa: int, size: int) -> Op:
        return Op("mem", (gpa, size))

    @staticmethod
    def peek(gpa: int) -> Op:
        return Op("peek", (gpa,))

    @staticmethod
    def poke(gpa: int, value: int) -> Op:
        return Op("poke", (gpa, value))


def v2_attr(cpu: int, offset: int) -> int:
    """A GICv2 DIST_REGS/CPU_REGS attribute: the vCPU index in bits 39:32."""
    return (cpu << CPUID_SHIFT) | offset


# ---------------------------------------------------------------------------------------
# GICv3 attribute encodings (Documentation/virt/kvm/devices/arm-vgic-v3.rst and
# arm-vgic-its.rst). A GICv3 names a vCPU by its MPIDR, not its index: REDIST_REGS,
# CPU_SYSREGS and LEVEL_INFO carry the vCPU's affinity packed as Aff3:Aff2:Aff1:Aff0
# (8 bits each) in attr bits 63:32 (KVM_DEV_ARM_VGIC_V3_MPIDR_SHIFT/_MASK); the
# distributor ignores those bits.

V3_MPIDR_SHIFT = EXPECTED_CONSTANTS["KVM_DEV_ARM_VGIC_V3_MPIDR_SHIFT"]
SYSREG_INSTR_MASK = EXPECTED_CONSTANTS["KVM_DEV_ARM_VGIC_SYSREG_INSTR_MASK"]
LEVEL_INFO_SHIFT = EXPECTED_CONSTANTS["KVM_DEV_ARM_VGIC_LINE_LEVEL_INFO_SHIFT"]
LEVEL_INFO_INTID_MASK = EXPECTED_CONSTANTS["KVM_DEV_ARM_VGIC_LINE_LEVEL_INTID_MASK"]
VGIC_LEVEL_INFO_LINE_LEVEL = EXPECTED_CONSTANTS["VGIC_LEVEL_INFO_LINE_LEVEL"]
GICR_SGI_FRAME = 0x10000  # a redistributor's SGI_base frame follows RD_base (64 KiB)


def vcpu_mpidr(index: int) -> int:
    """The MPIDR_EL1 KVM gives the vCPU with this index (vcpu_id) at reset: Aff0 = bits
    3:0 of the index, Aff1 = bits 11:4, Aff2 = bits 19:12, Aff3 = 0, bit 31 (RES1) set.
    Source: reset_mpidr() in arch/arm64/kvm/sys_regs.c (5.10 to 6.12; later kernels
    compute the same value in a helper), which caps Aff0 at 16 vCPUs because an
    ICC_SGI1R_EL1 target list addresses 16 CPUs per Aff0 group. The runner's ``vcpus N``
    creates indices 0.. in order, so a program's vCPU i has ``vcpu_mpidr(i)``."""
    if not 0 <= index < 1 << 20:
        raise ValueError(f"vCPU index {index} out of range")
    return (index & 0xF) | ((index >> 4) & 0xFF) << 8 | ((index >> 12) & 0xFF) << 16 | 1 << 31


def mpidr_affinity(mpidr: int) -> int:
    """An MPIDR's affinity packed as the attribute field wants it: Aff3:Aff2:Aff1:Aff0,
    8 bits each (Aff3 is MPIDR bits 39:32, Aff2..Aff0 bits 23:0)."""
    return ((mpidr >> 32) & 0xFF) << 24 | (mpidr & 0xFFFFFF)


def v3_mpidr_attr(vcpu: int, low: int) -> int:
    """``low`` with vCPU ``vcpu``'s packed affinity in bits 63:32."""
    if not 0 <= low <= 0xFFFFFFFF:
        raise ValueError(f"attribute low word {low:#x} does not fit in 32 bits")
    return mpidr_affinity(vcpu_mpidr(vcpu)) << V3_MPIDR_SHIFT | low


def redist_attr(vcpu: int, offset: int) -> int:
    """A REDIST_REGS attribute: vCPU ``vcpu``'s redistributor, ``offset`` from its RD_base
    (the SGI frame's registers at GICR_SGI_FRAME + offset, e.g. GICR_ISPENDR0 = 0x10200)."""
    return v3_mpidr_attr(vcpu, offset)


def dist_attr(offset: int) -> int:
    """A GICv3 DIST_REGS attribute: the offset alone (the MPIDR field is ignored)."""
    if not 0 <= offset <= 0xFFFFFFFF:
        raise ValueError(f"offset {offset:#x} does not fit in 32 bits")
    return offset


def sysreg_instr(op0: int, op1: int, crn: int, crm: int, op2: int) -> int:
    """The CPU_SYSREGS instr field: Op0 in bits 15:14, Op1 13:11, CRn 10:7, CRm 6:3,
    Op2 2:0 (the A64 system-register encoding)."""
    for name, v, bits in (("op0", op0, 2), ("op1", op1, 3), ("CRn", crn, 4), ("CRm", crm, 4),
                          ("op2", op2, 3)):
        if not 0 <= v < 1 << bits:
            raise ValueError(f"{name}={v} does not fit in {bits} bits")
    return op0 << 14 | op1 << 11 | crn << 7 | crm << 3 | op2


# The ICC_*_EL1 registers KVM_DEV_ARM_VGIC_GRP_CPU_SYSREGS offers (gic_v3_icc_reg_descs in
# arch/arm64/kvm/vgic-sys-reg-v3.c), as (op0, op1, CRn, CRm, op2) from the Arm ARM.
# ICC_AP0R1..3 and ICC_AP1R1..3 exist only with 6 or 7 priority bits.
ICC_SYSREGS = {
    "ICC_PMR_EL1": (3, 0, 4, 6, 0),
    "ICC_BPR0_EL1": (3, 0, 12, 8, 3),
    **{f"ICC_AP0R{n}_EL1": (3, 0, 12, 8, 4 + n) for n in range(4)},
    **{f"ICC_AP1R{n}_EL1": (3, 0, 12, 9, n) for n in range(4)},
    "ICC_BPR1_EL1": (3, 0, 12, 12, 3),
    "ICC_CTLR_EL1": (3, 0, 12, 12, 4),
    "ICC_SRE_EL1": (3, 0, 12, 12, 5),
    "ICC_IGRPEN0_EL1": (3, 0, 12, 12, 6),
    "ICC_IGRPEN1_EL1": (3, 0, 12, 12, 7),
    # not in KVM's table (for probing refusals)
    "ICC_RPR_EL1": (3, 0, 12, 11, 3),
    "ICC_HPPIR1_EL1": (3, 0, 12, 12, 2),
}


def sysreg_attr(vcpu: int, reg: str | int) -> int:
    """A CPU_SYSREGS attribute: vCPU ``vcpu``'s CPU interface, register ``reg`` (a name
    of ICC_SYSREGS or an instr value)."""
    instr = sysreg_instr(*ICC_SYSREGS[reg]) if isinstance(reg, str) else reg
    if not 0 <= instr <= SYSREG_INSTR_MASK:
        raise ValueError(f"instr {instr:#x} does not fit in 16 bits")
    return v3_mpidr_attr(vcpu, instr)


def level_info_attr(vcpu: int, intid_base: int, info: int = VGIC_LEVEL_INFO_LINE_LEVEL) -> int:
    """A LEVEL_INFO attribute: the 32 line levels from ``intid_base`` (a multiple of 32;
    PPIs are per vCPU, SPIs ignore the MPIDR), info in bits 31:10 (VGIC_LEVEL_INFO_LINE_LEVEL
    = 0 is the only one), the vINTID in bits 9:0."""
    if not 0 <= intid_base <= LEVEL_INFO_INTID_MASK:
        raise ValueError(f"vINTID {intid_base} does not fit in 10 bits")
    if not 0 <= info < 1 << 22:
        raise ValueError(f"info {info} does not fit in 22 bits")
    return v3_mpidr_attr(vcpu, info << LEVEL_INFO_SHIFT | intid_base)


def redist_region(index: int, base: int, count: int, flags: int = 0) -> int:
    """A KVM_VGIC_V3_ADDR_TYPE_REDIST_REGION value: count in bits 63:52, base address
    bits 51:16, flags 15:12, index 11:0."""
    if base & 0xFFFF or base >> 52 or not 0 < count < 1 << 12 or not 0 <= index < 1 << 12:
        raise ValueError("bad redistributor region (base 64 KiB aligned below 2^52, "
                         "0 < count < 4096, index < 4096)")
    return count << 52 | base | (flags & 0xF) << 12 | index


# Register offsets (GICv3/GICv4 architecture specification, IHI 0069).
GICD = {"CTLR": 0x0, "TYPER": 0x4, "IIDR": 0x8, "TYPER2": 0xC, "STATUSR": 0x10,
        "IGROUPR": 0x80, "ISENABLER": 0x100, "ICENABLER": 0x180, "ISPENDR": 0x200,
        "ICPENDR": 0x280, "ISACTIVER": 0x300, "ICACTIVER": 0x380, "IPRIORITYR": 0x400,
        "ICFGR": 0xC00, "IGRPMODR": 0xD00, "IROUTER": 0x6000, "PIDR2": 0xFFE8}
GICR = {"CTLR": 0x0, "IIDR": 0x4, "TYPER": 0x8, "STATUSR": 0x10, "WAKER": 0x14,
        "PROPBASER": 0x70, "PENDBASER": 0x78, "PIDR2": 0xFFE8,
        # SGI_base frame
        "IGROUPR0": GICR_SGI_FRAME + 0x80, "ISENABLER0": GICR_SGI_FRAME + 0x100,
        "ICENABLER0": GICR_SGI_FRAME + 0x180, "ISPENDR0": GICR_SGI_FRAME + 0x200,
        "ICPENDR0": GICR_SGI_FRAME + 0x280, "ISACTIVER0": GICR_SGI_FRAME + 0x300,
        "ICACTIVER0": GICR_SGI_FRAME + 0x380, "IPRIORITYR": GICR_SGI_FRAME + 0x400,
        "ICFGR0": GICR_SGI_FRAME + 0xC00, "ICFGR1": GICR_SGI_FRAME + 0xC04,
        "IGRPMODR0": GICR_SGI_FRAME + 0xD00}
# ITS registers: ITS_REGS accesses are always 64-bit (kvm_device_attr.addr -> __u64).
GITS = {"CTLR": 0x0, "IIDR": 0x4, "TYPER": 0x8, "CBASER": 0x80, "CWRITER": 0x88,
        "CREADR": 0x90, **{f"BASER{n}": 0x100 + 8 * n for n in range(8)}}


def v3_setup(vcpus: int = 2, nr_irqs: int = 128, init: bool = True, its: bool = False,
             its_init: bool | None = None, redist_region_attr: bool = False) -> list[Op]:
    """A VM with ``vcpus`` vCPUs (created, then KVM_ARM_VCPU_INIT) and a vgic-v3 as device
    0 at QEMU's virt addresses: KVM_VGIC_V3_ADDR_TYPE_DIST, then KVM_VGIC_V3_ADDR_TYPE_REDIST
    (or, with ``redist_region_attr``, one KVM_VGIC_V3_ADDR_TYPE_REDIST_REGION holding every
    vCPU's redistributor), NR_IRQS, and KVM_DEV_ARM_VGIC_CTRL_INIT when ``init``. This is
    ``gic_setup(3, ...)`` plus the options. With ``its`` an ITS is device 1, created after
    the GIC's INIT as QEMU does (kvm_arm_its_realize after kvm_arm_gicv3_realize), placed
    at V3_ITS_BASE, and initialised (its own CTRL_INIT) when ``its_init`` (default:
    ``init``)."""
    ops = gic_setup(3, vcpus, nr_irqs, init)
    if redist_region_attr:
        i = next(n for n, op in enumerate(ops)
                 if op.name == "set64" and op.args[2] == EXPECTED_CONSTANTS["KVM_VGIC_V3_ADDR_TYPE_REDIST"])
        ops[i] = Op.set(0, "ADDR", EXPECTED_CONSTANTS["KVM_VGIC_V3_ADDR_TYPE_REDIST_REGION"],
                        redist_region(0, V3_REDIST_BASE, vcpus), 64)
    if its:
        ops += [Op.device("its"),
                Op.set(1, "ADDR", EXPECTED_CONSTANTS["KVM_VGIC_ITS_ADDR_TYPE"], V3_ITS_BASE, 64)]
        if init if its_init is None else its_init:
            ops.append(Op.ctrl(1, "INIT"))
    return ops


@dataclass(frozen=True)
class Result:
    """The outcome of one operation: a value, ``ok``, an errno name, or a runner error."""

    program: int
    index: int  # 1-based, within the program
    text: str  # the RESULT field as printed

    @property
    def ok(self) -> bool:
        return self.text == "ok" or self.text.startswith("0x")

    @property
    def errno(self) -> str | None:
        return self.text if self.text.startswith("E") else None

    @property
    def error(self) -> str | None:
        """The runner's own complaint (bad syntax, unknown device), not a kernel errno."""
        return self.text[1:] if self.text.startswith("!") else None

    @property
    def value(self) -> int | None:
        if self.text.startswith("0x"):
            return int(self.text.split()[0], 16)
        return None

    @property
    def values(self) -> tuple[int, ...]:
        """Every number printed (reg_list: the count, then the register IDs)."""
        if not self.text.startswith("0x"):
            return ()
        return tuple(int(v, 16) for v in self.text.split())

    def __str__(self) -> str:
        return self.text


@dataclass
class BatchResult:
    kernel: KernelInfo
    gic: int
    programs: list[list[Result]]
    uname_r: str
    constants: dict[str, int]
    dmesg: list[str]
    boot_seconds: float  # from starting QEMU to the guest's ready line
    total_seconds: float  # from starting QEMU to its exit
    ioctls: int
    ioctl_ns: int
    output: str = field(repr=False, default="")
    # reg_dump's "G" lines and cpuinfo's "I" lines, by (program, op index)
    reg_dumps: dict[tuple[int, int], list[tuple[int, str]]] = field(repr=False, default_factory=dict)
    info: dict[tuple[int, int], list[str]] = field(repr=False, default_factory=dict)

    def __getitem__(self, program: int) -> list[Result]:
        return self.programs[program]


# ---------------------------------------------------------------------------------------
# Parsing runner and guest output (no boot needed: unit-tested).

RESULT_LINE = re.compile(r"^R (\d+) (\d+) (\S.*)$")
REG_LINE = re.compile(r"^G (\d+) (\d+) (0x[0-9a-f]+) (\S+)$")
INFO_LINE = re.compile(r"^I (\d+) (\d+) (.*)$")
DONE_LINE = re.compile(r"^gicproof-runner done programs=(\d+) ops=(\d+) ioctls=(\d+) ns=(\d+)$")


@dataclass
class ParsedOutput:
    results: dict[int, list[Result]]
    constants: dict[str, int]
    uname_r: str | None
    has_kvm: bool | None
    dmesg: list[str]
    done: tuple[int, int, int, int] | None  # programs, ops, ioctls, ns
    errors: list[str]
    ready_seen: bool
    regs: dict[tuple[int, int], list[tuple[int, str]]] = field(default_factory=dict)
    info: dict[tuple[int, int], list[str]] = field(default_factory=dict)


def parse_output(text: str) -> ParsedOutput:
    """Parse the serial console output of one boot (or a runner's own output)."""
    out = ParsedOutput({}, {}, None, None, [], None, [], False)
    for raw in text.splitlines():
        line = raw.strip("\r\n\x00 ")
        m = RESULT_LINE.match(line)
        if m:
            prog, idx = int(m.group(1)), int(m.group(2))
            out.results.setdefault(prog, []).append(Result(prog, idx, m.group(3).strip()))
            continue
        m = REG_LINE.match(line)
        if m:
            key = (int(m.group(1)), int(m.group(2)))
            out.regs.setdefault(key, []).append((int(m.group(3), 16), m.group(4)))
            continue
        m = INFO_LINE.match(raw.rstrip("\r\n\x00"))
        if m:
            out.info.setdefault((int(m.group(1)), int(m.group(2))), []).append(m.group(3))
            continue
        if line.startswith("const "):
            parts = line.split()
            if len(parts) == 3:
                out.constants[parts[1]] = int(parts[2], 0)
            continue
        m = DONE_LINE.match(line)
        if m:
            out.done = (int(m.group(1)), int(m.group(2)), int(m.group(3)), int(m.group(4)))
            continue
        if line.startswith("gicproof-runner error"):
            out.errors.append(line)
        elif line.startswith("gicproof-guest uname="):
            out.uname_r = line.split("=", 1)[1]
        elif line.startswith("gicproof-guest kvm="):
            out.has_kvm = line.split("=", 1)[1] == "yes"
        elif line.startswith("gicproof-dmesg "):
            out.dmesg.append(line[len("gicproof-dmesg "):])
        elif line.startswith(READY):
            out.ready_seen = True
    return out


def render_batch(programs: Sequence[Sequence[Op]]) -> str:
    """The runner script for a batch: program i is ``program i``."""
    lines = []
    for i, ops in enumerate(programs):
        lines.append(f"program {i}")
        lines.extend(op.line() for op in ops)
    return "\n".join(lines) + "\n"


def check_constants(found: dict[str, int]) -> list[str]:
    """Mismatches between the runner's compiled-in constants and ours."""
    bad = []
    for name, want in EXPECTED_CONSTANTS.items():
        got = found.get(name)
        if got != want:
            bad.append(f"{name}: runner {got if got is None else hex(got)}, harness {hex(want)}")
    return bad


# ---------------------------------------------------------------------------------------
# The cache.


def cache_dir() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "gicproof"


@dataclass(frozen=True)
class KernelInfo:
    label: str  # "5.10", "6.1", "6.12", "sid"
    suite: str
    package: str
    version: str  # Debian package version
    uname_r: str  # from the image's file name, /boot/vmlinuz-<uname -r>
    image: Path

    def describe(self) -> str:
        return f"{self.label}: {self.uname_r} ({self.package} {self.version}, {self.suite})"


def list_kernels() -> list[KernelInfo]:
    """The kernels in the cache, in the order of KERNEL_SUITES (then any others)."""
    root = cache_dir() / "kernels"
    found = []
    if root.is_dir():
        for d in root.iterdir():
            m = d / "manifest.json"
            if m.is_file() and (d / "Image").is_file():
                data = json.loads(m.read_text())
                found.append(KernelInfo(data["label"], data["suite"], data["package"],
                                        data["version"], data["uname_r"], d / "Image"))
    order = list(KERNEL_SUITES)
    found.sort(key=lambda k: (order.index(k.label) if k.label in order else len(order), k.label))
    return found


def find_kernel(name: str) -> KernelInfo:
    """A cached kernel by label ("6.1"), exact uname -r, or version prefix ("7.2")."""
    kernels = list_kernels()
    for k in kernels:
        if name in (k.label, k.uname_r):
            return k
    prefix = [k for k in kernels if k.uname_r.startswith(name + ".") or k.version.startswith(name + ".")]
    if len(prefix) == 1:
        return prefix[0]
    have = ", ".join(k.label for k in kernels) or "none"
    raise KernelOracleError(
        f"kernel {name!r} is not in the cache {cache_dir() / 'kernels'} (cached: {have}); "
        f"run models/kernel/install-parts.sh or python -m models.kernel.harness --install "
        f"--kernels {name}")


# ---------------------------------------------------------------------------------------
# Installing the parts.


def _run(cmd: Sequence[str], what: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    try:
        return subprocess.run(list(cmd), check=True, text=True, capture_output=True, cwd=cwd)
    except FileNotFoundError as e:
        raise KernelOracleError(f"{what}: {cmd[0]} is not installed") from e
    except subprocess.CalledProcessError as e:
        tail = "\n".join((e.stderr or e.stdout or "").strip().splitlines()[-5:])
        raise KernelOracleError(f"{what} failed ({' '.join(cmd[:3])} ...):\n{tail}") from e


def missing_host_tools() -> list[str]:
    """What is missing to build and boot: Debian package names."""
    missing = []
    if not shutil.which(QEMU):
        missing.append("qemu-system-arm")
    if not shutil.which(CROSS_CC):
        missing.append("gcc-aarch64-linux-gnu")
    if not (UAPI_HEADER.parent.parent / "lib" / "libc.a").is_file() and not Path(
            "/usr/aarch64-linux-gnu/lib/libc.a").is_file():
        missing.append("libc6-dev-arm64-cross")
    if not UAPI_HEADER.is_file():
        missing.append("linux-libc-dev-arm64-cross")
    return missing


def _mirror_uri() -> str:
    """The Debian mirror the host's apt already uses (from its configuration, not ours)."""
    out = _run(["apt-cache", "policy"], "reading the apt configuration").stdout
    codename = ""
    osr = Path("/etc/os-release")
    if osr.is_file():
        m = re.search(r"^VERSION_CODENAME=(\S+)", osr.read_text(), re.M)
        codename = m.group(1).strip('"') if m else ""
    candidates = []
    for line in out.splitlines():
        parts = line.split()
        # " 500 http://deb.debian.org/debian bookworm/main amd64 Packages"
        if len(parts) >= 3 and "://" in parts[1] and parts[2].endswith("/main"):
            suite = parts[2].split("/")[0]
            if "security" in suite or "security" in parts[1]:
                continue
            candidates.append((suite == codename, parts[1]))
    if not candidates:
        raise KernelOracleError("no Debian mirror with a main component in the apt "
                                "configuration (apt-cache policy); cannot download kernels")
    candidates.sort(key=lambda c: not c[0])
    return candidates[0][1].rstrip("/")


class _Apt:
    """A private apt configuration for arm64 packages from several suites; the host's
    apt state (sources, lists, status, architectures) is neither read nor changed."""

    def __init__(self, root: Path) -> None:
        self.root = root

    def options(self) -> list[str]:
        r = self.root
        return [
            "-o", f"Dir::Etc::SourceList={r / 'sources.list'}",
            "-o", f"Dir::Etc::SourceParts={r / 'sources.list.d'}",
            "-o", f"Dir::Etc::Preferences={r / 'preferences'}",
            "-o", f"Dir::Etc::PreferencesParts={r / 'preferences.d'}",
            "-o", f"Dir::State::Lists={r / 'lists'}",
            "-o", f"Dir::State::status={r / 'status'}",
            "-o", f"Dir::Cache={r / 'cache'}",
            "-o", "APT::Architecture=arm64",
            "-o", "APT::Architectures::=arm64",
            "-o", "Acquire::Languages=none",
            "-o", "Debug::NoLocking=1",
            "-o", "APT::Sandbox::User=root",
        ]

    def setup(self, suites: Iterable[str], refresh: bool) -> None:
        r = self.root
        for d in ("lists/partial", "cache/archives/partial", "sources.list.d", "preferences.d"):
            (r / d).mkdir(parents=True, exist_ok=True)
        (r / "status").touch()
        uri = _mirror_uri()
        keyring = "/usr/share/keyrings/debian-archive-keyring.gpg"
        opts = f"[arch=arm64 signed-by={keyring}]" if Path(keyring).is_file() else "[arch=arm64]"
        sources = "".join(f"deb {opts} {uri} {s} main\n" for s in sorted(set(suites)))
        src = r / "sources.list"
        changed = not src.is_file() or src.read_text() != sources
        if changed:
            src.write_text(sources)
        stamp = r / "updated"
        if changed or refresh or not stamp.is_file():
            _run(["apt-get", *self.options(), "update"],
                 f"downloading the arm64 package lists from {uri}")
            stamp.write_text(time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()) + "\n")

    def newest_kernel(self, suite: str) -> tuple[str, str]:
        names = _run(["apt-cache", *self.options(), "pkgnames", "linux-image-"],
                     "listing kernel packages").stdout.split()
        names = [n for n in names if KERNEL_PACKAGE.match(n) and not OTHER_FLAVOURS.search(n)]
        if not names:
            raise KernelOracleError("no arm64 kernel packages in the package lists")
        out = _run(["apt-cache", *self.options(), "madison", *names], "listing kernel versions").stdout
        cands = []
        for line in out.splitlines():
            cols = [c.strip() for c in line.split("|")]
            if len(cols) == 3 and cols[2].split()[1].split("/")[0] == suite:
                cands.append((cols[0], cols[1]))
        if not cands:
            raise KernelOracleError(f"no linux-image-*-arm64 package in {suite}")

        def cmp(a: tuple[str, str], b: tuple[str, str]) -> int:
            if a[1] == b[1]:
                return 0
            lt = subprocess.run(["dpkg", "--compare-versions", a[1], "lt", b[1]]).returncode == 0
            return -1 if lt else 1

        return max(cands, key=functools.cmp_to_key(cmp))

    def candidate(self, package: str, suite: str) -> str:
        out = _run(["apt-cache", *self.options(), "madison", package], f"finding {package}").stdout
        for line in out.splitlines():
            cols = [c.strip() for c in line.split("|")]
            if len(cols) == 3 and cols[2].split()[1].split("/")[0] == suite:
                return cols[1]
        raise KernelOracleError(f"no {package} in {suite}")

    def depends(self, package: str, version: str) -> list[str]:
        out = _run(["apt-cache", *self.options(), "show", f"{package}={version}"],
                   f"reading the dependencies of {package}").stdout
        m = re.search(r"^Depends: (.*)$", out, re.M)
        if not m:
            return []
        return [alt.split()[0] for dep in m.group(1).split(",") for alt in dep.split("|")]

    def download(self, package: str, version: str, dest: Path) -> Path:
        _run(["apt-get", *self.options(), "download", f"{package}={version}"],
             f"downloading {package} {version}", cwd=dest)
        debs = sorted(dest.glob(f"{package}_*.deb"))
        if not debs:
            raise KernelOracleError(f"downloading {package} {version}: no .deb was written")
        return debs[-1]


def _deb_files(deb: Path, wanted: re.Pattern[str], enough: int = 0) -> dict[str, bytes]:
    """The regular files of a .deb whose path (without the leading ./) matches ``wanted``;
    with ``enough``, stop reading (and decompressing) once that many are found."""
    found: dict[str, bytes] = {}
    try:
        proc = subprocess.Popen(["dpkg-deb", "--fsys-tarfile", str(deb)],
                                stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
    except OSError as e:
        raise KernelOracleError(f"reading {deb.name}: {e}") from e
    assert proc.stdout is not None
    try:
        with tarfile.open(fileobj=proc.stdout, mode="r|") as tf:
            for member in tf:
                name = member.name.removeprefix("./")
                if member.isfile() and wanted.fullmatch(name):
                    f = tf.extractfile(member)
                    if f is not None:
                        found[name] = f.read()
                        if enough and len(found) >= enough:
                            break
    except tarfile.TarError as e:
        raise KernelOracleError(f"reading {deb.name}: {e}") from e
    finally:
        proc.kill()
        proc.wait()
    return found


# Where Debian puts the kernel image and its config: /boot until trixie; from 2026 (sid)
# /usr/lib/modules/<uname -r>/, with the image in linux-binary-* and the config in
# linux-base-*, both dependencies of linux-image-*.
KERNEL_FILES = re.compile(r"boot/(vmlinuz|config)-(.+)|usr/lib/modules/([^/]+)/(vmlinuz|config)")


def _kernel_files(apt: _Apt, package: str, version: str, tmp: Path) -> dict[str, tuple[str, bytes]]:
    """{"vmlinuz"|"config": (uname -r, contents)} from the package and, where it holds
    neither, from its linux-binary-*/linux-base-* dependencies of the same version."""
    files: dict[str, tuple[str, bytes]] = {}
    todo = [package]
    for extra in apt.depends(package, version):
        if extra.startswith(("linux-binary-", "linux-base-")):
            todo.append(extra)
    for pkg in todo:
        if "vmlinuz" in files and "config" in files:
            break
        deb = apt.download(pkg, version, tmp)
        for name, data in _deb_files(deb, KERNEL_FILES, enough=2 - len(files)).items():
            m = KERNEL_FILES.fullmatch(name)
            assert m is not None
            kind, uname_r = (m.group(1), m.group(2)) if m.group(1) else (m.group(4), m.group(3))
            files.setdefault(kind, (uname_r, data))
        deb.unlink()
    return files


def _install_kernel(apt: _Apt, label: str, suite: str, refresh: bool, log: bool) -> KernelInfo:
    dest = cache_dir() / "kernels" / label
    if not refresh:
        for k in list_kernels():
            if k.label == label:
                return k
    package, version = apt.newest_kernel(suite)
    for k in list_kernels():
        if k.label == label and k.package == package and k.version == version:
            return k
    if log:
        print(f"gicproof: downloading {package} {version} ({suite})", file=sys.stderr)
    with tempfile.TemporaryDirectory(dir=cache_dir()) as tmp:
        files = _kernel_files(apt, package, version, Path(tmp))
        if "vmlinuz" not in files:
            raise KernelOracleError(f"{package} {version} (and its linux-binary-* dependency) "
                                    "holds no vmlinuz")
        uname_r, raw = files["vmlinuz"]
        if raw[:2] == b"\x1f\x8b":
            raw = gzip.decompress(raw)
        config = files["config"][1].decode() if "config" in files else ""
        if config and "\nCONFIG_KVM=y" not in config:
            raise KernelOracleError(f"{package} {version} is not built with CONFIG_KVM=y")
        new = dest.with_name(label + ".new")
        shutil.rmtree(new, ignore_errors=True)
        new.mkdir(parents=True)
        (new / "Image").write_bytes(raw)
        (new / "config").write_text(config)
        (new / "manifest.json").write_text(json.dumps({
            "label": label, "suite": suite, "package": package, "version": version,
            "uname_r": uname_r, "installed": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        }, indent=2) + "\n")
        shutil.rmtree(dest, ignore_errors=True)
        new.rename(dest)
    return find_kernel(label)


def _install_busybox(apt: _Apt) -> Path:
    d = cache_dir() / "busybox"
    if (d / "busybox").is_file():
        return d / "busybox"
    version = apt.candidate("busybox-static", BUSYBOX_SUITE)
    with tempfile.TemporaryDirectory(dir=cache_dir()) as tmp:
        deb = apt.download("busybox-static", version, Path(tmp))
        files = _deb_files(deb, re.compile(r"bin/busybox"), enough=1)
        if "bin/busybox" not in files:
            raise KernelOracleError(f"busybox-static {version} holds no /bin/busybox")
        d.mkdir(parents=True, exist_ok=True)
        (d / "busybox.new").write_bytes(files["bin/busybox"])
        (d / "busybox.new").chmod(0o755)
        (d / "manifest.json").write_text(json.dumps(
            {"package": "busybox-static", "version": version, "suite": BUSYBOX_SUITE}) + "\n")
        (d / "busybox.new").rename(d / "busybox")
    return d / "busybox"


def install_parts(kernels: Iterable[str] = DEFAULT_KERNELS, refresh: bool = False,
                  log: bool = True) -> list[KernelInfo]:
    """Download busybox and the kernels into the cache (host tools: install-parts.sh).

    Idempotent: with everything cached and ``refresh`` false it only reads manifests
    (no network). ``refresh`` updates the package lists and replaces a kernel when its
    suite has a newer package."""
    labels = list(kernels)
    unknown = [k for k in labels if k not in KERNEL_SUITES]
    if unknown:
        raise KernelOracleError(f"unknown kernel label(s) {', '.join(unknown)}; "
                                f"known: {', '.join(KERNEL_SUITES)}")
    cached = {k.label for k in list_kernels()}
    if not refresh and (cache_dir() / "busybox" / "busybox").is_file() and set(labels) <= cached:
        return [find_kernel(k) for k in labels]
    for tool in ("apt-get", "apt-cache", "dpkg-deb", "dpkg"):
        if not shutil.which(tool):
            raise KernelOracleError(f"{tool} is not installed: kernels are fetched as Debian "
                                    "packages, which needs apt and dpkg")
    cache_dir().mkdir(parents=True, exist_ok=True)
    apt = _Apt(cache_dir() / "apt")
    apt.setup([KERNEL_SUITES[k] for k in labels] + [BUSYBOX_SUITE], refresh)
    _install_busybox(apt)
    return [_install_kernel(apt, k, KERNEL_SUITES[k], refresh, log) for k in labels]


# ---------------------------------------------------------------------------------------
# Building the runner and the initramfs.


def build_runner() -> Path:
    """The runner binary, compiled (static, arm64) once per source/compiler/header hash."""
    if not shutil.which(CROSS_CC):
        raise KernelOracleError(f"{CROSS_CC} is not installed (Debian: apt-get install "
                                "gcc-aarch64-linux-gnu libc6-dev-arm64-cross)")
    if not UAPI_HEADER.is_file():
        raise KernelOracleError(f"{UAPI_HEADER} is missing (Debian: apt-get install "
                                "linux-libc-dev-arm64-cross)")
    h = hashlib.sha256(RUNNER_SOURCE.read_bytes())
    h.update(_run([CROSS_CC, "--version"], "querying the cross compiler").stdout.encode())
    h.update(UAPI_HEADER.read_bytes())
    h.update((UAPI_HEADER.parent.parent / "asm" / "kvm.h").read_bytes())
    out = cache_dir() / "runner" / h.hexdigest()[:16] / "runner"
    if out.is_file():
        return out
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(f"runner.{os.getpid()}.tmp")  # test workers may build it at once
    _run([CROSS_CC, "-static", "-O2", "-Wall", "-Wextra", "-Werror", "-o", str(tmp),
          str(RUNNER_SOURCE)], "compiling runner.c")
    tmp.rename(out)
    return out


INIT_SCRIPT = """#!/bin/busybox sh
/bin/busybox mkdir -p /proc /sys /tmp
/bin/busybox mount -t proc proc /proc
/bin/busybox mount -t sysfs sysfs /sys
/bin/busybox mount -t devtmpfs devtmpfs /dev 2>/dev/null
echo 1 > /proc/sys/kernel/printk
echo "gicproof-guest uname=$(/bin/busybox uname -r)"
if [ -c /dev/kvm ]; then echo "gicproof-guest kvm=yes"; else echo "gicproof-guest kvm=no"; fi
/bin/busybox dmesg | /bin/busybox grep -i -E 'kvm|gic|hyp|el2' | /bin/busybox sed 's/^/gicproof-dmesg /'
echo "gicproof-guest ready"
/runner --constants
/runner /batch.txt
echo "gicproof-guest end"
/bin/busybox sync
/bin/busybox poweroff -f
"""


def _cpio_newc(entries: Sequence[tuple[str, int, bytes, int]]) -> bytes:
    """A cpio archive in the kernel's initramfs format ("newc"), written here so that
    device nodes (/dev/console) need no root: entries are (path, mode, data, rdev)."""
    out = bytearray()

    def pad4() -> None:
        out.extend(b"\0" * (-len(out) % 4))

    for ino, (name, mode, data, rdev) in enumerate([*entries, ("TRAILER!!!", 0, b"", 0)], 1):
        name_b = name.encode() + b"\0"
        fields = [ino if name != "TRAILER!!!" else 0, mode, 0, 0, 1, 0, len(data), 0, 0,
                  rdev >> 8, rdev & 0xFF, len(name_b), 0]
        out.extend(b"070701" + b"".join(b"%08X" % f for f in fields))
        out.extend(name_b)
        pad4()
        out.extend(data)
        pad4()
    return bytes(out)


def build_initramfs(runner: Path, busybox: Path, script: str) -> bytes:
    d, f, x, c = 0o040755, 0o100644, 0o100755, 0o020600
    return _cpio_newc([
        ("bin", d, b"", 0), ("dev", d, b"", 0), ("proc", d, b"", 0), ("sys", d, b"", 0),
        ("dev/console", c, b"", (5 << 8) | 1),
        ("bin/busybox", x, busybox.read_bytes(), 0),
        ("runner", x, runner.read_bytes(), 0),
        ("init", x, INIT_SCRIPT.encode(), 0),
        ("batch.txt", f, script.encode(), 0),
    ])


# ---------------------------------------------------------------------------------------
# Booting.


def qemu_version() -> str:
    if not shutil.which(QEMU):
        raise KernelOracleError(f"{QEMU} is not installed (Debian: apt-get install qemu-system-arm)")
    return _run([QEMU, "--version"], "querying QEMU").stdout.splitlines()[0]


def qemu_command(image: Path, initrd: Path, gic: int, append: str = "",
                 virtualization: bool = True) -> list[str]:
    """The QEMU command line: ``virtualization=on`` starts the guest kernel at EL2, which
    KVM needs; ``pauth-impdef=on`` makes pointer authentication cheap under TCG."""
    cmdline = f"console=ttyAMA0 rdinit=/init panic=-1 quiet loglevel=4 {append}".strip()
    virt = "on" if virtualization else "off"
    return [QEMU, "-M", f"virt,virtualization={virt},gic-version={gic}",
            "-cpu", "max,pauth-impdef=on", "-accel", "tcg", "-smp", "1", "-m", "1024",
            "-nodefaults", "-display", "none", "-serial", "stdio", "-no-reboot",
            "-kernel", str(image), "-initrd", str(initrd), "-append", cmdline]


def boot(kernel: str, gic: int, script: str, timeout: float = DEFAULT_TIMEOUT,
         append: str = "", virtualization: bool = True) -> tuple[KernelInfo, str, float, float]:
    """Boot once with ``script`` as the batch; returns the kernel, the console output,
    the seconds to the guest's ready line, and the seconds to QEMU's exit."""
    missing = missing_host_tools()
    if missing:
        raise KernelOracleError(f"missing host packages: {' '.join(missing)} (Debian: "
                                "models/kernel/install-parts.sh installs them)")
    k = find_kernel(kernel)
    busybox = cache_dir() / "busybox" / "busybox"
    if not busybox.is_file():
        raise KernelOracleError(f"{busybox} is missing; run models/kernel/install-parts.sh")
    runner = build_runner()
    with tempfile.TemporaryDirectory(prefix="gicproof-boot-") as tmp:
        initrd = Path(tmp) / "initrd.cpio"
        initrd.write_bytes(build_initramfs(runner, busybox, script))
        cmd = qemu_command(k.image, initrd, gic, append, virtualization)
        t0 = time.monotonic()
        proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                stderr=subprocess.STDOUT)
        assert proc.stdout is not None
        chunks: list[bytes] = []
        ready_at: float | None = None
        os.set_blocking(proc.stdout.fileno(), False)
        try:
            while True:
                if time.monotonic() - t0 > timeout:
                    proc.kill()
                    proc.wait()
                    tail = b"".join(chunks).decode(errors="replace").splitlines()[-15:]
                    raise KernelOracleError(
                        f"timeout: kernel {k.uname_r} with gic-version={gic} did not finish "
                        f"within {timeout:.0f} s; last console lines:\n  "
                        + ("\n  ".join(tail) or "(no console output)"))
                data = proc.stdout.read()
                if data:
                    chunks.append(data)
                    if ready_at is None and READY.encode() in b"".join(chunks[-3:]):
                        ready_at = time.monotonic() - t0
                elif proc.poll() is not None:
                    rest = proc.stdout.read()
                    if rest:
                        chunks.append(rest)
                    break
                else:
                    time.sleep(0.02)
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
        total = time.monotonic() - t0
    text = b"".join(chunks).decode(errors="replace")
    if ready_at is None and READY in text:
        ready_at = total
    return k, text, ready_at if ready_at is not None else total, total


def run_batch(kernel: str, gic: int, programs: Sequence[Sequence[Op]],
              timeout: float = DEFAULT_TIMEOUT, append: str = "",
              virtualization: bool = True) -> BatchResult:
    """Run ``programs`` (each on a fresh VM) in one boot of ``kernel`` on a GICv``gic``
    host (QEMU's gic-version; 4 is a GICv4.0, which KVM uses only with
    ``append="kvm-arm.vgic_v4_enable=1"``). Raises KernelOracleError when a part is
    missing, the guest has no /dev/kvm, the run times out or the output is incomplete.
    ``virtualization=False`` boots at EL1 (no KVM: for testing that error)."""
    if gic not in (2, 3, 4):
        raise KernelOracleError(f"gic-version must be 2, 3 or 4, not {gic}")
    k, text, boot_s, total_s = boot(kernel, gic, render_batch(programs), timeout, append,
                                    virtualization)
    p = parse_output(text)
    tail = "\n  ".join(text.splitlines()[-15:])
    if not p.ready_seen:
        raise KernelOracleError(f"kernel {k.uname_r} (gic-version={gic}) did not reach /init; "
                                f"last console lines:\n  {tail}")
    if p.has_kvm is False:
        hints = "\n  ".join(p.dmesg[-10:]) or "(no KVM lines in dmesg)"
        raise KernelOracleError(f"guest kernel {k.uname_r} (gic-version={gic}) has no /dev/kvm; "
                                f"its KVM messages:\n  {hints}")
    bad = check_constants(p.constants)
    if bad:
        raise KernelOracleError("the runner's UAPI constants differ from the harness's: "
                                + "; ".join(bad))
    if p.done is None:
        raise KernelOracleError(f"the runner did not finish on {k.uname_r} (gic-version={gic}); "
                                f"last console lines:\n  {tail}")
    if p.errors:
        raise KernelOracleError("runner script errors: " + "; ".join(p.errors))
    results = []
    for i, ops in enumerate(programs):
        got = p.results.get(i, [])
        if len(got) != len(ops) or [r.index for r in got] != list(range(1, len(ops) + 1)):
            raise KernelOracleError(f"program {i}: {len(ops)} operations but {len(got)} results "
                                    "(console output garbled?)")
        results.append(got)
    return BatchResult(kernel=k, gic=gic, programs=results, uname_r=p.uname_r or "",
                       constants=p.constants, dmesg=p.dmesg, boot_seconds=boot_s,
                       total_seconds=total_s, ioctls=p.done[2], ioctl_ns=p.done[3], output=text,
                       reg_dumps=p.regs, info=p.info)


# ---------------------------------------------------------------------------------------
# Ready-made programs.


def gic_setup(gic: int, vcpus: int = 2, nr_irqs: int = 128, init: bool = True) -> list[Op]:
    """Create a VM with ``vcpus`` vCPUs and a vgic-v2 (gic=2) or vgic-v3 device (device 0),
    place it as QEMU's virt board does, set the interrupt count and (optionally) INIT."""
    ops = [Op.vm(), Op.vcpus(vcpus), Op.vcpu_init()]
    if gic == 2:
        ops += [Op.device("v2"),
                Op.set(0, "ADDR", EXPECTED_CONSTANTS["KVM_VGIC_V2_ADDR_TYPE_DIST"], V2_DIST_BASE, 64),
                Op.set(0, "ADDR", EXPECTED_CONSTANTS["KVM_VGIC_V2_ADDR_TYPE_CPU"], V2_CPU_BASE, 64)]
    else:
        ops += [Op.device("v3"),
                Op.set(0, "ADDR", EXPECTED_CONSTANTS["KVM_VGIC_V3_ADDR_TYPE_DIST"], V3_DIST_BASE, 64),
                Op.set(0, "ADDR", EXPECTED_CONSTANTS["KVM_VGIC_V3_ADDR_TYPE_REDIST"], V3_REDIST_BASE, 64)]
    ops.append(Op.set(0, "NR_IRQS", 0, nr_irqs))
    if init:
        ops.append(Op.ctrl(0, "INIT"))
    return ops


def probe_programs() -> list[list[Op]]:
    """What the guest's KVM offers: capabilities and which device types it can create."""
    return [
        [Op.cap("CAP_NR_VCPUS"), Op.cap("CAP_MAX_VCPUS"), Op.cap("CAP_ARM_VM_IPA_SIZE"),
         Op.vm(), Op.test_device("v2"), Op.test_device("v3"), Op.test_device("its")],
    ]


def measurement_programs(gic: int) -> list[list[Op]]:
    """The first measurement (issue 8, step 4): values after setup on a fresh device."""
    dist = "DIST_REGS"
    setup = gic_setup(gic)
    if gic == 2:
        body = [Op.get(0, dist, 0x008), Op.get(0, dist, 0x004),
                Op.set(0, dist, 0x104, 0x5), Op.get(0, dist, 0x104),
                Op.set(0, dist, v2_attr(0, 0x200), 1 << 3), Op.get(0, dist, v2_attr(0, 0x200)),
                Op.get(0, dist, v2_attr(0, 0xF10))]
    else:
        body = [Op.get(0, dist, 0x008), Op.get(0, dist, 0x004),
                Op.set(0, dist, 0x104, 0x5), Op.get(0, dist, 0x104)]
    return [
        setup + body,
        # The other device kinds on this host (a vgic-v2 on a GICv3 host needs the host's
        # GICv2 compatibility; a vgic-v3 on a GICv2 host is impossible).
        [Op.vm(), Op.vcpus(2), Op.vcpu_init(), Op.test_device("v2"), Op.test_device("v3"),
         Op.device("v2" if gic != 2 else "v3")],
    ]


# ---------------------------------------------------------------------------------------
# Command line.


def _print_batch(res: BatchResult, programs: Sequence[Sequence[Op]]) -> None:
    print(f"kernel {res.kernel.describe()}; guest uname -r {res.uname_r}; gic-version={res.gic}")
    print(f"boot to /init {res.boot_seconds:.1f} s, total {res.total_seconds:.1f} s, "
          f"{res.ioctls} ioctls in {res.ioctl_ns / 1e6:.1f} ms"
          + (f" ({res.ioctls / (res.ioctl_ns / 1e9):.0f}/s)" if res.ioctl_ns else ""))
    for i, (ops, results) in enumerate(zip(programs, res.programs, strict=True)):
        print(f"program {i}")
        for op, r in zip(ops, results, strict=True):
            print(f"  {op.line():<48} -> {r}")


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m models.kernel.harness",
                                 description="Run KVM programs on real Debian arm64 kernels "
                                 "under QEMU (TCG, virtualization=on).")
    ap.add_argument("--install", action="store_true", help="download busybox and the kernels")
    ap.add_argument("--refresh", action="store_true", help="with --install: take newer packages")
    ap.add_argument("--kernels", default=",".join(DEFAULT_KERNELS),
                    help="with --install: comma-separated labels (default: %(default)s)")
    ap.add_argument("--list", action="store_true", help="list the cached kernels")
    ap.add_argument("--kernel", help="the kernel to boot (label, uname -r or version)")
    ap.add_argument("--gic", type=int, default=3, help="QEMU gic-version: 2, 3 or 4")
    ap.add_argument("--probe", action="store_true", help="boot and print what KVM offers")
    ap.add_argument("--measure", action="store_true", help="boot and run the first measurement")
    ap.add_argument("--script", help="boot and run this runner script (- for stdin)")
    ap.add_argument("--probe-v3", action="store_true",
                    help="run the GICv3/ITS probe battery (models/kernel/probes_v3.py) with "
                    "gic-version=3 on --kernel (comma-separated; default every cached kernel) "
                    "and print a table, kernels side by side")
    ap.add_argument("--markdown", help="with --probe-v3: also write the table as Markdown here")
    ap.add_argument("--append", default="", help="extra kernel command line")
    ap.add_argument("--timeout", type=float, default=DEFAULT_TIMEOUT)
    ap.add_argument("--repeat", type=int, default=1, help="boot N times, report the median")
    args = ap.parse_args(argv)
    try:
        if args.install:
            for k in install_parts(args.kernels.split(","), refresh=args.refresh):
                print(k.describe())
        if args.list:
            for k in list_kernels():
                print(k.describe())
        if args.probe_v3:
            from models.kernel import probes_v3
            labels = (args.kernel.split(",") if args.kernel
                      else [k.label for k in list_kernels()])
            if not labels:
                raise KernelOracleError("no kernels cached; run models/kernel/install-parts.sh")
            gic = args.gic if args.gic != 2 else 3
            try:
                v3runs = probes_v3.run_battery(labels, gic, max(args.timeout, 600.0), args.append)
            except Exception as e:  # run as __main__, this module's class is not probes_v3's
                if type(e).__name__ == "KernelOracleError":
                    raise KernelOracleError(str(e)) from e
                raise
            print(f"qemu: {qemu_version()}; gic-version={gic}")
            print(probes_v3.format_table(v3runs))
            if args.markdown:
                Path(args.markdown).write_text(probes_v3.format_markdown(v3runs))
            return 0
        if args.probe or args.measure or args.script:
            if not args.kernel:
                ap.error("--kernel is required to boot")
            if args.script:
                text = sys.stdin.read() if args.script == "-" else Path(args.script).read_text()
                k, out, boot_s, total_s = boot(args.kernel, args.gic, text, args.timeout,
                                               args.append)
                sys.stdout.write(out)
                return 0
            programs = probe_programs() if args.probe else measurement_programs(args.gic)
            runs = [run_batch(args.kernel, args.gic, programs, args.timeout, args.append)
                    for _ in range(max(1, args.repeat))]
            res = runs[0]
            print(f"qemu: {qemu_version()}")
            if args.probe:
                for line in res.dmesg:
                    print(f"dmesg: {line}")
            _print_batch(res, programs)
            if len(runs) > 1:
                print(f"median boot to /init over {len(runs)} boots: "
                      f"{statistics.median(r.boot_seconds for r in runs):.1f} s "
                      f"(total {statistics.median(r.total_seconds for r in runs):.1f} s)")
        elif not (args.install or args.list):
            ap.print_help()
    except KernelOracleError as e:
        print(f"gicproof kernel oracle: {e}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
