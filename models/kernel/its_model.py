"""The ITS devices of the model of the kernel (``gicproof conform gicv3-its``).

``KernelModelIts(release).run(ops)`` runs a program that creates a vgic-v3 and ITSes
(KVM_DEV_TYPE_ARM_VGIC_ITS) in any order, the way ``runner.c`` does, and returns the
runner's result lines. What comes from where:

* The lifecycle (device creation, the ITS's base address, its KVM_DEV_ARM_VGIC_GRP_CTRL
  attributes, the checks of KVM_DEV_ARM_VGIC_GRP_ITS_REGS, KVM_HAS_DEVICE_ATTR) is the
  table ``spec.lifecycle.GICV3_ITS``; the vgic-v3's own operations are ``KernelModelV3``'s.
* Each ITS's registers are the rows of ``spec/gicv3_its.py`` (GITS_CTLR, IIDR, TYPER,
  CBASER, CWRITER, CREADR, BASER0-7), run on a concrete ``models.machine.Machine`` of the
  composed device (only its global ITS fields are used). The kernel's region table
  (``ITS_REGIONS``, its_registers[] of vgic-its.c) decides which offsets exist; the ID
  registers (0xFFD0-0xFFFC) are a region the device table has no row for (they view no
  state): ``ITS_IDREGS``.
* The ITS's tables in guest memory are concrete here (``ItsTables``), as the kernel walks
  them: the collection table, the device table (flat or two-level) and each device's ITT,
  read by KVM_DEV_ARM_ITS_RESTORE_TABLES and written by KVM_DEV_ARM_ITS_SAVE_TABLES entry by
  entry in the ABI of arm-vgic-its.rst ("ITS Table ABI REV0"), with every kernel check and
  errno, per release (``spec.gicv3.GicV3Semantics.its_restore_checks`` and
  ``its_dte_eventid_bits``). The spec's abstraction (one representative entry per table,
  ``spec/gicv3_its.py``) is what the proofs use; this is its concrete counterpart, each
  function citing the kernel function it follows (``arch/arm64/kvm/vgic/vgic-its.c`` unless
  named otherwise, read in 5.10.223, 6.1.176, 6.12.107 and 7.1.8).
* The LPIs are the VM's (``Lpi``): created by a restored ITE (vgic_add_lpi reads the LPI's
  configuration byte and its target vCPU's pending bit, clearing a set bit), freed with
  their last ITE, written back by KVM_DEV_ARM_VGIC_SAVE_PENDING_TABLES on the vgic-v3.
* Guest memory is what the runner's ``mem`` operation creates (KVM_SET_USER_MEMORY_REGION,
  zeroed), ``poke`` writes and ``peek`` reads.

Not modelled, and refused with ``OutOfScope`` (the generator never produces it) or
``Hazard`` (the generator cuts a program before it): ITS commands (a queue holding a
non-zero command when the ITS processes it: the command queue is always zeros or
unbacked in the generated programs, so processing only advances GITS_CREADR, as the
spec's GITS_CTLR row says), an LPI that is both enabled and pending (it would sit on its
vCPU's ap_list, which holds a reference), the vgic-v3's registers once an ITS exists
(GICD_TYPER, GICR_TYPER, GICR_CTLR change with an ITS) except GICR_PROPBASER,
GICR_PENDBASER (``LPI_BASE_REGS``) and GICR_CTLR.EnableLPIs (``_redist_lpi``: ``gicproof
prove --on-kernel`` places the LPI tables and enables LPIs with them; the conform generator
writes none), a second device with a DeviceID
the ITS already holds (list_sort orders equal IDs unstably), and KVM_DEV_ARM_ITS_SAVE_TABLES
of an event whose collection was freed (vgic_its_save_ite dereferences
'ite->collection->collection_id': an oops on 5.10.223 and 6.1.176,
tests/test_kernel_oracle.py; from 7.2 and 6.12.117 a zero entry, spec/gicv3.py
its_save_unmapped_ite).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from models.concrete import CONCRETE
from models.kernel.harness import Op
from models.kernel.model import (
    ADDR_TYPES,
    CTRL_ATTRS,
    DEVICE_KINDS,
    V3_GROUPS,
    KernelModelV3,
    OutOfScope,
    Run,
    RunV3,
    _group,
    _int,
    _sym,
    find_region,
)
from models.machine import Config, Machine, make_state
from spec import lifecycle
from spec.gicv3_its import GICV3_ITS, INITIAL_PROPBASER, ITS_REGS

ITS_C = "arch/arm64/kvm/vgic/vgic-its.c"
ESZ = 8  # ABI 0: every table entry is 8 bytes (ABI_0_ESZ)
SZ_64K = 0x10000
PAGE = 0x1000  # the oracle's guest kernel (Debian arm64) has 4K pages: kvm_is_visible_gfn's gfn
LPI_OFFSET = 8192  # GIC_LPI_OFFSET / VGIC_MIN_LPI
COLLECTION_NOT_MAPPED = 0xFFFFFFFF
VITS_MAX_DEVID = 0xFFFF  # BIT(VITS_TYPER_DEVBITS) - 1
VITS_TYPER_IDBITS = 16
DTE_MAX_NEXT = (1 << 14) - 1  # VITS_DTE_MAX_DEVID_OFFSET
ITE_MAX_NEXT = (1 << 16) - 1  # VITS_ITE_MAX_EVENTID_OFFSET
VALID = 1 << 63
INDIRECT = 1 << 62

# its_registers[] (the same in the four releases read): (offset, length, bits per IRQ),
# sorted, as vgic_find_mmio_region bsearch()es it.
ITS_REGIONS = ((0x0000, 4, 0), (0x0004, 4, 0), (0x0008, 8, 0), (0x0080, 8, 0), (0x0088, 8, 0),
               (0x0090, 8, 0), (0x0100, 0x40, 0), (0xFFD0, 0x30, 0))
# vgic_mmio_read_its_idregs ('switch (addr & 0xffff)'; its_mmio_write_wi for writes): the
# ITS base is 64K aligned, so the offset is the address's low 16 bits.
ITS_IDREGS = {0xFFE0: 0x92, 0xFFE4: 0xB4, 0xFFE8: 0x30 | 0x0B, 0xFFD0: 0x40, 0xFFF0: 0x0D, 0xFFF4: 0xF0,
              0xFFF8: 0x05, 0xFFFC: 0xB1}
IDREGS = (0xFFD0, 0x10000)
# GICR_PROPBASER and GICR_PENDBASER (REDIST_REGS, two 32-bit words each): the vgic-v3 registers
# a gicv3-its program may access (vgic_mmio_write_propbase / _pendbase do not depend on an ITS
# but for 'if (vgic_lpis_enabled(vcpu)) return;', and GICR_CTLR, which sets EnableLPIs, stays
# refused)
LPI_BASE_REGS = range(0x70, 0x80)
GICR_CTLR_OFFSET = 0x0
GICR_CTLR_ENABLE_LPIS = 1
GICR_PENDBASER_PTZ_HIGH = 1 << 30  # GICR_PENDBASER_PTZ (bit 62) in the register's upper word
PROPBASER_ADDRESS = (1 << 52) - (1 << 12)  # GICR_PROPBASER_ADDRESS: bits 51:12
PENDBASER_ADDRESS = (1 << 52) - (1 << 16)  # GICR_PENDBASER_ADDRESS: bits 51:16


class Hazard(OutOfScope):
    """An operation the kernel may crash on, or that reaches behaviour this model does not
    follow; ``index`` is the operation's position in its program (0-based)."""

    def __init__(self, message: str, index: int = -1):
        super().__init__(message)
        self.index = index


class GuestMemory:
    """The VM's memory slots (the runner's ``mem``), zeroed at creation."""

    def __init__(self) -> None:
        self.regions: list[tuple[int, bytearray]] = []

    def add(self, gpa: int, size: int) -> str:
        if size <= 0 or gpa % PAGE or size % PAGE:
            raise OutOfScope(f"mem {gpa:#x} {size:#x}: the generator's slots are page aligned")
        for g, b in self.regions:
            if gpa < g + len(b) and g < gpa + size:
                raise OutOfScope(f"mem {gpa:#x} {size:#x}: overlapping slots (EEXIST) are not modelled")
        if len(self.regions) == 8:
            raise OutOfScope("the runner has 8 memory slots")
        self.regions.append((gpa, bytearray(size)))
        return "ok"

    def _at(self, gpa: int, n: int) -> tuple[bytearray, int] | None:
        for g, b in self.regions:
            if g <= gpa and gpa + n <= g + len(b):
                return b, gpa - g
        return None

    def read(self, gpa: int, n: int) -> bytes | None:
        """kvm_read_guest: None (-EFAULT) unless a slot holds every byte."""
        at = self._at(gpa, n)
        return None if at is None else bytes(at[0][at[1]:at[1] + n])

    def write(self, gpa: int, data: bytes) -> bool:
        """kvm_write_guest: False (-EFAULT) unless a slot holds every byte."""
        at = self._at(gpa, len(data))
        if at is None:
            return False
        at[0][at[1]:at[1] + len(data)] = data
        return True

    def read64(self, gpa: int) -> int | None:
        b = self.read(gpa, 8)
        return None if b is None else int.from_bytes(b, "little")

    def write64(self, gpa: int, value: int) -> bool:
        return self.write(gpa, (value & (1 << 64) - 1).to_bytes(8, "little"))

    def visible(self, gpa: int) -> bool:
        """kvm_is_visible_gfn(kvm, gpa >> PAGE_SHIFT): a slot holds the page."""
        page = gpa - gpa % PAGE
        return self._at(page, PAGE) is not None


@dataclass
class Collection:
    icid: int
    target: int  # a vCPU index, or COLLECTION_NOT_MAPPED


@dataclass
class Ite:
    event: int
    collection: Collection | None  # None once its collection was freed (vgic_its_free_collection)
    intid: int


@dataclass
class ItsDevice:
    device_id: int
    itt_addr: int
    nbits: int  # num_eventid_bits
    ites: list[Ite] = field(default_factory=list)


@dataclass
class Lpi:
    intid: int
    target: int | None  # the vCPU (None: its collection was not mapped)
    pending: bool
    refs: int = 1
    enabled: bool = False  # its configuration byte's Enable bit, read when it was created


class ItsError(Exception):
    """A kernel function's negative return: its errno name."""

    def __init__(self, errno: str):
        super().__init__(errno)
        self.errno = errno


def _to_int32(v: int) -> int:
    v &= 0xFFFFFFFF
    return v - (1 << 32) if v & (1 << 31) else v


def baser_address(baser: int) -> int:
    """GITS_BASER_ADDR_48_to_52 (include/linux/irqchip/arm-gic-v3.h): bits 47:16, and bits
    15:12 as address bits 51:48 (64K pages)."""
    return (baser & ((1 << 48) - (1 << 16))) | ((baser >> 12) & 0xF) << 48


def baser_size(baser: int) -> int:
    """GITS_BASER_NR_PAGES(baser) * SZ_64K: the page size is always 64K
    (vgic_sanitise_its_baser)."""
    return ((baser & 0xFF) + 1) * SZ_64K


@dataclass
class Its:
    """One ITS: its base address is the lifecycle table's; its registers a concrete
    machine of the spec's rows; its tables concrete."""

    machine: Machine
    collections: list[Collection] = field(default_factory=list)  # its->collection_list, in order
    devices: list[ItsDevice] = field(default_factory=list)  # its->device_list

    def reg(self, name: str) -> int:
        return int(self.machine.state.glob[name])


@dataclass
class ItsRun(RunV3):
    kinds: list[str] = field(default_factory=list)  # the runner's device numbers -> 'v3' | 'its'
    its: list[Its] = field(default_factory=list)
    mem: GuestMemory = field(default_factory=GuestMemory)
    lpis: dict[int, Lpi] = field(default_factory=dict)
    index: int = 0  # the operation being run
    its_propbaser: bool = False  # an ITS was created: the VM's propbaser was set to INITIAL_PROPBASER_VALUE
    lpis_enabled: set[int] = field(default_factory=set)  # the vCPUs whose GICR_CTLR.EnableLPIs is set

    def propbase(self) -> int:
        """GICR_PROPBASER_ADDRESS(kvm->arch.vgic.propbaser) (0 before INIT: no register yet)."""
        return 0 if self.machine is None else int(self.machine.state.glob["propbaser"]) & PROPBASER_ADDRESS

    def pendbase(self, vcpu: int) -> int:
        """GICR_PENDBASER_ADDRESS(vcpu->arch.vgic_cpu.pendbaser)."""
        return 0 if self.machine is None else int(self.machine.state.cpu[vcpu]["pendbaser"]) & PENDBASER_ADDRESS


@dataclass
class KernelModelIts(KernelModelV3):
    """The vgic-v3 of ``KernelModelV3`` and any number of ITSes, under one release."""

    release: str
    lifecycle: lifecycle.Lifecycle = lifecycle.GICV3_ITS
    its_devices = True

    def __post_init__(self) -> None:
        super().__post_init__()
        self.its_sem = GICV3_ITS.semantics(self.release)

    def run(self, program: Sequence[Op]) -> list[str]:
        r = ItsRun(self.lifecycle.fresh())
        out = []
        for i, op in enumerate(program):
            r.index = i
            try:
                out.append(self.step(r, op))
            except Hazard as e:
                e.index = i
                raise
        return out

    def _op(self, r: Run, name: str, **args: Any) -> str:
        assert isinstance(r, ItsRun)
        hooks = {
            "init": lambda s, a: self._init(r),
            "register": lambda s, a: self._register(r, a),
            "line": lambda s, a: self._line(r, a["intid"], a["level"]),
            "has_register": lambda s, a: self._has_register_v3(r, a),
            "its_register": lambda s, a: self._its_register(r, a),
            "its_has_register": lambda s, a: self._its_has_register(a),
            "its_tables": lambda s, a: self._its_tables(r, a),
            "pending_tables": lambda s, a: self._save_pending_tables(r),
        }
        return lifecycle.run(self.lifecycle, r.state, name, args, self.release, hooks)

    # -- the runner's operations ---------------------------------------------------------
    def step(self, r: Run, op: Op) -> str:
        assert isinstance(r, ItsRun)
        name, args = op.name, op.args
        if name == "run":
            raise OutOfScope(f"{op.line()}: KVM_RUN is not in gicv3-its programs")
        if name in ("mem", "peek", "poke"):
            if not r.vm:
                raise OutOfScope(f"{op.line()}: before the VM exists")
            return self._memory(r, op)
        if name == "device" and r.vm:
            res = super().step(r, op)
            if res == "ok":
                kind = DEVICE_KINDS[str(args[0])]
                r.kinds.append(kind)
                if kind == "its":
                    r.its.append(self._new_its())
                    # vgic_its_create: 'dev->kvm->arch.vgic.propbaser = INITIAL_PROPBASER_VALUE;'
                    r.its_propbaser = True
                    if r.machine is not None:
                        r.machine.state.glob["propbaser"] = CONCRETE.const(INITIAL_PROPBASER, 64)
            return res
        if name in ("set32", "set64", "get32", "get64", "has", "ctrl") and r.vm:
            dev = _int(args[0])
            if dev >= r.devices:
                return f"!no device '{op.line().split()[1]}'"  # runner.c: device_fd
            if r.kinds[dev] == "its":
                return self.its_attr(r, r.kinds[:dev].count("its"), op)
            if op.name != "has" and op.name != "ctrl" and _group(args[1]) in V3_GROUPS:
                offset = _int(args[2]) & 0xFFFFFFFF
                lpi = _group(args[1]) == "REDIST_REGS" and (offset in LPI_BASE_REGS or offset == GICR_CTLR_OFFSET)
                if not lpi or r.machine is None:
                    raise OutOfScope(f"{op.line()}: the vgic-v3's registers are not in gicv3-its programs "
                                     "(but GICR_CTLR, GICR_PROPBASER/PENDBASER after INIT)")
                return self._redist_lpi(r, op, offset)
            return self.attr(r, op)
        return super().step(r, op)

    def _redist_lpi(self, r: ItsRun, op: Op, offset: int) -> str:
        """GICR_CTLR, GICR_PROPBASER and GICR_PENDBASER of a VM with an ITS.
        GICR_CTLR: vgic_mmio_read_v3r_ctlr is the vgic-v3's read (IR/CES from revision 3)
        with EnableLPIs; vgic_mmio_write_v3r_ctlr ('if (!vgic_has_its(vcpu->kvm)) return;')
        enabling (0 -> 1) calls vgic_enable_lpis: without PTZ, its_sync_lpi_pending_table
        reads the pending bit of every LPI targeting the vCPU from its pending table
        ('irq->pending_latch = pendmask & (1U << bit_nr)', the table not written; a failed
        read ends the sync, and its error is ignored); disabling (1 -> 0) calls
        vgic_flush_pending_lpis, which only takes LPIs off the vCPU's ap_list (none here:
        an enabled pending LPI is a Hazard). GICR_PROPBASER/PENDBASER: the vgic-v3's, but
        'if (vgic_lpis_enabled(vcpu)) return;' (5.10: 'if (vgic_cpu->lpis_enabled)') on
        the redistributor written."""
        vcpu = self.vcpu_of(r.state, "REDIST_REGS", _int(op.args[2]))
        write = op.name.startswith("set")
        if vcpu is None:
            return self.attr(r, op)
        if offset != GICR_CTLR_OFFSET:
            if write and offset == 0x7C and _int(op.args[3]) & GICR_PENDBASER_PTZ_HIGH:
                raise OutOfScope(f"{op.line()}: PTZ is kept by the kernel, dropped by the model (spec/gicv3.py)")
            if write and vcpu in r.lpis_enabled:
                return "ok"
            return self.attr(r, op)
        res = self.attr(r, op)
        if not write:
            if res.startswith("0x") and vcpu in r.lpis_enabled:
                res = f"0x{int(res, 16) | GICR_CTLR_ENABLE_LPIS:x}"
            return res
        if res != "ok":
            return res
        on, was = bool(_int(op.args[3]) & GICR_CTLR_ENABLE_LPIS), vcpu in r.lpis_enabled
        if on and not was:
            r.lpis_enabled.add(vcpu)
            for intid in sorted(r.lpis):
                lpi = r.lpis[intid]
                if lpi.target != vcpu:
                    continue
                byte = r.mem.read(r.pendbase(vcpu) + intid // 8, 1)
                if byte is None:
                    break
                lpi.pending = bool(byte[0] >> (intid % 8) & 1)
                if lpi.pending and lpi.enabled:
                    raise Hazard(f"LPI {intid} enabled and pending: it would be queued on vCPU {vcpu}'s ap_list")
        elif was and not on:
            r.lpis_enabled.discard(vcpu)
        return res

    def _init(self, r: Run) -> str | None:
        res = super()._init(r)
        if isinstance(r, ItsRun) and r.its_propbaser and r.machine is not None:
            r.machine.state.glob["propbaser"] = CONCRETE.const(INITIAL_PROPBASER, 64)
        return res

    def _new_its(self) -> Its:
        """vgic_its_create: the registers' reset (INITIAL_BASER_VALUE | type, CBASER 0,
        disabled), no collection, no device. The machine's configuration (one vCPU, 64
        interrupts) is unused: the ITS rows are global."""
        cfg = Config(1, 64)
        return Its(Machine(GICV3_ITS, self.its_sem, cfg, CONCRETE, make_state(GICV3_ITS, self.its_sem, cfg, CONCRETE)))

    def _memory(self, r: ItsRun, op: Op) -> str:
        """runner.c op_mem: ``mem`` (KVM_SET_USER_MEMORY_REGION of zeroed anonymous memory),
        ``peek``/``poke`` of an aligned 64-bit word in a slot (the runner's own error
        otherwise)."""
        if op.name == "mem":
            return r.mem.add(_int(op.args[0]), _int(op.args[1]))
        gpa = _int(op.args[0])
        if gpa % 8 or r.mem.read(gpa, 8) is None:
            return f"!no mem word at {gpa:#x}"
        if op.name == "peek":
            return f"0x{r.mem.read64(gpa):x}"
        r.mem.write64(gpa, _int(op.args[1]))
        return "ok"

    def its_attr(self, r: ItsRun, n: int, op: Op) -> str:
        """KVM_{SET,GET,HAS}_DEVICE_ATTR and ``ctrl`` on ITS number ``n``."""
        if op.name == "ctrl":
            return self._op(r, "its_ctrl", its=n, attr=_sym(op.args[1], CTRL_ATTRS))
        group = _group(op.args[1])
        attr = _int(op.args[2]) if group == "ITS_REGS" else _sym(
            op.args[2], CTRL_ATTRS if group == "CTRL" else ADDR_TYPES)
        if op.name == "has":
            return self._op(r, "its_has_attr", its=n, group=group, attr=attr)
        write = op.name.startswith("set")
        wide = op.name.endswith("64")
        value = _int(op.args[3]) if write else None
        if group == "ITS_REGS":
            res = self._op(r, "its_register_access", its=n, offset=attr, value=value)
        elif group == "ADDR":
            res = self._op(r, "its_set_address" if write else "its_get_address", its=n, type=attr, addr=value)
        elif group == "CTRL" and write:
            res = self._op(r, "its_ctrl", its=n, attr=attr)
        else:
            res = self._op(r, "its_attr_other")
        if res.startswith("0x") and not wide:  # put_user(u64): the runner prints the low half
            res = f"0x{int(res, 16) & 0xFFFFFFFF:x}"
        return res

    # -- KVM_DEV_ARM_VGIC_GRP_ITS_REGS ---------------------------------------------------
    def _its_has_register(self, a: Any) -> str | None:
        """vgic_its_has_attr_regs: the offset has a region (alignment checked before)."""
        if a["group"] != "ITS_REGS":
            return None
        return "ok" if find_region(ITS_REGIONS, a["attr"]) else "ENXIO"

    def _its_register(self, r: ItsRun, a: Any) -> str:
        """vgic_its_attr_regs_access after its checks: the region (none: -ENXIO), then the
        ID registers' constant, or the spec's row: its_read, or uaccess_its_write if the row
        has one, else its_write (whose result is not returned: 0)."""
        offset, value = a["offset"], a["value"]
        if find_region(ITS_REGIONS, offset) is None:
            return "ENXIO"
        its = r.its[a["its"]]
        if IDREGS[0] <= offset < IDREGS[1]:
            return "ok" if value is not None else f"0x{ITS_IDREGS.get(offset, 0):x}"
        found = GICV3_ITS.register_at(ITS_REGS, offset)
        assert found is not None, hex(offset)
        reg, word = found
        m = its.machine
        if value is None:
            return f"0x{m.read_word(reg, word, 0):x}"
        before = {k: its.reg(k) for k in ("its_enabled", "its_creadr", "its_cwriter", "its_cbaser",
                                          "its_baser_device", "its_baser_coll")}
        err, errno = m.write_word(reg, word, 0, value & ((1 << 64) - 1))
        if err:
            return errno
        if reg.name in ("GITS_BASER0", "GITS_BASER1") and not before["its_enabled"]:
            field_ = "its_baser_device" if reg.name == "GITS_BASER0" else "its_baser_coll"
            changed = self.its_sem.its_baser_change_frees and its.reg(field_) != before[field_]
            if not its.reg(field_) & VALID or changed:
                # spec/gicv3_its.py _baser_rw ('clearing Valid (from 7.2, changing the
                # value) frees every device' / 'collection'): vgic_mmio_write_its_baser 'if
                # (!(reg & GITS_BASER_VALID))' -> vgic_its_free_device_list /
                # vgic_its_free_collection_list; spec/gicv3.py its_baser_change_frees
                if reg.name == "GITS_BASER0":
                    self._free_devices(r, its)
                else:
                    self._free_collections(its)
        self._check_commands(r, its, before)
        return "ok"

    def _check_commands(self, r: ItsRun, its: Its, before: dict[str, int]) -> None:
        """vgic_its_process_commands ran if the ITS is enabled and CREADR moved to CWRITER
        (the spec's rows: processing consumes the queue): each 32-byte command from the old
        CREADR, read at GITS_CBASER_ADDRESS + offset; one that can be read and is not all
        zeros would be executed (vgic_its_handle_command), which this model does not do.
        (A zero command byte is no command: 'default' leaves -ENODEV, which is ignored; an
        unreadable one is skipped, 'we can just ignore that command then'.)"""
        if not its.reg("its_enabled") or before["its_creadr"] == its.reg("its_creadr"):
            return
        cbaser = its.reg("its_cbaser")
        base = cbaser & ((1 << 52) - (1 << 12))  # GITS_CBASER_ADDRESS
        size = ((cbaser & 0xFF) + 1) << 12  # ITS_CMD_BUFFER_SIZE
        off = before["its_creadr"]
        while off != its.reg("its_creadr"):
            cmd = r.mem.read(base + off, 32)
            if cmd is not None and any(cmd):
                raise Hazard(f"the ITS would run the command at {base + off:#x} (commands are not modelled)")
            off = (off + 32) % size

    # -- KVM_DEV_ARM_VGIC_GRP_CTRL: CTRL_RESET, SAVE_TABLES, RESTORE_TABLES ----------------
    def _its_tables(self, r: ItsRun, a: Any) -> str | None:
        its = r.its[a["its"]]
        attr = a["attr"]
        try:
            if attr == lifecycle.ITS_CTRL_RESET:
                # vgic_its_reset: the registers as spec/gicv3_its.py _ctrl_reset says, then
                # 'vgic_its_free_device_list(kvm, its); vgic_its_free_collection_list(kvm, its);'
                its.machine.operation("KVM_DEV_ARM_ITS_CTRL_RESET")
                self._free_devices(r, its)
                self._free_collections(its)
            elif attr == lifecycle.ITS_SAVE_TABLES:
                self._save_tables(r, its)
            else:
                self._restore_tables(r, its)
        except ItsError as e:
            return e.errno
        return None

    def _check_id(self, r: ItsRun, baser: int, ident: int) -> int | None:
        """vgic_its_check_id: the entry's address if ``ident`` fits the table (DeviceID at
        most 0xffff, ICID below 2^16; flat: below the table's entries; two-level: its
        level-1 entry readable and Valid) and the entry's page is in a memory slot
        (kvm_is_visible_gfn), else None."""
        table_type = (baser >> 56) & 7
        if table_type == 1 and ident > VITS_MAX_DEVID:
            return None
        if table_type == 4 and ident >= 1 << 16:
            return None
        size, base = baser_size(baser), baser_address(baser)
        if not baser & INDIRECT:
            if ident >= size // ESZ:
                return None
            addr = base + ident * ESZ
        else:
            index = ident // (SZ_64K // ESZ)
            if index >= size // 8:
                return None
            l1 = r.mem.read64(base + index * 8)
            if l1 is None or not l1 & VALID:
                return None
            addr = (l1 & ((1 << 52) - (1 << 16))) + (ident % (SZ_64K // ESZ)) * ESZ
        return addr if r.mem.visible(addr) else None

    def _scan(self, r: ItsRun, base: int, size: int, start_id: int, fn: Any) -> int:
        """scan_its_table: read each entry (a failed read returns -EFAULT, raised), call
        ``fn(id, entry)``: < 0 raised by fn, 0 the last entry, > 0 the ID offset to the next;
        stop with 1 at the end of the table. ``size`` is an int in the kernel: the caller
        passes it truncated (vgic_its_restore_itt: 'BIT_ULL(num_eventid_bits) * ite_esz'),
        and 'unsigned long len = size' sign-extends it."""
        length = size if size >= 0 else size + (1 << 64)
        ident, gpa = start_id, base
        while True:
            entry = r.mem.read64(gpa)
            if entry is None:
                raise ItsError("EFAULT")
            nxt = fn(ident, entry)
            if nxt <= 0:
                return nxt
            step = nxt * ESZ
            if step >= length:
                return 1
            ident += nxt
            gpa += step
            length -= step

    def _restore_tables(self, r: ItsRun, its: Its) -> None:
        """vgic_its_restore_tables_v0: the collection table, then the device table; from 5.19
        (its_restore_checks) a failed device table frees the collection list too."""
        sem = self.its_sem
        self._restore_collection_table(r, its)
        try:
            self._restore_device_tables(r, its)
        except ItsError:
            if sem.its_restore_checks:
                self._free_collections(its)
            raise

    def _restore_collection_table(self, r: ItsRun, its: Its) -> None:
        """vgic_its_restore_collection_table: nothing with the BASER not Valid; else
        vgic_its_restore_cte on each 8-byte entry from the base until one is not Valid or
        the table (NR_PAGES * 64K) ends. A CTE: RDBase (bits 47:16, '(u32)(val >>
        KVM_ITS_CTE_RDBASE_SHIFT)') must be COLLECTION_NOT_MAPPED or an existing vCPU
        (-EINVAL; 5.10/6.1 'target_addr >= online_vcpus', 6.12 on '!kvm_get_vcpu_by_id'),
        the ICID (bits 15:0) not already a collection (-EEXIST), and the ICID must fit the
        table (vgic_its_check_id): from 5.19 -EINVAL, before it the collection is skipped
        and the scan goes on. From 5.19 a failure frees the collection list."""
        baser = its.reg("its_baser_coll")
        if not baser & VALID:
            return
        gpa, size, read = baser_address(baser), baser_size(baser), 0
        checks = self.its_sem.its_restore_checks
        try:
            while read < size:
                val = r.mem.read64(gpa)
                if val is None:
                    raise ItsError("EFAULT")
                if not val & VALID:
                    return
                target, icid = (val >> 16) & 0xFFFFFFFF, val & 0xFFFF
                if target != COLLECTION_NOT_MAPPED and target >= r.state["vcpus"]:
                    raise ItsError("EINVAL")
                if any(c.icid == icid for c in its.collections):
                    raise ItsError("EEXIST")
                fits = self._check_id(r, baser, icid) is not None
                if not fits and checks:
                    raise ItsError("EINVAL")
                if fits:  # 5.10: vgic_its_alloc_collection's E_ITS_MAPC_COLLECTION_OOR (> 0) skips it
                    its.collections.append(Collection(icid, target))
                gpa += ESZ
                read += ESZ
        except ItsError:
            if checks:
                self._free_collections(its)
            raise

    def _restore_device_tables(self, r: ItsRun, its: Its) -> None:
        """vgic_its_restore_device_tables: nothing with the BASER not Valid; a flat table is
        scanned with vgic_its_restore_dte, a two-level one (Indirect) with handle_l1_dte
        (an L1 entry without Valid is skipped; a Valid one scans its 64K level-2 page, IDs
        from index * 8192). From 5.19 a failure frees the device list."""
        baser = its.reg("its_baser_device")
        if not baser & VALID:
            return
        base, size = baser_address(baser), baser_size(baser)

        def l1(index: int, entry: int) -> int:
            if not entry & VALID:
                return 1
            return self._scan(r, entry & ((1 << 52) - (1 << 16)), SZ_64K, index * (SZ_64K // ESZ), dte)

        def dte(ident: int, entry: int) -> int:
            return self._restore_dte(r, its, ident, entry)

        try:
            self._scan(r, base, size, 0, l1 if baser & INDIRECT else dte)
        except ItsError:
            if self.its_sem.its_restore_checks:
                self._free_devices(r, its)
            raise

    def _restore_dte(self, r: ItsRun, its: Its, ident: int, entry: int) -> int:
        """vgic_its_restore_dte: an entry without Valid is skipped (1); else the next offset
        (bits 62:49), the EventID bits (bits 4:0, plus one; more than 16: -EINVAL from 7.1,
        stable 6.1.175 and 6.12.92), the DeviceID against the table (vgic_its_check_id,
        -EINVAL, from 5.19), then the device and its ITT (vgic_its_restore_itt; a failure
        frees the device and is returned)."""
        if not entry >> 63:
            return 1
        nxt = (entry >> 49) & ((1 << 14) - 1)
        nbits = (entry & 0x1F) + 1
        itt_addr = ((entry >> 5) & ((1 << 44) - 1)) << 8
        sem = self.its_sem
        if sem.its_dte_eventid_bits and nbits > VITS_TYPER_IDBITS:
            raise ItsError("EINVAL")
        if sem.its_restore_checks and self._check_id(r, its.reg("its_baser_device"), ident) is None:
            raise ItsError("EINVAL")
        if any(d.device_id == ident for d in its.devices):
            raise Hazard(f"a second device {ident:#x} in the ITS's list (list_sort orders equal IDs unstably)")
        dev = ItsDevice(ident, itt_addr, nbits)
        its.devices.append(dev)
        try:
            # vgic_its_restore_itt: 'size_t max_size = BIT_ULL(dev->num_eventid_bits) *
            # ite_esz;' passed to scan_its_table's int size
            self._scan(r, itt_addr, _to_int32((1 << nbits) * ESZ), 0,
                       lambda ev, e: self._restore_ite(r, its, dev, ev, e))
        except ItsError:
            self._free_device(r, its, dev)
            raise
        return nxt

    def _restore_ite(self, r: ItsRun, its: Its, dev: ItsDevice, event: int, val: int) -> int:
        """vgic_its_restore_ite: pINTID (bits 47:16) 0 is no entry (1); below 8192 -EINVAL;
        EventID + next (bits 63:48) beyond the device's EventIDs -EINVAL; an ICID (bits
        15:0) with no collection -EINVAL; then the ITE and its LPI (vgic_add_lpi), whose
        failure is returned. (vgic_its_check_event_id, 5.19, checks the ITE's own page,
        just read: it cannot fail here.)"""
        intid = (val >> 16) & 0xFFFFFFFF
        icid = val & 0xFFFF
        nxt = val >> 48
        if not intid:
            return 1
        if intid < LPI_OFFSET:
            raise ItsError("EINVAL")
        if event + nxt >= 1 << dev.nbits:
            raise ItsError("EINVAL")
        coll = next((c for c in its.collections if c.icid == icid), None)
        if coll is None:
            raise ItsError("EINVAL")
        target = None if coll.target == COLLECTION_NOT_MAPPED else coll.target
        self._add_lpi(r, intid, target)
        dev.ites.append(Ite(event, coll, intid))
        return nxt

    def _add_lpi(self, r: ItsRun, intid: int, target: int | None) -> None:
        """vgic_add_lpi: an LPI that exists gains a reference and is not re-read. A new one
        reads its configuration byte at GICR_PROPBASER + intid - 8192 (update_lpi_config),
        then, with a target vCPU, its pending bit at that vCPU's GICR_PENDBASER + intid / 8
        (vgic_v3_lpi_sync_pending_status: a set bit is cleared in memory, 'clear consumed
        data'); a failed read or write drops the LPI and is returned (-EFAULT). Both bases
        are address 0 here: vgic_its_create sets INITIAL_PROPBASER_VALUE and vgic-v3
        INITIAL_PENDBASER_VALUE, and conform's programs write no GICR_PROPBASER/PENDBASER;
        ``prove --on-kernel``'s do (``LPI_BASE_REGS``), and the addresses are theirs."""
        lpi = r.lpis.get(intid)
        if lpi is not None:
            lpi.refs += 1
            return
        prop = r.mem.read(r.propbase() + intid - LPI_OFFSET, 1)
        if prop is None:
            raise ItsError("EFAULT")
        pending = False
        if target is not None:
            ptr = r.pendbase(target) + intid // 8
            byte = r.mem.read(ptr, 1)
            if byte is None:
                raise ItsError("EFAULT")
            pending = bool(byte[0] >> (intid % 8) & 1)
            if pending and not r.mem.write(ptr, bytes([byte[0] & ~(1 << (intid % 8))])):
                raise ItsError("EFAULT")
        if pending and prop[0] & 1:
            raise Hazard(f"LPI {intid} enabled and pending: it would be queued on vCPU {target}'s ap_list")
        r.lpis[intid] = Lpi(intid, target, pending, enabled=bool(prop[0] & 1))

    def _put_lpi(self, r: ItsRun, intid: int) -> None:
        """vgic_put_irq: the LPI goes with its last reference."""
        lpi = r.lpis[intid]
        lpi.refs -= 1
        if not lpi.refs:
            del r.lpis[intid]

    def _free_device(self, r: ItsRun, its: Its, dev: ItsDevice) -> None:
        """vgic_its_free_device: every ITE (its_free_ite: the LPI's reference), then the device."""
        for ite in dev.ites:
            self._put_lpi(r, ite.intid)
        its.devices.remove(dev)

    def _free_devices(self, r: ItsRun, its: Its) -> None:
        for dev in list(its.devices):
            self._free_device(r, its, dev)

    def _free_collections(self, its: Its) -> None:
        """vgic_its_free_collection_list -> vgic_its_free_collection: each event of the
        collection keeps 'ite->collection = NULL'."""
        for dev in its.devices:
            for ite in dev.ites:
                ite.collection = None
        its.collections.clear()

    def _save_tables(self, r: ItsRun, its: Its) -> None:
        """vgic_its_save_tables_v0: the device tables (vgic_its_save_device_tables: nothing
        with the BASER not Valid; each device in DeviceID order (list_sort):
        vgic_its_check_id, else -EINVAL; its ITT (vgic_its_save_itt: each ITE in EventID
        order at itt_addr + EventID * 8, 'next << 48 | pINTID << 16 | ICID', next the
        distance to the next EventID capped at 0xffff, 0 for the last); then its DTE at the
        checked address, 'V | next << 49 | (itt_addr >> 8) << 5 | (EventID bits - 1)', next
        capped at 2^14 - 1; from 7.2 and 6.12.117 a device the table no longer reaches is
        skipped, spec/gicv3.py its_save_skips_unreachable_device), then the collection table (vgic_its_save_collection_table:
        nothing with the BASER not Valid; every collection in list order from the base,
        'V | RDBase << 16 | ICID', then a zero entry unless the table is exactly full).
        Every failed write is -EFAULT."""
        baser = its.reg("its_baser_device")
        skips = self.its_sem.its_save_skips_unreachable_device
        if baser & VALID:
            devices = sorted(its.devices, key=lambda d: d.device_id)
            for i, dev in enumerate(devices):
                eaddr = self._check_id(r, baser, dev.device_id)
                if eaddr is None:
                    if skips:  # spec/gicv3.py its_save_skips_unreachable_device
                        continue
                    raise ItsError("EINVAL")
                ites = sorted(dev.ites, key=lambda t: t.event)
                for j, ite in enumerate(ites):
                    if ite.collection is None:
                        if not self.its_sem.its_save_unmapped_ite:
                            raise Hazard("KVM_DEV_ARM_ITS_SAVE_TABLES of an event whose collection was freed "
                                         "(vgic_its_save_ite: 'ite->collection->collection_id', an oops)")
                        # spec/gicv3.py its_save_unmapped_ite: 'Save a zeroed entry'
                        if not r.mem.write64(dev.itt_addr + ite.event * ESZ, 0):
                            raise ItsError("EFAULT")
                        continue
                    next_ites = [t for t in ites[j + 1:] if t.collection is not None or
                                 not self.its_sem.its_save_unmapped_ite]
                    nxt = min(next_ites[0].event - ite.event, ITE_MAX_NEXT) if next_ites else 0
                    if not r.mem.write64(dev.itt_addr + ite.event * ESZ,
                                         nxt << 48 | ite.intid << 16 | ite.collection.icid):
                        raise ItsError("EFAULT")
                next_devs = [d for d in devices[i + 1:]
                             if not skips or self._check_id(r, baser, d.device_id) is not None]
                nxt = min(next_devs[0].device_id - dev.device_id, DTE_MAX_NEXT) if next_devs else 0
                if not r.mem.write64(eaddr, VALID | nxt << 49 | (dev.itt_addr >> 8) << 5 | (dev.nbits - 1)):
                    raise ItsError("EFAULT")
        baser = its.reg("its_baser_coll")
        if not baser & VALID:
            return
        gpa, size, filled = baser_address(baser), baser_size(baser), 0
        for c in its.collections:
            if not r.mem.write64(gpa, VALID | c.target << 16 | c.icid):
                raise ItsError("EFAULT")
            gpa += ESZ
            filled += ESZ
        if filled != size and not r.mem.write64(gpa, 0):
            raise ItsError("EFAULT")

    # -- KVM_DEV_ARM_VGIC_SAVE_PENDING_TABLES (the vgic-v3) -------------------------------
    def _save_pending_tables(self, r: ItsRun) -> str | None:
        """vgic_v3_save_pending_tables: every LPI with a target vCPU: its byte at that vCPU's
        GICR_PENDBASER (address 0 unless written) + intid / 8 is read (-EFAULT), and written back
        (-EFAULT) when its bit differs from the pending state. The order of the LPIs (5.10,
        6.1: the list; 6.12 on: the xarray, by INTID) changes nothing here: in conform's
        programs every byte is in the slot at 0 or none is, and ``prove --on-kernel``'s have
        one LPI."""
        for intid in sorted(r.lpis):
            lpi = r.lpis[intid]
            if lpi.target is None:
                continue
            ptr = r.pendbase(lpi.target) + intid // 8
            byte = r.mem.read(ptr, 1)
            if byte is None:
                return "EFAULT"
            bit = 1 << (intid % 8)
            if bool(byte[0] & bit) == lpi.pending:
                continue
            new = byte[0] | bit if lpi.pending else byte[0] & ~bit
            if not r.mem.write(ptr, bytes([new])):
                return "EFAULT"
        return None


__all__ = ["GuestMemory", "Hazard", "ITS_REGIONS", "KernelModelIts"]
