"""``gicproof prove --on-kernel`` for gicv3-its files: a vgic-v3 and its ITS on QEMU's GICv3.

The model of the kernel is ``models.kernel.its_model.KernelModelIts`` (``gicproof conform
gicv3-its``), which runs the ITS's registers (KVM_DEV_ARM_VGIC_GRP_ITS_REGS), its tables in
guest memory (concrete, entry by entry, as vgic-its.c walks them), KVM_DEV_ARM_ITS_SAVE_TABLES /
RESTORE_TABLES, KVM_DEV_ARM_VGIC_SAVE_PENDING_TABLES and, of the vgic-v3's registers,
GICR_CTLR (EnableLPIs), GICR_PROPBASER and GICR_PENDBASER only: the others are not modelled
with an ITS (GICD_TYPER and GICR_TYPER change once one exists). So a witness runs here with
the file's ITS steps, its memory steps and its GICR_CTLR/PROPBASER/PENDBASER steps; its other
vgic-v3 steps are left out, and a witness runs only when the proof's engine, run with the
same steps left out from the states userspace builds, still shows its loss. A loss of the
GICv3 part (bpr1, line_level, mpidr: none depends on an ITS) runs as a gicv3 witness on a
vgic-v3 without an ITS (``v3_run``: GICV3_PARTS, the file's vgic-v3 steps, the state's
GICV3 fields), when the proof's engine shows it there too.

The abstract witness (one representative device, event, collection and LPI; the tables'
addresses symbolic) is made concrete with one layout (``Layout``): a zeroed 64K slot at
guest address 0 (QEMU virt's flash: the model reads an LPI table at address 0 as zeros),
RAM at 0x40000000 holding the LPI configuration table, one pending table per vCPU, the
device and collection tables, the ITT and the command queue. A Valid GITS_BASER<n> or
GITS_CBASER, and a GICR_PROPBASER/PENDBASER with a non-zero address, is relocated there
(its other bits kept): DeviceID 0, EventID 0, ICID 0, LPI 8192.

Building a side (source or destination prior) through userspace: GICR_PROPBASER/PENDBASER,
GICR_CTLR.EnableLPIs (before any LPI exists, so nothing is synced), GITS_CBASER/CREADR/CWRITER, GITS_BASER0/1, then the entries the kernel is to hold written
into guest memory (a CTE, a DTE, an ITE, the LPI's pending bit in its target's pending
table) and KVM_DEV_ARM_ITS_RESTORE_TABLES (which creates them: vgic_its_restore_tables_v0;
the pending bit is consumed, vgic_v3_lpi_sync_pending_status), then the memory rewritten to
the witness's memory fields (mem_cte, mem_dte, mem_ite, mem_pending), then GITS_CTLR. The
memory steps: ``save_memory`` peeks every word of the layout, ``restore_memory`` pokes the
kernel's phase-1 words back. What the kernel holds is shown by a reveal on both sides: the
entries zeroed in memory, KVM_DEV_ARM_ITS_SAVE_TABLES and SAVE_PENDING_TABLES, the words
peeked (the approach of tests/test_kernel_oracle.py's hand-written ITS confirmation).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Any

from models.concrete import CONCRETE
from models.kernel import harness
from models.kernel.harness import Op, v3_mpidr_attr
from models.kernel.its_model import (
    COLLECTION_NOT_MAPPED,
    VALID,
    Hazard,
    ItsRun,
    KernelModelIts,
)
from models.kernel.model import OutOfScope
from models.machine import (
    Access,
    Config,
    DeviceState,
    Machine,
    expand,
    ideal_save_steps,
    make_state,
    saved_key,
    step_value,
)
from proofs.on_kernel import (
    CONFIRMED,
    GICV3_PARTS,
    NOT_BUILDABLE,
    NOT_OBSERVABLE,
    NOT_RUN,
    DeviceParts,
    Outcome,
    Program,
    WitnessRun,
    _value,
    add_restore_access,
    compare_program,
    judge_refusal,
    model_shows,
    phase2_decided,
    state_differences,
)
from spec.device import DeviceSpec, Register
from spec.gicv3 import GICV3
from spec.gicv3_its import GICV3_ITS, ITS_REGS
from spec.sequence import Step

ITS_DEV = 1  # harness.v3_setup(its=True): the vgic-v3 is device 0, the ITS device 1
FLASH, FLASH_SIZE = 0x0, 0x10000
RAM, RAM_SIZE = 0x40000000, 0x100000
LPI = 8192
ICID = 0
MODEL = "models/kernel/its_model.py (KernelModelIts)"

# What the layout makes of the abstract witness, and what the kernel model shows.
ITS_FIELDS = ("its_enabled", "its_cbaser", "its_creadr", "its_cwriter", "its_baser_device", "its_baser_coll",
              "dte_valid", "ite_valid", "cte_valid", "cte_target", "lpi_pending", "mem_pending", "mem_dte",
              "mem_ite", "mem_cte", "mem_cte_target", "propbaser")
CPU_FIELDS = ("pendbaser", "enable_lpis")
# the witnesses this part can show (through the reveal or a register read)
SHOWN = {"its_enabled": "GITS_CTLR", "its_cbaser": "GITS_CBASER", "its_creadr": "GITS_CREADR",
         "its_cwriter": "GITS_CWRITER", "its_baser_device": "GITS_BASER0", "its_baser_coll": "GITS_BASER1",
         "cte_valid": "CTE", "cte_target": "CTE", "dte_valid": "DTE", "ite_valid": "ITE", "lpi_pending": "pending",
         "propbaser": "GICR_PROPBASER", "pendbaser": "GICR_PENDBASER"}
LPI_REGS = ("GICR_CTLR", "GICR_PROPBASER", "GICR_PENDBASER")


@dataclass(frozen=True)
class Layout:
    """Where the concrete witness lives in guest memory."""

    cpus: int
    prop: int = RAM + 0x10000
    pend0: int = RAM + 0x20000  # vCPU c's pending table at pend0 + c * 0x4000 (8K: 16 ID bits)
    dt: int = RAM + 0x40000
    ct: int = RAM + 0x50000
    cq: int = RAM + 0x60000
    itt: int = RAM + 0x70000

    def pend(self, c: int) -> int:
        return self.pend0 + c * 0x4000

    def words(self) -> list[tuple[str, int]]:
        """Every memory word the witness uses: (name, guest address)."""
        out = [("CTE", self.ct), ("DTE", self.dt), ("ITE", self.itt), ("LPI config", self.prop)]
        out += [(f"pending cpu{c}", self.pend(c) + LPI // 8) for c in range(self.cpus)]
        return out + [("flash LPI config", FLASH), ("flash pending", FLASH + LPI // 8)]

    def pending_words(self) -> list[tuple[str, int]]:
        return [(n, a) for n, a in self.words() if "pending" in n]

    def dte(self) -> int:
        """Valid, ITT address, one EventID bit (vgic_its_save_dte's layout)."""
        return VALID | (self.itt >> 8) << 5

    @staticmethod
    def ite() -> int:
        return LPI << 16 | ICID

    @staticmethod
    def cte(target: int) -> int:
        return VALID | (target & 0xFFFFFFFF) << 16 | ICID


def _with_address(value: int, lo: int, hi: int, addr: int) -> int:
    mask = (1 << (hi + 1)) - (1 << lo)
    return (value & ~mask) | (addr & mask)


def relocate(lay: Layout, state: DeviceState) -> DeviceState:
    """The witness with its tables at the layout's addresses: a Valid GITS_BASER0/1 or
    GITS_CBASER, a GICR_PROPBASER/PENDBASER with a non-zero address (bits 51:12 / 51:16;
    address 0 stays: the model's flash)."""
    st = state.copy()
    g = st.glob

    def put(f: dict, name: str, v: int) -> None:
        f[name] = CONCRETE.const(v, 64)

    if int(g["its_baser_device"]) & VALID:
        put(g, "its_baser_device", _with_address(int(g["its_baser_device"]), 12, 47, lay.dt))
    if int(g["its_baser_coll"]) & VALID:
        put(g, "its_baser_coll", _with_address(int(g["its_baser_coll"]), 12, 47, lay.ct))
    if int(g["its_cbaser"]) & VALID:
        put(g, "its_cbaser", _with_address(int(g["its_cbaser"]), 12, 51, lay.cq))
    if int(g["propbaser"]) & ((1 << 52) - (1 << 12)):
        put(g, "propbaser", _with_address(int(g["propbaser"]), 12, 51, lay.prop))
    for c, f in enumerate(st.cpu):
        if int(f["pendbaser"]) & ((1 << 52) - (1 << 16)):
            put(f, "pendbaser", _with_address(int(f["pendbaser"]), 16, 51, lay.pend(c)))
    return st


def _redist(vcpu: int, offset: int, value: int | None) -> Op:
    attr = v3_mpidr_attr(vcpu, offset)
    return Op.get(0, "REDIST_REGS", attr) if value is None else Op.set(0, "REDIST_REGS", attr, value & 0xFFFFFFFF)


def _its(offset: int, value: int | None) -> Op:
    return Op.get(ITS_DEV, "ITS_REGS", offset, 64) if value is None else Op.set(ITS_DEV, "ITS_REGS", offset, value, 64)


def build_ops_its(spec: DeviceSpec, state: DeviceState, cfg: Config) -> list[tuple[Op, str]]:
    """Userspace operations that take a fresh VM (``setup``) to ``state`` (relocated), as far
    as userspace can: ``ItsWitnessRun.prepare`` checks the result on the model."""
    lay = Layout(cfg.cpus)
    st = relocate(lay, state)
    g = st.glob
    out: list[tuple[Op, str]] = []
    prop = int(g["propbaser"])
    out += [(_redist(0, 0x70, prop), "build: GICR_PROPBASER[0]"), (_redist(0, 0x74, prop >> 32), "build: GICR_PROPBASER[1]")]
    for c in range(cfg.cpus):
        pend = int(st.cpu[c]["pendbaser"])
        out += [(_redist(c, 0x78, pend), f"build: GICR_PENDBASER[0] cpu{c}"),
                (_redist(c, 0x7C, pend >> 32), f"build: GICR_PENDBASER[1] cpu{c}")]
    for c in range(cfg.cpus):  # before the tables: no LPI yet for vgic_enable_lpis to sync
        if int(st.cpu[c]["enable_lpis"]):
            out.append((_redist(c, 0x0, 1), f"build: GICR_CTLR.EnableLPIs cpu{c}"))
    if int(g["its_cbaser"]):
        out.append((_its(0x80, int(g["its_cbaser"])), "build: GITS_CBASER"))
    if int(g["its_creadr"]):
        out.append((_its(0x90, int(g["its_creadr"])), "build: GITS_CREADR"))
    if int(g["its_cwriter"]):
        out.append((_its(0x88, int(g["its_cwriter"])), "build: GITS_CWRITER"))
    for off, name in ((0x100, "its_baser_device"), (0x108, "its_baser_coll")):
        out.append((_its(off, int(g[name])), f"build: GITS_BASER{(off - 0x100) // 8}"))
    # the entries the kernel is to hold, through KVM_DEV_ARM_ITS_RESTORE_TABLES
    target = int(g["cte_target"])
    pre: list[tuple[Op, str]] = []
    if int(g["cte_valid"]):
        pre.append((Op.poke(lay.ct, lay.cte(target)), "build: a CTE for RESTORE_TABLES"))
    if int(g["dte_valid"]):
        pre.append((Op.poke(lay.dt, lay.dte()), "build: a DTE for RESTORE_TABLES"))
    if int(g["ite_valid"]):
        pre.append((Op.poke(lay.itt, lay.ite()), "build: an ITE for RESTORE_TABLES"))
    if int(g["lpi_pending"]) and target < cfg.cpus:
        at = (int(st.cpu[target]["pendbaser"]) & ((1 << 52) - (1 << 16))) + LPI // 8
        pre.append((Op.poke(at, 1), f"build: LPI {LPI} pending in cpu{target}'s pending table"))
    if pre:
        out += pre
        out.append((Op.ctrl(ITS_DEV, "ITS_RESTORE_TABLES"), "build: KVM_DEV_ARM_ITS_RESTORE_TABLES"))
    # guest memory as the witness has it
    mem = {lay.ct: lay.cte(int(g["mem_cte_target"])) if int(g["mem_cte"]) else 0,
           lay.dt: lay.dte() if int(g["mem_dte"]) else 0,
           lay.itt: lay.ite() if int(g["mem_ite"]) else 0,
           lay.prop: int(g["lpi_prop"]) if prop & ((1 << 52) - (1 << 12)) else 0,
           FLASH: 0, FLASH + LPI // 8: 0}
    for c in range(cfg.cpus):
        if int(st.cpu[c]["pendbaser"]) & ((1 << 52) - (1 << 16)):
            mem[lay.pend(c) + LPI // 8] = int(g["mem_pending"])
        else:
            mem[lay.pend(c) + LPI // 8] = 0
    names = dict((a, n) for n, a in lay.words())
    for a, v in mem.items():
        out.append((Op.poke(a, v), f"build: memory {names[a]}"))
    if int(g["its_enabled"]):
        out.append((_its(0x0, 1), "build: GITS_CTLR"))
    return out


def setup_its(cfg: Config) -> list[Op]:
    """The VM: harness.v3_setup with an ITS (device 1), then the flash and RAM slots."""
    return harness.v3_setup(cfg.cpus, cfg.irqs, its=True) + [Op.mem(FLASH, FLASH_SIZE), Op.mem(RAM, RAM_SIZE)]


@dataclass
class OracleModelIts(KernelModelIts):
    """``KernelModelIts`` for a migration's phases: the handle is its ``ItsRun``."""

    def begin(self, cfg: Config) -> tuple[Any, list[str]]:
        r = ItsRun(self.lifecycle.fresh())
        return r, [self.step(r, op) for op in setup_its(cfg)]

    def machine_of(self, handle: Any) -> Any:
        return handle

    def step_on(self, handle: Any, op: Op) -> str:
        return self.step(handle, op)


def abstract(run: ItsRun, cfg: Config) -> dict[str, int]:
    """The model's concrete ITS, as the spec's fields (the layout's entries)."""
    lay = Layout(cfg.cpus)
    its = run.its[0]
    out = {k: its.reg(k) for k in ("its_enabled", "its_cbaser", "its_creadr", "its_cwriter",
                                   "its_baser_device", "its_baser_coll")}
    colls = [c for c in its.collections if c.icid == ICID]
    out["cte_valid"] = int(bool(colls))
    out["cte_target"] = colls[0].target if colls and colls[0].target != COLLECTION_NOT_MAPPED else 0
    devs = [d for d in its.devices if d.device_id == 0]
    out["dte_valid"] = int(bool(devs))
    out["ite_valid"] = int(any(t.event == 0 for d in devs for t in d.ites))
    lpi = run.lpis.get(LPI)
    out["lpi_pending"] = int(bool(lpi and lpi.pending))

    def word(a: int) -> int:
        v = run.mem.read64(a)
        return 0 if v is None else v

    cte = word(lay.ct)
    out["mem_cte"] = int(bool(cte & VALID))
    out["mem_cte_target"] = (cte >> 16) & 0xFFFFFFFF if cte & VALID else 0
    out["mem_dte"] = int(bool(word(lay.dt) & VALID))
    out["mem_ite"] = int(bool((word(lay.itt) >> 16) & 0xFFFFFFFF))
    pend = [word(a) & 1 for c in range(cfg.cpus) for a in (lay.pend(c) + LPI // 8,) if run.pendbase(c)]
    out["mem_pending"] = int(any(pend))
    assert run.machine is not None
    out["propbaser"] = int(run.machine.state.glob["propbaser"])
    for c in range(cfg.cpus):
        out[f"pendbaser@{c}"] = int(run.machine.state.cpu[c]["pendbaser"])
        out[f"enable_lpis@{c}"] = int(c in run.lpis_enabled)
    return out


def _with_built(state: DeviceState, built: dict[str, int]) -> DeviceState:
    st = state.copy()
    for k, v in built.items():
        if "@" in k:
            name, c = k.split("@")
            st.cpu[int(c)][name] = CONCRETE.const(v, GICV3_ITS.field_spec(name).width)
        elif k in st.glob:
            st.glob[k] = CONCRETE.const(v, GICV3_ITS.field_spec(k).width)
    return st


# ---------------------------------------------------------------------------------------
# Which of the file's steps run here.


def _runs_here(spec: DeviceSpec, s: Step) -> bool:
    if s.action == "op":
        return s.target not in ("KVM_DEV_ARM_VGIC_CTRL_INIT",)
    if s.action == "each":
        return True
    reg = spec.register(s.target) if s.target else None
    return reg is not None and (reg.group == ITS_REGS or reg.name in LPI_REGS)


def its_steps(spec: DeviceSpec, steps: Sequence[Step]) -> tuple[tuple[Step, ...], list[str]]:
    """The steps that run here, and the names of those left out (the vgic-v3's registers)."""
    kept: list[Step] = []
    left: list[str] = []
    for s in steps:
        if s.action == "each":
            inner, more = its_steps(spec, s.steps)
            left += more
            if inner:
                kept.append(replace(s, steps=inner))
        elif _runs_here(spec, s) and s.when is None:
            kept.append(s)
        else:
            left.append(s.target)
    return tuple(kept), list(dict.fromkeys(left))


# ---------------------------------------------------------------------------------------
# The GICv3 part's losses: on a vgic-v3 without an ITS, with the file's vgic-v3 steps.


def v3_steps(steps: Sequence[Step]) -> tuple[Step, ...]:
    """The steps of a gicv3-its file that are the vgic-v3's (GICV3 has the register or the
    operation): the ITS's registers and operations and the memory steps left out."""
    ops = {o.name for o in GICV3.operations}
    kept: list[Step] = []
    for s in steps:
        if s.action == "each":
            inner = v3_steps(s.steps)
            if inner:
                kept.append(replace(s, steps=inner))
        elif (s.target in ops) if s.action == "op" else any(r.name == s.target for r in GICV3.registers):
            kept.append(s)
    return tuple(kept)


def _project(state: DeviceState, cfg: Any, sem: Any) -> DeviceState:
    """A gicv3-its state as GICV3's: every field GICV3 has, the ITS's and the LPIs' dropped."""
    out = make_state(GICV3, sem, cfg, CONCRETE)
    for k in out.glob:
        if k in state.glob:
            out.glob[k] = state.glob[k]
    for c, f in enumerate(out.cpu):
        for k in f:
            if k in state.cpu[c]:
                f[k] = state.cpu[c][k]
    for key, f in out.irq.items():
        for k in f:
            if key in state.irq and k in state.irq[key]:
                f[k] = state.irq[key][k]
    return out


def v3_run(spec: DeviceSpec, seq: Any, rep: Any, release: str) -> WitnessRun:
    """The GICv3 part's witness as a gicv3 witness (GICV3_PARTS: a vgic-v3 without an ITS on
    QEMU's GICv3), with the file's vgic-v3 steps; ``prepare`` checks that the proof's engine
    shows the loss there too (none of bpr1, line_level, mpidr depends on an ITS: only
    GICD_TYPER, GICR_TYPER and GICR_CTLR do)."""
    model = GICV3_PARTS.model(release)
    sem = model.semantics
    save = seq.save if seq.save is not None else ideal_save_steps(spec)
    seq3 = replace(seq, device=GICV3.name, save=v3_steps(save), restore=v3_steps(seq.restore))
    rep3 = replace(rep, source=_project(rep.source, rep.config, sem), prior=_project(rep.prior, rep.config, sem))
    return WitnessRun(GICV3, seq3, rep3, release, model, GICV3_PARTS)


# ---------------------------------------------------------------------------------------
# One counterexample.


class ItsWitnessRun:
    """Prepares, runs and judges one gicv3-its counterexample (the interface of
    ``on_kernel.WitnessRun`` that ``on_kernel.confirm`` uses)."""

    def __init__(self, spec: DeviceSpec, seq: Any, rep: Any, release: str, model: Any, parts: DeviceParts):
        self.spec, self.seq, self.rep, self.release, self.model, self.parts = spec, seq, rep, release, model, parts
        self.sem = spec.semantics(release)
        self.cfg = Config(rep.config.cpus, rep.config.irqs)
        self.lay = Layout(self.cfg.cpus)
        self.out = Outcome(seq.path, rep.witness.label, self.cfg)
        full_save = seq.save if seq.save is not None else ideal_save_steps(spec)
        self.save_steps, left_save = its_steps(spec, full_save)
        self.restore_steps, left_restore = its_steps(spec, seq.restore)
        self.left_out = list(dict.fromkeys(left_save + left_restore))
        self.phase1: Program | None = None
        self.phase2: Program | None = None
        self.k1: list[str] = []
        self.saved_regs: list[tuple[Access, int]] = []
        self.saved_mem: list[tuple[int, int]] = []  # (address, index of its peek)
        self.restore_ops: list[tuple[Access, int]] = []
        self.save_stopped: Access | None = None
        self.restore_stopped: Access | None = None
        self.sections: dict[str, dict[str, int]] = {}  # read-back name -> (what it read -> index in its program)
        self.delegate: WitnessRun | None = None  # the GICv3 part's losses: a gicv3 run (v3_run)

    # -- before any boot ---------------------------------------------------------------
    def prepare(self) -> bool:
        rep, w = self.rep, self.rep.witness
        if not rep.confirmed:
            self.out.status, self.out.detail = NOT_RUN, "the witness did not replay on the model (a tool bug)"
            return False
        refused = w.label.startswith("refused:")
        if not refused and w.field not in SHOWN:
            # the GICv3 part's: the kernel model with an ITS runs of the vgic-v3's registers
            # GICR_CTLR and GICR_PROPBASER/PENDBASER only, so on a vgic-v3 without an ITS
            self.delegate = v3_run(self.spec, self.seq, rep, self.release)
            self.delegate.out = self.out  # the outcome confirm() reports
            ok = self.delegate.prepare()
            self.out.notes.append(
                f"{w.field} is the GICv3 part's: run on a vgic-v3 without an ITS (GICV3_PARTS), with the file's "
                "vgic-v3 steps (the ITS's and the memory steps left out); the proof's engine shows the loss there "
                f"too, and the kernel model of a vgic-v3 with an ITS ({MODEL}) runs no vgic-v3 register but "
                "GICR_CTLR and GICR_PROPBASER/PENDBASER (GICD_TYPER and GICR_TYPER change once an ITS exists)")
            self.phase1 = self.delegate.phase1
            return ok
        built: dict[str, dict[str, int]] = {}
        try:
            for side, st in (("source", rep.source), ("destination", rep.prior)):
                h, answers = self.model.begin(self.cfg)
                if any(a != "ok" for a in answers):
                    raise OutOfScope(f"the setup fails on the model: {answers}")
                for op, note in build_ops_its(self.spec, st, self.cfg):
                    got = self.model.step_on(h, op)
                    if got != "ok":
                        raise OutOfScope(f"{note} ({op.line()}): the model answers {got}")
                built[side] = abstract(h, self.cfg)
        except (OutOfScope, Hazard) as e:
            self.out.status = NOT_BUILDABLE
            self.out.detail = f"building the witness through userspace on the model: {e}"
            return False
        src = _with_built(rep.source, built["source"])
        dst = _with_built(rep.prior, built["destination"])
        diffs = {side: [d for d in state_differences(self.spec, relocate(self.lay, st), b_st)
                        if d[2] in ITS_FIELDS or d[2] in CPU_FIELDS]
                 for side, st, b_st in (("source", rep.source, src), ("destination", rep.prior, dst))}
        listed = [f"{side} {name}={want:#x} (built {got:#x})" for side, ds in diffs.items()
                  for _, _, name, want, got in ds]
        still, why = self._model_loss(src, dst)
        if not still:
            if listed:
                self.out.status = NOT_BUILDABLE
                self.out.detail = ("; ".join(listed) + ": gicproof's userspace writes (table images and "
                                   "RESTORE_TABLES) did not produce it (a gap in the builder, not a proof that "
                                   f"userspace cannot); from the built states the model shows no such loss ({why})")
            else:
                self.out.status = NOT_RUN
                self.out.detail = (f"without the file's vgic-v3 register steps ({', '.join(self.left_out)}), which "
                                   f"{MODEL} does not run with an ITS, the proof's engine shows no such loss ({why})")
            return False
        if listed:
            self.out.notes.append("built with " + "; ".join(listed) + ": the model shows the same loss")
        if self.left_out:
            self.out.notes.append(f"run without the file's vgic-v3 register steps ({len(self.left_out)} registers: "
                                  f"{MODEL} does not run them with an ITS); the proof's engine shows the same loss "
                                  "without them")
        self.out.notes.append(f"tables relocated to the layout (DeviceID 0, EventID 0, ICID 0, LPI {LPI}; device "
                              f"table {self.lay.dt:#x}, collection table {self.lay.ct:#x}, ITT {self.lay.itt:#x}, "
                              f"pending tables from {self.lay.pend0:#x}; a zeroed writable slot at 0 stands for "
                              "QEMU's flash)")
        try:
            self.phase1 = self._phase1()
        except (OutOfScope, Hazard) as e:
            self.out.status, self.out.detail = NOT_RUN, f"the model cannot run the source's program: {e}"
            return False
        return True

    def _model_loss(self, src: DeviceState, prior: DeviceState) -> tuple[bool, str]:
        return model_shows(self.spec, self.sem, self.cfg, self.rep.witness, self.save_steps, self.restore_steps,
                           src, prior)

    # -- programs ------------------------------------------------------------------------
    def _start(self) -> tuple[Program, Any]:
        p = Program(self.cfg.cpus, self.cfg.irqs)
        h, answers = self.model.begin(self.cfg)
        for op, got in zip(setup_its(self.cfg), answers, strict=True):
            p.ops.append(op)
            p.notes.append("setup (harness.v3_setup with an ITS, the flash and RAM slots)")
            p.expected.append(got)
        return p, h

    def _op(self, acc: Access, value: int | None) -> Op:
        reg = acc.register
        assert reg is not None
        if reg.group == ITS_REGS:
            return _its(reg.offset, value)
        return _redist(acc.vcpu, reg.offset + 4 * acc.word, value)

    def _ctrl(self, name: str) -> Op:
        if name == "KVM_DEV_ARM_VGIC_SAVE_PENDING_TABLES":
            return Op.ctrl(0, "SAVE_PENDING_TABLES")
        if name == "KVM_DEV_ARM_ITS_SAVE_TABLES":
            return Op.ctrl(ITS_DEV, "ITS_SAVE_TABLES")
        if name == "KVM_DEV_ARM_ITS_RESTORE_TABLES":
            return Op.ctrl(ITS_DEV, "ITS_RESTORE_TABLES")
        if name == "KVM_DEV_ARM_ITS_CTRL_RESET":
            return Op.ctrl(ITS_DEV, "ITS_CTRL_RESET")
        raise OutOfScope(f"operation {name} has no runner form here")

    def _readback(self, p: Program, h: Any, name: str) -> None:
        reads = []
        for reg in self.spec.registers:
            if reg.group == ITS_REGS:
                reads.append((reg.name, 0, 0, _its(reg.offset, None)))
            elif reg.name in LPI_REGS:
                for c in range(1 if reg.name == "GICR_PROPBASER" else self.cfg.cpus):
                    for w in range(reg.words):
                        reads.append((reg.name, w, c, _redist(c, reg.offset + 4 * w, None)))
        for n, a in self.lay.words():
            reads.append((n, 0, 0, Op.peek(a)))
        idx = []
        for what, w, c, op in reads:
            idx.append((what, w, c, len(p.ops)))
            p.add(self.model, h, op, f"{name}: {what}" + (f"[{w}] cpu{c}" if what.startswith("GICR") else ""))
        self.sections[name] = {(f"{what}[{w}] cpu{c}" if what.startswith("GICR") else what): i for what, w, c, i in idx}

    def _reveal(self, p: Program, h: Any, side: str) -> None:
        """What the kernel holds, written out: the entries zeroed in memory, then
        KVM_DEV_ARM_ITS_SAVE_TABLES and SAVE_PENDING_TABLES, then every word peeked."""
        for n, a in self.lay.words():
            if n in ("CTE", "DTE", "ITE") or "pending" in n:
                p.add(self.model, h, Op.poke(a, 0), f"{side} reveal: {n} zeroed")
        p.add(self.model, h, Op.ctrl(ITS_DEV, "ITS_SAVE_TABLES"), f"{side} reveal: KVM_DEV_ARM_ITS_SAVE_TABLES")
        p.add(self.model, h, Op.ctrl(0, "SAVE_PENDING_TABLES"), f"{side} reveal: KVM_DEV_ARM_VGIC_SAVE_PENDING_TABLES")
        idx = []
        for n, a in self.lay.words():
            idx.append((n, 0, 0, len(p.ops)))
            p.add(self.model, h, Op.peek(a), f"{side} reveal: {n}")
        self.sections[f"{side} revealed"] = {n: i for n, _, _, i in idx}

    def _phase1(self) -> Program:
        p, h = self._start()
        for op, note in build_ops_its(self.spec, self.rep.source, self.cfg):
            p.add(self.model, h, op, note)
        self._readback(p, h, "source read-back")
        for acc in expand(self.spec, self.save_steps, self.cfg):
            note = f"save line {acc.step.line}: {acc.label(self.spec)}"
            if acc.action == "op":
                if acc.step.target == "save_memory":
                    for n, a in self.lay.words():
                        self.saved_mem.append((a, len(p.ops)))
                        p.add(self.model, h, Op.peek(a), f"{note}: {n}")
                    continue
                got = p.add(self.model, h, self._ctrl(acc.step.target), note)
                if got != "ok" and acc.step.on_error != "continue":
                    self.save_stopped = acc
                    break
                continue
            if acc.action == "check":  # no shipped gicv3-its file has one; not judged here
                raise OutOfScope(f"{note}: a save-side check of an ITS or LPI register is not run by this part")
            idx = len(p.ops)
            got = p.add(self.model, h, self._op(acc, None), note)
            self.saved_regs.append((acc, idx))
            if not got.startswith("0x"):
                self.save_stopped = acc
                break
        self._reveal(p, h, "source")
        return p

    def after_phase1(self, kernel: list[str]) -> bool:
        if self.delegate is not None:
            go = self.delegate.after_phase1(kernel)
            self.phase2 = self.delegate.phase2
            return go
        assert self.phase1 is not None
        if self._compare("phase 1 (source)", self.phase1, kernel):
            return False
        self.k1 = kernel
        if self.save_stopped is not None:
            self._refusal(self.save_stopped, True, kernel, self.phase1)
            return False
        try:
            self.phase2 = self._phase2(kernel)
        except (OutOfScope, Hazard) as e:
            self.out.status, self.out.detail = NOT_RUN, f"the model cannot run the destination's program: {e}"
            return False
        return True

    def _phase2(self, k1: list[str]) -> Program:
        spec, cfg = self.spec, self.cfg
        p, h = self._start()
        for op, note in build_ops_its(spec, self.rep.prior, cfg):
            p.add(self.model, h, op, note)
        self._readback(p, h, "destination read-back")
        m = Machine(spec, self.sem, cfg, CONCRETE, make_state(spec, self.sem, cfg, CONCRETE))
        saved: dict = {}
        for acc, idx in self.saved_regs:
            assert acc.register is not None
            v = _value(k1[idx])
            assert v is not None
            saved[saved_key(spec, acc.register, acc.word, acc.saved_cpu)] = v
        for acc in expand(spec, self.restore_steps, cfg):
            note = f"restore line {acc.step.line}: {acc.label(spec)}"
            idx = len(p.ops)
            if acc.action == "op":
                if acc.step.target == "restore_memory":
                    if not self.saved_mem:
                        raise OutOfScope("restore_memory without save_memory: no guest memory was saved")
                    for a, i in self.saved_mem:
                        v = _value(k1[i])
                        assert v is not None
                        p.add(self.model, h, Op.poke(a, v), f"{note} ({a:#x} = {v:#x})")
                    continue
                got = p.add(self.model, h, self._ctrl(acc.step.target), note)
            else:
                reg = acc.register
                assert reg is not None
                want = int(step_value(m, acc, saved))
                got = add_restore_access(p, self.model, h, self._op, acc, want, note)
            self.restore_ops.append((acc, idx))
            if got != "ok" and not got.startswith("0x") and acc.step.on_error != "continue":
                self.restore_stopped = acc
                break
        self._readback(p, h, "final read-back")
        self._reveal(p, h, "destination")
        return p

    # -- after phase 2 ---------------------------------------------------------------------
    def after_phase2(self, kernel: list[str]) -> None:
        if self.delegate is not None:
            self.delegate.after_phase2(kernel)
            return
        assert self.phase2 is not None and self.phase1 is not None
        phase2 = self.phase2
        if phase2_decided(self.out, phase2, kernel, self.rep.witness, self.restore_stopped,
                          lambda acc: self._refusal(acc, False, kernel, phase2)):
            return
        w = self.rep.witness
        what = SHOWN[w.field]
        if what.startswith("GICR"):
            scope, key = w.where
            c = key if scope == "cpu" else 0
            names = [f"{what}[{n}] cpu{c}" for n in (0, 1)]
            a1 = [self.k1[self.sections["source read-back"][n]] for n in names]
            b1 = [kernel[self.sections["final read-back"][n]] for n in names]
            av = [_value(x) for x in a1]
            bv = [_value(x) for x in b1]
            if av != bv:
                self.out.status = CONFIRMED
                self.out.evidence = (f"read {what} cpu{c} (both words): the source read {' '.join(a1)}, the "
                                     f"destination reads {' '.join(b1)}")
            else:
                self.out.status = NOT_OBSERVABLE
                self.out.detail = (f"{w.field} is lost in the model's state, every kernel read agrees with the "
                                   f"model, but {what} reads the same ({' '.join(a1)})")
            return
        if what.startswith("GITS"):
            pairs = [("source read-back", "final read-back", what, "")]
        elif what == "pending":
            pairs = [("source revealed", "destination revealed", n, "after SAVE_PENDING_TABLES")
                     for n, _ in self.lay.pending_words()]
        else:
            pairs = [("source revealed", "destination revealed", what, "after KVM_DEV_ARM_ITS_SAVE_TABLES")]
        shown = []
        for a_sec, b_sec, name, when in pairs:
            i, j = self.sections[a_sec][name], self.sections[b_sec][name]
            a, b = self._slice(w.field, self.k1[i]), self._slice(w.field, kernel[j])
            shown.append((name, when, a, b, self.k1[i], kernel[j]))
        if w.field == "lpi_pending":
            a = int(any(s[2] for s in shown))
            b = int(any(s[3] for s in shown))
            if a != b:
                self.out.status = CONFIRMED
                self.out.evidence = (f"LPI {LPI}'s pending bit, written out by KVM_DEV_ARM_VGIC_SAVE_PENDING_TABLES "
                                     f"into its vCPU's pending table: the source's {a}, the destination's {b} "
                                     f"({', '.join(f'{s[0]} {s[4]} / {s[5]}' for s in shown)})")
                return
        else:
            for name, when, a, b, ka, kb in shown:
                if a != b:
                    self.out.status = CONFIRMED
                    self.out.evidence = (f"{name}{' ' + when if when else ''}: the source read {a:#x}, the "
                                         f"destination reads {b:#x} (whole words {ka} / {kb})")
                    return
        self.out.status = NOT_OBSERVABLE
        self.out.detail = (f"{w.field} is lost in the model's state, every kernel read agrees with the model, "
                           f"but the {what} read shows no difference")

    @staticmethod
    def _slice(fld: str, text: str) -> int:
        v = _value(text)
        if v is None:
            return -1
        if fld in ("cte_valid", "dte_valid"):
            return v >> 63
        if fld == "cte_target":
            return (v >> 16) & 0xFFFFFFFF if v >> 63 else 0
        if fld == "ite_valid":
            return int(bool((v >> 16) & 0xFFFFFFFF))
        if fld in ("its_enabled", "lpi_pending"):
            return v & 1
        return v

    def _refusal(self, acc: Access, save: bool, kernel: list[str], p: Program) -> None:
        ops = self.saved_regs if save else self.restore_ops
        idx = next((i for a, i in ops if a is acc), None)
        if idx is None:  # a save operation
            idx = max(i for i, n in enumerate(p.notes) if n.startswith(f"save line {acc.step.line}"))
        judge_refusal(self.out, self.rep.witness, acc, save, idx, kernel, p)

    def _compare(self, phase: str, p: Program, kernel: list[str]) -> bool:
        return compare_program(self.out, phase, p, kernel)


def _no_register(reg: Register, word: int, vcpu: int, value: int | None) -> Op:
    raise OutOfScope(f"{reg.name}: gicv3-its programs are ItsWitnessRun's")


GICV3_ITS_PARTS: DeviceParts = DeviceParts(
    GICV3_ITS, 3, ("gicv3",),
    {"gicv4.1": "the oracle's QEMU offers no GICv4.1 host (its gic-version=4 is used as a GICv4.0: "
                "models/kernel/harness.py run_batch)",
     "": "the oracle's QEMU provides only a GICv3 host (gic-version=3) for a vgic-v3 and its ITS"},
    lambda release: OracleModelIts(release), _no_register, lambda spec, sem, st, cfg: build_ops_its(spec, st, cfg),
    lambda spec, state, m, cfg: [], "revealed", " after KVM_DEV_ARM_ITS_SAVE_TABLES", True,
    runner=ItsWitnessRun)

__all__ = ["GICV3_ITS_PARTS", "ItsWitnessRun", "Layout", "OracleModelIts", "abstract", "build_ops_its",
           "its_steps", "relocate", "setup_its"]
