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
    LEVEL_INFO_INTID_MASK,
    LEVEL_INFO_SHIFT,
    SYSREG_INSTR_MASK,
    V2_CPU_BASE,
    V2_DIST_BASE,
    VGIC_LEVEL_INFO_LINE_LEVEL,
    KernelInfo,
    Op,
    mpidr_affinity,
    vcpu_mpidr,
)
from models.machine import Config, Machine, make_state
from spec import gicv3, lifecycle
from spec.device import DeviceSpec, Register
from spec.gicv2 import CPUIF, DIST, GICV2, semantics_for
from spec.gicv3 import GICV3
from spec.lifecycle import State as LifecycleState

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


def user_access(m: Machine, reg: Register, word: int, vcpu: int, value: int | None) -> str:
    """A userspace read (``value`` None) or write of one register word: its value, ``ok``,
    or the errno of a refused access (the table says when: a read accessor's ``error``,
    a write's ``Effect.error``)."""
    if value is None:
        err, errno = m.read_error(reg, word, vcpu, user=True)
        if int(err):
            return errno
        return f"0x{m.read_word(reg, word, vcpu, user=True):x}"
    err, errno = m.write_word(reg, word, vcpu, value, user=True)
    return errno if int(err) else "ok"


def setup_prefix(vcpus: int, nr_irqs: int, gic: int = 2) -> list[Op]:
    """The standard setup prefix (``harness.gic_setup(gic, vcpus, nr_irqs)``)."""
    from models.kernel.harness import gic_setup
    return gic_setup(gic, vcpus, nr_irqs)


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
        return user_access(m, reg, word, cpu, value)

    def irq_line(self, m: Machine, intid: int, level: int) -> str:
        """KVM_IRQ_LINE for an SPI on an initialised vGIC (kept for callers of the
        register model alone; programs go through the lifecycle table's irq_line)."""
        if intid < NR_PRIVATE or intid >= m.config.irqs:
            return "EINVAL"
        guest.raise_line(m, intid, 0, 1 if level else 0)
        return "ok"


# =======================================================================================
# GICv3: the vgic-v3 on a GICv3 host (QEMU gic-version=3), no ITS.

V3_GROUPS = {"DIST_REGS": gicv3.DIST, "REDIST_REGS": gicv3.REDIST, "CPU_SYSREGS": gicv3.SYSREGS,
             "LEVEL_INFO": gicv3.LEVEL}
GICD_PIDR2 = 0xFFE8  # vgic_mmio_read_v3_idregs: 'case GICD_PIDR2: return 0x3b;' (GICR_PIDR2 too)
PIDR2_GICV3 = 0x3B
IDREGS = (0xFFD0, 0x10000)  # GICD_IDREGS / GICR_IDREGS, REGISTER_DESC_WITH_LENGTH(..., 48)
# The kernel's GICv3 register regions, in the order of vgic_v3_dist_registers and
# vgic_v3_rd_registers (vgic-mmio-v3.c), as (offset, length, bits per interrupt). Order
# matters: vgic_find_mmio_region (vgic-mmio.c) bsearch()es the array with match_region,
# and vgic_v3_rd_registers is not sorted (GICR_STATUSR at 0x10 comes before GICR_IIDR at
# 0x4), so some regions are never found: GICR_STATUSR, which KVM_HAS_DEVICE_ATTR says
# -ENXIO for on every oracle kernel (found by gicproof conform gicv3). The device table
# has most regions; the others read as zero and ignore writes (ITARGETSR, IGRPMODR,
# NSACR, the ID registers but PIDR2, INVLPIR/INVALLR/SYNCR without LPIs), so an access at
# them looks like one where no region is found.
def _shared(off: int, bpi: int) -> tuple[tuple[int, int, int], ...]:
    """REGISTER_DESC_WITH_BITS_PER_IRQ_SHARED: a RAZ/WI region for the private
    interrupts, then one for the SPIs."""
    return ((off, bpi * NR_PRIVATE // 8, bpi), (off + bpi * NR_PRIVATE // 8, bpi * (1024 - NR_PRIVATE) // 8, bpi))


V3_DIST_REGIONS = ((0x000, 0x10, 0), (0x010, 4, 0),
                   *(r for off, bpi in ((0x080, 1), (0x100, 1), (0x180, 1), (0x200, 1), (0x280, 1), (0x300, 1),
                                        (0x380, 1), (0x400, 8), (0x800, 8), (0xC00, 2), (0xD00, 1), (0x6000, 64))
                     for r in _shared(off, bpi)),
                   (IDREGS[0], 48, 0))
_RD_FRAME = ((0x00, 4, 0), (0x10, 4, 0), (0x04, 4, 0), (0x08, 8, 0), (0x14, 4, 0), (0x70, 8, 0), (0x78, 8, 0))
_SGI_FRAME = tuple((0x10000 + off, n, 0) for off, n in ((0x080, 4), (0x100, 4), (0x180, 4), (0x200, 4), (0x280, 4),
                                                        (0x300, 4), (0x380, 4), (0x400, 32), (0xC00, 8),
                                                        (0xD00, 4), (0xE00, 4)))
# GICR_INVLPIR, GICR_INVALLR, GICR_SYNCR: regions in 6.1.176, 6.12.107 and 7.1.8, not in
# 5.10.223 (vgic_v3_rd_registers); the commit that added them was not read, the boundary
# is taken as 6.1 (not pinned).
V3_RD_LPI_REGIONS = ((0xA0, 8, 0), (0xB0, 8, 0), (0xC0, 4, 0))
RD_LPI_REGIONS_SINCE = "6.1"


def rd_regions(release: str) -> tuple[tuple[int, int, int], ...]:
    """vgic_v3_rd_registers of ``release``, in the kernel's order."""
    lpi = V3_RD_LPI_REGIONS if _after(release, RD_LPI_REGIONS_SINCE) else ()
    return _RD_FRAME + lpi + ((IDREGS[0], 48, 0),) + _SGI_FRAME
# An unknown CPU_SYSREGS encoding: 5.10.223 vgic_v3_cpu_sysregs_uaccess 'if (!r) return
# -ENXIO'; 6.1.176 on kvm_sys_reg_get_user / kvm_sys_reg_set_user 'if (!r ||
# sysreg_hidden(vcpu, r)) return -ENOENT'. Boundary taken as 6.1 (not pinned).
SYSREG_ENOENT_SINCE = "6.1"


def find_region(regions: Sequence[tuple[int, int, int]], offset: int) -> tuple[int, int, int] | None:
    """lib/bsearch.c's __inline_bsearch with vgic-mmio.c's match_region, over the
    regions in the kernel's order (an unsorted array hides some regions)."""
    base, num = 0, len(regions)
    while num > 0:
        pivot = base + (num >> 1)
        start, length, _ = regions[pivot]
        result = -1 if offset < start else 1 if offset >= start + length else 0
        if result == 0:
            return regions[pivot]
        if result > 0:
            base = pivot + 1
            num -= 1
        num >>= 1
    return None


def _in_regions(regions: Sequence[tuple[int, int, int]], offset: int, nr_irqs: int) -> bool:
    """vgic_get_mmio_region for a 32-bit userspace access: bsearch finds a region, and
    check_region passes: aligned, and for a per-interrupt region its INTID is below nr_irqs
    ('VGIC_ADDR_TO_INTID(addr, region->bits_per_irq) < nr_irqs'; vgic-mmio.h:
    '(((addr) & VGIC_ADDR_IRQ_MASK(bits)) * 8 >> ilog2(bits))', the mask being the whole
    register's size, bits * 1024 / 8, minus one)."""
    if offset & 3:
        return False
    found = find_region(regions, offset)
    if found is None:
        return False
    bpi = found[2]
    return not bpi or (offset & (bpi * 1024 // 8 - 1)) * 8 // bpi < nr_irqs


def _after(release: str, boundary: str) -> bool:
    return lifecycle.release_key(release) >= lifecycle.release_key(boundary)


@dataclass
class RunV3(Run):
    pre_rev: int | None = None  # a GICD_IIDR revision written before INIT (6.17 on)


@dataclass
class KernelModelV3(KernelModel):
    """The GICv3 model under one kernel release's semantics, run like the runner: the
    lifecycle table ``spec.lifecycle.GICV3`` and the register model of ``spec/gicv3.py``
    (a GICv3 host with 5 priority bits, as QEMU emulates). Besides the table's rules, the
    runner's operations map as in ``KernelModel``, and:

    * REDIST_REGS, CPU_SYSREGS and LEVEL_INFO name a vCPU by its packed MPIDR in attribute
      bits 63:32 (vgic_v3_parse_attr: kvm_mpidr_to_vcpu); a vCPU has MPIDR 0 until
      KVM_ARM_VCPU_INIT (reset_mpidr), so before it MPIDR 0 names vCPU 0 and nothing else
      names any. DIST_REGS is always vCPU 0.
    * DIST_REGS and REDIST_REGS values are 32 bits (get_user/put_user of a u32; a 64-bit
      access reads or writes the low word); CPU_SYSREGS are 64 bits (a 32-bit access gets
      the low half; the runner zeroes the high half of a 32-bit write).
    * GICR_TYPER as the lifecycle leaves it: the affinity (upper word) is the vCPU's MPIDR,
      0 before KVM_ARM_VCPU_INIT; Last only with the redistributor region set
      (vgic_mmio_vcpu_rdist_is_last: 'if (!rdreg) return false').
    * ICC_AP{0,1}R1-3 beyond vgic_v3_max_apr_idx() of the vCPU's current priority bits fail
      with -EINVAL, read or write, as the device table says (on QEMU's emulated GICv3, 5
      bits, that is every one of them, whatever ICC_CTLR_EL1 write came before).
    * KVM_RUN (``run 0``): the table's ``run``; the generator puts it last.
    """

    release: str
    spec: DeviceSpec = GICV3
    lifecycle: lifecycle.Lifecycle = lifecycle.GICV3
    its_devices = False  # an ITS changes the vgic-v3's semantics: KernelModelIts models it

    def __post_init__(self) -> None:
        self.sem3 = gicv3.semantics_for(self.release)
        self.semantics = self.sem3  # type: ignore[assignment]  # what Machine and the report take

    def run(self, program: Sequence[Op]) -> list[str]:
        r = RunV3(self.lifecycle.fresh())
        return [self.step(r, op) for op in program]

    def _op(self, r: Run, name: str, **args: Any) -> str:
        hooks = {
            "init": lambda s, a: self._init(r),
            "register": lambda s, a: self._register(r, a),
            "line": lambda s, a: self._line(r, a["intid"], a["level"]),
            "has_register": lambda s, a: self._has_register_v3(r, a),
        }
        return lifecycle.run(self.lifecycle, r.state, name, args, self.release, hooks)

    def _init(self, r: Run) -> str | None:
        s = r.state
        if s["vcpus"] and r.machine is None:
            r.machine = self.fresh(s["vcpus"], s["nr_spis"] + NR_PRIVATE)
            pre = getattr(r, "pre_rev", None)
            if pre is not None:  # kvm_vgic_create set it, a pre-INIT write changed it; vgic_init keeps it
                r.machine.state.glob["implementation_rev"] = r.machine.ops.const(pre, 4)
        return None

    def vcpu_of(self, s: LifecycleState, group: str, attr: int) -> int | None:
        """The vCPU an attribute names (vgic_v3_parse_attr), or None."""
        if group == "DIST_REGS":
            return 0 if s["vcpus"] else None
        aff = (attr >> 32) & 0xFFFFFFFF
        for i in range(s["vcpus"]):
            if (mpidr_affinity(vcpu_mpidr(i)) if i < s["inited"] else 0) == aff:
                return i
        return None

    def step(self, r: Run, op: Op) -> str:
        if op.name == "run" and r.vm:
            if _int(op.args[0]) >= r.state["vcpus"]:
                return f"!no vcpu '{op.args[0] if isinstance(op.args[0], str) else hex(op.args[0])}'"
            if _int(op.args[0]) != 0:
                raise OutOfScope(f"{op.line()}: KVM_RUN is modelled on vCPU 0 only")
            return self._op(r, "run")
        if op.name == "irq" and op.args[0] not in SPI_TYPES:
            raise OutOfScope(f"{op.line()}: only SPIs are modelled")
        if op.name == "device" and str(op.args[0]) == "its" and not self.its_devices:
            raise OutOfScope(f"{op.line()}: an ITS is KernelModelIts's (gicproof conform gicv3-its)")
        return super().step(r, op)

    def attr(self, r: Run, op: Op) -> str:
        if op.name == "ctrl":
            attr = _sym(op.args[1], CTRL_ATTRS)
            return self._ctrl(r, attr)
        group = _group(op.args[1])
        if group == "GROUP9":
            raise OutOfScope(f"{op.line()}: KVM_DEV_ARM_VGIC_GRP_MAINT_IRQ is not modelled")
        attr = _int(op.args[2]) if group in V3_GROUPS else _sym(
            op.args[2], CTRL_ATTRS if group == "CTRL" else ADDR_TYPES)
        if op.name == "has":
            return self._op(r, "has_attr", group=group, attr=attr, vcpu=self.vcpu_of(r.state, group, attr),
                            offset=attr & OFFSET_MASK)
        write = op.name.startswith("set")
        wide = op.name.endswith("64")
        value = _int(op.args[3]) if write else None
        if group in V3_GROUPS:
            res = self._op(r, "register_access", group=group, attr=attr, value=value, wide=wide,
                           vcpu=self.vcpu_of(r.state, group, attr), offset=attr & OFFSET_MASK)
            if res.startswith("0x") and not wide:
                res = f"0x{int(res, 16) & 0xFFFFFFFF:x}"
            return res
        if group == "NR_IRQS":
            if not write:
                return self._op(r, "get_nr_irqs")
            return self._op(r, "set_nr_irqs", value=(value or 0) & 0xFFFFFFFF)
        if group == "ADDR":
            if write:
                if attr == lifecycle.ADDR_V3_REDIST_REGION:
                    raise OutOfScope(f"{op.line()}: REDIST_REGION is read, not written")
                return self._op(r, "set_address", type=attr, addr=value)
            res = self._op(r, "get_address", type=attr)
            if res.startswith("0x") and not wide:
                res = f"0x{int(res, 16) & 0xFFFFFFFF:x}"
            return res
        if group == "CTRL" and write:
            return self._ctrl(r, attr)
        return self._op(r, "attr_other")

    def _ctrl(self, r: Run, attr: int) -> str:
        if attr == 0:
            return self._op(r, "KVM_DEV_ARM_VGIC_CTRL_INIT")
        if attr == CTRL_ATTRS["SAVE_PENDING_TABLES"]:
            return self._op(r, "save_pending_tables")
        return self._op(r, "ctrl_other")

    # -- hooks ------------------------------------------------------------------------
    def _register(self, r: Run, a: Any) -> str:
        group, vcpu, value = a["group"], a["vcpu"], a["value"]
        m = r.machine
        if m is None:
            if r.state["initialized"]:  # initialised without vCPUs: every access named one
                raise OutOfScope("a register access on a vGIC without vCPUs")
            return self._pre_init(r, a["offset"], value)
        if group in ("DIST_REGS", "REDIST_REGS"):
            offset = a["offset"]
            if value is not None:
                value &= 0xFFFFFFFF  # get_user(u32)
            regions = V3_DIST_REGIONS if group == "DIST_REGS" else rd_regions(self.release)
            found = register_at(V3_GROUPS[group], offset, self.spec) \
                if _in_regions(regions, offset, m.config.irqs) else None
            if found is None:
                if value is not None:
                    return "ok"  # vgic_uaccess: no region, or a RAZ/WI one
                pidr2 = IDREGS[0] <= offset < IDREGS[1] and offset & 0xFFFF == GICD_PIDR2
                return f"0x{PIDR2_GICV3 if pidr2 else 0:x}"
            reg, word = found
            if reg.name == "GICR_TYPER" and value is None:
                return f"0x{self._gicr_typer(r, vcpu, word):x}"
            return user_access(m, reg, word, vcpu, value)
        if group == "CPU_SYSREGS":
            instr = a["attr"] & SYSREG_INSTR_MASK
            found = register_at(gicv3.SYSREGS, instr, self.spec)
            if found is None:
                return "ENOENT" if _after(self.release, SYSREG_ENOENT_SINCE) else "ENXIO"
            reg, word = found
            # ICC_AP<g>R1-3_EL1 beyond vgic_v3_max_apr_idx() of the vCPU's current priority
            # bits fail with -EINVAL: the table's accessors say so (spec/gicv3.py _apr_rows)
            if value is not None and not a["wide"]:
                value &= 0xFFFFFFFF
            return user_access(m, reg, word, vcpu, value)
        # LEVEL_INFO: vgic_v3_attr_regs_access ('info == VGIC_LEVEL_INFO_LINE_LEVEL' else -EINVAL),
        # vgic_v3_line_level_info_uaccess ('if (intid % 32) return -EINVAL;')
        low = a["attr"] & 0xFFFFFFFF
        intid = low & LEVEL_INFO_INTID_MASK
        if (low >> LEVEL_INFO_SHIFT) != VGIC_LEVEL_INFO_LINE_LEVEL or intid % 32:
            return "EINVAL"
        if value is not None:
            value &= 0xFFFFFFFF
        reg, word = register_at(gicv3.LEVEL, intid, self.spec)  # type: ignore[misc]
        return user_access(m, reg, word, vcpu, value)

    def _gicr_typer(self, r: Run, vcpu: int, word: int) -> int:
        """vgic_mmio_read_v3r_typer (5.10: vgic_uaccess_read_v3r_typer, no Last)."""
        s = r.state
        if word:
            return (mpidr_affinity(vcpu_mpidr(vcpu)) & 0xFFFFFF) if vcpu < s["inited"] else 0
        last = self.sem3.typer_last_uaccess and s["redist"] is not None and vcpu == s["vcpus"] - 1
        return ((vcpu & 0xFFFF) << 8) | (gicv3.GICR_TYPER_LAST if last else 0)

    def _pre_init(self, r: Run, offset: int, value: int | None) -> str:
        """GICD_IIDR / GICD_TYPER2 before INIT (6.17 on: reg_allowed_pre_init):
        vgic_mmio_read_v3_misc and vgic_mmio_uaccess_write_v3_misc. IIDR: the revision
        kvm_vgic_create set (KVM_VGIC_IMP_REV_LATEST) or one written since; a write may
        differ in Revision only, to 2 or 3. TYPER2: 0 on a host without direct vSGIs; a
        different write is -EINVAL before INIT ('(reg ^ val) & ~GICD_TYPER2_nASSGIcap',
        '!system_supports_direct_sgis() && val'), -EBUSY only after it."""
        sem = self.sem3
        rev = r.pre_rev if isinstance(r, RunV3) and r.pre_rev is not None else sem.iidr_revision
        if offset == lifecycle.GICD_IIDR_OFFSET:
            iidr = (gicv3.PRODUCT_ID_KVM << 24) | (rev << 12) | gicv3.IMPLEMENTER_ARM
            if value is None:
                return f"0x{iidr:x}"
            value &= 0xFFFFFFFF
            new = (value >> 12) & 0xF
            if (value ^ iidr) & ~0xF000 or new not in (2, 3):
                return "EINVAL"
            assert isinstance(r, RunV3)
            r.pre_rev = new
            return "ok"
        typer2 = sem.typer2()
        if value is None:
            return f"0x{typer2:x}"
        return "ok" if value & 0xFFFFFFFF == typer2 else "EINVAL"

    def _has_register_v3(self, r: Run, a: Any) -> str | None:
        group, offset = a["group"], a["offset"]
        if group == "CPU_SYSREGS":
            return "ok" if register_at(gicv3.SYSREGS, a["attr"] & SYSREG_INSTR_MASK, self.spec) else "ENXIO"
        if group not in ("DIST_REGS", "REDIST_REGS"):
            return None
        regions = V3_DIST_REGIONS if group == "DIST_REGS" else rd_regions(self.release)
        return "ok" if _in_regions(regions, offset, r.state["nr_spis"] + NR_PRIVATE) else "ENXIO"


def kernel_model(device: str, release: str) -> KernelModel:
    """The model of the kernel for ``device`` ('gicv2', 'gicv3' or 'gicv3-its') at ``release``."""
    if device == "gicv3-its":
        from models.kernel.its_model import KernelModelIts
        return KernelModelIts(release)
    if device == "gicv3":
        return KernelModelV3(release)
    if device == "gicv2":
        return KernelModel(release)
    raise ValueError(f"no model of the kernel for {device!r}")


__all__ = ["GROUP_NAMES", "KernelModel", "KernelModelV3", "OutOfScope", "kernel_model", "V2_CPU_BASE", "V2_DIST_BASE",
           "register_at", "release_of", "setup_prefix"]
