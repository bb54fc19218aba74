"""``gicproof prove FILE --on-kernel K``: each counterexample's witness, run on a real kernel.

The proof's counterexamples are already replayed on the concrete model
(``proofs.replay``): a source state, the destination's state before the restore (the
reset state plus the source's interrupt lines for a fresh destination), a configuration.
Here each one is turned into runner programs (``models/kernel/runner.c``) and run on a
real Debian kernel under QEMU (``models.kernel.harness``), beside the model of that
kernel's release (``models.kernel.model.KernelModel``, which speaks the runner's
language), line by line as ``gicproof conform`` compares them.

The runner cannot compute a value at run time, so a migration takes two boots (every
witness of every file for one kernel shares them):

* **phase 1** (the source): create the VM (vCPUs, vgic-v2, NR_IRQS, CTRL_INIT, as
  ``harness.gic_setup``), build the source state from reset through userspace writes
  (``build_ops``), read every register back, run the file's save steps (reads and
  save-side checks), and, when a line is held, lower every held line (KVM_IRQ_LINE 0) and
  read everything again (the only way a read tells a pending latch from a held level line:
  ``irq_is_pending`` ORs them);
* **phase 2** (the destination): a new VM, the destination's prior state built the same
  way, the file's restore steps with the values the *kernel* returned in phase 1 (each
  write's value computed by the sequence engine, ``models.machine.step_value``: ``saved``,
  ``ones``, masks and all), stopping after the first failing step as QEMU aborts, then
  everything read back (and again after lowering the held lines).

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
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from models import guest
from models.concrete import CONCRETE
from models.kernel import harness
from models.kernel.harness import BatchResult, KernelInfo, KernelOracleError, Op, v2_attr
from models.kernel.model import (
    _GROUP_OF,
    GROUP_NAMES,
    SPI_TYPES,
    KernelModel,
    OutOfScope,
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
    step_value,
)
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
    is not needed here: every witness program starts with ``harness.gic_setup``)."""

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
# Programs: the operations, what each one is, and the model's answer to each.


@dataclass
class Program:
    vcpus: int
    irqs: int
    ops: list[Op] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    expected: list[str] = field(default_factory=list)
    sections: dict[str, list[tuple[Access, int]]] = field(default_factory=dict)  # read-backs

    def add(self, model: OracleModel, m: Machine, op: Op, note: str) -> str:
        self.ops.append(op)
        self.notes.append(note)
        got = model.step_on(m, op)
        self.expected.append(got)
        return got


def _start(model: OracleModel, cfg: Config) -> tuple[Program, Machine]:
    p = Program(cfg.cpus, cfg.irqs)
    for op in setup_prefix(cfg.cpus, cfg.irqs):
        p.ops.append(op)
        p.notes.append("setup (harness.gic_setup)")
        p.expected.append("ok")
    return p, model.fresh(cfg.cpus, cfg.irqs)


def _readback(spec: DeviceSpec, model: OracleModel, m: Machine, p: Program, name: str) -> None:
    reads = []
    for acc in expand(spec, ideal_save_steps(spec), m.config):
        assert acc.register is not None
        reads.append((acc, len(p.ops)))
        p.add(model, m, _attr_op(acc.register, acc.word, acc.vcpu, None), f"{name}: {acc.label(spec)}")
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


class WitnessRun:
    """Prepares, runs and judges one replayed counterexample."""

    def __init__(self, spec: DeviceSpec, seq: Any, rep: Replay, release: str,
                 model: OracleModel):
        self.spec, self.seq, self.rep, self.release, self.model = spec, seq, rep, release, model
        self.sem = model.semantics
        self.cfg = Config(rep.config.cpus, rep.config.irqs)
        w = rep.witness
        self.out = Outcome(seq.path, w.label, self.cfg)
        self.save_steps = seq.save if seq.save is not None else ideal_save_steps(spec)
        self.phase1: Program | None = None
        self.phase2: Program | None = None
        self.saved_from: list[tuple[Access, int]] = []
        self.save_stopped: Access | None = None
        self.restore_stopped: Access | None = None
        self.restore_ops: list[tuple[Access, int]] = []
        self.k1: list[str] = []  # the kernel's phase-1 lines

    # -- before any boot -----------------------------------------------------------------
    def prepare(self) -> bool:
        """Check the witness can be built and still shows its loss; make phase 1."""
        rep = self.rep
        if not rep.confirmed:
            self.out.status, self.out.detail = NOT_RUN, "the witness did not replay on the model (a tool bug)"
            return False
        conditional = [s for s in _flat(tuple(self.save_steps) + tuple(self.seq.restore))
                       if s.when is not None and s.when.source != "exists"]
        if conditional:
            # the runner cannot decide a step at run time, and the phases replay the file's
            # steps one for one: a condition would have to be decided on the model's values
            self.out.status = NOT_RUN
            self.out.detail = (f"line {conditional[0].line} is a conditional step ({conditional[0].when.describe()}"
                               "): conditional steps are not run on a kernel yet")
            return False
        spec, sem, cfg = self.spec, self.sem, self.cfg
        built: dict[str, DeviceState] = {}
        for side, st in (("source", rep.source), ("destination", rep.prior)):
            m = self.model.fresh(cfg.cpus, cfg.irqs)
            for op, _ in build_ops(spec, sem, st, cfg):
                self.model.step_on(m, op)
            built[side] = m.state
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
        p, m = _start(self.model, cfg)
        for op, note in build_ops(spec, sem, rep.source, cfg):
            p.add(self.model, m, op, note)
        _readback(spec, self.model, m, p, "source read-back")
        saved: dict = {}
        for acc in expand(spec, self.save_steps, cfg):
            note = f"save line {acc.step.line}: {acc.label(spec)}"
            if acc.action == "op":
                p.add(self.model, m, Op.ctrl(0, _ctrl_attr(acc.step.target)), note)
                continue
            reg = acc.register
            assert reg is not None
            idx = len(p.ops)
            got = p.add(self.model, m, _attr_op(reg, acc.word, acc.vcpu, None), note)
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
        self._lower_and_read(p, m, rep.source, "source")
        self.phase1 = p
        return True

    def _model_loss(self, src: DeviceState, prior: DeviceState) -> tuple[bool, str]:
        """Whether the proof's engine, run from these states, shows the witness's label."""
        spec, cfg, w = self.spec, self.cfg, self.rep.witness
        m_src = Machine(spec, self.sem, cfg, CONCRETE, src.copy())
        save = run_save_checked(m_src, self.save_steps)
        if save.stopped_at is not None:
            hit = w.label == f"refused:save:{save.stopped_at.name}"
            return hit, "" if hit else f"the save stops at {save.stopped_at.name}"
        m_dst = Machine(spec, self.sem, cfg, CONCRETE, prior.copy())
        res = run_restore(m_dst, self.seq.restore, save.saved)
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

    def _lower_and_read(self, p: Program, m: Machine, state: DeviceState, side: str) -> None:
        lows = line_ops(state, self.cfg, 0)
        if not lows:
            return
        for op, note in lows:
            p.add(self.model, m, op, f"{side}: {note}")
        _readback(self.spec, self.model, m, p, f"{side} read-back after lowering the lines")

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
        p, m = _start(self.model, cfg)
        for op, note in build_ops(spec, self.sem, self.rep.prior, cfg):
            p.add(self.model, m, op, note)
        _readback(spec, self.model, m, p, "destination read-back")
        saved: dict = {}
        for acc, idx in self.saved_from:
            reg = acc.register
            assert reg is not None
            v = _value(kernel[idx])
            assert v is not None
            saved[saved_key(spec, reg, acc.word, acc.saved_cpu)] = _split(m, reg, acc, v)
        for acc in expand(spec, self.seq.restore, cfg):
            note = f"restore line {acc.step.line}: {acc.label(spec)}"
            idx = len(p.ops)
            if acc.action == "op":
                got = p.add(self.model, m, Op.ctrl(0, _ctrl_attr(acc.step.target)), note)
            else:
                reg = acc.register
                assert reg is not None
                want = _word_of(reg, step_value(m, acc, saved))
                if acc.action == "check":
                    got = p.add(self.model, m, _attr_op(reg, acc.word, acc.vcpu, None), note + f" (expects {want:#x})")
                    if _value(got) is not None and _value(got) != want:
                        got = "check failed"
                else:
                    got = p.add(self.model, m, _attr_op(reg, acc.word, acc.vcpu, want), note + f" ({want:#x})")
            self.restore_ops.append((acc, idx))
            if got != "ok" and not got.startswith("0x"):
                self.restore_stopped = acc
                break
        _readback(spec, self.model, m, p, "final read-back")
        self._lower_and_read(p, m, self.rep.prior, "destination")
        self.phase2 = p
        return True

    # -- after phase 2 ---------------------------------------------------------------------
    def after_phase2(self, kernel: list[str]) -> None:
        assert self.phase2 is not None
        if self._compare("phase 2 (destination)", self.phase2, kernel):
            return
        w = self.rep.witness
        if w.label.startswith("refused:"):
            if self.restore_stopped is None:
                self.out.status, self.out.detail = DISAGREED, "the model's restore did not stop (tool bug)"
                return
            self._judge_refusal(self.restore_stopped, kernel, self.phase2, save=False)
            return
        if self.restore_stopped is not None:
            self.out.status = DISAGREED
            self.out.detail = f"the model's restore stopped at {self.restore_stopped.name} (tool bug)"
            return
        assert self.phase1 is not None
        pairs = [("source read-back", "final read-back", self.k1, kernel)]
        lowered = "source read-back after lowering the lines"
        if lowered in self.phase1.sections:
            pairs.append((lowered, "destination read-back after lowering the lines", self.k1, kernel))
        regs = self._revealing()
        for src_name, dst_name, k_src, k_dst in pairs:
            src_reads = self.phase1.sections[src_name]
            dst_reads = self.phase2.sections[dst_name]
            for (acc, i), (acc2, j) in zip(src_reads, dst_reads, strict=True):
                reg = acc.register
                assert reg is not None and acc2.register is reg
                if reg not in regs or not self._at_witness(acc):
                    continue
                a, b = _slice(reg, acc, w.where, _value(k_src[i])), _slice(reg, acc, w.where, _value(k_dst[j]))
                if a != b:
                    when = " after lowering the held lines on both sides" if "lowering" in src_name else ""
                    self.out.status = CONFIRMED
                    self.out.evidence = (f"{acc.label(self.spec)} at {place(self.spec, *w.where)}{when}: "
                                         f"the source read {a:#x}, the destination reads {b:#x} "
                                         f"(whole words {k_src[i]} / {k_dst[j]})")
                    return
        names = ", ".join(r.name for r in regs) or "none"
        self.out.status = NOT_OBSERVABLE
        self.out.detail = (f"{w.field} at {place(self.spec, *w.where)} is lost in the model's state, and "
                           f"every kernel read agrees with the model, but no userspace read shows it "
                           f"(registers whose read reveals {w.field} there: {names})")

    def _judge_refusal(self, acc: Access, kernel: list[str], p: Program, save: bool) -> None:
        idx = next(i for a, i in (self.saved_from if save else self.restore_ops) if a is acc)
        label = f"refused:{'save:' if save else ''}{acc.name}"
        if self.rep.witness.label != label:
            self.out.status = DISAGREED
            self.out.detail = f"the migration stops at {label}, not at {self.rep.witness.label}"
            return
        self.out.status = CONFIRMED
        if acc.action == "check":
            what = "the save-side check fails" if save else "the restore's check fails"
        else:
            what = f"the step fails ({kernel[idx]})"
        self.out.evidence = (f"{p.notes[idx]}: the kernel answered {kernel[idx]}, so {what} "
                             f"and the migration stops there")

    def _compare(self, phase: str, p: Program, kernel: list[str]) -> bool:
        for i, (op, exp, got) in enumerate(zip(p.ops, p.expected, kernel, strict=True)):
            if exp != got:
                self.out.status = DISAGREED
                self.out.difference = Difference(phase, i + 1, p.notes[i], op.line(), exp, got)
                self.out.detail = self.out.difference.text()
                return True
        return False

    def _revealing(self) -> list[Register]:
        """Registers whose userspace read shows the witness's field at its place (probed on
        the model: flipping the field changes the read)."""
        w, spec, cfg = self.rep.witness, self.spec, self.cfg
        out = []
        for reg in spec.registers:
            if w.field not in reg.views:
                continue
            m = self.model.fresh(cfg.cpus, cfg.irqs)
            scope, key = w.where
            if scope == "irq":
                if reg.scope != "irq" or not reg.word_irqs(0).start <= key[1] < reg.word_irqs(reg.words - 1).stop:
                    continue
                vcpu, word = max(key[0], 0), reg.word_of(key[1])
                fields = m.state.irq[key]
            else:
                if reg.scope != scope:
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
        return reg.scope == "global"


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
            model: OracleModel | None = None,
            progress: Callable[[str], None] | None = None) -> OnKernelReport:
    """Run every counterexample of ``reports`` (GICv2) on ``kernel``: one boot for all the
    sources, one for all the destinations. ``run``/``model`` replace the boot and the
    model (tests). Raises KernelOracleError when the kernel cannot be found or booted."""
    t0 = time.perf_counter()
    k = kernel if isinstance(kernel, KernelInfo) else _resolve(kernel)
    release = release_of(k)
    model = model or OracleModel(release)
    if run is None:
        def run(progs: list[list[Op]]) -> BatchResult:
            return harness.run_batch(k.label, 2, progs)
    out = OnKernelReport(k, release, model.semantics.revision)
    runs: list[WitnessRun] = []
    for r in reports:
        for rep in r.replays:
            wr = WitnessRun(r.spec, r.seq, rep, release, model)
            runs.append(wr)
            out.outcomes.append(wr.out)
    def runnable(wr: WitnessRun) -> bool:
        hosts = {h for h in (wr.seq.host, wr.seq.source_host) if h} - {"gicv2"}
        if hosts:
            # QEMU gives the guest kernel a GICv2 host for a vgic-v2 (gic-version=2); its
            # emulated GICv3 has no GICv2 compatibility, so no other host kind can be booted
            wr.out.status = NOT_RUN
            wr.out.detail = (f"the file's {', '.join(sorted(hosts))} host cannot be provided by the "
                             "oracle (QEMU's emulated GICv3 offers no GICv2 compatibility)")
            return False
        return wr.prepare()

    live = [wr for wr in runs if runnable(wr)]
    for phase in (1, 2):
        if not live:
            break
        progs = [(wr.phase1 if phase == 1 else wr.phase2) for wr in live]
        if progress:
            progress(f"booting {k.uname_r}: phase {phase}, {len(progs)} programs")
        res = run([p.ops for p in progs if p is not None])  # every live run has its program
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
    if spec is not GICV2:
        raise ValueError(f"--on-kernel: only gicv2 has a model of the kernel (not {spec.name})")
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
