"""``gicproof prove FILE --on-kernel K``: each counterexample's witness, run on a real kernel.

The proof's counterexamples are already replayed on the concrete model
(``proofs.replay``): a source state, the destination's state before the restore (the
reset state plus the source's interrupt lines for a fresh destination), a configuration.
Here each one is turned into runner programs (``models/kernel/runner.c``) and run on a
real Debian kernel under QEMU (``models.kernel.harness``), beside the model of that
kernel's release (``models.kernel.model.KernelModel`` for a vgic-v2 on QEMU's GICv2,
``KernelModelV3`` for a vgic-v3 without an ITS on QEMU's GICv3; both speak the runner's
language), line by line as ``gicproof conform`` compares them. The engine is one; what
differs per device is named in ``DeviceParts`` (``GICV2_PARTS``, ``GICV3_PARTS``, and
``GICV3_ITS_PARTS`` in ``proofs.on_kernel_its``, whose witnesses have their own runner on
``KernelModelIts``: table images in guest memory, SAVE/RESTORE_TABLES): the QEMU host, the
model, the attribute encoding, the builder, the reveal writes.

The runner cannot compute a value at run time, so a migration takes two boots (every
witness of every file for one kernel shares them):

* **phase 1** (the source): create the VM (vCPUs, the vGIC, NR_IRQS, CTRL_INIT, as
  ``harness.gic_setup``), build the source state from reset through userspace writes
  (``build_ops``, ``build_ops_v3``), read every register back, run the file's save steps
  (reads and save-side checks; a conditional step decided on the saved values), and then
  the device's reveal writes and everything read again: on GICv2, when a line is held,
  every held line lowered (KVM_IRQ_LINE 0; the only way a read tells a pending latch from
  a held level line: ``irq_is_pending`` ORs them); on GICv3 always, every interrupt made
  level-sensitive and ICC_CTLR_EL1.CBPR cleared (LEVEL_INFO hides an edge interrupt's
  level, a CBPR read of BPR1 hides BPR1);
* **phase 2** (the destination): a new VM, the destination's prior state built the same
  way, the file's restore steps with the values the *kernel* returned in phase 1 (each
  write's value computed by the sequence engine, ``models.machine.step_value``: ``saved``,
  ``ones``, masks and all), stopping after the first failing step as QEMU aborts, then
  everything read back (and again after the reveal writes).

Every result line of both phases is compared with the model's. A counterexample is
**confirmed** only when every kernel line equals the model's *and* the kernel's own reads
show the loss: at the witness's interrupt (or CPU interface), a register whose read reveals
the lost field reads differently in the destination's final read-back than in the
source's (or, for a refusal, the kernel fails at the step the model fails at). Otherwise:

* **kernel disagreed**: the first differing line (phase, step, register, word, both values);
* **not buildable from userspace**: building the witness's state through userspace writes
  gives (on the model) a state without the loss, and the fields it could not build are
  named with the reason (``WHY_NOT_BUILDABLE``, each with its kernel source);
* **loss not observable through userspace reads**: every line agrees, the model's state
  shows the loss, but no userspace read at the witness's place differs.

Imports: spec, models and the harness only (no z3): it works from concrete replays.
"""

from __future__ import annotations

import dataclasses
import inspect
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from models import guest
from models.concrete import CONCRETE
from models.kernel import harness
from models.kernel.harness import (
    BatchResult,
    KernelInfo,
    KernelOracleError,
    Op,
    dist_attr,
    v2_attr,
    v3_mpidr_attr,
)
from models.kernel.model import (
    _GROUP_OF,
    GROUP_NAMES,
    SPI_TYPES,
    V3_GROUPS,
    KernelModel,
    KernelModelV3,
    OutOfScope,
    RunV3,
    _int,
    release_of,
    setup_prefix,
)
from models.machine import (
    SPI_BANK,
    Access,
    Config,
    DeviceState,
    Machine,
    expand,
    ideal_save_steps,
    make_state,
    run_restore,
    run_save_checked,
    saved_key,
    step_condition,
    step_value,
)
from spec import gicv3
from spec.device import DeviceSpec, Register
from spec.gicv2 import (
    DOC,
    GICV2,
    IIDR_REVISION_SHIFT,
    IMPLEMENTER_ARM,
    MMIO,
    MMIO2,
    NR_PRIVATE,
    NR_SGIS,
    PRODUCT_ID_KVM,
)
from spec.gicv3 import GICV3

if TYPE_CHECKING:  # only for annotations: importing them would pull in z3
    from proofs.replay import Replay
    from proofs.report import SequenceReport

CONFIRMED = "confirmed"
DISAGREED = "kernel disagreed"
NOT_BUILDABLE = "not buildable from userspace"
NOT_OBSERVABLE = "loss not observable through userspace reads"
NOT_RUN = "not run"
STATUSES = (CONFIRMED, DISAGREED, NOT_BUILDABLE, NOT_OBSERVABLE, NOT_RUN)

ARM_IRQ_LINE = "arch/arm64/kvm/arm.c: kvm_vm_ioctl_irq_line"

# Why userspace cannot give a field the witness's value, with the kernel source.
WHY_NOT_BUILDABLE = {
    "active_source": (
        "an SGI active from a vCPU other than 0 needs a guest on that vCPU to acknowledge it: a "
        "userspace GICD_ISACTIVER write records vCPU 0, since an ioctl has no requester vCPU "
        f"({MMIO}: vgic_mmio_change_active 'irq->active_source = requester_vcpu ? "
        "requester_vcpu->vcpu_id : 0')"),
    "groups_user_writable": (
        "GICD_IGROUPR is writable from userspace only once GICD_IIDR has been written, which "
        "sets v2_groups_user_writable for the VM's lifetime (nothing clears it): interrupts in "
        "group 1 with GICD_IGROUPR not yet user-writable need a guest GICD_IGROUPR write "
        f"({MMIO2}: vgic_mmio_uaccess_write_v2_misc 'v2_groups_user_writable = true', "
        f"vgic_mmio_uaccess_write_v2_group; {DOC})"),
    "implementation_rev": (
        "only a userspace GICD_IIDR write sets the revision, and that write also makes "
        f"GICD_IGROUPR user-writable ({MMIO2}: vgic_mmio_uaccess_write_v2_misc)"),
    "soft_pending": (
        "the 4.7-4.10 shadow soft_pending has no register of its own "
        "(virt/kvm/arm/vgic/vgic-mmio.c at v4.7: irq->soft_pending)"),
    "hw_mapped": (
        "a timer PPI is mapped to hardware by kvm_timer_enable at the vCPU's first KVM_RUN "
        "(arch/arm64/kvm/arch_timer.c, kvm_vgic_map_phys_irq); the runner never runs a vCPU, so "
        "no interrupt of its VMs is mapped"),
    "apr": (
        "GICC_APRn is read-as-zero/write-ignored for userspace before 4.12 "
        f"({MMIO2}: vgic_mmio_read_apr, 9b87e7a8bfb5)"),
}


# ---------------------------------------------------------------------------------------
# The model of the kernel, with the two runner operations a migration needs beyond what
# ``gicproof conform`` generates.


@dataclass
class OracleModel(KernelModel):
    """``KernelModel``'s register model, after the standard setup prefix, plus ``irq PPI``
    and ``ctrl INIT``: the operations a migration's two phases need (the lifecycle table
    is not needed here: every witness program starts with ``harness.gic_setup``).

    A program runs on a *handle* (``begin``): here the register model itself, the setup
    prefix taken as done (each of its lines is expected ``ok``)."""

    def begin(self, cfg: Config) -> tuple[Any, list[str]]:
        """A handle on a VM after ``setup_prefix`` and the model's answers to the prefix."""
        return self.fresh(cfg.cpus, cfg.irqs), ["ok"] * len(setup_prefix(cfg.cpus, cfg.irqs))

    def machine_of(self, handle: Any) -> Machine:
        return handle

    def step_on(self, m: Machine, op: Op) -> str:
        if op.name in ("get32", "set32"):
            dev, group, attr = op.args[0], op.args[1], _int(op.args[2])
            if _int(dev) != 0 or group not in _GROUP_OF:
                raise OutOfScope(f"{op.line()}: not a GICv2 register group of device 0")
            value = _int(op.args[3]) if op.name == "set32" else None
            return self.attr_access(m, _GROUP_OF[group], attr, value)
        if op.name == "irq" and op.args and op.args[0] == "PPI":
            # kvm_vm_ioctl_irq_line 'case KVM_ARM_IRQ_TYPE_PPI: ... if (!vcpu) return
            # -EINVAL; if (irq_num < VGIC_NR_SGIS || irq_num >= VGIC_NR_PRIVATE_IRQS)
            # return -EINVAL; return kvm_vgic_inject_irq(kvm, vcpu, irq_num, level, NULL)'
            vcpu, num, level = (_int(a) for a in op.args[1:])
            if vcpu >= m.config.cpus or not NR_SGIS <= num < NR_PRIVATE:
                return "EINVAL"
            guest.raise_line(m, num, vcpu, 1 if level else 0)
            return "ok"
        if op.name == "irq" and op.args and op.args[0] in SPI_TYPES:
            return self.irq_line(m, _int(op.args[2]), _int(op.args[3]))
        if op.name == "ctrl" and op.args[1] == "INIT":
            err, errno = m.operation("KVM_DEV_ARM_VGIC_CTRL_INIT")
            return errno if int(err) else "ok"
        raise OutOfScope(f"{op.line()}: not an operation of a migration's phases")


@dataclass
class OracleModelV3(KernelModelV3):
    """``KernelModelV3`` (the vgic-v3 on QEMU's GICv3 host, no ITS) for a migration's
    phases: the whole program, the setup prefix (``harness.gic_setup(3, ...)``) included,
    runs through the model's lifecycle table, so the handle is the model's ``RunV3``."""

    def begin(self, cfg: Config) -> tuple[Any, list[str]]:
        r = RunV3(self.lifecycle.fresh())
        return r, [self.step(r, op) for op in setup_prefix(cfg.cpus, cfg.irqs, 3)]

    def machine_of(self, handle: Any) -> Machine:
        assert isinstance(handle, RunV3) and handle.machine is not None, "the setup prefix initialises the vGIC"
        return handle.machine

    def step_on(self, handle: Any, op: Op) -> str:
        return self.step(handle, op)


# ---------------------------------------------------------------------------------------
# Building a state through userspace writes.


def _word_value(reg: Register, slices: dict[int, int]) -> int:
    """The word holding ``slices`` ({intid: slice}) of a per-interrupt register."""
    v = 0
    for i, s in slices.items():
        v |= (int(s) & ((1 << reg.slice_bits) - 1)) << reg.slice_shift(i)
    return v


def _attr_op(reg: Register, word: int, vcpu: int, value: int | None) -> Op:
    group = GROUP_NAMES[reg.group]
    attr = v2_attr(vcpu, reg.offset + 4 * word)
    return Op.get(0, group, attr) if value is None else Op.set(0, group, attr, value & 0xFFFFFFFF)


def build_ops(spec: DeviceSpec, sem: Any, state: DeviceState, cfg: Config) -> list[tuple[Op, str]]:
    """Userspace operations that take a freshly initialised vgic-v2 to ``state`` (as far as
    userspace can: ``check_build`` says where it could not), each with a note. Order
    matters: GICD_IIDR before GICD_IGROUPR (the group gate), GICD_ICFGR before the lines
    (an edge SPI latches at every level-1 KVM_IRQ_LINE), the lines before the pending
    writes, which then clear and set the latches."""
    out: list[tuple[Op, str]] = []
    fresh = make_state(spec, sem, cfg, CONCRETE)
    irq, cpus = state.irq, cfg.cpus

    def banks(intid: int) -> list[int]:
        return list(range(cpus)) if intid < NR_PRIVATE else [SPI_BANK]

    def words(reg: Register) -> list[tuple[int, int, list[int]]]:
        """(word, vcpu, intids) for every word holding configured interrupts."""
        res = []
        for w in range(reg.words):
            ids = [i for i in reg.word_irqs(w) if i < cfg.irqs]
            if not ids:
                continue
            for b in banks(ids[0]):
                res.append((w, max(b, 0), [i for i in ids if (b if i < NR_PRIVATE else SPI_BANK, i) in irq]))
        return res

    def key(intid: int, vcpu: int) -> tuple[int, int]:
        return (vcpu if intid < NR_PRIVATE else SPI_BANK, intid)

    def get(st: DeviceState, intid: int, vcpu: int, name: str) -> int:
        return int(st.irq[key(intid, vcpu)].get(name, 0))

    def reg_words(name: str, fld: str, only: Callable[[int], bool] = lambda i: True,
                  note: str = "") -> None:
        reg = spec.register(name)
        for w, vcpu, ids in words(reg):
            ids = [i for i in ids if only(i)]
            want = _word_value(reg, {i: get(state, i, vcpu, fld) for i in ids})
            have = _word_value(reg, {i: get(fresh, i, vcpu, fld) for i in ids})
            if want != have:
                out.append((_attr_op(reg, w, vcpu, want), f"build: {note or fld} {name}[{w}] cpu{vcpu}"))

    g = state.glob
    any_group = any(int(f.get("group", 0)) for f in irq.values())
    rev = int(g.get("implementation_rev", sem.iidr_revision))
    if sem.groups and (int(g.get("groups_user_writable", 0)) or any_group or rev != sem.iidr_revision):
        iidr = (PRODUCT_ID_KVM << 24) | (rev << IIDR_REVISION_SHIFT) | IMPLEMENTER_ARM
        out.append((_attr_op(spec.register("GICD_IIDR"), 0, 0, iidr),
                    "build: GICD_IIDR written back (makes GICD_IGROUPR user-writable)"))
    # the trigger of the SPIs: level first where a line is held (the kernel records the
    # level of a level-sensitive interrupt only: vgic_validate_injection, event_line), the
    # final trigger after the lines (vgic_mmio_write_config keeps line_level)
    held = {k for k, f in irq.items() if int(f.get("line_level", 0))}
    cfgr = spec.register("GICD_ICFGR")
    first: dict[int, int] = {}
    for w, vcpu, ids in words(cfgr):
        ids = [i for i in ids if i >= NR_PRIVATE]
        first[w] = _word_value(cfgr, {i: 2 * (get(state, i, vcpu, "edge") and key(i, vcpu) not in held)
                                      for i in ids})
        if first[w] != _word_value(cfgr, {i: 2 * get(fresh, i, vcpu, "edge") for i in ids}):
            out.append((_attr_op(cfgr, w, vcpu, first[w]), f"build: trigger GICD_ICFGR[{w}]"))
    reg_words("GICD_IGROUPR", "group")
    reg_words("GICD_IPRIORITYR", "priority")
    reg_words("GICD_ITARGETSR", "targets", lambda i: i >= NR_PRIVATE)
    # enable: clear what reset enabled (the SGIs) and the target does not, then set
    for name, want_bit in (("GICD_ICENABLER", 0), ("GICD_ISENABLER", 1)):
        reg = spec.register(name)
        for w, vcpu, ids in words(reg):
            bits = _word_value(reg, {i: int(get(state, i, vcpu, "enabled") == want_bit
                                            and get(fresh, i, vcpu, "enabled") != want_bit) for i in ids})
            if bits:
                out.append((_attr_op(reg, w, vcpu, bits), f"build: enable {name}[{w}] cpu{vcpu}"))
    out.extend(line_ops(state, cfg, 1))
    for w, vcpu, ids in words(cfgr):
        ids = [i for i in ids if i >= NR_PRIVATE]
        final = _word_value(cfgr, {i: 2 * get(state, i, vcpu, "edge") for i in ids})
        if final != first[w]:
            out.append((_attr_op(cfgr, w, vcpu, final), f"build: trigger GICD_ICFGR[{w}] (after the lines)"))
    # pending latches of PPIs and SPIs: clear (a line may have latched an edge SPI), set
    for name, want_bit in (("GICD_ICPENDR", 0), ("GICD_ISPENDR", 1)):
        reg = spec.register(name)
        for w, vcpu, ids in words(reg):
            ids = [i for i in ids if i >= NR_SGIS]
            if want_bit == 0:
                bits = _word_value(reg, {i: int(key(i, vcpu) in held and not get(state, i, vcpu, "pending_latch")) for i in ids})
            else:
                bits = _word_value(reg, {i: get(state, i, vcpu, "pending_latch") for i in ids})
            if bits:
                out.append((_attr_op(reg, w, vcpu, bits), f"build: pending latch {name}[{w}] cpu{vcpu}"))
    # SGIs: pending with their sources through GICD_SPENDSGIR (vgic_mmio_write_sgipends)
    reg_words("GICD_SPENDSGIR", "sgi_sources", note="SGI sources")
    reg = spec.register("GICD_ISACTIVER")
    for w, vcpu, ids in words(reg):
        bits = _word_value(reg, {i: get(state, i, vcpu, "active") for i in ids})
        if bits:
            out.append((_attr_op(reg, w, vcpu, bits), f"build: active GICD_ISACTIVER[{w}] cpu{vcpu}"))
    for c in range(cpus):
        for name, fld in (("GICC_CTLR", "ctlr"), ("GICC_PMR", "pmr"), ("GICC_BPR", "bpr"),
                          ("GICC_ABPR", "abpr"), ("GICC_APR0", "apr")):
            v = int(state.cpu[c][fld])
            if v != int(fresh.cpu[c][fld]):
                out.append((_attr_op(spec.register(name), 0, c, v), f"build: {name} cpu{c}"))
    if int(g.get("dist_enabled", 0)):
        out.append((_attr_op(spec.register("GICD_CTLR"), 0, 0, 1), "build: GICD_CTLR"))
    return out


def line_ops(state: DeviceState, cfg: Config, level: int) -> list[tuple[Op, str]]:
    """KVM_IRQ_LINE for every held line (level 1 to raise, 0 to lower): SPIs with type SPI
    (the vCPU field ignored), PPIs with type PPI on their vCPU (ARM_IRQ_LINE)."""
    out = []
    for (bank, intid), f in sorted(state.irq.items(), key=lambda kv: (kv[0][1], kv[0][0])):
        if int(f.get("line_level", 0)):
            kind = "SPI" if bank == SPI_BANK else "PPI"
            vcpu = max(bank, 0)
            verb = "raise" if level else "lower"
            out.append((Op.irq(kind, vcpu, intid, level), f"{verb} line {kind} {intid}"
                        + (f" cpu{vcpu}" if kind == "PPI" else "")))
    return out


# ---------------------------------------------------------------------------------------
# GICv3 (a vgic-v3 on QEMU's GICv3 host, no ITS): attributes, builder, what reveals.

V3_GROUP_NAMES = {group: name for name, group in V3_GROUPS.items()}
ICC_CTLR_CBPR = 1  # ICC_CTLR_EL1 bit 0
V3_REVEAL = "read-back with every interrupt level-sensitive and ICC_CTLR_EL1.CBPR clear"


def v3_attr_op(reg: Register, word: int, vcpu: int, value: int | None) -> Op:
    """A userspace access of one register word of the vgic-v3 as ``gicproof conform gicv3``
    encodes it: DIST_REGS at the offset alone, REDIST_REGS, CPU_SYSREGS (64 bits) and
    LEVEL_INFO (the vINTID of the word's first interrupt) with the vCPU's packed MPIDR in
    bits 63:32 (arm-vgic-v3.rst)."""
    group = V3_GROUP_NAMES[reg.group]
    low = reg.offset + reg.unit * word
    attr = dist_attr(low) if reg.group == gicv3.DIST else v3_mpidr_attr(vcpu, low)
    bits = 64 if reg.group == gicv3.SYSREGS else 32
    if value is None:
        return Op.get(0, group, attr, bits)
    return Op.set(0, group, attr, value & ((1 << bits) - 1), bits)


def _places(spec: DeviceSpec, m: Machine, reg: Register) -> list[tuple[int, int]]:
    """(word, vCPU) of every word of ``reg`` that holds state on ``m``: a private
    interrupt's word and a CPU register once per vCPU, the others once."""
    out = []
    for w in range(reg.words):
        if reg.scope == "irq":
            banked = reg.word_irqs(w).start < spec.private_irqs
            out += [(w, c) for c in (range(m.config.cpus) if banked else (0,)) if m.word_keys(reg, w, c)]
        else:
            out += [(w, c) for c in (range(m.config.cpus) if reg.scope == "cpu" else (0,))]
    return out


def build_ops_v3(spec: DeviceSpec, sem: Any, state: DeviceState, cfg: Config) -> list[tuple[Op, str]]:
    """Userspace operations that take a freshly initialised vgic-v3 to ``state`` (as far as
    userspace can: ``WitnessRun.prepare`` checks the result on the model). Each write is
    simulated on the model as it is chosen, so a word is written only where it differs.
    Read/write registers get the word a userspace read of ``state`` gives; the set/clear
    pairs get the bits that change; line levels are written through LEVEL_INFO
    (vgic_write_irq_line_level_info: 'Line level is set irrespective of irq type', no
    pending latch), before the pending latches. Order: GICD_IIDR first (the revision
    decides other registers' semantics), the trigger, the CPU interface's BPR1 before
    ICC_CTLR_EL1 (with CBPR set a userspace BPR1 write is ignored: set_gic_bpr1 in
    arch/arm64/kvm/vgic-sys-reg-v3.c), GICD_CTLR last."""
    sim = Machine(spec, sem, cfg, CONCRETE, make_state(spec, sem, cfg, CONCRETE))
    target = Machine(spec, sem, cfg, CONCRETE, state.copy())
    view = state.copy()  # the target's reads with CBPR clear (get_gic_bpr1 reads min(BPR0 + 1, 7) with it set)
    for _, f in view.cpu.items():
        if "cbpr" in f:
            f["cbpr"] = CONCRETE.const(0, 1)
    uncovered = Machine(spec, sem, cfg, CONCRETE, view)
    out: list[tuple[Op, str]] = []

    def where(reg: Register, w: int, c: int) -> str:
        banked = reg.scope == "cpu" or (reg.scope == "irq" and reg.word_irqs(w).start < spec.private_irqs)
        return f"{reg.name}" + (f"[{w}]" if reg.words > 1 else "") + (f" cpu{c}" if banked else "")

    def emit(reg: Register, w: int, c: int, value: int, note: str) -> None:
        out.append((v3_attr_op(reg, w, c, value), f"build: {note} {where(reg, w, c)}"))
        sim.write_word(reg, w, c, value, user=True)

    def as_read(names: Sequence[str], note: str, source: Machine = uncovered) -> None:
        for name in names:
            reg = spec.register(name)
            for w, c in _places(spec, sim, reg):
                if int(source.read_error(reg, w, c)[0]):
                    continue  # a register the kernel refuses here (ICC_AP<g>R<n> beyond the priority bits)
                want = source.read_word(reg, w, c)
                if want != sim.read_word(reg, w, c):
                    emit(reg, w, c, want, note)

    def bits(fld: str, set_name: str, clear_name: str) -> None:
        sreg, creg = spec.register(set_name), spec.register(clear_name)
        for w, c in _places(spec, sim, sreg):
            keys = sim.word_keys(sreg, w, c)
            have = {i: int(sim.state.irq[k].get(fld, 0)) for k, i in keys}
            want = {i: int(state.irq[k].get(fld, 0)) if k in state.irq else have[i] for k, i in keys}
            clear = sum(1 << sreg.slice_shift(i) for i in have if have[i] and not want[i])
            if clear:
                emit(creg, w, c, clear, fld)
            more = sum(1 << sreg.slice_shift(i) for i in have if want[i] and not have[i])
            if more:
                emit(sreg, w, c, more, fld)

    as_read(["GICD_IIDR"], "revision")
    as_read(["GICD_ICFGR", "GICR_ICFGR0", "GICR_ICFGR1"], "trigger")
    as_read(["GICD_IGROUPR", "GICR_IGROUPR0", "GICD_IPRIORITYR", "GICR_IPRIORITYR", "GICD_IROUTER"], "")
    bits("enabled", "GICD_ISENABLER", "GICD_ICENABLER")
    bits("enabled", "GICR_ISENABLER0", "GICR_ICENABLER0")
    level = spec.register("VGIC_LINE_LEVEL")
    for w, c in _places(spec, sim, level):
        keys = sim.word_keys(level, w, c)
        want = sum(int(state.irq[k].get("line_level", 0)) << level.slice_shift(i) for k, i in keys if k in state.irq)
        have = sum(int(sim.state.irq[k].get("line_level", 0)) << level.slice_shift(i) for k, i in keys)
        if want != have:
            emit(level, w, c, want, "line levels")
    bits("pending_latch", "GICD_ISPENDR", "GICD_ICPENDR")
    bits("pending_latch", "GICR_ISPENDR0", "GICR_ICPENDR0")
    bits("active", "GICD_ISACTIVER", "GICD_ICACTIVER")
    bits("active", "GICR_ISACTIVER0", "GICR_ICACTIVER0")
    as_read(["ICC_PMR_EL1", "ICC_BPR0_EL1", "ICC_BPR1_EL1", *(f"ICC_AP{g}R{n}_EL1" for g in (0, 1) for n in range(4)),
             "ICC_IGRPEN0_EL1", "ICC_IGRPEN1_EL1", "ICC_SRE_EL1"], "CPU interface")
    as_read(["ICC_CTLR_EL1"], "CPU interface", target)
    as_read(["GICR_PROPBASER", "GICR_PENDBASER"], "LPI tables")
    as_read(["GICD_CTLR"], "distributor", target)
    return out


def reveal_ops_v3(spec: DeviceSpec, m: Machine, cfg: Config) -> list[tuple[Op, str]]:
    """Writes after which a userspace read shows what the vgic-v3 keeps but does not show:
    every interrupt level-sensitive (LEVEL_INFO reads a line level only 'if (irq->config
    == VGIC_CONFIG_LEVEL && irq->line_level)', vgic_read_irq_line_level_info), and
    ICC_CTLR_EL1.CBPR clear (with it set a userspace ICC_BPR1_EL1 read is min(BPR0 + 1, 7),
    get_gic_bpr1). The values come from the model's reads at this point of the program,
    whose every earlier line has been compared with the kernel's."""
    out = []
    for name in ("GICD_ICFGR", "GICR_ICFGR1"):
        reg = spec.register(name)
        for w, c in _places(spec, m, reg):
            if m.read_word(reg, w, c):
                out.append((v3_attr_op(reg, w, c, 0), f"level-sensitive {reg.name}[{w}] cpu{c}"))
    ctlr = spec.register("ICC_CTLR_EL1")
    for c in range(cfg.cpus):
        v = m.read_word(ctlr, 0, c)
        if v & ICC_CTLR_CBPR:
            out.append((v3_attr_op(ctlr, 0, c, v & ~ICC_CTLR_CBPR), f"CBPR clear ICC_CTLR_EL1 cpu{c}"))
    return out


def state_differences(spec: DeviceSpec, want: DeviceState, got: DeviceState) -> list[tuple[str, Any, str, int, int]]:
    """(scope, key, field, wanted, built) for every field where two states differ."""
    diffs: list[tuple[str, Any, str, int, int]] = []
    for name, v in want.glob.items():
        if int(got.glob[name]) != int(v):
            diffs.append(("global", None, name, int(v), int(got.glob[name])))
    for c, f in enumerate(want.cpu):
        for name, v in f.items():
            if int(got.cpu[c][name]) != int(v):
                diffs.append(("cpu", c, name, int(v), int(got.cpu[c][name])))
    for k, f in want.irq.items():
        for name, v in f.items():
            if int(got.irq[k][name]) != int(v):
                diffs.append(("irq", k, name, int(v), int(got.irq[k][name])))
    return diffs


def _summarise(spec: DeviceSpec, diffs: dict[str, list[tuple[str, Any, str, int, int]]]) -> list[str]:
    """'source active_source=0x4 (built 0x0) at SGI 0 cpu0 and 15 more', one per kind."""
    groups: dict[tuple[str, str, int, int], list[str]] = {}
    for side, ds in diffs.items():
        for scope, key, name, want, got in ds:
            groups.setdefault((side, name, want, got), []).append(place(spec, scope, key))
    out = []
    for (side, name, want, got), places in groups.items():
        more = f" and {len(places) - 1} more" if len(places) > 1 else ""
        out.append(f"{side} {name}={want:#x} (built {got:#x}) at {places[0]}{more}")
    return out


def place(spec: DeviceSpec, scope: str, key: Any) -> str:
    if scope == "irq":
        bank, intid = key
        return f"{spec.interrupt_kind(intid).upper()} {intid}" + (f" cpu{bank}" if bank >= 0 else "")
    if scope == "cpu":
        return f"CPU interface {key}"
    return "distributor"


# ---------------------------------------------------------------------------------------
# The parts that differ between devices; everything below them is one engine.


@dataclass(frozen=True)
class DeviceParts:
    """How one device's witnesses become runner programs: the oracle's host (QEMU's
    gic-version), the model of the kernel, a register word's attribute, the builder of a
    state, and the writes after which userspace reads show state a plain read hides."""

    spec: DeviceSpec
    gic: int
    hosts: tuple[str, ...]  # the files' host kinds the oracle's QEMU provides
    no_host: dict[str, str]  # why another host kind cannot be provided (default key "")
    model: Callable[[str], Any]  # release -> an OracleModel(V3)
    attr_op: Callable[[Register, int, int, int | None], Op]
    build: Callable[[DeviceSpec, Any, DeviceState, Config], list[tuple[Op, str]]]
    reveal: Callable[[DeviceSpec, DeviceState, Machine, Config], list[tuple[Op, str]]]
    revealed: str  # the name of the read-back after the reveal
    revealed_when: str  # what the evidence says about it
    always_reveal: bool  # read back again even when no reveal write is needed
    runner: Any = None  # the class that runs one witness (default WitnessRun; gicv3-its: ItsWitnessRun)

    def why_no_host(self, host: str) -> str:
        return self.no_host.get(host, self.no_host[""])


GICV2_PARTS = DeviceParts(
    GICV2, 2, ("gicv2",),
    {"": "the oracle's QEMU gives a vgic-v2 guest a GICv2 host (gic-version=2); its emulated GICv3 "
         "offers no GICv2 compatibility"},
    lambda release: OracleModel(release), _attr_op, build_ops,
    lambda spec, state, m, cfg: line_ops(state, cfg, 0),
    "read-back after lowering the lines", " after lowering the held lines on both sides", False)

GICV3_PARTS = DeviceParts(
    GICV3, 3, ("gicv3",),
    {"gicv4.1": "the oracle's QEMU offers no GICv4.1 host (its gic-version=4 is used as a GICv4.0: "
                "models/kernel/harness.py run_batch)",
     "gicv3-pri7": "QEMU's emulated GICv3 gives its vCPUs 5 virtual priority bits, not 7 (ICC_CTLR_EL1 "
                   "reads PRIbits 4 on every oracle kernel: proofs/conform.py V3_ICC_CTLR)",
     "": "the oracle's QEMU provides only a GICv3 host (gic-version=3) for a vgic-v3"},
    lambda release: OracleModelV3(release), v3_attr_op, build_ops_v3,
    lambda spec, state, m, cfg: reveal_ops_v3(spec, m, cfg),
    V3_REVEAL, " with every interrupt level-sensitive and ICC_CTLR_EL1.CBPR clear on both sides", True)

PARTS: dict[str, DeviceParts] = {p.spec.name: p for p in (GICV2_PARTS, GICV3_PARTS)}  # gicv3-its: at the end


def unsupported_hosts(parts: DeviceParts, hosts: Sequence[str]) -> str:
    """Why the oracle cannot run a file with these host kinds ('' if it can)."""
    bad = sorted({h for h in hosts if h} - set(parts.hosts))
    return "; ".join(f"a {h} host: {parts.why_no_host(h)}" for h in bad)


# ---------------------------------------------------------------------------------------
# Programs: the operations, what each one is, and the model's answer to each.


@dataclass
class Program:
    vcpus: int
    irqs: int
    ops: list[Op] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    expected: list[str] = field(default_factory=list)
    sections: dict[str, list[tuple[Access, int]]] = field(default_factory=dict)  # read-backs

    def add(self, model: Any, handle: Any, op: Op, note: str) -> str:
        self.ops.append(op)
        self.notes.append(note)
        got = model.step_on(handle, op)
        self.expected.append(got)
        return str(got)


def _start(parts: DeviceParts, model: Any, cfg: Config) -> tuple[Program, Any, Machine]:
    """A program after the setup prefix: (program, the model's handle, its machine)."""
    p = Program(cfg.cpus, cfg.irqs)
    handle, answers = model.begin(cfg)
    for op, got in zip(setup_prefix(cfg.cpus, cfg.irqs, parts.gic), answers, strict=True):
        p.ops.append(op)
        p.notes.append("setup (harness.gic_setup)")
        p.expected.append(got)
    return p, handle, model.machine_of(handle)


def _readback(parts: DeviceParts, model: Any, handle: Any, m: Machine, p: Program, name: str) -> None:
    spec = parts.spec
    reads = []
    for acc in expand(spec, ideal_save_steps(spec), m.config):
        assert acc.register is not None
        reads.append((acc, len(p.ops)))
        p.add(model, handle, parts.attr_op(acc.register, acc.word, acc.vcpu, None), f"{name}: {acc.label(spec)}")
    p.sections[name] = reads


def _word_of(reg: Register, value: Any) -> int:
    if reg.scope != "irq":
        return int(value)
    return sum(int(s) << reg.slice_shift(i) for i, s in value.items())


def _split(m: Machine, reg: Register, acc: Access, word: int) -> Any:
    """A word read from the kernel, as the sequence engine keeps it."""
    if reg.scope != "irq":
        return word
    return {i: (word >> reg.slice_shift(i)) & ((1 << reg.slice_bits) - 1)
            for _, i in m.word_keys(reg, acc.word, acc.vcpu)}


def _value(text: str) -> int | None:
    return int(text.split()[0], 16) if text.startswith("0x") else None


# ---------------------------------------------------------------------------------------
# One counterexample on the kernel.


@dataclass
class Difference:
    phase: str
    index: int  # 1-based, in the program
    note: str
    op: str
    model: str
    kernel: str

    def text(self) -> str:
        return (f"{self.phase}, operation {self.index} ({self.note}; {self.op}): "
                f"model {self.model}, kernel {self.kernel}")


@dataclass
class Outcome:
    """One counterexample on one kernel."""

    file: str
    label: str
    config: Config
    status: str = NOT_RUN
    detail: str = ""
    notes: list[str] = field(default_factory=list)  # e.g. fields built differently, harmlessly
    difference: Difference | None = None
    evidence: str = ""  # for a confirmation: the kernel reads that show it

    def json(self) -> dict[str, Any]:
        return {"file": self.file, "label": self.label, "cpus": self.config.cpus,
                "irqs": self.config.irqs, "status": self.status, "detail": self.detail,
                "notes": self.notes, "evidence": self.evidence,
                "difference": dataclasses.asdict(self.difference) if self.difference else None}


def compare_program(out: Outcome, phase: str, p: Program, kernel: list[str]) -> bool:
    """Whether the kernel's answers to program ``p`` differ from the model's anywhere; the
    first difference makes ``out`` a disagreement (every device's witness runs use it)."""
    for i, (op, exp, got) in enumerate(zip(p.ops, p.expected, kernel, strict=True)):
        if exp != got:
            out.status = DISAGREED
            out.difference = Difference(phase, i + 1, p.notes[i], op.line(), exp, got)
            out.detail = out.difference.text()
            return True
    return False


class WitnessRun:
    """Prepares, runs and judges one replayed counterexample."""

    def __init__(self, spec: DeviceSpec, seq: Any, rep: Replay, release: str,
                 model: Any, parts: DeviceParts | None = None):
        self.spec, self.seq, self.rep, self.release, self.model = spec, seq, rep, release, model
        self.parts = parts or PARTS[spec.name]
        self.sem = model.semantics
        self.cfg = Config(rep.config.cpus, rep.config.irqs)
        w = rep.witness
        self.out = Outcome(seq.path, w.label, self.cfg)
        self.save_steps = seq.save if seq.save is not None else ideal_save_steps(spec)
        self.phase1: Program | None = None
        self.phase2: Program | None = None
        self.saved_from: list[tuple[Access, int]] = []
        self.save_skipped: list[Access] = []  # conditional save reads whose condition did not hold
        self.save_stopped: Access | None = None
        self.restore_stopped: Access | None = None
        self.restore_ops: list[tuple[Access, int]] = []
        self.k1: list[str] = []  # the kernel's phase-1 lines

    def _build(self, state: DeviceState) -> list[tuple[Op, str]]:
        return self.parts.build(self.spec, self.sem, state, self.cfg)

    def _op(self, acc: Access, value: int | None) -> Op:
        assert acc.register is not None
        return self.parts.attr_op(acc.register, acc.word, acc.vcpu, value)

    def _decide(self, p: Program, handle: Any, m: Machine, acc: Access, saved: dict, note: str) -> bool:
        """Whether a step runs (``Step.when``). The runner cannot decide at run time, so
        the phase decides it here: a ``saved`` condition on the saved words (in phase 1
        the model's, each compared with the kernel's read before the phase is judged; in
        phase 2 the kernel's), a ``read`` condition on the model's answer to the read the
        VMM makes, which goes into the program (and is compared), ``exists`` on the
        model's answer too (the read-back reads every register, refused or not)."""
        cond = acc.step.when
        if cond is None or acc.action == "op":
            return True
        if cond.source == "read":
            reg = self.spec.register(cond.register)
            word = cond.lo // reg.width if reg.words > 1 else 0
            p.add(self.model, handle, self.parts.attr_op(reg, word, acc.vcpu, None), f"{note}: its condition's read")
        holds, _, _ = step_condition(m, acc, saved)
        return holds is None or bool(int(holds))

    # -- before any boot -----------------------------------------------------------------
    def prepare(self) -> bool:
        """Check the witness can be built and still shows its loss; make phase 1."""
        rep = self.rep
        if not rep.confirmed:
            self.out.status, self.out.detail = NOT_RUN, "the witness did not replay on the model (a tool bug)"
            return False
        spec, cfg = self.spec, self.cfg
        built: dict[str, DeviceState] = {}
        for side, st in (("source", rep.source), ("destination", rep.prior)):
            handle, _ = self.model.begin(cfg)
            for op, _ in self._build(st):
                self.model.step_on(handle, op)
            built[side] = self.model.machine_of(handle).state
        # does the loss still show from the states userspace could build?
        still, why = self._model_loss(built["source"], built["destination"])
        diffs = {side: state_differences(spec, st, built[side])
                 for side, st in (("source", rep.source), ("destination", rep.prior))}
        listed = _summarise(spec, diffs)
        if not still:
            reasons = []
            for name in dict.fromkeys(d[2] for ds in diffs.values() for d in ds):
                reasons.append(f"{name}: " + WHY_NOT_BUILDABLE.get(
                    name, "gicproof's userspace writes did not produce it (a gap in the builder, "
                    "not a proof that userspace cannot)"))
            self.out.status = NOT_BUILDABLE
            self.out.detail = ("; ".join(listed) or "(no field differs)") + ". " + ". ".join(reasons) + "." + \
                (f" From the states userspace can build the model shows no such loss ({why})." if why else "")
            if rep.witness.field and not self._revealing():
                self.out.detail += (f" Nor would the loss be observable: no userspace read shows "
                                    f"{rep.witness.field}.")
            return False
        if listed:
            self.out.notes.append("built with " + "; ".join(listed) + ": the model shows the same loss "
                                  "from the built states")
        # phase 1: the source and its save
        p, h, m = _start(self.parts, self.model, cfg)
        for op, note in self._build(rep.source):
            p.add(self.model, h, op, note)
        _readback(self.parts, self.model, h, m, p, "source read-back")
        saved: dict = {}
        for acc in expand(spec, self.save_steps, cfg):
            note = f"save line {acc.step.line}: {acc.label(spec)}"
            if acc.action == "op":
                p.add(self.model, h, Op.ctrl(0, _ctrl_attr(acc.step.target)), note)
                continue
            reg = acc.register
            assert reg is not None
            if not self._decide(p, h, m, acc, saved, note):
                # no access; the value saved before stays (0 if none: a VMM's state starts zeroed)
                saved.setdefault(saved_key(spec, reg, acc.word, acc.saved_cpu), _split(m, reg, acc, 0))
                self.save_skipped.append(acc)
                continue
            idx = len(p.ops)
            got = p.add(self.model, h, self._op(acc, None), note)
            self.saved_from.append((acc, idx))
            if got.startswith("E"):
                self.save_stopped = acc
                break
            v = _value(got)
            assert v is not None
            saved[saved_key(spec, reg, acc.word, acc.saved_cpu)] = _split(m, reg, acc, v)
            if acc.action == "check" and _word_of(reg, step_value(m, acc, saved)) != v:
                self.save_stopped = acc  # the VMM refuses to save
                break
        self._reveal_and_read(p, h, m, rep.source, "source")
        self.phase1 = p
        return True

    def _model_loss(self, src: DeviceState, prior: DeviceState) -> tuple[bool, str]:
        """Whether the proof's engine, run from these states, shows the witness's label."""
        return model_shows(self.spec, self.sem, self.cfg, self.rep.witness, self.save_steps, self.seq.restore,
                           src, prior)

    def _reveal_and_read(self, p: Program, h: Any, m: Machine, state: DeviceState, side: str) -> None:
        ops = self.parts.reveal(self.spec, state, m, self.cfg)
        if not ops and not self.parts.always_reveal:
            return
        for op, note in ops:
            p.add(self.model, h, op, f"{side}: {note}")
        _readback(self.parts, self.model, h, m, p, f"{side} {self.parts.revealed}")

    # -- after phase 1 ---------------------------------------------------------------------
    def after_phase1(self, kernel: list[str]) -> bool:
        """Compare phase 1; make phase 2 from the kernel's saved words. False: done."""
        assert self.phase1 is not None
        if self._compare("phase 1 (source)", self.phase1, kernel):
            return False
        self.k1 = kernel
        if self.save_stopped is not None:
            self._judge_refusal(self.save_stopped, kernel, self.phase1, save=True)
            return False
        spec, cfg = self.spec, self.cfg
        p, h, m = _start(self.parts, self.model, cfg)
        for op, note in self._build(self.rep.prior):
            p.add(self.model, h, op, note)
        _readback(self.parts, self.model, h, m, p, "destination read-back")
        saved: dict = {}
        for acc in self.save_skipped:
            assert acc.register is not None
            saved.setdefault(saved_key(spec, acc.register, acc.word, acc.saved_cpu), _split(m, acc.register, acc, 0))
        for acc, idx in self.saved_from:
            reg = acc.register
            assert reg is not None
            v = _value(kernel[idx])
            assert v is not None
            saved[saved_key(spec, reg, acc.word, acc.saved_cpu)] = _split(m, reg, acc, v)
        for acc in expand(spec, self.seq.restore, cfg):
            note = f"restore line {acc.step.line}: {acc.label(spec)}"
            if acc.action != "op" and not self._decide(p, h, m, acc, saved, note):
                step_value(m, acc, saved)  # a value the save lacks is an error all the same
                continue
            idx = len(p.ops)
            if acc.action == "op":
                got = p.add(self.model, h, Op.ctrl(0, _ctrl_attr(acc.step.target)), note)
            else:
                reg = acc.register
                assert reg is not None
                want = _word_of(reg, step_value(m, acc, saved))
                got = add_restore_access(p, self.model, h, self._op, acc, want, note)
            self.restore_ops.append((acc, idx))
            if got != "ok" and not got.startswith("0x"):
                self.restore_stopped = acc
                break
        _readback(self.parts, self.model, h, m, p, "final read-back")
        self._reveal_and_read(p, h, m, self.rep.prior, "destination")
        self.phase2 = p
        return True

    # -- after phase 2 ---------------------------------------------------------------------
    def after_phase2(self, kernel: list[str]) -> None:
        assert self.phase2 is not None
        phase2 = self.phase2
        if phase2_decided(self.out, phase2, kernel, self.rep.witness, self.restore_stopped,
                          lambda acc: self._judge_refusal(acc, kernel, phase2, save=False)):
            return
        w = self.rep.witness
        assert self.phase1 is not None
        pairs = [("source read-back", "final read-back", "")]
        src_rev, dst_rev = f"source {self.parts.revealed}", f"destination {self.parts.revealed}"
        if src_rev in self.phase1.sections and dst_rev in self.phase2.sections:
            pairs.append((src_rev, dst_rev, self.parts.revealed_when))
        regs = self._revealing()
        for src_name, dst_name, when in pairs:
            src_reads = self.phase1.sections[src_name]
            dst_reads = self.phase2.sections[dst_name]
            for (acc, i), (acc2, j) in zip(src_reads, dst_reads, strict=True):
                reg = acc.register
                assert reg is not None and acc2.register is reg
                if reg not in regs or not self._at_witness(acc):
                    continue
                a, b = _slice(reg, acc, w.where, _value(self.k1[i])), _slice(reg, acc, w.where, _value(kernel[j]))
                if a != b:
                    self.out.status = CONFIRMED
                    self.out.evidence = (f"{acc.label(self.spec)} at {place(self.spec, *w.where)}{when}: "
                                         f"the source read {a:#x}, the destination reads {b:#x} "
                                         f"(whole words {self.k1[i]} / {kernel[j]})")
                    return
        names = ", ".join(r.name for r in regs) or "none"
        self.out.status = NOT_OBSERVABLE
        self.out.detail = (f"{w.field} at {place(self.spec, *w.where)} is lost in the model's state, and "
                           f"every kernel read agrees with the model, but no userspace read shows it "
                           f"(registers whose read reveals {w.field} there: {names})")

    def _judge_refusal(self, acc: Access, kernel: list[str], p: Program, save: bool) -> None:
        idx = next(i for a, i in (self.saved_from if save else self.restore_ops) if a is acc)
        judge_refusal(self.out, self.rep.witness, acc, save, idx, kernel, p)

    def _compare(self, phase: str, p: Program, kernel: list[str]) -> bool:
        return compare_program(self.out, phase, p, kernel)

    def _revealing(self) -> list[Register]:
        """Registers whose userspace read shows the witness's field at its place (probed on
        the model: flipping the field changes the read, on a freshly initialised VM or on
        one after the device's reveal writes, as the programs read it back)."""
        w, spec, cfg = self.rep.witness, self.spec, self.cfg
        out = []
        for reg, reveal in ((r, rv) for r in spec.registers for rv in (False, True)):
            if w.field not in reg.views or reg in out:
                continue
            handle, _ = self.model.begin(cfg)
            m = self.model.machine_of(handle)
            if reveal:
                for op, _ in self.parts.reveal(spec, m.state, m, cfg):
                    self.model.step_on(handle, op)
            scope, key = w.where
            if scope == "irq":
                if reg.scope != "irq" or not reg.word_irqs(0).start <= key[1] < reg.word_irqs(reg.words - 1).stop:
                    continue
                vcpu, word = max(key[0], 0), reg.word_of(key[1])
                fields = m.state.irq[key]
            else:
                # a VM-wide field may be viewed through a per-CPU register (GICR_PROPBASER:
                # one propbaser per VM, every redistributor shows it); read vCPU 0's
                if reg.scope != scope and not (scope == "global" and reg.scope == "cpu"):
                    continue
                vcpu, word = (key if scope == "cpu" else 0), 0
                fields = m.state.cpu[key] if scope == "cpu" else m.state.glob
            if w.field not in fields:
                continue
            before = m.read_word(reg, word, vcpu)
            fields[w.field] ^= (1 << spec.field_spec(w.field).width) - 1
            if m.read_word(reg, word, vcpu) != before:
                out.append(reg)
        return out

    def _at_witness(self, acc: Access) -> bool:
        scope, key = self.rep.witness.where
        reg = acc.register
        assert reg is not None
        if scope == "irq":
            return reg.scope == "irq" and key[1] in reg.word_irqs(acc.word) and acc.vcpu == max(key[0], 0)
        if scope == "cpu":
            return reg.scope == "cpu" and acc.vcpu == key
        return reg.scope == "global" or (reg.scope == "cpu" and acc.vcpu == 0)


def _flat(steps: Sequence[Any]) -> list[Any]:
    out: list[Any] = []
    for s in steps:
        out.extend(s.steps if s.action == "each" else (s,))
    return out


def _slice(reg: Register, acc: Access, where: tuple[str, Any], word: int | None) -> int:
    if word is None:
        return -1
    if reg.scope != "irq":
        return word
    return (word >> reg.slice_shift(where[1][1])) & ((1 << reg.bits_per_irq) - 1)


def add_restore_access(p: Program, model: Any, h: Any, op_of: Callable[[Access, int | None], Any], acc: Access,
                       want: int, note: str) -> str:
    """One restore write, or a restore-side check (the VMM reads and compares: "check
    failed" when the kernel's word differs), added to a witness program."""
    if acc.action == "check":
        got = p.add(model, h, op_of(acc, None), note + f" (expects {want:#x})")
        return "check failed" if _value(got) is not None and _value(got) != want else got
    return p.add(model, h, op_of(acc, want), note + f" ({want:#x})")


def phase2_decided(out: Outcome, phase2: Program, kernel: list[str], w: Any, restore_stopped: Access | None,
                   judge_refusal: Callable[[Access], None]) -> bool:
    """The start of judging a witness's destination run, for every device: the kernel did
    not run the program as the model says (compare_program), or the witness is a refusal
    (``judge_refusal`` of the step where the model's restore stopped), or the model's
    restore stopped where the witness says it should not (a tool bug). True when that
    decides the outcome."""
    if compare_program(out, "phase 2 (destination)", phase2, kernel):
        return True
    if w.label.startswith("refused:"):
        if restore_stopped is None:
            out.status, out.detail = DISAGREED, "the model's restore did not stop (tool bug)"
        else:
            judge_refusal(restore_stopped)
        return True
    if restore_stopped is not None:
        out.status = DISAGREED
        out.detail = f"the model's restore stopped at {restore_stopped.name} (tool bug)"
        return True
    return False


def judge_refusal(out: Outcome, w: Any, acc: Access, save: bool, idx: int, kernel: list[str], p: Program) -> None:
    """A refusal witness against the kernel: the migration must stop at the witness's step
    (``acc``, the program's op ``idx``); CONFIRMED with the kernel's answer there."""
    label = f"refused:{'save:' if save else ''}{acc.name}"
    if w.label != label:
        out.status = DISAGREED
        out.detail = f"the migration stops at {label}, not at {w.label}"
        return
    out.status = CONFIRMED
    if acc.action == "check":
        what = "the save-side check fails" if save else "the restore's check fails"
    else:
        what = f"the step fails ({kernel[idx]})"
    out.evidence = f"{p.notes[idx]}: the kernel answered {kernel[idx]}, so {what} and the migration stops there"


def model_shows(spec: DeviceSpec, sem: Any, cfg: Config, w: Any, save_steps: Any, restore_steps: Any,
                src: DeviceState, prior: DeviceState) -> tuple[bool, str]:
    """Whether the proof's engine, saving ``src`` through ``save_steps`` and restoring into
    ``prior`` through ``restore_steps``, shows the witness ``w``'s label (and if not, why):
    the check that a program built for a real kernel still holds the loss it is to show."""
    m_src = Machine(spec, sem, cfg, CONCRETE, src.copy())
    save = run_save_checked(m_src, save_steps)
    if save.stopped_at is not None:
        hit = w.label == f"refused:save:{save.stopped_at.name}"
        return hit, "" if hit else f"the save stops at {save.stopped_at.name}"
    m_dst = Machine(spec, sem, cfg, CONCRETE, prior.copy())
    res = run_restore(m_dst, restore_steps, save.saved)
    if w.label.startswith("refused:"):
        hit = res.stopped_at is not None and w.label == f"refused:{res.stopped_at.name}"
        return hit, "" if hit else "the restore does not stop there"
    if res.stopped_at is not None:
        return False, f"the restore stops at {res.stopped_at.name}"
    a, b = _field(src, w.where, w.field), _field(m_dst.state, w.where, w.field)
    if a is None or b is None or a == b:
        return False, f"{w.field} comes back as {b:#x}" if b is not None else "no such field"
    if ":" in w.label and f"{a}->{b}" != w.label.split(":")[1].split("@")[0]:
        return False, f"{w.field} goes {a}->{b}, not {w.label}"
    return True, ""


def _field(state: DeviceState, where: tuple[str, Any], name: str) -> int | None:
    scope, key = where
    f = state.irq.get(key) if scope == "irq" else state.cpu[key] if scope == "cpu" else state.glob
    return None if f is None or name not in f else int(f[name])


def _ctrl_attr(op_name: str) -> str:
    if op_name != "KVM_DEV_ARM_VGIC_CTRL_INIT":
        raise OutOfScope(f"operation {op_name} has no runner form")
    return "INIT"


# ---------------------------------------------------------------------------------------
# Every counterexample of some reports, on one kernel, in two boots.


@dataclass
class OnKernelReport:
    kernel: KernelInfo
    release: str
    revision: str
    uname_r: str = ""
    outcomes: list[Outcome] = field(default_factory=list)
    boots: int = 0
    boot_seconds: float = 0.0
    seconds: float = 0.0
    ioctls: int = 0

    @property
    def where(self) -> str:
        return f"Linux {self.release} (Debian arm64, under QEMU TCG)"

    def counts(self) -> dict[str, int]:
        return {s: sum(o.status == s for o in self.outcomes) for s in STATUSES}

    @property
    def disagreed(self) -> bool:
        return any(o.status == DISAGREED for o in self.outcomes)

    def render(self, file: str | None = None) -> str:
        k = self.kernel
        outs = [o for o in self.outcomes if file is None or o.file == file]
        lines = [f"on the real kernel: {self.where}: Debian {k.package} {k.version}, uname -r "
                 f"{self.uname_r or k.uname_r}; model: semantics of {self.release} (revision {self.revision})",
                 f"  {self.boots} boot{'s' if self.boots != 1 else ''}, {self.seconds:.1f} s, "
                 f"{self.ioctls} ioctls"]
        total = len(outs)
        for n, o in enumerate(outs, 1):
            head = f"  counterexample {n} of {total}: {o.label} ({o.config.describe()}): "
            if o.status == CONFIRMED:
                lines.append(head + f"confirmed on {self.where}")
                lines.append(f"    the kernel's reads equal the model's at every step; {o.evidence}")
            else:
                lines.append(head + o.status)
                if o.detail:
                    lines.append(f"    {o.detail}")
            for note in o.notes:
                lines.append(f"    note: {note}")
        if not outs:
            lines.append("  no counterexample to confirm")
        return "\n".join(lines)

    def json(self, file: str | None = None) -> dict[str, Any]:
        k = self.kernel
        outs = [o for o in self.outcomes if file is None or o.file == file]
        return {"kernel": k.label, "release": self.release, "revision": self.revision,
                "debian_version": k.version, "uname_r": self.uname_r or k.uname_r,
                "boots": self.boots, "seconds": round(self.seconds, 2),
                "counts": {s: sum(o.status == s for o in outs) for s in STATUSES},
                "counterexamples": [o.json() for o in outs]}


Runner = Callable[[list[list[Op]]], BatchResult]


def confirm(reports: Sequence[SequenceReport], kernel: str | KernelInfo, run: Runner | None = None,
            model: Any = None,
            progress: Callable[[str], None] | None = None) -> OnKernelReport:
    """Run every counterexample of ``reports`` (GICv2 or GICv3, ``PARTS``) on ``kernel``:
    per QEMU host (gic-version), one boot for all the sources, one for all the
    destinations. ``run``/``model`` replace the boot and the model (tests; ``run`` takes
    the gic-version too when it accepts two arguments). Raises KernelOracleError when the
    kernel cannot be found or booted."""
    t0 = time.perf_counter()
    k = kernel if isinstance(kernel, KernelInfo) else _resolve(kernel)
    release = release_of(k)
    models: dict[str, Any] = {}

    def model_for(parts: DeviceParts) -> Any:
        if parts.spec.name not in models:
            models[parts.spec.name] = model if model is not None else parts.model(release)
        return models[parts.spec.name]

    def boot(gic: int, progs: list[list[Op]]) -> BatchResult:
        if run is None:
            return harness.run_batch(k.label, gic, progs)
        if len(inspect.signature(run).parameters) >= 2:
            return run(progs, gic)  # type: ignore[call-arg]
        return run(progs)
    first = PARTS.get(reports[0].spec.name) if reports else None
    out = OnKernelReport(k, release, model_for(first).semantics.revision if first else "")
    runs: list[Any] = []  # WitnessRun or the device's runner
    for r in reports:
        parts = PARTS.get(r.spec.name)
        for rep in r.replays:
            if parts is None:
                o = Outcome(r.seq.path, rep.witness.label, Config(rep.config.cpus, rep.config.irqs),
                            NOT_RUN, f"no model of the kernel runs {r.spec.name} witnesses yet")
                out.outcomes.append(o)
                continue
            wr = (parts.runner or WitnessRun)(r.spec, r.seq, rep, release, model_for(parts), parts)
            runs.append(wr)
            out.outcomes.append(wr.out)

    def runnable(wr: WitnessRun) -> bool:
        why = unsupported_hosts(wr.parts, (wr.seq.host, wr.seq.source_host))
        if why:
            wr.out.status = NOT_RUN
            wr.out.detail = f"the file needs {why}"
            return False
        return wr.prepare()

    ready = [wr for wr in runs if runnable(wr)]
    for gic in sorted({wr.parts.gic for wr in ready}):
        live = [wr for wr in ready if wr.parts.gic == gic]
        for phase in (1, 2):
            if not live:
                break
            progs = [(wr.phase1 if phase == 1 else wr.phase2) for wr in live]
            if progress:
                progress(f"booting {k.uname_r} (gic-version={gic}): phase {phase}, {len(progs)} programs")
            res = boot(gic, [p.ops for p in progs if p is not None])  # every live run has its program
            out.boots += 1
            out.boot_seconds += res.total_seconds
            out.ioctls += res.ioctls
            out.uname_r = res.uname_r or out.uname_r
            nxt = []
            for wr, got in zip(live, res.programs, strict=True):
                lines = [x.text for x in got]
                if phase == 1:
                    if wr.after_phase1(lines):
                        nxt.append(wr)
                else:
                    wr.after_phase2(lines)
            live = nxt
    out.seconds = time.perf_counter() - t0
    return out


def _resolve(name: str) -> KernelInfo:
    for k in harness.list_kernels():
        if release_of(k) == name:
            return k
    return harness.find_kernel(name)


# ---------------------------------------------------------------------------------------
# The command line's checks (``gicproof prove --on-kernel``), before any proof or boot.


@dataclass
class Oracle:
    kernel: KernelInfo
    release: str
    kernel_override: str | None  # what --kernel the proof then runs with (None: the file's)
    note: str


def resolve(spec: DeviceSpec, seq: Any, name: str, cli_kernel: str | None) -> Oracle:
    """The oracle kernel for ``--on-kernel NAME``, or ValueError with a message for the
    user. Rules (README "Confirming on a real kernel"): the proof must use the semantics of
    the oracle kernel's release, since that is what the kernel will be compared with; one
    booted kernel plays both the source and the destination. So: ``--kernel`` defaults to
    the oracle's release (the file's kernel is kept when it resolves to the same
    semantics, and the expectation is then still compared); a ``--kernel`` or a file
    ``source_kernel`` with other semantics is refused."""
    parts = PARTS.get(spec.name)
    if parts is None:
        raise ValueError(f"--on-kernel: only {' and '.join(PARTS)} witnesses run on a kernel yet (not {spec.name})")
    missing = harness.missing_host_tools()
    if missing:
        raise ValueError(f"--on-kernel needs the Debian packages {' '.join(missing)}: run "
                         "models/kernel/install-parts.sh (it installs them and caches the kernels)")
    try:
        k = _resolve(name)
    except KernelOracleError:
        cached = "; ".join(x.describe() for x in harness.list_kernels()) or "none"
        raise ValueError(f"--on-kernel {name}: not a cached kernel (cached: {cached}); install one "
                         f"with models/kernel/install-parts.sh or python -m models.kernel.harness "
                         f"--install --kernels LABEL") from None
    if not (harness.cache_dir() / "busybox" / "busybox").is_file():
        raise ValueError("busybox is not in the kernel cache: run models/kernel/install-parts.sh")
    release = release_of(k)
    if why := spec.kernel_error(release):
        raise ValueError(f"--on-kernel {name}: its release {release} is not modelled: {why}")
    oracle = spec.semantics(release)

    def same(kernel: str) -> bool:
        return bool(spec.semantics(kernel).flags() == oracle.flags())

    rev = f"{release}, revision {oracle.revision}"
    if cli_kernel is not None and not same(cli_kernel):
        raise ValueError(f"--kernel {cli_kernel} (revision {spec.semantics(cli_kernel).revision}) and "
                         f"--on-kernel {name} ({rev}) have different semantics: the kernel can confirm "
                         f"only its own; leave --kernel out (it then defaults to {release})")
    if seq.source_kernel and not same(seq.source_kernel):
        raise ValueError(f"{seq.path}: the file migrates from kernel {seq.source_kernel} (revision "
                         f"{spec.semantics(seq.source_kernel).revision}) to {seq.kernel}; the oracle boots "
                         f"one kernel, {rev}, for both sides, so it confirms only a migration between "
                         "kernels of its own semantics (bench/on_kernel.py runs the file's sequence "
                         "with both sides on the oracle's release)")
    if cli_kernel is not None:
        return Oracle(k, release, cli_kernel, "")
    if same(seq.kernel):
        return Oracle(k, release, None, "")
    return Oracle(k, release, release,
                  f"the proof uses {release}'s semantics (the oracle kernel's release; the file says "
                  f"{seq.kernel}, revision {spec.semantics(seq.kernel).revision})")


__all__ = ["CONFIRMED", "DISAGREED", "NOT_BUILDABLE", "NOT_OBSERVABLE", "NOT_RUN", "OnKernelReport",
           "Oracle", "OracleModel", "Outcome", "WitnessRun", "build_ops", "confirm", "resolve"]

# gicv3-its (a vgic-v3 and its ITS): its own witness runner, on this module's engine
from proofs.on_kernel_its import GICV3_ITS_PARTS  # noqa: E402

PARTS[GICV3_ITS_PARTS.spec.name] = GICV3_ITS_PARTS
