"""A model of the kernel that speaks the runner's language.

``KernelModel(release).run(ops)`` executes a program of ``harness.Op`` (the operations
``runner.c`` performs) and returns the result strings the runner prints: ``ok``, ``0xHEX``
or an errno name. ``gicproof conform`` compares them line by line with a real kernel's.

The VM's lifecycle (vCPUs, the device, NR_IRQS, the addresses, CTRL_INIT, lazy
initialisation, KVM_HAS_DEVICE_ATTR) is interpreted from the table ``spec/lifecycle.py``
(``GICV2``), in any order; the register state is the concrete GICv2 model
(``models.machine.Machine`` over the device table of ``spec/gicv2.py``, with the semantics
of kernel ``release``), created when the table's ``init`` hook runs (explicit INIT, or the
first register access or SPI line), with the vCPUs and the interrupt count frozen then.
The runner's operations map onto the table's as follows:

* ``vcpus N``: N times ``create_vcpu``, stopping at the first failure (as the runner does);
  ``vcpu_init``: ``vcpu_init``; ``device``/``test_device`` (v2, v3, its): ``create_device``
  / ``test_device``; the runner numbers the devices it created, and an operation on a
  device it does not have is its own error ``!no device 'X'``, which the model gives too.
* ``set``/``get`` on KVM_DEV_ARM_VGIC_GRP_NR_IRQS, _ADDR, _CTRL (``ctrl``; ``set`` with
  attribute 0 is INIT), and any other group (``attr_other``); ``has``: ``has_attr``.
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
from typing import Any

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
from spec import lifecycle
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


CTRL_ATTRS = {"INIT": 0, "ITS_SAVE_TABLES": 1, "ITS_RESTORE_TABLES": 2, "SAVE_PENDING_TABLES": 3,
              "ITS_CTRL_RESET": 4}  # runner.c's symbols (the UAPI values)
ADDR_TYPES = {"V2_DIST": 0, "V2_CPU": 1, "V3_DIST": 2, "V3_REDIST": 3, "ITS": 4, "V3_REDIST_REGION": 5}
_GROUP_NUMBERS = {name.removeprefix("KVM_DEV_ARM_VGIC_GRP_"): n for name, n in GROUPS.items()}
_GROUP_BY_NUMBER = {n: name for name, n in _GROUP_NUMBERS.items()}
DEVICE_KINDS = {"v2": "v2", "v3": "v3", "its": "its"}


def _group(g: str | int) -> str:
    """A runner group operand (a symbol or a number) -> the table's short name, e.g.
    'DIST_REGS'; an unknown number -> 'GROUP<n>'."""
    if isinstance(g, str) and g in _GROUP_NUMBERS:
        return g
    n = _int(g)
    return _GROUP_BY_NUMBER.get(n, f"GROUP{n}")


def _sym(a: str | int, table: dict[str, int]) -> int:
    return table[a] if isinstance(a, str) and a in table else _int(a)


@dataclass
class Run:
    """One program's VM: the lifecycle state, the register model once initialised, and the
    runner's own bookkeeping (whether the VM exists, how many devices it created)."""

    state: lifecycle.State
    machine: Machine | None = None
    vm: bool = False
    devices: int = 0


@dataclass
class KernelModel:
    """The GICv2 model under one kernel release's semantics, run like the runner."""

    release: str
    spec: DeviceSpec = GICV2  # the device table (tests plant bugs in a copy)
    lifecycle: lifecycle.Lifecycle = lifecycle.GICV2  # the lifecycle table (likewise)

    def __post_init__(self) -> None:
        self.semantics = semantics_for(self.release)

    def fresh(self, vcpus: int, nr_irqs: int) -> Machine:
        ops = ConcreteOps()
        config = Config(vcpus, nr_irqs)
        return Machine(self.spec, self.semantics, config, ops,
                       make_state(self.spec, self.semantics, config, ops))

    def run(self, program: Sequence[Op]) -> list[str]:
        """The result of every operation of ``program`` (which starts with ``vm``)."""
        r = Run(self.lifecycle.fresh())
        return [self.step(r, op) for op in program]

    # -- the table, with this model's hooks -----------------------------------------
    def _op(self, r: Run, name: str, **args: Any) -> str:
        hooks = {
            "init": lambda s, a: self._init(r),
            "register": lambda s, a: self.attr_access(r.machine, a["group"], a["attr"], a["value"]),
            "line": lambda s, a: self._line(r, a["intid"], a["level"]),
            "has_register": lambda s, a: self._has_register(r, a["group"], a["offset"]),
        }
        return lifecycle.run(self.lifecycle, r.state, name, args, self.release, hooks)

    def _init(self, r: Run) -> str | None:
        """The table's init hook: the register state's reset, sized now (vgic_init)."""
        s = r.state
        if s["vcpus"] and r.machine is None:
            r.machine = self.fresh(s["vcpus"], s["nr_spis"] + NR_PRIVATE)
        return None

    def _line(self, r: Run, intid: int, level: int) -> str | None:
        if r.machine is not None:  # a vGIC without vCPUs latches nothing anyone can read
            guest.raise_line(r.machine, intid, 0, 1 if level else 0)
        return None

    def _has_register(self, r: Run, group: str, offset: int) -> str | None:
        """vgic_v2_has_attr_regs: a 32-bit aligned offset with a region, and for a
        per-interrupt register an INTID below nr_spis + 32 (check_region)."""
        if group not in ("DIST_REGS", "CPU_REGS"):
            return None  # the table's checks decided: the attribute exists
        if offset & 3:
            return "ENXIO"
        g = DIST if group == "DIST_REGS" else CPUIF
        found = register_at(g, offset, self.spec)
        if found is None:
            return "ok" if g == DIST and offset == GICD_SGIR else "ENXIO"
        reg, word = found
        if reg.scope == "irq" and reg.word_irqs(word).start >= r.state["nr_spis"] + NR_PRIVATE:
            return "ENXIO"
        return "ok"

    # -- one operation --------------------------------------------------------------
    def step(self, r: Run, op: Op) -> str:
        name, args = op.name, op.args
        if name == "vm":
            if r.vm or len(args) > 1 or (args and _int(args[0]) != 0):
                raise OutOfScope(f"{op.line()}: one VM of the default type per program")
            r.vm = True
            return "ok"
        if not r.vm:
            raise OutOfScope(f"{op.line()}: before the VM exists")
        if name == "vcpus":
            for _ in range(_int(args[0])):
                res = self._op(r, "create_vcpu")
                if res != "ok":
                    return res
            return "ok"
        if name == "vcpu_init":
            if args:
                raise OutOfScope(f"{op.line()}: vCPU features are not modelled")
            return self._op(r, "vcpu_init")
        if name in ("device", "test_device"):
            kind = DEVICE_KINDS.get(str(args[0]))
            if kind is None:
                raise OutOfScope(f"{op.line()}: only the v2, v3 and its device kinds are modelled")
            res = self._op(r, "create_device" if name == "device" else "test_device", kind=kind)
            if res == "ok" and name == "device":
                r.devices += 1
            return res
        if name in ("set32", "set64", "get32", "get64", "has", "ctrl"):
            if _int(args[0]) >= r.devices:
                return f"!no device '{Op(name, args).line().split()[1]}'"  # runner.c: device_fd
            if _int(args[0]) != 0:
                raise OutOfScope(f"{op.line()}: one device per VM")
            return self.attr(r, op)
        if name == "irq":
            irq_type, _vcpu, num, level = args
            if irq_type not in SPI_TYPES:
                raise OutOfScope(f"{op.line()}: only SPIs are modelled")
            return self._op(r, "irq_line", intid=_int(num), level=_int(level))
        raise OutOfScope(f"{op.line()}: not modelled")

    def attr(self, r: Run, op: Op) -> str:
        """KVM_{SET,GET,HAS}_DEVICE_ATTR and ``ctrl`` on device 0."""
        if op.name == "ctrl":
            attr = _sym(op.args[1], CTRL_ATTRS)
            return self._op(r, "KVM_DEV_ARM_VGIC_CTRL_INIT" if attr == 0 else "ctrl_other")
        group = _group(op.args[1])
        if op.name == "has":
            attr = _sym(op.args[2], CTRL_ATTRS if group == "CTRL" else ADDR_TYPES)
            return self._op(r, "has_attr", group=group, attr=attr, vcpu=(attr >> CPUID_SHIFT) & CPUID_MASK,
                            offset=attr & OFFSET_MASK)
        write = op.name.startswith("set")
        wide = op.name.endswith("64")
        value = _int(op.args[3]) if write else None
        if group in ("DIST_REGS", "CPU_REGS"):
            if wide:
                raise OutOfScope(f"{op.line()}: registers are accessed with 32 bits")
            attr = _int(op.args[2])
            return self._op(r, "register_access", group=_GROUP_OF[group], attr=attr, value=value,
                            vcpu=(attr >> CPUID_SHIFT) & CPUID_MASK)
        if group == "NR_IRQS":
            if not write:
                res = self._op(r, "get_nr_irqs")
                return res
            return self._op(r, "set_nr_irqs", value=(value or 0) & 0xFFFFFFFF)  # get_user(u32)
        if group == "ADDR":
            addr_type = _sym(op.args[2], ADDR_TYPES)
            if write:
                return self._op(r, "set_address", type=addr_type, addr=value)
            res = self._op(r, "get_address", type=addr_type)
            if res.startswith("0x") and not wide:  # put_user(u64): the runner prints the low half
                res = f"0x{int(res, 16) & 0xFFFFFFFF:x}"
            return res
        if group == "CTRL" and write:
            attr = _sym(op.args[2], CTRL_ATTRS)
            return self._op(r, "KVM_DEV_ARM_VGIC_CTRL_INIT" if attr == 0 else "ctrl_other")
        return self._op(r, "attr_other")

    def attr_access(self, m: Machine | None, group: str, attr: int, value: int | None) -> str:
        """KVM_GET/SET_DEVICE_ATTR on a register group (``value`` None: a read), once the
        vGIC is initialised and the vCPU exists (the lifecycle table checks both)."""
        assert m is not None
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
        """KVM_IRQ_LINE for an SPI on an initialised vGIC (kept for callers of the
        register model alone; programs go through the lifecycle table's irq_line)."""
        if intid < NR_PRIVATE or intid >= m.config.irqs:
            return "EINVAL"
        guest.raise_line(m, intid, 0, 1 if level else 0)
        return "ok"


__all__ = ["GROUP_NAMES", "KernelModel", "OutOfScope", "V2_CPU_BASE", "V2_DIST_BASE",
           "register_at", "release_of", "setup_prefix"]
