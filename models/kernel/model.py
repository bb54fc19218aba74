"""A model of the kernel that speaks the runner's language.

``KernelModel(release).run(ops)`` executes a program of ``harness.Op`` (the operations
``runner.c`` performs) on the concrete GICv2 model (``models.machine.Machine`` over the
device table of ``spec/gicv2.py``, with the semantics of kernel ``release``) and returns
the result strings the runner prints: ``ok``, ``0xHEX`` or an errno name. ``gicproof
conform`` compares them line by line with a real kernel's.

Scope: what the GICv2 model covers, after the standard setup prefix
(``harness.gic_setup(2, vcpus, nr_irqs)``: create the VM and its vCPUs, the vgic-v2, its
two addresses, the interrupt count, CTRL_INIT). After it:

* ``get32``/``set32`` on KVM_DEV_ARM_VGIC_GRP_DIST_REGS and _CPU_REGS, attribute
  ``(cpu << KVM_DEV_ARM_VGIC_CPUID_SHIFT) | offset``. vgic_v2_parse_attr
  (vgic-kvm-device.c) takes the vCPU from ``KVM_DEV_ARM_VGIC_CPUID_MASK`` (bits 39:32;
  higher bits are ignored) and fails an index >= online vCPUs with -EINVAL. The offset
  then goes to vgic_uaccess (vgic-mmio.c), which finds no region for an offset outside
  the kernel's table, an unaligned one, or a per-interrupt word beyond the configured
  interrupts (check_region): such a read returns 0 and such a write is ignored, both
  successfully ('if (!region) { *val = 0; return 0; }'). Only KVM_HAS_DEVICE_ATTR says
  -ENXIO (vgic_v2_has_attr_regs / vgic_validate_mmio_region_addr).
* One region of the kernel's GICv2 distributor is not a row of the device table, because
  it views no state: GICD_SGIR (0xF00, ``REGISTER_DESC_WITH_LENGTH(GIC_DIST_SOFTINT,
  vgic_mmio_read_raz, vgic_mmio_write_sgir, 4, VGIC_ACCESS_32bit)`` in vgic-mmio-v2.c,
  no uaccess accessor). A userspace write there reaches vgic_mmio_write_sgir with the
  attribute's vCPU as the sender, so it sends an SGI (``guest.send_sgi``); a read is 0.
  Observed on Debian 5.10.223 and 7.2.13: writing 0x10005 with vCPU 1 makes SGI 5 pending
  on vCPU 0 with source vCPU 1.
* ``irq SPI VCPU NUM LEVEL`` (KVM_IRQ_LINE): kvm_vm_ioctl_irq_line (arm.c) takes NUM as the
  INTID itself ('if (irq_num < VGIC_NR_PRIVATE_IRQS) return -EINVAL'), ignores the vCPU
  field for an SPI, and kvm_vgic_inject_irq fails an INTID the VM does not have
  (vgic_get_irq returns NULL) with -EINVAL; LEVEL is a bool (non-zero is 1). The level
  goes through ``models.guest.raise_line``.

Anything else raises ``OutOfScope``: the generator does not produce it. Imports spec and
models only (no z3, no proofs).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

from models import guest
from models.concrete import ConcreteOps
from models.kernel.harness import (
    CPUID_SHIFT,
    EXPECTED_CONSTANTS,
    GROUPS,
    V2_CPU_BASE,
    V2_DIST_BASE,
    KernelInfo,
    Op,
)
from models.machine import Config, Machine, make_state
from spec.device import DeviceSpec, Register
from spec.gicv2 import CPUIF, DIST, GICV2, semantics_for

CPUID_MASK = 0xFF  # KVM_DEV_ARM_VGIC_CPUID_MASK >> KVM_DEV_ARM_VGIC_CPUID_SHIFT
OFFSET_MASK = EXPECTED_CONSTANTS["KVM_DEV_ARM_VGIC_OFFSET_MASK"]
GICD_SGIR = 0xF00
NR_PRIVATE = 32
GROUP_NAMES = {DIST: "DIST_REGS", CPUIF: "CPU_REGS"}
_GROUP_OF = {"DIST_REGS": DIST, "CPU_REGS": CPUIF,
             GROUPS[DIST]: DIST, GROUPS[CPUIF]: CPUIF,
             str(GROUPS[DIST]): DIST, str(GROUPS[CPUIF]): CPUIF}
SPI_TYPES = ("SPI", 1, "1", "0x1")


class OutOfScope(Exception):
    """An operation the model of the kernel does not cover."""


def release_of(k: KernelInfo) -> str:
    """The upstream release a cached Debian kernel is built from: the Debian package
    version's upstream part ('5.10.223-1' -> '5.10.223'), since ``uname -r`` names only
    the ABI on older suites ('5.10.0-32-arm64'); else the release in ``uname -r``
    ('6.12.107+deb13-arm64' -> '6.12.107')."""
    m = re.match(r"(\d+\.\d+\.\d+)", k.version)
    if m:
        return m.group(1)
    m = re.match(r"(\d+\.\d+(?:\.\d+)?)", k.uname_r)
    return m.group(1) if m else k.uname_r


def register_at(group: str, offset: int, spec: DeviceSpec = GICV2) -> tuple[Register, int] | None:
    """The table's register and word at a byte offset, or None (no region: RAZ/WI)."""
    return spec.register_at(group, offset)


def setup_prefix(vcpus: int, nr_irqs: int) -> list[Op]:
    """The standard setup prefix (``harness.gic_setup(2, vcpus, nr_irqs)``)."""
    from models.kernel.harness import gic_setup
    return gic_setup(2, vcpus, nr_irqs)


def _int(a: str | int) -> int:
    return a if isinstance(a, int) else int(a, 0)


@dataclass
class KernelModel:
    """The GICv2 model under one kernel release's semantics, run like the runner."""

    release: str
    spec: DeviceSpec = GICV2  # the device table (tests plant bugs in a copy)

    def __post_init__(self) -> None:
        self.semantics = semantics_for(self.release)

    def fresh(self, vcpus: int, nr_irqs: int) -> Machine:
        ops = ConcreteOps()
        config = Config(vcpus, nr_irqs)
        return Machine(self.spec, self.semantics, config, ops,
                       make_state(self.spec, self.semantics, config, ops))

    def run(self, program: Sequence[Op]) -> list[str]:
        """The result of every operation of ``program`` (setup prefix included)."""
        vcpus, nr_irqs, n = self._parse_setup(program)
        m = self.fresh(vcpus, nr_irqs)
        return ["ok"] * n + [self.step(m, op) for op in program[n:]]

    # -- setup ----------------------------------------------------------------------
    @staticmethod
    def _parse_setup(program: Sequence[Op]) -> tuple[int, int, int]:
        if len(program) < 8 or program[1].name != "vcpus" or program[6].name != "set32":
            raise OutOfScope("the program does not start with the standard setup prefix")
        vcpus, nr_irqs = _int(program[1].args[0]), _int(program[6].args[3])
        if list(program[:8]) != setup_prefix(vcpus, nr_irqs):
            raise OutOfScope("the program does not start with the standard setup prefix")
        if not 1 <= vcpus <= GICV2.max_cpus or nr_irqs not in GICV2.irq_counts:
            raise OutOfScope(f"{vcpus} vCPUs, {nr_irqs} interrupts: not a size the model covers")
        return vcpus, nr_irqs, 8

    # -- one operation --------------------------------------------------------------
    def step(self, m: Machine, op: Op) -> str:
        if op.name in ("get32", "set32"):
            dev, group, attr = op.args[0], op.args[1], _int(op.args[2])
            if _int(dev) != 0 or group not in _GROUP_OF:
                raise OutOfScope(f"{op.line()}: not a GICv2 register group of device 0")
            value = _int(op.args[3]) if op.name == "set32" else None
            return self.attr_access(m, _GROUP_OF[group], attr, value)
        if op.name == "irq":
            irq_type, _vcpu, num, level = op.args
            if irq_type not in SPI_TYPES:
                raise OutOfScope(f"{op.line()}: only SPIs are modelled")
            return self.irq_line(m, _int(num), _int(level))
        raise OutOfScope(f"{op.line()}: not modelled")

    def attr_access(self, m: Machine, group: str, attr: int, value: int | None) -> str:
        """KVM_GET/SET_DEVICE_ATTR on a register group (``value`` None: a read)."""
        cpu = (attr >> CPUID_SHIFT) & CPUID_MASK
        offset = attr & OFFSET_MASK
        if cpu >= m.config.cpus:
            return "EINVAL"  # vgic_v2_parse_attr
        found = register_at(group, offset, self.spec)
        if found is None:
            if value is not None and group == DIST and offset == GICD_SGIR:
                guest.send_sgi(m, cpu, value)  # vgic_mmio_write_sgir, sender = the attr's vCPU
            return "0x0" if value is None else "ok"  # vgic_uaccess: no region, RAZ/WI
        reg, word = found
        if value is None:
            return f"0x{m.read_word(reg, word, cpu, user=True):x}"
        err, errno = m.write_word(reg, word, cpu, value, user=True)
        return errno if int(err) else "ok"

    def irq_line(self, m: Machine, intid: int, level: int) -> str:
        """KVM_IRQ_LINE for an SPI."""
        if intid < NR_PRIVATE or intid >= m.config.irqs:
            return "EINVAL"
        guest.raise_line(m, intid, 0, 1 if level else 0)
        return "ok"


__all__ = ["GROUP_NAMES", "KernelModel", "OutOfScope", "V2_CPU_BASE", "V2_DIST_BASE",
           "register_at", "release_of", "setup_prefix"]
