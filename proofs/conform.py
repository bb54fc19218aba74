"""``gicproof conform``: the model against a real kernel, program by program.

Random programs are generated from the device table (``generate``: every register of
both attribute groups at random words, including words beyond the configured interrupt
count and offsets where the kernel has no register, random values, vCPU fields in and
out of range, SPI line levels, reads after writes), each on a fresh VM after the standard
setup prefix. One boot runs the whole batch (``harness.run_batch``); the model of the
kernel (``models.kernel.model``) runs the same programs, and every result line is
compared. A disagreeing program is truncated after its first disagreeing operation and
then shrunk by delta debugging: each round puts every candidate (one operation or a
chunk removed, fewer vCPUs or interrupts, simpler values) of every disagreeing program
in one batch, so a round costs one boot, and keeps the smallest candidate that still
disagrees.

Three devices have a generator and a model of the kernel: ``gicv2`` (``generate``,
``generate_lifecycle``), ``gicv3`` (``generate_v3``, ``generate_lifecycle_v3``) and
``gicv3-its`` (``generate_its``, ``generate_lifecycle_its``: the ITS's registers, base
address and CTRL attributes, its tables in guest memory through the runner's ``mem``,
``poke`` and ``peek``; a program that would reach an oops of the kernel under test is cut
before it, ``_model_runs``).

The generator draws from a ``Chooser``: ``RandomChooser`` (a seeded ``random.Random``,
what the command line uses, so a run is reproducible with ``--seed``) or, in the tests,
Hypothesis's ``data.draw`` (``tests/test_conform.py``), so the same code is both.
"""

from __future__ import annotations

import dataclasses
import random
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol, TypeVar

from models.kernel import harness
from models.kernel.harness import (
    V2_CPU_BASE,
    V2_DIST_BASE,
    V3_DIST_BASE,
    V3_REDIST_BASE,
    BatchResult,
    KernelInfo,
    Op,
    v2_attr,
    v3_mpidr_attr,
)
from models.kernel.its_model import Hazard
from models.kernel.model import (
    GROUP_NAMES,
    KernelModel,
    OutOfScope,
    kernel_model,
    release_of,
    setup_prefix,
)
from spec import gicv3
from spec import lifecycle as lifecycle_table
from spec.gicv2 import CPUIF, DIST, GICV2, IIDR_REVISION_SHIFT, IMPLEMENTER_ARM, PRODUCT_ID_KVM

T = TypeVar("T")

# Offsets where the kernel's GICv2 tables have no register (RAZ/WI for userspace), plus
# GICD_SGIR, a region the device table does not list (it views no state).
UNMAPPED = {
    DIST: (0x00C, 0x010, 0x07C, 0xD00, 0xE00, 0xF00, 0xF04, 0xF30, 0xFD0, 0xFFC, 0x1000, 0x10000),
    CPUIF: (0x0C, 0x10, 0x14, 0x18, 0x20, 0xCC, 0xE0, 0xF8, 0x100, 0x1000),
}
SMALL_IRQS = (64, 96, 128, 160, 256)


class Chooser(Protocol):
    def integer(self, lo: int, hi: int) -> int: ...  # inclusive


class RandomChooser:
    def __init__(self, rng: random.Random):
        self.rng = rng

    def integer(self, lo: int, hi: int) -> int:
        return self.rng.randint(lo, hi)


def _pick(ch: Chooser, seq: Sequence[T]) -> T:
    return seq[ch.integer(0, len(seq) - 1)]


@dataclass(frozen=True)
class Program:
    """A generated program. A register program (``lifecycle`` False) is the VM's size and
    the operations after the standard setup prefix; a lifecycle program is the whole
    script (``body`` starts with ``vm``; ``vcpus``/``irqs`` are 0), with the lifecycle
    steps in random positions."""

    vcpus: int
    irqs: int
    body: tuple[Op, ...]
    lifecycle: bool = False
    gic: int = 2  # the device: 2 a vgic-v2 on a GICv2 host, 3 a vgic-v3 on a GICv3 host
    its: bool = False  # gicv3-its: a vgic-v3 (device 0) and an ITS (device 1) after the setup

    def _prefix(self) -> list[Op]:
        if self.its:
            return harness.v3_setup(self.vcpus, self.irqs, its=True)
        return setup_prefix(self.vcpus, self.irqs, self.gic)

    def ops(self) -> list[Op]:
        if self.lifecycle:
            return list(self.body)
        return self._prefix() + list(self.body)

    @property
    def prefix_len(self) -> int:
        return 0 if self.lifecycle else len(self._prefix())

    def valid(self) -> bool:
        """A runnable script whose every line the kernel answers: a lifecycle program
        starts with ``vm`` and uses device 0 only after creating it (the first
        ``device v2`` or ``device v3`` always succeeds); a KVM_RUN is its last operation.
        A gicv3-its lifecycle program uses a device number only once that many devices
        exist (a first ``device v3`` and every ``device its`` succeed)."""
        if not self.lifecycle:
            return True
        if not self.body or self.body[0].name != "vm":
            return False
        if self.its:
            return _its_devices_valid(self.body)
        created = False
        kind = f"v{self.gic}"
        for i, op in enumerate(self.body[1:], 1):
            if op.name == "vm" or (op.name == "run" and i != len(self.body) - 1):
                return False
            if op.name == "device" and op.args[0] == kind:
                created = True
            elif op.name in DEVICE_OPS and not created:
                return False
        return True


DEVICE_OPS = ("set32", "set64", "get32", "get64", "has", "ctrl")
REGISTER_GROUPS = ("DIST_REGS", "CPU_REGS")
V3_REGISTER_GROUPS = ("DIST_REGS", "REDIST_REGS", "CPU_SYSREGS", "LEVEL_INFO", "ITS_REGS")
MEMORY_OPS = ("mem", "peek", "poke")


def _its_devices_valid(body: Sequence[Op]) -> bool:
    """Every device operation names a device that exists then (device creation as the
    kernel answers it: the first ``device v3`` and every ``device its`` succeed, nothing
    else does)."""
    created, v3 = 0, False
    for op in body[1:]:
        if op.name == "vm" or op.name == "run":
            return False
        if op.name == "device" and (op.args[0] == "its" or (op.args[0] == "v3" and not v3)):
            created += 1
            v3 = v3 or op.args[0] == "v3"
        elif op.name in DEVICE_OPS and _num(op.args[0]) >= created:
            return False
    return True


def is_lifecycle_op(op: Op) -> bool:
    """A lifecycle operation (counted apart): anything but a register access, a line and
    guest memory (``mem``, ``peek``, ``poke``)."""
    if op.name == "irq" or op.name in MEMORY_OPS:
        return False
    if op.name in ("get32", "set32", "get64", "set64"):
        return op.args[1] not in REGISTER_GROUPS + V3_REGISTER_GROUPS
    return True


def _value(ch: Chooser, reg_name: str, rev_hint: int) -> int:
    kind = ch.integer(0, 9)
    if reg_name == "GICD_IIDR" and kind < 6:
        # the kernel's value with some revision: write-backs that succeed and that fail
        rev = _pick(ch, (0, 1, 2, 3, 3, 4, rev_hint))
        return (PRODUCT_ID_KVM << 24) | (rev << IIDR_REVISION_SHIFT) | IMPLEMENTER_ARM
    if kind == 0:
        return 0
    if kind == 1:
        return 0xFFFFFFFF
    if kind in (2, 3):
        return 1 << ch.integer(0, 31)
    if kind == 4:
        return ch.integer(0, 0xFF)
    return ch.integer(0, 0xFFFFFFFF)


def _vcpu_field(ch: Chooser, vcpus: int) -> int:
    kind = ch.integer(0, 19)
    if kind == 0 or vcpus == 0:
        return ch.integer(vcpus, 9)  # out of range: EINVAL
    if kind == 1:
        return 0x100 | ch.integer(0, vcpus - 1)  # above KVM_DEV_ARM_VGIC_CPUID_MASK: ignored
    return ch.integer(0, vcpus - 1)


def _word(ch: Chooser, reg: Any, irqs: int, hot: int) -> int:
    if reg.scope != "irq":
        return 0
    if ch.integer(0, 1) == 0:
        return reg.word_of(hot)  # the program's hot SPI: its line and its registers meet
    covered = [w for w in range(reg.words) if reg.word_irqs(w).start < irqs]
    if ch.integer(0, 4) == 0:
        return ch.integer(0, reg.words - 1)  # anywhere, usually beyond the interrupts
    return _pick(ch, covered)


def _event(ch: Chooser, vcpus: int, irqs: int, hot: int, rev_hint: int) -> list[Op]:
    """One register access (with the read after a write, sometimes) or one SPI line."""
    regs = GICV2.registers
    irq_regs = [r for r in regs if r.scope == "irq"]
    kind = ch.integer(0, 19)
    out: list[Op] = []
    if kind < 14:  # a register of the table
        reg = _pick(ch, regs) if ch.integer(0, 1) else _pick(ch, irq_regs)
        word = _word(ch, reg, irqs, hot)
        attr = v2_attr(_vcpu_field(ch, vcpus), reg.offset + 4 * word)
        grp = GROUP_NAMES[reg.group]
        if kind < 6:
            out.append(Op.get(0, grp, attr))
        else:
            value = _value(ch, reg.name, rev_hint)
            if reg.scope == "irq" and word == reg.word_of(hot) and ch.integer(0, 1):
                # the hot SPI's slice alone, or over the random value
                sl = ch.integer(0, (1 << reg.bits_per_irq) - 1) << reg.slice_shift(hot)
                value = sl if ch.integer(0, 1) else value | sl
            out.append(Op.set(0, grp, attr, value))
            if ch.integer(0, 1):
                out.append(Op.get(0, grp, attr))  # read after write
    elif kind < 19:  # an SPI's line
        pick = ch.integer(0, 9)
        num = hot if pick < 7 else ch.integer(28, irqs + 3) if pick < 9 else _pick(ch, (0, 1020, 8192))
        level = _pick(ch, (0, 1, 1, 1, 2))
        out.append(Op.irq("SPI", ch.integer(0, max(0, vcpus - 1)), num, level))
    else:  # an offset with no register of the table, or an unaligned one
        group = _pick(ch, (DIST, CPUIF))
        if ch.integer(0, 1):
            offset = _pick(ch, UNMAPPED[group])
        else:
            reg = _pick(ch, [r for r in regs if r.group == group])
            offset = reg.offset + ch.integer(1, 3)
        attr = v2_attr(_vcpu_field(ch, vcpus), offset)
        if ch.integer(0, 1):
            out.append(Op.get(0, GROUP_NAMES[group], attr))
        else:
            out.append(Op.set(0, GROUP_NAMES[group], attr, _value(ch, "", rev_hint)))
            out.append(Op.get(0, GROUP_NAMES[group], attr))
    return out


def _sweep(hot: int) -> list[Op]:
    """The hot SPI's state through every per-interrupt register."""
    return [Op.get(0, GROUP_NAMES[reg.group], v2_attr(0, reg.offset + 4 * reg.word_of(hot)))
            for reg in GICV2.registers if reg.scope == "irq"
            and reg.word_irqs(0).start <= hot < reg.word_irqs(reg.words - 1).stop]


def generate(ch: Chooser, max_ops: int = 32) -> Program:
    """One random register program from the device table, after the setup prefix."""
    vcpus = _pick(ch, (1, 2, 2, 3, 4, 8))
    irqs = _pick(ch, SMALL_IRQS) if ch.integer(0, 4) else _pick(ch, GICV2.irq_counts)
    rev_hint = ch.integer(0, 15)
    hot = ch.integer(32, irqs - 1)
    body: list[Op] = []
    n = ch.integer(1, max_ops)
    while len(body) < n:
        body.extend(_event(ch, vcpus, irqs, hot, rev_hint))
    if ch.integer(0, 1):
        body.extend(_sweep(hot))  # a final sweep
    return Program(vcpus, irqs, tuple(body))


# Values for the lifecycle steps: NR_IRQS (valid and not), addresses (aligned or not,
# inside the 40-bit IPA space or not, a region that crosses its top).
BAD_NR_IRQS = (0, 32, 63, 65, 100, 1000, 1024, 1056, 0xFFFFFFFF)
ADDRESSES = (V2_DIST_BASE, V2_CPU_BASE, 0x0, 0x1000, 0x8001800, 0x8000004, 1 << 40, (1 << 40) - 0x1000,
             (1 << 40) - 0x2000, 0xFFFFFFFFFFFFF000, 1 << 48)
ADDR_TYPES = (0, 0, 0, 1, 1, 1, 2, 3, 6)


def _vcpu_batches(ch: Chooser, total_vcpus: int, most: int) -> list[list[Op]]:
    """KVM_CREATE_VCPU steps for ``total_vcpus`` vCPUs in one to ``most`` batches (a batch
    may be empty), then the rest: every lifecycle generator starts this way."""
    steps: list[list[Op]] = []
    left = total_vcpus
    for _ in range(ch.integer(1, most)):
        n = ch.integer(0, left) if left else 0
        steps.append([Op.vcpus(n)])
        left -= n
    if left:
        steps.append([Op.vcpus(left)])
    return steps


def _lifecycle_steps(ch: Chooser, total_vcpus: int, irqs: int) -> list[list[Op]]:
    """The lifecycle steps of one program, each a list of operations kept together."""
    steps = _vcpu_batches(ch, total_vcpus, 3)
    for _ in range(ch.integer(0, 2)):
        steps.append([Op.vcpu_init()])
    for _ in range(ch.integer(0, 2)):  # NR_IRQS, valid or not, read back sometimes
        value = irqs if ch.integer(0, 2) else _pick(ch, BAD_NR_IRQS + tuple(GICV2.irq_counts))
        steps.append([Op.set(0, "NR_IRQS", 0, value)])
    if ch.integer(0, 2) == 0:
        steps.append([Op.get(0, "NR_IRQS", 0)])
    for _ in range(ch.integer(0, 4)):  # addresses, and reads of them
        t = _pick(ch, ADDR_TYPES)
        if ch.integer(0, 3):
            steps.append([Op.set(0, "ADDR", t, _pick(ch, ADDRESSES), 64)])
        else:
            steps.append([Op.get(0, "ADDR", t, _pick(ch, (32, 64)))])
    for _ in range(_pick(ch, (0, 1, 1, 1, 2, 2))):  # CTRL_INIT 0, 1 or 2 times
        steps.append([Op.ctrl(0, "INIT")])
    if ch.integer(0, 5) == 0:
        steps.append([_pick(ch, (Op.ctrl(0, "SAVE_PENDING_TABLES"), Op.ctrl(0, 1),
                                 Op.get(0, "CTRL", 0), Op.set(0, "CTRL", 0, 0),
                                 Op.get(0, "LEVEL_INFO", 0), Op.set(0, 9, 0, 0)))])
    for _ in range(ch.integer(0, 3)):  # KVM_HAS_DEVICE_ATTR
        grp = _pick(ch, ("DIST_REGS", "DIST_REGS", "CPU_REGS", "ADDR", "NR_IRQS", "CTRL", "LEVEL_INFO"))
        if grp in REGISTER_GROUPS:
            reg = _pick(ch, [r for r in GICV2.registers if GROUP_NAMES[r.group] == grp])
            off = reg.offset + 4 * ch.integer(0, reg.words - 1) + _pick(ch, (0, 0, 0, 2))
            attr = v2_attr(ch.integer(0, total_vcpus), off)
        else:
            attr = ch.integer(0, 3)
        steps.append([Op.has(0, grp, attr)])
    if ch.integer(0, 3) == 0:  # a line with an INTID no SPI has (checked before or after lazy INIT)
        steps.append([Op.irq("SPI", 0, _pick(ch, (0, 16, 31, 1020, 8192, irqs)), _pick(ch, (0, 1, 2)))])
    if ch.integer(0, 4) == 0:
        steps.append([Op.test_device(_pick(ch, ("v2", "v3", "its")))])
    if ch.integer(0, 5) == 0:
        steps.append([Op.device(_pick(ch, ("v2", "v3", "its")))])  # a second device
    return steps


def _shuffle(ch: Chooser, items: list[T]) -> list[T]:
    out = list(items)
    for i in range(len(out) - 1, 0, -1):
        j = ch.integer(0, i)
        out[i], out[j] = out[j], out[i]
    return out


def _lifecycle_body(events: list[list[Op]], device: str) -> tuple[list[Op], bool]:
    """A lifecycle program's body from its shuffled events: the VM, then every operation,
    except a device operation before device 0 (``device``) is created, which the runner
    could not even send; and whether the device was created."""
    body: list[Op] = [Op.vm()]
    created = False
    for ev in events:
        for op in ev:
            if op.name == "device" and op.args[0] == device:
                created = True
            if op.name in DEVICE_OPS and not created:
                continue
            body.append(op)
    return body, created


def generate_lifecycle(ch: Chooser, max_events: int = 16) -> Program:
    """One random lifecycle program: the VM, then vCPU batches, KVM_ARM_VCPU_INIT, the
    device (sometimes never, sometimes twice), NR_IRQS (valid and invalid), addresses,
    CTRL_INIT (0, 1 or 2 times), KVM_HAS_DEVICE_ATTR, register accesses and SPI lines, all
    in random order, so accesses and lines come before INIT too (lazy initialisation),
    and vCPUs after it."""
    total = _pick(ch, (0, 1, 1, 2, 2, 3, 4, 8, 8, 9))
    irqs = _pick(ch, SMALL_IRQS + (256, 256)) if ch.integer(0, 3) else _pick(ch, GICV2.irq_counts)
    hot = ch.integer(32, max(irqs, 256) - 1)
    rev_hint = ch.integer(0, 15)
    events = _lifecycle_steps(ch, total, irqs)
    for _ in range(ch.integer(0, max_events)):
        # vCPU fields mostly name a vCPU that exists early (the first batch may be small)
        events.append(_event(ch, _pick(ch, (1, 1, min(total, 8))), irqs, hot, rev_hint))
    events = _shuffle(ch, events)
    never = ch.integer(0, 9) == 0
    if not never:  # the device, early or late
        at = ch.integer(0, max(0, len(events) // 3))
        events.insert(at, [Op.device("v2")])
    body, created = _lifecycle_body(events, "v2")
    if created and ch.integer(0, 2) == 0:
        body.extend(_sweep(hot if hot < irqs else 32))
    return Program(0, 0, tuple(body), lifecycle=True)


# ---------------------------------------------------------------------------------------
# GICv3: programs from the gicv3 device table (GICD, GICR RD and SGI frames, the ICC
# system registers at their KVM encodings, LEVEL_INFO) and SPI lines, on a vgic-v3 on
# QEMU's GICv3 (gic-version=3).

V3_GROUP_NAMES = {gicv3.DIST: "DIST_REGS", gicv3.REDIST: "REDIST_REGS", gicv3.SYSREGS: "CPU_SYSREGS",
                  gicv3.LEVEL: "LEVEL_INFO"}
# Offsets of each frame where the device table has no row: holes of the kernel's tables
# (read as zero, writes ignored) and kernel regions the table leaves out (ITARGETSR,
# IGRPMODR, NSACR, INVLPIR/INVALLR/SYNCR, the ID registers: PIDR2 reads 0x3b), plus words
# past the frame.
V3_UNMAPPED = {
    gicv3.DIST: (0x014, 0x040, 0x07C, 0x800, 0x820, 0xD00, 0xD80, 0xE00, 0xF00, 0x6000, 0x60F8, 0x8000,
                 0xFFD0, 0xFFE8, 0xFFFC, 0x10000, 0x1FFE8),
    gicv3.REDIST: (0x018, 0x040, 0x0A0, 0x0B0, 0x0C0, 0x100, 0xFFD0, 0xFFE8, 0x10000, 0x10D00, 0x10E00,
                   0x10F00, 0x11000, 0x20000, 0x2FFE8),
}
# CPU_SYSREGS encodings KVM does not offer: ICC_RPR_EL1, ICC_HPPIR1_EL1, ICC_IAR1_EL1,
# ICH_AP0R0_EL2 (hidden without nested virtualisation), and two that name nothing.
V3_UNKNOWN_SYSREGS = (gicv3.sysreg(3, 0, 12, 11, 3), gicv3.sysreg(3, 0, 12, 12, 2), gicv3.sysreg(3, 0, 12, 12, 0),
                      gicv3.sysreg(3, 4, 12, 8, 0), 0x0, 0xFFFF)
V3_ICC_CTLR = 0x8C00  # PRIbits 4 (5 bits), IDbits 1, A3V: what every oracle kernel reads


def _v3_value(ch: Chooser, reg_name: str, rev_hint: int) -> int:
    kind = ch.integer(0, 9)
    if reg_name == "GICD_IIDR" and kind < 6:
        rev = _pick(ch, (0, 1, 2, 2, 3, 3, 4, rev_hint))
        return (gicv3.PRODUCT_ID_KVM << 24) | (rev << 12) | gicv3.IMPLEMENTER_ARM
    if reg_name == "GICD_TYPER2" and kind < 6:
        return _pick(ch, (0, 0, 0x100, 0x9F))
    if reg_name == "ICC_CTLR_EL1" and kind < 7:
        v = V3_ICC_CTLR & ~0x700 | (ch.integer(0, 7) << 8) if ch.integer(0, 1) else V3_ICC_CTLR
        return v | _pick(ch, (0, 1, 2, 3, 0x40, 1 << 14, 1 << 15, 0x800))
    if reg_name == "ICC_SRE_EL1" and kind < 6:
        return _pick(ch, (0, 1, 7, 0xF))
    v = _value(ch, "", rev_hint)
    if reg_name.startswith("ICC_") and kind == 9:
        v |= ch.integer(1, 0xFFFFFFFF) << 32  # a 64-bit value
    return v


def _v3_vcpu_attr(ch: Chooser, vcpus: int, low: int) -> int:
    """An attribute naming a vCPU by its packed MPIDR: mostly one that exists, sometimes
    one beyond the VM (EINVAL), sometimes with Aff3 set (no vCPU has it)."""
    kind = ch.integer(0, 19)
    if kind == 0 or vcpus == 0:
        return v3_mpidr_attr(ch.integer(vcpus, 17), low)
    if kind == 1:
        return (1 << 56) | v3_mpidr_attr(ch.integer(0, vcpus - 1), low)
    return v3_mpidr_attr(ch.integer(0, vcpus - 1), low)


def _v3_access(ch: Chooser, group: str, vcpus: int, low: int, value: int | None) -> list[Op]:
    grp = V3_GROUP_NAMES[group]
    if group == gicv3.DIST:
        attr = low if ch.integer(0, 3) else v3_mpidr_attr(ch.integer(0, 20), low)  # the MPIDR is ignored
    else:
        attr = _v3_vcpu_attr(ch, vcpus, low)
    bits = (64 if ch.integer(0, 3) else 32) if group == gicv3.SYSREGS else (32 if ch.integer(0, 9) else 64)
    if value is None:
        return [Op.get(0, grp, attr, bits)]
    if bits == 32:
        value &= 0xFFFFFFFF
    out = [Op.set(0, grp, attr, value, bits)]
    if ch.integer(0, 1):
        out.append(Op.get(0, grp, attr, bits))  # read after write
    return out


def _v3_event(ch: Chooser, vcpus: int, irqs: int, hot: int, rev_hint: int) -> list[Op]:
    """One register access (with the read after a write, sometimes), one SPI line, or an
    access where the table has no register."""
    regs = gicv3.GICV3.registers
    irq_regs = [r for r in regs if r.scope == "irq"]
    kind = ch.integer(0, 19)
    if kind < 14:
        reg = _pick(ch, regs) if ch.integer(0, 1) else _pick(ch, irq_regs)
        if reg.scope == "irq" and reg.word_irqs(0).start <= hot < reg.word_irqs(reg.words - 1).stop \
                and ch.integer(0, 1):
            word = reg.word_of(hot)
        elif reg.scope == "irq":
            covered = [w for w in range(reg.words) if reg.word_irqs(w).start < irqs]
            word = _pick(ch, covered) if covered and ch.integer(0, 4) else ch.integer(0, reg.words - 1)
        else:
            word = ch.integer(0, reg.words - 1)
        low = reg.offset + reg.unit * word
        value = None if kind < 6 else _v3_value(ch, reg.name, rev_hint)
        if value is not None and reg.scope == "irq" and reg.bits_per_irq < 64 and hot in reg.word_irqs(word) \
                and ch.integer(0, 1):
            sl = ch.integer(0, (1 << reg.bits_per_irq) - 1) << reg.slice_shift(hot)
            value = sl if ch.integer(0, 1) else value | sl
        return _v3_access(ch, reg.group, vcpus, low, value)
    if kind < 18:
        pick = ch.integer(0, 9)
        num = hot if pick < 7 else ch.integer(28, irqs + 3) if pick < 9 else _pick(ch, (0, 1020, 8192))
        return [Op.irq("SPI", ch.integer(0, max(0, vcpus - 1)), num, _pick(ch, (0, 1, 1, 1, 2)))]
    group = _pick(ch, (gicv3.DIST, gicv3.REDIST, gicv3.SYSREGS, gicv3.LEVEL))
    if group in V3_UNMAPPED:
        if ch.integer(0, 2):
            low = _pick(ch, V3_UNMAPPED[group])
        else:
            reg = _pick(ch, [r for r in regs if r.group == group])
            low = reg.offset + ch.integer(1, 3)  # unaligned
    elif group == gicv3.SYSREGS:
        low = _pick(ch, V3_UNKNOWN_SYSREGS)
    else:
        low = _pick(ch, (1, 33, 31, 1 << 10 | 32, 0xFFFFFC00))  # unaligned vINTIDs, info != 0
    value = None if ch.integer(0, 1) else _v3_value(ch, "", rev_hint)
    return _v3_access(ch, group, vcpus, low, value)


def _v3_sweep(hot: int) -> list[Op]:
    """The hot SPI's state through every distributor per-interrupt register and its line level."""
    out = [Op.get(0, "DIST_REGS", reg.offset + 4 * reg.word_of(hot))
           for reg in gicv3.GICV3.registers if reg.scope == "irq" and reg.group == gicv3.DIST
           and reg.word_irqs(0).start <= hot < reg.word_irqs(reg.words - 1).stop]
    return out + [Op.get(0, "LEVEL_INFO", v3_mpidr_attr(0, hot & ~31))]


def generate_v3(ch: Chooser, max_ops: int = 32) -> Program:
    """One random GICv3 register program, after the standard setup (gic_setup(3))."""
    vcpus = _pick(ch, (1, 2, 2, 3, 4, 8))
    irqs = _pick(ch, SMALL_IRQS) if ch.integer(0, 4) else _pick(ch, gicv3.GICV3.irq_counts)
    rev_hint = ch.integer(0, 15)
    hot = ch.integer(32, irqs - 1)
    body: list[Op] = []
    n = ch.integer(1, max_ops)
    while len(body) < n:
        body.extend(_v3_event(ch, vcpus, irqs, hot, rev_hint))
    if ch.integer(0, 1):
        body.extend(_v3_sweep(hot))
    return Program(vcpus, irqs, tuple(body), gic=3)


# Addresses for the lifecycle: valid, unaligned, beyond the 40-bit IPA space, wrapping
# around, and a redistributor region that fits 4 vCPUs below the top of the IPA space. The
# distributor and the redistributor region never overlap (see spec/lifecycle.py GICV3).
V3_ADDRESSES = {
    lifecycle_table.ADDR_V3_DIST: (V3_DIST_BASE, V3_DIST_BASE, 0x10000000, 0x08000800, 1 << 40, 1 << 48,
                             0xFFFFFFFFFFFF0000),
    lifecycle_table.ADDR_V3_REDIST: (V3_REDIST_BASE, V3_REDIST_BASE, 0x0, 0x080A8000, 1 << 40,
                               (1 << 40) - 0x80000, 0xFFFFFFFFFFFE0000),
}
V3_ADDR_TYPES = (2, 2, 2, 3, 3, 3, 0, 1, 4, 6)


def _v3_lifecycle_steps(ch: Chooser, total_vcpus: int, irqs: int) -> list[list[Op]]:
    steps = _vcpu_batches(ch, total_vcpus, 3)
    for _ in range(ch.integer(0, 2)):
        steps.append([Op.vcpu_init()])
    for _ in range(ch.integer(0, 2)):
        value = irqs if ch.integer(0, 2) else _pick(ch, BAD_NR_IRQS + tuple(gicv3.GICV3.irq_counts))
        steps.append([Op.set(0, "NR_IRQS", 0, value)])
    if ch.integer(0, 2) == 0:
        steps.append([Op.get(0, "NR_IRQS", 0)])
    for _ in range(ch.integer(0, 4)):
        t = _pick(ch, V3_ADDR_TYPES)
        if ch.integer(0, 3):
            steps.append([Op.set(0, "ADDR", t, _pick(ch, V3_ADDRESSES.get(t, ADDRESSES)), 64)])
        else:
            steps.append([Op.get(0, "ADDR", _pick(ch, (2, 3, 5, 5, 0, 4)), _pick(ch, (32, 64)))])
    for _ in range(_pick(ch, (0, 1, 1, 1, 2, 2))):
        steps.append([Op.ctrl(0, "INIT")])
    if ch.integer(0, 3) == 0:
        steps.append([_pick(ch, (Op.ctrl(0, "SAVE_PENDING_TABLES"), Op.ctrl(0, "SAVE_PENDING_TABLES"),
                                 Op.ctrl(0, 1), Op.ctrl(0, 99), Op.get(0, "CTRL", 0),
                                 Op.set(0, "CTRL", 3, 0), Op.set(0, "CPU_REGS", 0, 0),
                                 Op.get(0, "ITS_REGS", 0, 64), Op.get(0, "LEVEL_INFO", v3_mpidr_attr(0, 32))))])
    for _ in range(ch.integer(0, 3)):  # KVM_HAS_DEVICE_ATTR
        grp = _pick(ch, ("DIST_REGS", "DIST_REGS", "REDIST_REGS", "REDIST_REGS", "CPU_SYSREGS", "ADDR",
                         "NR_IRQS", "CTRL", "LEVEL_INFO", "CPU_REGS", "ITS_REGS"))
        if grp in ("DIST_REGS", "REDIST_REGS", "CPU_SYSREGS"):
            group = next(g for g, n in V3_GROUP_NAMES.items() if n == grp)
            if ch.integer(0, 3) == 0 and group in V3_UNMAPPED:
                low = _pick(ch, V3_UNMAPPED[group])
            elif ch.integer(0, 3) == 0 and group == gicv3.SYSREGS:
                low = _pick(ch, V3_UNKNOWN_SYSREGS)
            else:
                reg = _pick(ch, [r for r in gicv3.GICV3.registers if r.group == group])
                low = reg.offset + reg.unit * ch.integer(0, reg.words - 1) + \
                    (_pick(ch, (0, 0, 0, 2)) if reg.unit == 4 else 0)
            attr = v3_mpidr_attr(ch.integer(0, max(total_vcpus, 1)), low)
        elif grp == "LEVEL_INFO":
            attr = v3_mpidr_attr(0, _pick(ch, (0, 32, 1 << 10)))
        else:
            attr = ch.integer(0, 6)
        steps.append([Op.has(0, grp, attr)])
    if ch.integer(0, 3) == 0:
        steps.append([Op.irq("SPI", 0, _pick(ch, (0, 16, 31, 1020, 8192, irqs, 40)), _pick(ch, (0, 1, 2)))])
    if ch.integer(0, 4) == 0:
        steps.append([Op.test_device(_pick(ch, ("v2", "v3", "its")))])
    if ch.integer(0, 5) == 0:
        steps.append([Op.device(_pick(ch, ("v2", "v3")))])  # a second device (no ITS: out of scope)
    return steps


def generate_lifecycle_v3(ch: Chooser, max_events: int = 16) -> Program:
    """One random GICv3 lifecycle program: vCPU batches, KVM_ARM_VCPU_INIT, the device,
    NR_IRQS, the distributor and redistributor addresses (and reads, REDIST_REGION's
    too), CTRL_INIT, SAVE_PENDING_TABLES, KVM_HAS_DEVICE_ATTR, register accesses and SPI
    lines in random order, and sometimes a KVM_RUN of vCPU 0 at the end."""
    total = _pick(ch, (0, 1, 1, 2, 2, 3, 4, 5, 8, 9))
    irqs = _pick(ch, SMALL_IRQS + (256, 256)) if ch.integer(0, 3) else _pick(ch, gicv3.GICV3.irq_counts)
    hot = ch.integer(32, max(irqs, 256) - 1)
    rev_hint = ch.integer(0, 15)
    events = _v3_lifecycle_steps(ch, total, irqs)
    run_last = ch.integer(0, 2) == 0
    if run_last and ch.integer(0, 1):
        # what KVM_RUN's first-run checks look at, so that it gets past them sometimes
        events += [[Op.vcpu_init()], [Op.set(0, "ADDR", 2, V3_DIST_BASE, 64)],
                   [Op.set(0, "ADDR", 3, _pick(ch, (V3_REDIST_BASE, (1 << 40) - 0x80000)), 64)]]
    for _ in range(ch.integer(0, max_events)):
        events.append(_v3_event(ch, _pick(ch, (1, 1, min(max(total, 1), 9))), irqs, hot, rev_hint))
    events = _shuffle(ch, events)
    if ch.integer(0, 9):
        at = ch.integer(0, max(0, len(events) // 3))
        events.insert(at, [Op.device("v3")])
    body, created = _lifecycle_body(events, "v3")
    if created and ch.integer(0, 2) == 0:
        body.extend(_v3_sweep(hot if hot < irqs else 32))
    if run_last:
        body.append(Op.run(0))  # KVM_RUN last: its failure destroys (5.10) or kills (6.1) the VM
    return Program(0, 0, tuple(body), lifecycle=True, gic=3)


# ---------------------------------------------------------------------------------------
# gicv3-its: programs for a vgic-v3 and its ITS (KVM_DEV_TYPE_ARM_VGIC_ITS) on QEMU's GICv3.
# The ITS's registers (spec/gicv3_its.py), its KVM_DEV_ARM_VGIC_GRP_CTRL attributes, and
# its tables in guest memory: the programs back guest-physical memory with the runner's
# ``mem`` (the LPI tables at address 0, where GICR_PROPBASER/PENDBASER point until written,
# the ITS tables, the command queue) and write table entries with ``poke``, so that
# RESTORE_TABLES has something to read and SAVE_TABLES somewhere to write (``peek``).

ITS = 1  # the ITS's device number after harness.v3_setup(its=True)
MEM_LPI = (0x0, 0x10000)  # LPI configuration bytes at intid - 8192, pending bits at intid / 8
MEM_TABLES = (0x40000000, 0x100000)
MEM_QUEUE = (0x50000000, 0x10000)
ITS_DT = MEM_TABLES[0] + 0x40000  # device table (64K aligned: GITS_BASER_ADDR_48_to_52)
ITS_CT = MEM_TABLES[0] + 0x50000  # collection table
ITS_L2 = (MEM_TABLES[0] + 0x80000, MEM_TABLES[0] + 0x90000)  # level-2 device table pages
ITS_ITT = MEM_TABLES[0] + 0x70000  # ITTs: one 256-byte aligned ITT per 0x1000
UNBACKED = 0x7000000000  # an address no slot backs
PENDING_WORD = 0x400  # the pending bits of LPIs 8192-8255 (vCPU PENDBASER address 0)
SHARE = (3 << 59) | (1 << 10)  # RaWb, InnerShareable
GITS_OFFSETS = {"CTLR": 0x0, "IIDR": 0x4, "TYPER": 0x8, "CBASER": 0x80, "CWRITER": 0x88, "CREADR": 0x90,
                **{f"BASER{n}": 0x100 + 8 * n for n in range(8)}}
# offsets where its_registers[] has no region, unaligned ones, and the ID registers
GITS_OTHER = (0x10, 0x40, 0x98, 0xC0, 0x140, 0x1000, 0xFFC0, 0x10000, 0xC, 0x2, 0x84, 0x104, 0x8C, 0xFFD2,
              0xFFD0, 0xFFE0, 0xFFE8, 0xFFEC, 0xFFFC, 0xFFD4)
GITS_IIDR_KVM = 0x4B00043B


def _its_baser(ch: Chooser, n: int) -> int:
    kind = ch.integer(0, 9)
    if kind < 6:
        valid = VALID_BIT if ch.integer(0, 4) else 0
        if n == 0:
            indirect = INDIRECT_BIT if ch.integer(0, 5) == 0 else 0
            pages = _pick(ch, (0, 0, 0, 1, 2, 9))
            return valid | indirect | ITS_DT | SHARE | pages
        return valid | ITS_CT | SHARE | _pick(ch, (0, 0, 0, 1))
    if kind == 6:
        return VALID_BIT | UNBACKED | SHARE
    return _its_value(ch)


def _its_value(ch: Chooser) -> int:
    kind = ch.integer(0, 5)
    if kind == 0:
        return 0
    if kind == 1:
        return (1 << 64) - 1
    if kind == 2:
        return 1 << ch.integer(0, 63)
    return ch.integer(0, (1 << 64) - 1)


VALID_BIT = 1 << 63
INDIRECT_BIT = 1 << 62


def _its_reg_value(ch: Chooser, name: str) -> int:
    if name.startswith("BASER"):
        return _its_baser(ch, int(name[5:])) if name in ("BASER0", "BASER1") or ch.integer(0, 1) else _its_value(ch)
    kind = ch.integer(0, 9)
    if kind >= 8:
        return _its_value(ch)
    if name == "CTLR":
        return _pick(ch, (0, 1, 1, 1, 0xFFFFFFFF, 0x80000001))
    if name == "IIDR":
        return GITS_IIDR_KVM & ~0xF000 | _pick(ch, (0, 0, 0, 1, 2, 15)) << 12
    if name == "CBASER":
        return _pick(ch, (VALID_BIT | MEM_QUEUE[0] | SHARE | _pick(ch, (0, 0, 1, 3, 0xFF)),
                          VALID_BIT | UNBACKED | SHARE, MEM_QUEUE[0] | SHARE, 0))
    if name in ("CWRITER", "CREADR"):
        return _pick(ch, (0, 0x20, 0x40, 0x60, 0xFE0, 0x1000, 0x1020, 0x3FE0, 0x4000, 0x21, 1, 0x100000))
    return _its_value(ch)


def _its_access(ch: Chooser) -> list[Op]:
    """One GITS register access (a read, or a write with the read after it sometimes), or
    an access where its_registers[] has no region, an unaligned one, an ID register."""
    if ch.integer(0, 7):
        name = _pick(ch, tuple(GITS_OFFSETS))
        off, value = GITS_OFFSETS[name], _its_reg_value(ch, name)
    else:
        off, value = _pick(ch, GITS_OTHER), _its_value(ch)
    bits = 64 if ch.integer(0, 7) else 32
    if bits == 32:
        value &= 0xFFFFFFFF
    if ch.integer(0, 2) == 0:
        return [Op.get(ITS, "ITS_REGS", off, bits)]
    out = [Op.set(ITS, "ITS_REGS", off, value, bits)]
    if ch.integer(0, 1):
        out.append(Op.get(ITS, "ITS_REGS", off, 64))
    return out


def _its_entry(ch: Chooser, vcpus: int) -> Op:
    """A table entry written into guest memory (ABI REV0, arm-vgic-its.rst): a collection
    table entry, a device table entry, an ITT entry, a level-1 device table entry, the
    pending bits of LPIs 8192-8255, or a random word somewhere in a table."""
    kind = ch.integer(0, 11)
    if kind < 3:  # CTE: V | RDBase << 16 | ICID
        target = _pick(ch, (0, 0, 1, max(vcpus - 1, 0), vcpus, 0xFFFFFFFF, 0x1234))
        icid = _pick(ch, (0, 0, 1, 2, 5, 8191, 8192, 0xFFFF))
        valid = VALID_BIT if ch.integer(0, 5) else 0
        return Op.poke(ITS_CT + 8 * _pick(ch, (0, 0, 0, 1, 1, 2, 3)), valid | target << 16 | icid)
    if kind < 6:  # DTE: V | next << 49 | ITT_addr[51:8] << 5 | (EventID bits - 1)
        dev = _pick(ch, (0, 0, 1, 2, 3, 7, 100, 8191))
        itt = ITS_ITT + 0x1000 * _pick(ch, (0, 0, 1, 2)) if ch.integer(0, 7) else UNBACKED
        bits = _pick(ch, (1, 1, 2, 2, 3, 5, 16, 17, 20))
        nxt = _pick(ch, (0, 0, 0, 1, 2, 5, 0x3FFF))
        valid = VALID_BIT if ch.integer(0, 5) else 0
        table = ITS_DT if ch.integer(0, 3) else _pick(ch, ITS_L2)
        return Op.poke(table + 8 * dev, valid | nxt << 49 | (itt >> 8) << 5 | (bits - 1))
    if kind < 9:  # ITE: next << 48 | pINTID << 16 | ICID
        itt = ITS_ITT + 0x1000 * _pick(ch, (0, 0, 1, 2))
        ev = _pick(ch, (0, 0, 0, 1, 2, 3))
        intid = _pick(ch, (8192, 8192, 8193, 8200, 8255, 8192 + ch.integer(0, 63), 0, 100, 0x10000))
        icid = _pick(ch, (0, 0, 1, 2, 5, 8191))
        nxt = _pick(ch, (0, 0, 0, 1, 2, 0xFFFF))
        return Op.poke(itt + 8 * ev, nxt << 48 | intid << 16 | icid)
    if kind == 9:  # level-1 entry of a two-level device table
        valid = VALID_BIT if ch.integer(0, 3) else 0
        return Op.poke(ITS_DT + 8 * _pick(ch, (0, 0, 1, 8)), valid | _pick(ch, ITS_L2))
    if kind == 10:
        return Op.poke(PENDING_WORD, _pick(ch, (1, 0xFF, 1 << ch.integer(0, 63), (1 << 64) - 1)))
    return Op.poke(_pick(ch, (ITS_CT, ITS_DT, ITS_ITT)) + 8 * ch.integer(0, 7), _its_value(ch))


def _its_peek(ch: Chooser) -> Op:
    return Op.peek(_pick(ch, (ITS_CT, ITS_CT + 8, ITS_CT + 16, ITS_DT, ITS_DT + 8, ITS_DT + 16, ITS_ITT,
                              ITS_ITT + 8, ITS_ITT + 0x1000, PENDING_WORD, PENDING_WORD, ITS_L2[0],
                              UNBACKED)))


ITS_CTRLS: tuple[str | int, ...] = ("ITS_SAVE_TABLES", "ITS_SAVE_TABLES", "ITS_RESTORE_TABLES", "ITS_RESTORE_TABLES",
             "ITS_RESTORE_TABLES", "ITS_CTRL_RESET", "INIT", 3, 99)


def _its_event(ch: Chooser, vcpus: int) -> list[Op]:
    kind = ch.integer(0, 19)
    if kind < 8:
        return _its_access(ch)
    if kind < 11:
        return [Op.ctrl(ITS, _pick(ch, ITS_CTRLS))]
    if kind < 15:
        return [_its_entry(ch, vcpus)]
    if kind < 17:
        return [_its_peek(ch)]
    if kind == 17:
        return [Op.ctrl(0, "SAVE_PENDING_TABLES")]
    if kind == 18:
        grp = _pick(ch, ("ITS_REGS", "ITS_REGS", "ADDR", "CTRL", "DIST_REGS", "NR_IRQS"))
        attr = _pick(ch, GITS_OTHER + tuple(GITS_OFFSETS.values())) if grp == "ITS_REGS" else ch.integer(0, 5)
        return [Op.has(ITS, grp, attr)]
    return [_pick(ch, (Op.get(ITS, "ADDR", 4, 64), Op.get(ITS, "CTRL", 0), Op.set(ITS, "NR_IRQS", 0, 64),
                       Op.get(ITS, "DIST_REGS", 0), Op.set(ITS, "ADDR", 4, harness.V3_ITS_BASE, 64),
                       Op.set(ITS, "CTRL", 1, 0)))]


def _its_tables_scenario(ch: Chooser, vcpus: int) -> list[Op]:
    """A table image and the registers that point at it, then RESTORE_TABLES (what a
    migration's destination does): one to three collections (an ICID beyond a one-page
    table, a target no vCPU has, now and then), one or two devices in a flat or two-level
    device table (a DeviceID above 0xffff, more than 16 EventID bits, an ITT nothing backs,
    now and then), each with one or two events translated to LPIs (an LPI two events share,
    a pINTID below 8192, an ICID no collection has, a next offset beyond the ITT, now and
    then), pending or not. Then sometimes: the ITS enabled (and written while enabled), the
    images cleared and SAVE_TABLES and SAVE_PENDING_TABLES writing them back, a second
    RESTORE_TABLES, CTRL_RESET."""
    out: list[Op] = []
    rare = lambda: ch.integer(0, 7) == 0  # noqa: E731
    icids = []
    for k in range(_pick(ch, (1, 1, 2, 3))):
        icid = _pick(ch, (0, 0, 1, 2, 5, 8191)) if not rare() else _pick(ch, (8192, 0xFFFF))
        target = _pick(ch, (0, 0, vcpus - 1, 0xFFFFFFFF)) if not rare() else _pick(ch, (vcpus, 0x1234))
        icids.append(icid)
        out.append(Op.poke(ITS_CT + 8 * k, VALID_BIT | target << 16 | icid))
    indirect = ch.integer(0, 5) == 0
    l1 = _pick(ch, (0, 0, 1, 8)) if indirect else 0
    if indirect:
        out.append(Op.poke(ITS_DT + 8 * l1, VALID_BIT | ITS_L2[0]))
    devs = sorted({_pick(ch, (0, 1, 2, 7, 100)) for _ in range(_pick(ch, (1, 1, 2)))})
    shared = 8192 + ch.integer(0, 7)
    for n, dev in enumerate(devs):
        bits = _pick(ch, (1, 1, 2, 3)) if not rare() else _pick(ch, (16, 17))
        itt = ITS_ITT + 0x1000 * n if not rare() else UNBACKED
        nxt = devs[n + 1] - dev if n + 1 < len(devs) else 0
        if rare():
            nxt = _pick(ch, (0, 1, 0x3FFF))
        table = ITS_L2[0] if indirect else ITS_DT
        out.append(Op.poke(table + 8 * dev, VALID_BIT | nxt << 49 | (itt >> 8) << 5 | (bits - 1)))
        events = sorted({ch.integer(0, min(3, (1 << bits) - 1)) for _ in range(_pick(ch, (1, 1, 2)))})
        for j, ev in enumerate(events):
            intid = shared if ch.integer(0, 2) == 0 else 8192 + ch.integer(0, 63)
            if rare():
                intid = _pick(ch, (100, 0x10000))
            icid = _pick(ch, icids) if not rare() else 77
            enxt = events[j + 1] - ev if j + 1 < len(events) else 0
            if rare():
                enxt = _pick(ch, (1, 0xFFFF))
            if itt != UNBACKED:
                out.append(Op.poke(itt + 8 * ev, enxt << 48 | intid << 16 | icid))
    if ch.integer(0, 1):
        out.append(Op.poke(PENDING_WORD, _pick(ch, ((1 << 64) - 1, 1 << (shared - 8192), 0x0F0F0F0F0F0F0F0F))))
    out += [Op.set(ITS, "ITS_REGS", 0x80, VALID_BIT | MEM_QUEUE[0] | SHARE, 64),
            Op.set(ITS, "ITS_REGS", 0x100, VALID_BIT | (INDIRECT_BIT if indirect else 0) | ITS_DT | SHARE
                   | _pick(ch, (0, 0, 0, 1)), 64),
            Op.set(ITS, "ITS_REGS", 0x108, VALID_BIT | ITS_CT | SHARE, 64),
            Op.ctrl(ITS, "ITS_RESTORE_TABLES")]
    if ch.integer(0, 2) == 0:  # enabled, as QEMU leaves it (GITS_CTLR restored last)
        out += [Op.set(ITS, "ITS_REGS", 0x0, 1, 64), Op.get(ITS, "ITS_REGS", 0x0, 64)]
        for _ in range(ch.integer(0, 2)):
            name = _pick(ch, ("CREADR", "CWRITER", "CBASER", "BASER0", "BASER1"))
            out.append(Op.set(ITS, "ITS_REGS", GITS_OFFSETS[name], _its_reg_value(ch, name), 64))
        if ch.integer(0, 1):
            out.append(Op.set(ITS, "ITS_REGS", 0x0, 0, 64))
    if ch.integer(0, 1):
        out += [Op.peek(PENDING_WORD), Op.poke(ITS_CT, 0), Op.poke(ITS_DT + 8 * devs[0], 0),
                Op.poke(ITS_ITT, 0x1234), Op.ctrl(ITS, "ITS_SAVE_TABLES"), Op.ctrl(0, "SAVE_PENDING_TABLES"),
                Op.peek(ITS_CT), Op.peek(ITS_CT + 8), Op.peek(ITS_DT + 8 * devs[0]), Op.peek(ITS_ITT),
                Op.peek(ITS_ITT + 8), Op.peek(PENDING_WORD)]
    if ch.integer(0, 3) == 0:
        out.append(Op.ctrl(ITS, _pick(ch, ("ITS_RESTORE_TABLES", "ITS_CTRL_RESET"))))
    return out


def _its_memory(ch: Chooser) -> list[Op]:
    out = []
    for region, p in ((MEM_LPI, 7), (MEM_TABLES, 8), (MEM_QUEUE, 3)):
        if ch.integer(0, 9) < p:
            out.append(Op.mem(*region))
    return out


ITS2_TABLES = (MEM_TABLES[0] + 0xA0000, MEM_TABLES[0] + 0xB0000, MEM_TABLES[0] + 0xC0000)  # CT, DT, ITT


def _second_its(ch: Chooser, vcpus: int) -> list[Op]:
    """A second ITS (device 2) with a collection, a device and an event of its own, whose
    LPI is often one the first ITS maps too (the LPIs are the VM's: vgic_add_lpi finds it
    and reads nothing), then resets, saves and reads of either ITS."""
    ct, dt, itt = ITS2_TABLES
    its2 = 2
    target = _pick(ch, (0, vcpus - 1, 0xFFFFFFFF))
    dev = _pick(ch, (0, 3))
    out = [Op.device("its"), Op.set(its2, "ADDR", 4, harness.V3_ITS_BASE + 0x20000, 64),
           Op.poke(ct, VALID_BIT | target << 16 | 4), Op.poke(dt + 8 * dev, VALID_BIT | (itt >> 8) << 5),
           Op.poke(itt, (8192 + ch.integer(0, 7)) << 16 | 4),
           Op.set(its2, "ITS_REGS", 0x100, VALID_BIT | dt | SHARE, 64),
           Op.set(its2, "ITS_REGS", 0x108, VALID_BIT | ct | SHARE, 64), Op.ctrl(its2, "ITS_RESTORE_TABLES")]
    for _ in range(ch.integer(1, 4)):
        out.append(_pick(ch, (Op.ctrl(ITS, "ITS_CTRL_RESET"), Op.ctrl(its2, "ITS_CTRL_RESET"),
                              Op.ctrl(0, "SAVE_PENDING_TABLES"), Op.peek(PENDING_WORD),
                              Op.ctrl(its2, "ITS_SAVE_TABLES"), Op.poke(itt, 0), Op.peek(itt),
                              Op.ctrl(ITS, "ITS_RESTORE_TABLES"), Op.get(its2, "ITS_REGS", 0x108, 64))))
    return out


def generate_its(ch: Chooser, max_ops: int = 32) -> Program:
    """One random gicv3-its register program after harness.v3_setup(its=True): guest
    memory, GITS register accesses, table entries, RESTORE/SAVE_TABLES, CTRL_RESET,
    SAVE_PENDING_TABLES, peeks of the tables."""
    vcpus = _pick(ch, (1, 2, 2, 3, 4))
    irqs = _pick(ch, SMALL_IRQS)
    body = _its_memory(ch)
    if ch.integer(0, 2):
        if Op.mem(*MEM_TABLES) not in body and ch.integer(0, 7):
            body.append(Op.mem(*MEM_TABLES))
        body += _its_tables_scenario(ch, vcpus)
        if ch.integer(0, 4) == 0:
            body += _second_its(ch, vcpus)
    n = len(body) + ch.integer(1, max_ops)
    while len(body) < n:
        body.extend(_its_event(ch, vcpus))
    return Program(vcpus, irqs, tuple(body), gic=3, its=True)


ITS_ADDRESSES = (harness.V3_ITS_BASE, harness.V3_ITS_BASE, harness.V3_ITS_BASE + 0x20000, 0x08081000, 0x08080004,
                 0x0, 1 << 40, (1 << 40) - 0x10000, (1 << 40) - 0x20000, 0xFFFFFFFFFFFF0000)


def _on(dev: str, op: Op) -> Op:
    """``op`` on the device named '@v3', '@its' or '@its2' (see ``_its_resolve``)."""
    return Op(op.name, (dev,) + op.args[1:])


def _its_lifecycle_steps(ch: Chooser, total_vcpus: int, irqs: int) -> list[list[Op]]:
    """The lifecycle steps of a gicv3-its program; device numbers '@v3', '@its' and
    '@its2' are resolved once the steps are in order (``_its_resolve``)."""
    steps = _vcpu_batches(ch, total_vcpus, 2)
    if ch.integer(0, 1):
        steps.append([Op.vcpu_init()])
    if ch.integer(0, 2):
        steps.append([_on("@v3", Op.set(0, "NR_IRQS", 0, irqs))])
    for t, a in ((2, harness.V3_DIST_BASE), (3, harness.V3_REDIST_BASE)):
        if ch.integer(0, 2):
            steps.append([_on("@v3", Op.set(0, "ADDR", t, a, 64))])
    for _ in range(_pick(ch, (0, 1, 1, 2))):
        steps.append([_on("@v3", Op.ctrl(0, "INIT"))])
    for _ in range(_pick(ch, (0, 1, 1, 1, 2, 3))):  # the ITS's base: valid, twice, unaligned, beyond...
        its = "@its2" if ch.integer(0, 5) == 0 else "@its"
        t = 4 if ch.integer(0, 6) else _pick(ch, (0, 2, 3, 5, 6))
        steps.append([_on(its, Op.set(0, "ADDR", t, _pick(ch, ITS_ADDRESSES), 64))])
    for _ in range(ch.integer(0, 2)):
        its = _pick(ch, ("@its", "@its", "@its2"))
        steps.append([_on(its, Op.get(0, "ADDR", _pick(ch, (4, 4, 2, 0)), _pick(ch, (32, 64))))])
    for _ in range(ch.integer(0, 2)):
        steps.append([_on("@its", Op.ctrl(0, _pick(ch, ("INIT", "INIT") + ITS_CTRLS)))])
    for _ in range(ch.integer(0, 4)):  # ITS registers, before or after the base address
        steps.append([_on("@its", op) for op in _its_access(ch)])
    for _ in range(ch.integer(0, 3)):
        grp = _pick(ch, ("ITS_REGS", "ITS_REGS", "ADDR", "CTRL", "CTRL", "DIST_REGS", "NR_IRQS", "CPU_REGS"))
        attr = _pick(ch, GITS_OTHER + tuple(GITS_OFFSETS.values())) if grp == "ITS_REGS" else ch.integer(0, 5)
        steps.append([_on("@its", Op.has(0, grp, attr))])
    if ch.integer(0, 3) == 0:
        steps.append([_on("@its", _pick(ch, (Op.get(0, "CTRL", 0), Op.set(0, "NR_IRQS", 0, 64),
                                             Op.get(0, "DIST_REGS", 0), Op.set(0, "LEVEL_INFO", 0, 0))))])
    if ch.integer(0, 3) == 0:
        steps.append([_on("@v3", Op.ctrl(0, "SAVE_PENDING_TABLES"))])
    if ch.integer(0, 2) == 0:
        steps.append(_its_memory(ch))
    if ch.integer(0, 4) == 0:
        steps.append([Op.test_device(_pick(ch, ("its", "v3", "v2")))])
    if ch.integer(0, 2) == 0:
        steps.append([Op.device("its")])  # a second ITS
    if ch.integer(0, 6) == 0:
        steps.append([Op.device(_pick(ch, ("v3", "v2")))])  # a second vGIC, a GICv2
    return steps


def _its_resolve(body: list[Op]) -> list[Op]:
    """Replace '@v3', '@its' and '@its2' by the device numbers those devices have at that
    point (creation as the kernel answers it: the first ``device v3`` and every ``device
    its`` succeed); drop an operation on a device not created yet."""
    out: list[Op] = []
    numbers: dict[str, int] = {}
    created = 0
    for op in body:
        if op.name == "device":
            if op.args[0] == "its":
                numbers["@its" if "@its" not in numbers else "@its2"] = created
                created += 1
            elif op.args[0] == "v3" and "@v3" not in numbers:
                numbers["@v3"] = created
                created += 1
        if op.args and isinstance(op.args[0], str) and op.args[0].startswith("@"):
            if op.args[0] not in numbers:
                continue
            op = Op(op.name, (numbers[op.args[0]],) + op.args[1:])
        out.append(op)
    return out


def generate_lifecycle_its(ch: Chooser, max_events: int = 16) -> Program:
    """One random gicv3-its lifecycle program: vCPUs, the vgic-v3 (before, after or without
    the ITS), one or two ITSes, the vgic-v3's addresses and INIT, the ITS's base address
    (valid, twice, unaligned, beyond the IPA space, wrapping, another type), reads of it,
    its CTRL attributes, its registers before and after the base address, KVM_HAS_DEVICE_ATTR
    on every group, groups the ITS does not have, SAVE_PENDING_TABLES, in random order."""
    total = _pick(ch, (0, 1, 1, 2, 2, 3, 4))
    irqs = _pick(ch, SMALL_IRQS)
    events = _its_lifecycle_steps(ch, total, irqs)
    for _ in range(ch.integer(0, max_events // 2)):
        events.append([op if op.name in MEMORY_OPS else _on("@its" if op.args[0] == ITS else "@v3", op)
                       for op in _its_event(ch, max(total, 1))])
    events = _shuffle(ch, events)
    for kind in ("v3", "its"):
        if ch.integer(0, 7):
            events.insert(ch.integer(0, max(0, len(events) // 2)), [Op.device(kind)])
    body = _its_resolve([Op.vm()] + [op for ev in events for op in ev])
    return Program(0, 0, tuple(body), lifecycle=True, gic=3, its=True)


LIFECYCLE_SHARE = 0.5  # the default proportion of lifecycle programs in a batch


def generate_batch(count: int, seed: int, lifecycle: float = LIFECYCLE_SHARE,
                   device: str = "gicv2") -> list[Program]:
    """``count`` programs for ``device`` ('gicv2' or 'gicv3'), a proportion ``lifecycle``
    of them lifecycle programs (the rest register programs after the standard setup,
    which cover the register semantics more densely)."""
    ch = RandomChooser(random.Random(seed))
    life, reg = {"gicv3": (generate_lifecycle_v3, generate_v3),
                 "gicv3-its": (generate_lifecycle_its, generate_its)}.get(device, (generate_lifecycle, generate))
    return [life(ch) if ch.integer(0, 999) < lifecycle * 1000 else reg(ch) for _ in range(count)]


# ---------------------------------------------------------------------------------------
# Comparing and shrinking.


@dataclass
class Disagreement:
    """A (shrunk) program on which the model and the kernel differ."""

    program: Program
    kernel: list[str]  # every result line, setup prefix included
    model: list[str]
    original: int  # the generated program's number in the first batch
    original_ops: int  # its length (setup prefix included)
    shrink_boots: int = 0

    @property
    def first(self) -> int:
        """The index (0-based, in ``program.ops()``) of the first differing line."""
        return next(i for i, (a, b) in enumerate(zip(self.kernel, self.model, strict=True)) if a != b)

    def render(self) -> list[str]:
        p = self.program
        out = [f"{'lifecycle ' if p.lifecycle else ''}program {self.original} of the batch, shrunk "
               f"from {self.original_ops} to {len(p.ops())} operations ({self.shrink_boots} shrinking boot"
               f"{'s' if self.shrink_boots != 1 else ''}):",
               "  setup: none (the lifecycle steps are in the program)" if p.lifecycle else
               f"  setup: {p.vcpus} vCPU{'s' if p.vcpus != 1 else ''}, {p.irqs} interrupts"
               + (", an ITS as device 1 (harness.v3_setup(its=True)" if p.its else " (harness.gic_setup")
               + f", {p.prefix_len} operations, all ok)"]
        first = self.first
        for i, op in enumerate(p.ops()):
            if i < p.prefix_len and i != first:
                continue
            mark = ">>" if self.kernel[i] != self.model[i] else "  "
            out.append(f"  {mark} {i + 1:3} {op.line():<44} kernel {self.kernel[i]:<12} model {self.model[i]}")
        return out

    def json(self) -> dict[str, Any]:
        p = self.program
        return {"lifecycle": p.lifecycle, "vcpus": None if p.lifecycle else p.vcpus,
                "irqs": None if p.lifecycle else p.irqs, "original_program": self.original,
                "original_operations": self.original_ops, "shrink_boots": self.shrink_boots,
                "first_difference": self.first + 1,
                "operations": [{"op": op.line(), "kernel": k, "model": m}
                               for op, k, m in zip(p.ops(), self.kernel, self.model, strict=True)]}


def _differs(kernel: Sequence[str], model: Sequence[str]) -> bool:
    return list(kernel) != list(model)


def _truncate(p: Program, kernel: list[str], model: list[str]) -> tuple[Program, list[str], list[str]]:
    """Drop everything after the first differing line: earlier results cannot depend on
    later operations."""
    first = next(i for i, (a, b) in enumerate(zip(kernel, model, strict=True)) if a != b)
    body_end = max(0, first + 1 - p.prefix_len)
    q = dataclasses.replace(p, body=p.body[:body_end])
    n = len(q.ops())
    return q, kernel[:n], model[:n]


def _simpler_value(op: Op) -> list[Op]:
    if op.name == "vcpus":  # fewer vCPUs in a lifecycle program's batch
        n = _num(op.args[0])
        return [Op.vcpus(k) for k in sorted({0, 1, n - 1}) if 0 <= k < n]
    if op.name not in ("set32", "set64"):
        return []
    v = _num(op.args[3])
    out = []
    for w in (0, v & -v, 1, 0xFFFFFFFF):
        if w != v and (w == 0 or w < v or v == 0):
            out.append(Op(op.name, (*op.args[:3], w)))
    return out


def _num(a: str | int) -> int:
    return a if isinstance(a, int) else int(a, 0)


def candidates(p: Program) -> list[Program]:
    """Smaller or simpler programs: chunks and single operations removed, a smaller VM,
    simpler written values, fewer vCPUs in a batch; only valid scripts (``Program.valid``:
    a lifecycle program keeps its ``vm`` and uses the device only after creating it)."""
    body = list(p.body)
    out: list[Program] = []
    n = len(body)
    size = n // 2
    while size >= 1:
        for start in range(0, n, size):
            cut = body[:start] + body[start + size:]
            if len(cut) < n:
                out.append(dataclasses.replace(p, body=tuple(cut)))
        size //= 2
    if not p.lifecycle:
        for vcpus in sorted({1, p.vcpus - 1} - {p.vcpus}):
            if vcpus >= 1:
                out.append(dataclasses.replace(p, vcpus=vcpus))
        if p.irqs != 64:
            out.append(dataclasses.replace(p, irqs=64))
    for i, op in enumerate(body):
        for simpler in _simpler_value(op):
            out.append(dataclasses.replace(p, body=tuple(body[:i] + [simpler] + body[i + 1:])))
    seen: set[Program] = set()
    uniq = []
    for c in out:
        if c not in seen and c != p and c.valid():
            seen.add(c)
            uniq.append(c)
    return uniq


def _size(p: Program) -> tuple[int, int, int, int]:
    values = sum(bin(_num(op.args[3])).count("1") for op in p.body if op.name in ("set32", "set64"))
    values += sum(_num(op.args[0]) for op in p.body if op.name == "vcpus")
    return (len(p.body), p.vcpus, p.irqs, values)


Runner = Callable[[list[list[Op]]], BatchResult]


def shrink(found: list[Disagreement], model: KernelModel, run: Runner, max_rounds: int = 12,
           progress: Callable[[str], None] | None = None) -> int:
    """Shrink every disagreement in place, all of them in the same boots; returns the
    number of boots used."""
    for d in found:
        d.program, d.kernel, d.model = _truncate(d.program, d.kernel, d.model)
    boots = 0
    active = list(found)
    for rnd in range(max_rounds):
        batch: list[tuple[Disagreement, Program, list[str]]] = []
        for d in active:
            for c in candidates(d.program):
                try:
                    batch.append((d, c, model.run(c.ops())))
                except OutOfScope:  # a candidate the model refuses (an ITS hazard): not run
                    continue
        if not batch:
            break
        if progress:
            progress(f"shrinking: round {rnd + 1}, {len(batch)} candidates in one boot")
        res = run([c.ops() for _, c, _ in batch])
        boots += 1
        improved = set()
        for (d, c, m), k in zip(batch, res.programs, strict=True):
            kernel = [r.text for r in k]
            if not _differs(kernel, m):
                continue
            c2, k2, m2 = _truncate(c, kernel, m)
            if _size(c2) < _size(d.program):
                d.program, d.kernel, d.model = c2, k2, m2
                improved.add(id(d))
        for d in active:
            d.shrink_boots = boots
        active = [d for d in active if id(d) in improved]
        if not active:
            break
    return boots


# ---------------------------------------------------------------------------------------
# The run.


@dataclass
class ConformReport:
    kernel: KernelInfo
    release: str
    semantics: str  # the semantic revision the release resolves to
    uname_r: str
    seed: int
    programs: int
    operations: int
    disagreeing_programs: int
    lifecycle_programs: int = 0  # programs with the lifecycle steps in random positions
    lifecycle_operations: int = 0  # operations compared that are lifecycle steps (is_lifecycle_op)
    disagreements: list[Disagreement] = field(default_factory=list)
    boots: int = 0
    boot_seconds: float = 0.0  # the first boot, to the guest's ready line
    run_seconds: float = 0.0  # the first boot, from ready to QEMU's exit (the programs)
    total_seconds: float = 0.0  # the first boot, QEMU start to exit
    ioctls: int = 0
    ioctl_seconds: float = 0.0
    model_seconds: float = 0.0
    wall_seconds: float = 0.0
    device: str = "gicv2"

    @property
    def ops_per_second(self) -> float:
        return self.operations / self.run_seconds if self.run_seconds > 0 else 0.0

    @property
    def exit_code(self) -> int:
        return 1 if self.disagreements else 0

    def render(self) -> str:
        k = self.kernel
        lines = [
            f"gicproof conform {self.device} --kernel {k.label}: Debian {k.package} {k.version}, "
            f"uname -r {self.uname_r} (QEMU gic-version={2 if self.device == 'gicv2' else 3})",
            f"model: semantics of {self.release} (revision {self.semantics})",
            f"programs run: {self.programs} (seed {self.seed}; {self.lifecycle_programs} lifecycle "
            f"programs, {self.programs - self.lifecycle_programs} after the standard setup)",
            f"operations compared: {self.operations} ({self.lifecycle_operations} lifecycle operations)",
            f"disagreements: {self.disagreeing_programs} program"
            f"{'s' if self.disagreeing_programs != 1 else ''}"
            + (f" ({len(self.disagreements)} shrunk and shown)" if self.disagreements else ""),
            f"boot: {self.boot_seconds:.1f} s to /init, {self.total_seconds:.1f} s in total; "
            f"{self.boots} boot{'s' if self.boots != 1 else ''} (shrinking included)",
            f"speed: {self.ops_per_second:.0f} operations/s on the kernel (console output included; "
            f"{self.ioctls} ioctls took {self.ioctl_seconds * 1e3:.0f} ms), model "
            f"{self.operations / self.model_seconds if self.model_seconds else 0:.0f} operations/s",
        ]
        for i, d in enumerate(self.disagreements, 1):
            lines.append("")
            lines.append(f"disagreement {i}: " + d.render()[0])
            lines.extend(d.render()[1:])
        return "\n".join(lines)

    def json(self) -> dict[str, Any]:
        k = self.kernel
        return {"obligation": "conform", "device": self.device, "kernel": k.label, "release": self.release,
                "debian_version": k.version, "uname_r": self.uname_r, "semantics": self.semantics,
                "seed": self.seed, "programs": self.programs, "operations": self.operations,
                "lifecycle_programs": self.lifecycle_programs,
                "lifecycle_operations": self.lifecycle_operations,
                "disagreeing_programs": self.disagreeing_programs,
                "disagreements": [d.json() for d in self.disagreements], "boots": self.boots,
                "boot_seconds": round(self.boot_seconds, 2), "total_seconds": round(self.total_seconds, 2),
                "ops_per_second": round(self.ops_per_second), "ioctls": self.ioctls,
                "wall_seconds": round(self.wall_seconds, 2)}


def resolve_kernel(name: str) -> KernelInfo:
    """A cached kernel by label ("6.12"), uname -r, or release ("6.12.107", "5.10.223":
    the release the model's semantics are taken from)."""
    for k in harness.list_kernels():
        if release_of(k) == name:
            return k
    return harness.find_kernel(name)


def conform(kernel: str | KernelInfo, programs: int = 300, seed: int = 0, max_shown: int = 5,
            run: Runner | None = None, model: KernelModel | None = None,
            progress: Callable[[str], None] | None = None,
            batch: list[Program] | None = None, lifecycle: float = LIFECYCLE_SHARE,
            device: str = "gicv2") -> ConformReport:
    """Run ``programs`` generated programs for ``device`` ('gicv2': a vgic-v2 on QEMU's
    GICv2; 'gicv3': a vgic-v3 on QEMU's GICv3) (or ``batch``; a proportion ``lifecycle``
    of them lifecycle programs) on ``kernel`` (a cached kernel's label or release) and on
    the model; shrink up to ``max_shown`` disagreements.
    ``run`` and ``model`` replace the boot and the model (tests plant bugs with them).
    Raises harness.KernelOracleError when the kernel cannot be found or booted."""
    t0 = time.perf_counter()
    k = kernel if isinstance(kernel, KernelInfo) else resolve_kernel(kernel)
    release = release_of(k)
    model = model or kernel_model(device, release)
    gic = 2 if device == "gicv2" else 3
    if run is None:
        def run(progs: list[list[Op]]) -> BatchResult:
            return harness.run_batch(k.label, gic, progs)
    progs = batch if batch is not None else generate_batch(programs, seed, lifecycle, device)
    t1 = time.perf_counter()
    progs, expected = _model_runs(model, progs)
    model_s = time.perf_counter() - t1
    if progress:
        progress(f"booting {k.uname_r} with {len(progs)} programs")
    res = run([p.ops() for p in progs])
    found = []
    operations = lifecycle_ops = 0
    for i, (p, exp, got) in enumerate(zip(progs, expected, res.programs, strict=True)):
        kernel_lines = [r.text for r in got]
        operations += len(kernel_lines)
        lifecycle_ops += sum(1 for op in p.ops() if is_lifecycle_op(op))
        if _differs(kernel_lines, exp):
            found.append(Disagreement(p, kernel_lines, exp, i, len(kernel_lines)))
    rep = ConformReport(
        kernel=k, release=release, semantics=model.semantics.revision, uname_r=res.uname_r or k.uname_r,
        seed=seed, programs=len(progs), operations=operations, disagreeing_programs=len(found),
        lifecycle_programs=sum(1 for p in progs if p.lifecycle), lifecycle_operations=lifecycle_ops,
        boots=1, boot_seconds=res.boot_seconds, run_seconds=max(1e-9, res.total_seconds - res.boot_seconds),
        total_seconds=res.total_seconds, ioctls=res.ioctls, ioctl_seconds=res.ioctl_ns / 1e9,
        model_seconds=model_s, device=device)
    if found:
        shown = _distinct(found)[:max_shown]
        rep.boots += shrink(shown, model, run, progress=progress)
        rep.disagreements = sorted(shown, key=lambda d: _size(d.program))
    rep.wall_seconds = time.perf_counter() - t0
    return rep


def _model_runs(model: KernelModel, progs: list[Program]) -> tuple[list[Program], list[list[str]]]:
    """The model's answers to every program; a program that reaches a hazard (an operation
    the kernel may crash on, or the model does not follow: its_model.Hazard) is cut just
    before it, for this release's model (so a batch differs a little between kernels)."""
    out, expected = [], []
    for p in progs:
        try:
            lines = model.run(p.ops())
        except Hazard as e:
            keep = max(0, e.index - p.prefix_len)
            p = dataclasses.replace(p, body=p.body[:keep])
            lines = model.run(p.ops())
        out.append(p)
        expected.append(lines)
    return out, expected


def _distinct(found: list[Disagreement]) -> list[Disagreement]:
    """One disagreement per first differing operation kind (the operation and its group,
    register offset and kernel answer), in batch order."""
    seen = set()
    out = []
    for d in found:
        op = d.program.ops()[d.first]
        key = (op.name, op.args[1] if len(op.args) > 1 else "", (int(op.args[2]) & 0xFFFFFFFF) if
               op.name in ("get32", "set32") else 0, d.kernel[d.first])
        if key not in seen:
            seen.add(key)
            out.append(d)
    return out
