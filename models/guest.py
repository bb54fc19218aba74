"""Guest and device actions, for fuzzing (concrete backend only).

These drive a GICv2 model into the states a running VM reaches: guest register writes (the
guest accessors of the table), GICD_SGIR, an interrupt source raising or lowering its
line, and a CPU interface acknowledging and ending an interrupt. ``next_interrupt`` is the
observation the differential tests compare: which interrupt a CPU would take next.

The CPU-interface side follows the GICv2 architecture (Arm IHI 0048B 3.2-3.3), which the
virtual CPU interface implements in hardware; model choices are marked.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from models.machine import SPI_BANK, Machine
from spec.algebra import Ops, Value, mask, nonzero
from spec.device import AccessContext
from spec.gicv2 import original_bits, original_fields, pending_view
from spec.gicv3_its import TARGET_BITS, _below_cpus

SPURIOUS = 1023


# ---------------------------------------------------------------------------------------
# Events, written once over the value algebra: the functions below apply them to a
# concrete machine (fuzzing), and ``proofs.invariant`` runs them on Z3 terms to prove the
# device invariant inductive. Each takes (ops, ctx, fields, param) and returns the updated
# fields of one scope; ``ctx`` is the scope's AccessContext.


def event_line(ops: Ops, ctx: AccessContext, f: dict[str, Value], level: Value) -> dict[str, Value]:
    """An interrupt source drives its line (KVM_IRQ_LINE for SPIs; a PPI's device for its
    CPU). kvm_vgic_inject_irq() (vgic.c): vgic_validate_injection() lets a level-sensitive
    interrupt through when the level changes and an edge-triggered one whenever the level
    is 1; then 'if (irq->config == VGIC_CONFIG_LEVEL) irq->line_level = level; else
    irq->pending_latch = true;'. So every injection at level 1 latches an edge interrupt,
    not only a rising one, and its line_level is left as it was (it only matters again
    if the interrupt is made level-sensitive). Observed with KVM_IRQ_LINE on Debian
    5.10.223 and 7.2.13: SPI 40 (edge) at level 1, its pending bit cleared through
    GICD_ICPENDR, level 1 again: pending again. SGIs have no line."""
    if ctx.kind == "sgi":
        return {}
    edge = f["edge"]
    if ctx.semantics.vgic == "original":
        return _original_line(ops, f, level)
    return {"pending_latch": ops.or_(f["pending_latch"], ops.and_(edge, level)),
            "line_level": ops.ite(edge, f["line_level"], level)}


def _original_line(ops: Ops, f: dict[str, Value], level: Value) -> dict[str, Value]:
    """The original VGIC (virt/kvm/arm/vgic.c vgic_update_irq_pending, 3.18-4.6):
    vgic_validate_injection lets an edge-triggered interrupt through when 'level > state'
    (state = irq_pending) and a level-sensitive one when 'level != state' (state = irq_level);
    then 'if (level) { if (level_triggered) vgic_dist_irq_set_level(); vgic_dist_irq_set_pending(); }
    else { if (level_triggered) { vgic_dist_irq_clear_level(); if (!vgic_dist_irq_soft_pend())
    vgic_dist_irq_clear_pending(); } }'. The kernel's bits are mapped as in spec.gicv2."""
    edge, line = f["edge"], f["line_level"]
    pend, soft = original_bits(ops, f)
    changes = ops.not_(ops.eq(level, line), 1)
    new_line = ops.ite(edge, line, level)
    new_pend = ops.ite(edge, ops.or_(pend, level),
                       ops.ite(changes, ops.ite(level, ops.const(1, 1), ops.and_(pend, soft)), pend))
    return {"line_level": new_line} | original_fields(ops, edge, new_pend, soft, new_line)


def event_sgi(ops: Ops, ctx: AccessContext, f: dict[str, Value], sender: int) -> dict[str, Value]:
    """GICD_SGIR from ``sender`` reaching the SGI in a target's bank (vgic_mmio_write_sgir:
    'irq->pending_latch = true; irq->source |= 1U << source_vcpu->vcpu_id')."""
    if ctx.kind != "sgi":
        return {}
    return {"sgi_sources": ops.or_(f["sgi_sources"], ops.const(1 << sender, 8)),
            "pending_latch": ops.const(1, 1)}


def _clear_lowest_bit(ops: Ops, v: Value, width: int) -> Value:
    """``v & (v - 1)`` from the algebra's operations: the lowest set bit is checked last,
    so it wins."""
    out = v
    for i in reversed(range(width)):
        out = ops.ite(ops.extract(v, i, i), ops.and_(v, ops.const(~(1 << i) & mask(width), width)), out)
    return out


def event_acknowledge(ops: Ops, ctx: AccessContext, f: dict[str, Value], _: object = None) -> dict[str, Value]:
    """GICC_IAR takes the interrupt: it becomes active and its latch is consumed; an SGI
    delivers one source at a time (the lowest first) and stays pending while another is
    left (vgic_v2_populate_lr / vgic_v2_fold_lr_state; model choice: the lowest source
    first, as the kernel's __ffs)."""
    out = {"active": ops.const(1, 1)}
    original = ctx.semantics.vgic == "original"
    if ctx.kind == "sgi":
        src = _clear_lowest_bit(ops, f["sgi_sources"], 8)
        out["sgi_sources"] = src
        out["pending_latch"] = nonzero(ops, src, 8)
        if original:
            # vgic_queue_sgi: an SGI pending with no source is dropped ('if (!sources)
            # vgic_dist_irq_clear_pending'), not delivered
            out["active"] = ops.ite(nonzero(ops, f["sgi_sources"], 8), ops.const(1, 1), f["active"])
        if ctx.semantics.active_source:
            # the source delivered (the lowest one) is the active source (4.17+)
            delivered = ops.const(0, 3)
            for i in reversed(range(8)):
                delivered = ops.ite(ops.extract(f["sgi_sources"], i, i), ops.const(i, 3), delivered)
            out["active_source"] = delivered
    elif original:
        # an edge-triggered interrupt is consumed when queued (vgic_queue_hwirq: 'if
        # (vgic_irq_is_edge(vcpu, irq)) vgic_dist_irq_clear_pending'), its soft-pend kept; a
        # level-sensitive one at EOI (vgic_process_maintenance: vgic_dist_irq_clear_soft_pend,
        # then irq_pending stays set only 'if (vgic_dist_irq_get_level(vcpu, vlr.irq))')
        zero = ops.const(0, 1)
        pend, soft = original_bits(ops, f)
        edge = f["edge"]
        new_soft = ops.ite(edge, soft, zero)
        new_pend = ops.ite(edge, zero, f["line_level"])
        out.update(original_fields(ops, edge, new_pend, new_soft, f["line_level"]))
    else:
        out["pending_latch"] = ops.const(0, 1)
        out["soft_pending"] = ops.const(0, 1)
    return out


def event_deactivate(ops: Ops, ctx: AccessContext, f: dict[str, Value], _: object = None) -> dict[str, Value]:
    """GICC_EOIR with EOImode 0 deactivates the interrupt (model choice: an inactive SGI
    has no active source, see spec.gicv2)."""
    out = {"active": ops.const(0, 1)}
    if ctx.kind == "sgi":
        out["active_source"] = ops.const(0, 3)
    return out


def event_priority_drop(ops: Ops, ctx: AccessContext, f: dict[str, Value], _: object = None) -> dict[str, Value]:
    """GICC_EOIR's priority drop: the highest active preemption level leaves GICC_APR0."""
    return {"apr": _clear_lowest_bit(ops, f["apr"], 32)}


def event_priority_raise(ops: Ops, ctx: AccessContext, f: dict[str, Value], priority: Value) -> dict[str, Value]:
    """GICC_IAR marks the taken interrupt's preemption level (priority >> 3) in GICC_APR0."""
    level = ops.extract(priority, 7, 3)
    bits = ops.const(0, 32)
    for i in range(32):
        bits = ops.ite(ops.eq(level, ops.const(i, 5)), ops.const(1 << i, 32), bits)
    return {"apr": ops.or_(f["apr"], bits)}


@dataclass(frozen=True)
class Event:
    """A guest or device action that is not a register access of the table: its scope,
    the function above, and the parameter values it takes ("level": a 1-bit value,
    "sender": a CPU number, "priority": an 8-bit value, "": none)."""

    name: str
    scope: str  # "irq" | "cpu" | "vm" (fn(ops, ctx, global_fields, cpu_fields, param))
    fn: Callable[..., dict[str, Value]]
    param: str = ""


EVENTS = (
    Event("line", "irq", event_line, "level"),
    Event("GICD_SGIR", "irq", event_sgi, "sender"),
    Event("acknowledge", "irq", event_acknowledge),
    Event("deactivate", "irq", event_deactivate),
    Event("priority drop", "cpu", event_priority_drop),
    Event("priority raise", "cpu", event_priority_raise, "priority"),
)


def event_sgi_v3(ops: Ops, ctx: AccessContext, f: dict[str, Value], _: object = None) -> dict[str, Value]:
    """A GICv3 guest sends an SGI with ICC_SGI1R_EL1 (vgic_v3_queue_sgi: 'irq->pending_latch =
    true;'; a GICv3 SGI has no source set)."""
    if ctx.kind != "sgi":
        return {}
    return {"pending_latch": ops.const(1, 1)}


def event_acknowledge_v3(ops: Ops, ctx: AccessContext, f: dict[str, Value], _: object = None) -> dict[str, Value]:
    """ICC_IAR1_EL1 takes the interrupt: active, latch consumed (the list register's state
    folded back by vgic_v3_fold_lr_state)."""
    return {"active": ops.const(1, 1), "pending_latch": ops.const(0, 1)}


# The GICv3 guest's events: its CPU interface is the hardware's virtual one (ICC_*_EL1 reach
# ICH_VMCR_EL2 and the list registers), so the table's CPU registers are userspace-only.
GICV3_EVENTS = (
    Event("line", "irq", event_line, "level"),
    Event("ICC_SGI1R_EL1", "irq", event_sgi_v3),
    Event("acknowledge", "irq", event_acknowledge_v3),
    Event("deactivate", "irq", event_deactivate),
)


def events_for(device: str) -> tuple[Event, ...]:
    """The guest and device events of a device's invariant proof."""
    if device == "gicv3-its":
        return GICV3_EVENTS + ITS_EVENTS
    if device == "gicv5-irs":
        return GICV5_EVENTS
    return GICV3_EVENTS if device == "gicv3" else EVENTS


def _irq_fields(m: Machine, intid: int, cpu: int) -> tuple[tuple[int, int], dict[str, Value] | None]:
    key = (cpu if intid < m.spec.private_irqs else SPI_BANK, intid)
    return key, m.state.irq.get(key)


def _apply(m: Machine, fn: Callable[..., dict[str, Value]], fields: dict[str, Value], ctx: AccessContext,
           param: object = None) -> None:
    for name, v in fn(m.ops, ctx, fields, param).items():
        if name in fields:
            fields[name] = v


def raise_line(m: Machine, intid: int, cpu: int = 0, level: int = 1) -> None:
    """``event_line`` on a concrete machine (``cpu``: the bank of a PPI)."""
    key, f = _irq_fields(m, intid, cpu)
    if f is not None:
        _apply(m, event_line, f, m.ctx(max(key[0], 0), intid, user=False), level)


def send_sgi(m: Machine, sender: int, value: int) -> None:
    """GICD_SGIR from ``sender`` (vgic_mmio_write_sgir): TargetListFilter 0 = the target
    list, 1 = all but self, 2 = self, 3 = reserved; each target gets ``event_sgi``."""
    intid = value & 0xF
    targets = (value >> 16) & 0xFF
    mode = (value >> 24) & 0x3
    if mode == 1:
        targets = ((1 << m.config.cpus) - 1) & ~(1 << sender)
    elif mode == 2:
        targets = 1 << sender
    elif mode == 3:
        return
    for c in range(m.config.cpus):
        if targets & (1 << c):
            _, f = _irq_fields(m, intid, c)
            if f is not None:
                _apply(m, event_sgi, f, m.ctx(c, intid, user=False), sender)


def _routed_to(m: Machine, key: tuple[int, int], cpu: int) -> bool:
    bank, intid = key
    if bank != SPI_BANK:
        return bank == cpu
    # vgic_mmio_write_target: 'target = irq->targets ? __ffs(irq->targets) : 0'
    t = m.state.irq[key]["targets"]
    target = (t & -t).bit_length() - 1 if t else 0
    return target == cpu


def running_priority(m: Machine, cpu: int) -> int:
    """The group priority of the highest active preemption level (the lowest set APR0
    bit, shifted to a priority), 0x100 when idle. (A derived value: seed 000.)"""
    apr = m.state.cpu[cpu]["apr"]
    if not apr:
        return 0x100
    return ((apr & -apr).bit_length() - 1) << 3


def next_interrupt(m: Machine, cpu: int) -> int:
    """The interrupt ``cpu`` would take next, or 1023. Model choice: both groups signal
    as IRQs and are compared by priority alone, then by INTID."""
    if not m.state.glob["dist_enabled"]:
        return SPURIOUS
    c = m.state.cpu[cpu]
    pmr = c["pmr"] << 3
    running = running_priority(m, cpu)
    best: tuple[int, int] | None = None
    for key, f in m.state.irq.items():
        if not _routed_to(m, key, cpu):
            continue
        if not (f["enabled"] and pending_view(m.ops, f, m.semantics) and not f["active"]):
            continue
        if not (c["ctlr"] >> f["group"]) & 1:  # EnableGrp0 / EnableGrp1
            continue
        prio = f["priority"]
        if prio >= pmr or (prio & 0xF8) >= running:
            continue
        cand = (prio, key[1])
        if best is None or cand < best:
            best = cand
    return best[1] if best else SPURIOUS


def acknowledge(m: Machine, cpu: int) -> int:
    """GICC_IAR: the next interrupt is acknowledged (``event_acknowledge``) and its
    preemption level marked (``event_priority_raise``)."""
    intid = next_interrupt(m, cpu)
    if intid == SPURIOUS:
        return intid
    key, f = _irq_fields(m, intid, cpu)
    assert f is not None
    _apply(m, event_acknowledge, f, m.ctx(max(key[0], 0), intid, user=False))
    _apply(m, event_priority_raise, m.state.cpu[cpu], m.ctx(cpu, user=False), f["priority"])
    return intid


def end_of_interrupt(m: Machine, cpu: int, intid: int) -> None:
    """GICC_EOIR with EOImode 0: priority drop and deactivation of ``intid``."""
    key, f = _irq_fields(m, intid, cpu)
    if f is None or not f["active"]:
        return
    _apply(m, event_deactivate, f, m.ctx(max(key[0], 0), intid, user=False))
    _apply(m, event_priority_drop, m.state.cpu[cpu], m.ctx(cpu, user=False))


# ---------------------------------------------------------------------------------------
# The ITS command queue, as the guest drives it (device gicv3-its): each command acts on
# the representative entries of spec/gicv3_its.py. A guest writes a command into the queue
# and GITS_CWRITER; vgic_its_process_commands runs it at once while the ITS is enabled
# (and not at all while it is disabled: the model's commands then do nothing, as the
# queue is only read on enabling, which the model treats as consuming it). Each command
# below cites its handler in arch/arm64/kvm/vgic/vgic-its.c (read in 5.10.223 and 7.1.8).
# Events of scope "vm": fn(ops, ctx, glob, cpus, param) -> updates of the global fields.


def _its_on(ops: Ops, g: dict[str, Value]) -> Value:
    return g["its_enabled"]


def _upd(ops: Ops, cond: Value, g: dict[str, Value], new: dict[str, Value]) -> dict[str, Value]:
    return {k: ops.ite(cond, v, g[k]) for k, v in new.items()}


def _target_field(ops: Ops, ctx: AccessContext, g: dict[str, Value], cpus: list, name: str) -> Value:
    from spec.gicv3_its import at_target

    return at_target(ops, ctx, g["cte_target"], cpus, name)


def its_mapd(ops: Ops, ctx: AccessContext, g: dict[str, Value], cpus: list, valid: Value) -> dict[str, Value]:
    """MAPD (vgic_its_cmd_handle_mapd): 'We first free the device' with its ITEs and their
    LPIs ('if (device) vgic_its_free_device(...)'); with V=1 a new device with an empty ITT;
    with V=0, from 6.13 (stable 6.1.120), its DTE in guest memory is zeroed
    ('return vgic_its_write_entry_lock(its, gpa, 0, ...)')."""
    z = ops.const(0, 1)
    new = {"dte_valid": valid, "ite_valid": z, "lpi_pending": z}
    if ctx.semantics.its_clears_unmapped:
        new["mem_dte"] = ops.ite(valid, g["mem_dte"], z)
        # model choice: a device mapped again gets a zeroed ITT (Linux's its_create_device
        # allocates it zeroed), so the old ITE does not come back
        new["mem_ite"] = z
    return _upd(ops, _its_on(ops, g), g, new)


def its_mapc(ops: Ops, ctx: AccessContext, g: dict[str, Value], cpus: list, target: Value) -> dict[str, Value]:
    """MAPC V=1 (vgic_its_cmd_handle_mapc): 'if (target_addr >= atomic_read(&kvm->online_vcpus))
    return E_ITS_MAPC_PROCNUM_OOR;' else the collection is mapped (or moved:
    update_affinity_collection retargets its LPIs). MAPC V=0 is not modelled while an event
    uses the collection (spec/gicv3_its.py: 'a mapped event's collection is mapped')."""
    ok = bool_and_(ops, _its_on(ops, g), _below_cpus(ops, target, ctx.cpus))
    return _upd(ops, ok, g, {"cte_valid": ops.const(1, 1), "cte_target": target})


def its_unmapc(ops: Ops, ctx: AccessContext, g: dict[str, Value], cpus: list, _: object = None) -> dict[str, Value]:
    """MAPC V=0 on a collection no event uses: vgic_its_free_collection."""
    ok = bool_and_(ops, _its_on(ops, g), ops.not_(g["ite_valid"], 1))
    return _upd(ops, ok, g, {"cte_valid": ops.const(0, 1), "cte_target": ops.const(0, TARGET_BITS)})


def its_mapti(ops: Ops, ctx: AccessContext, g: dict[str, Value], cpus: list, _: object = None) -> dict[str, Value]:
    """MAPTI (vgic_its_cmd_handle_mapi): needs the device ('E_ITS_MAPTI_UNMAPPED_DEVICE'); an
    event already mapped is left alone ('if (find_ite(its, device_id, event_id)) return 0;');
    the new LPI reads its configuration and, on its vCPU, its pending bit from the pending
    table, clearing it there (vgic_add_lpi -> vgic_v3_lpi_sync_pending_status). Model
    choice: only into a mapped collection."""
    ok = bool_and_(ops, _its_on(ops, g), g["dte_valid"], ops.not_(g["ite_valid"], 1), g["cte_valid"])
    base = _target_field(ops, ctx, g, cpus, "pendbaser")
    somewhere = ops.not_(ops.eq(ops.extract(base, 51, 12), ops.const(0, 40)), 1)
    bit = ops.and_(g["mem_pending"], somewhere)
    return _upd(ops, ok, g, {"ite_valid": ops.const(1, 1), "lpi_pending": bit,
                             "mem_pending": ops.ite(bit, ops.const(0, 1), g["mem_pending"])})


def its_int(ops: Ops, ctx: AccessContext, g: dict[str, Value], cpus: list, _: object = None) -> dict[str, Value]:
    """INT (vgic_its_cmd_handle_int -> vgic_its_trigger_msi): needs the translation and a
    mapped collection ('E_ITS_INT_UNMAPPED_INTERRUPT'), and LPIs enabled on its vCPU
    (vgic_its_resolve_lpi: 'if (!vgic_lpis_enabled(vcpu)) return -EBUSY;'); then 'irq->pending_latch
    = true'."""
    ok = bool_and_(ops, _its_on(ops, g), g["ite_valid"], g["cte_valid"],
                   _target_field(ops, ctx, g, cpus, "enable_lpis"))
    return _upd(ops, ok, g, {"lpi_pending": ops.const(1, 1)})


def its_discard(ops: Ops, ctx: AccessContext, g: dict[str, Value], cpus: list, _: object = None) -> dict[str, Value]:
    """DISCARD (vgic_its_cmd_handle_discard): frees the ITE and its LPI (its_free_ite); from
    6.13 (stable 6.1.120) it zeroes the ITE in guest memory."""
    z = ops.const(0, 1)
    new = {"ite_valid": z, "lpi_pending": z}
    if ctx.semantics.its_clears_unmapped:
        new["mem_ite"] = z
    return _upd(ops, bool_and_(ops, _its_on(ops, g), g["ite_valid"]), g, new)


def its_sync(ops: Ops, ctx: AccessContext, g: dict[str, Value], cpus: list, _: object = None) -> dict[str, Value]:
    """SYNC (vgic_its_cmd_handle_sync... the emulation has nothing to wait for): no change."""
    return {}


def lpi_taken(ops: Ops, ctx: AccessContext, g: dict[str, Value], cpus: list, _: object = None) -> dict[str, Value]:
    """The guest acknowledges the LPI (ICC_IAR1_EL1): an LPI is edge-triggered and has no
    active state, so its pending latch is consumed."""
    return {"lpi_pending": ops.const(0, 1)}


def lpi_configure(ops: Ops, ctx: AccessContext, g: dict[str, Value], cpus: list, value: Value) -> dict[str, Value]:
    """The guest writes the LPI's byte of the configuration table (guest memory)."""
    return {"lpi_prop": value}


def bool_and_(ops: Ops, *conds: Value) -> Value:
    out = ops.const(1, 1)
    for c in conds:
        out = ops.and_(out, c)
    return out


ITS_EVENTS = (
    Event("MAPD", "vm", its_mapd, "valid"),
    Event("MAPC", "vm", its_mapc, "target"),
    Event("MAPC V=0", "vm", its_unmapc),
    Event("MAPTI", "vm", its_mapti),
    Event("INT", "vm", its_int),
    Event("DISCARD", "vm", its_discard),
    Event("SYNC", "vm", its_sync),
    Event("LPI acknowledge", "vm", lpi_taken),
    Event("LPI configuration write", "vm", lpi_configure, "byte"),
)


def its_command(m: Machine, name: str, param: object = None) -> None:
    """Run the ITS command (or LPI event) ``name`` on a concrete machine."""
    ev = next(e for e in ITS_EVENTS if e.name == name)
    for k, v in ev.fn(m.ops, m.ctx(0, user=False), m.state.glob, m.state.cpu, param).items():
        m.state.glob[k] = v


# ---------------------------------------------------------------------------------------
# GICv5 (device gicv5-irs): what a guest and its devices do to the IRS's interrupts besides
# the IRS registers. On GICv5 a guest changes an interrupt's state with the CPU interface's
# system instructions, which the IRS applies to the interrupt's ISTE (spec/gicv5_irs.py:
# the SPI's ISTE bits 4:0 PENDING, ACTIVE, HM, ENABLE, IRM, FACTS §3.2): GIC CDEN, GIC
# CDDIS, GIC CDPEND, GIC CDAFF, GICR CDIA (acknowledge), GIC CDDI (deactivate). The
# instructions and their operands are named as Linux's GICv5 driver names them
# (arch/arm64/include/asm/sysreg.h GICV5_OP_GIC_CD*, GICV5_GIC_CDPEND_PENDING_MASK BIT(32),
# GICV5_GIC_CDAFF_IRM_MASK BIT(28); drivers/irqchip/irq-gic-v5.c gicv5_iri_irq_write_pending_state);
# the architecture specification (Arm IHI 0111) is not in the library (FACTS §7), so what
# an instruction does to the ISTE is read from those names, and marked "model choice"
# where it is more. GIC CDEOI (priority drop) changes no ISTE bit: no event.
# The handling mode is not an event: a guest sets it through IRS_SPI_CFGR, whose write sets
# KVM's record and the HM together (spec/gicv5_irs.py _spi_cfgr_wr; the invariant keeps
# spi_config == spi_hm).
# SPI events have scope "irq" (fn(ops, ctx, fields, param), ``ctx.device`` the IRS's global
# fields); the LPI's events scope "vm" (fn(ops, ctx, glob, cpus, param)), as the ITS's.


def gicv5_cden(ops: Ops, ctx: AccessContext, f: dict[str, Value], _: object = None) -> dict[str, Value]:
    """GIC CDEN (Linux gicv5_iri_irq_unmask, an SPI's irq_unmask: 'gic_insn(cden, CDEN)'):
    the ISTE's ENABLE is set."""
    return {"spi_enable": ops.const(1, 1)}


def gicv5_cddis(ops: Ops, ctx: AccessContext, f: dict[str, Value], _: object = None) -> dict[str, Value]:
    """GIC CDDIS (an SPI's irq_mask in Linux's driver): the ISTE's ENABLE is cleared."""
    return {"spi_enable": ops.const(0, 1)}


def gicv5_cdpend(ops: Ops, ctx: AccessContext, f: dict[str, Value], pending: Value) -> dict[str, Value]:
    """GIC CDPEND with its PENDING operand bit (bit 32; Linux
    gicv5_iri_irq_write_pending_state: 'FIELD_PREP(GICV5_GIC_CDPEND_PENDING_MASK, state)',
    irq_set_irqchip_state(IRQCHIP_STATE_PENDING)): the ISTE's PENDING becomes that bit.
    Model choice: for either handling mode (a level-sensitive SPI's line is not state of
    the model; see ``gicv5_line``)."""
    return {"spi_pending": pending}


def gicv5_cdaff_irm(ops: Ops, ctx: AccessContext, f: dict[str, Value], irm: Value) -> dict[str, Value]:
    """GIC CDAFF (Linux gicv5_iri_irq_set_affinity) with its IRM operand bit (bit 28,
    GICV5_GIC_CDAFF_IRM_MASK; Linux writes 0, targeted routing): the ISTE's
    IRM, 1 for 1-of-N routing (FACTS §3.2, §5). Model choice: the IAFFID it also writes is
    not modelled (spec/gicv5_irs.py: 'IAFFID bits are not modelled'). A guest that uses it
    with IRM = 1 is outside the no-one-of-n assumption."""
    return {"spi_irm": irm}


def gicv5_cdia(ops: Ops, ctx: AccessContext, f: dict[str, Value], _: object = None) -> dict[str, Value]:
    """GICR CDIA acknowledges the SPI (Linux's gicv5_handle_irq reads it: the highest priority
    pending interrupt, or none, GICV5_GICR_CDIA_VALID): it becomes active, and an edge-triggered one (HM 0)
    leaves the pending state (FACTS §3.2: QEMU's gicv5_activate clears an edge interrupt's
    pending state on activation; a level-sensitive one stays pending while its line is high).
    Model choice: the SPI is a candidate only when pending, enabled, not active, and the
    IRS enabled (IRS_CR0.IRSEN); priorities and targets are not modelled, so any candidate
    may be the one acknowledged; otherwise nothing changes (CDIA returns no interrupt)."""
    one = ops.const(1, 1)
    ok = ops.and_(ops.and_(f["spi_pending"], f["spi_enable"]),
                  ops.and_(ops.not_(f["spi_active"], 1), ctx.device["irs_enabled"]))
    level = f["spi_hm"]
    return {"spi_active": ops.ite(ok, one, f["spi_active"]),
            "spi_pending": ops.ite(ok, ops.and_(f["spi_pending"], level), f["spi_pending"])}


def gicv5_cddi(ops: Ops, ctx: AccessContext, f: dict[str, Value], _: object = None) -> dict[str, Value]:
    """GIC CDDI deactivates the SPI (Linux gicv5_hwirq_eoi, an SPI's irq_eoi: 'gic_insn(cddi,
    CDDI)'; the priority drop, GIC CDEOI, is gicv5_handle_irq's): the ISTE's ACTIVE is cleared."""
    return {"spi_active": ops.const(0, 1)}


def gicv5_line(ops: Ops, ctx: AccessContext, f: dict[str, Value], level: Value) -> dict[str, Value]:
    """A device drives the SPI's line (KVM_IRQ_LINE). The VGICv5's SPI injection is the
    generic kvm_vgic_inject_irq (vgic.c): vgic_validate_injection lets an edge-triggered
    interrupt through at level 1 and a level-sensitive one on a change of level, then 'if
    (irq->config == VGIC_CONFIG_LEVEL) irq->line_level = level; else irq->pending_latch =
    true;', then the SPI's irq_ops.set_pending_state, vgic_v5_set_spi_pending_state ->
    vgic_v5_set_irq_pend: 'GIC VDPEND' with irq_is_pending(irq) (the series' vgic-v5.c,
    commit c9e4010b 'Support SPI injection' in FACTS §2.1's list; not quoted in FACTS):
    the ISTE's PENDING is set for an edge-triggered SPI at level 1, and follows the level
    for a level-sensitive one. KVM's record of the handling mode (irq->config,
    ``spi_config``) decides, not the ISTE's HM (equal in every reachable state).
    Model choice: the line's level is no field of the model, so every injection into a
    level-sensitive SPI is taken as a change of level (vgic_validate_injection would drop
    a repeated level); and a level-sensitive SPI the guest made pending with GIC CDPEND is
    cleared by a falling line (VDPEND with irq_is_pending = line_level || pending_latch,
    and KVM's pending_latch never saw the guest's CDPEND)."""
    edge = ops.not_(f["spi_config"], 1)
    return {"spi_pending": ops.ite(edge, ops.or_(f["spi_pending"], level), level)}


def _lpi_upd(ops: Ops, g: dict[str, Value], new: dict[str, Value]) -> dict[str, Value]:
    """An instruction on the LPI acts on its ISTE in the host LPI IST; without one (no valid
    IRS_IST_BASER: spec/gicv5_irs.py lpi_ist) there is no ISTE and nothing changes. Model
    choice: the architecture's behaviour for an LPI with no ISTE is not in the library; the
    invariant's 'no LPI state without an LPI IST' says the model's."""
    return _upd(ops, g["lpi_ist"], g, new)


def gicv5_lpi_cden(ops: Ops, ctx: AccessContext, g: dict[str, Value], cpus: list, _: object = None) -> dict[str, Value]:
    """GIC CDEN on the representative LPI (TYPE LPI; Linux gicv5_lpi_irq_unmask): its ISTE's
    ENABLE is set."""
    return _lpi_upd(ops, g, {"lpi_enable": ops.const(1, 1)})


def gicv5_lpi_cddis(ops: Ops, ctx: AccessContext, g: dict[str, Value], cpus: list, _: object = None) -> dict[str, Value]:
    """GIC CDDIS on the LPI: its ISTE's ENABLE cleared."""
    return _lpi_upd(ops, g, {"lpi_enable": ops.const(0, 1)})


def gicv5_lpi_cdpend(ops: Ops, ctx: AccessContext, g: dict[str, Value], cpus: list, pending: Value) -> dict[str, Value]:
    """GIC CDPEND on the LPI (Linux gicv5_lpi_irq_write_pending_state, how an IPI is sent:
    gicv5_ipi_send_single retriggers its LPI; or an MSI through an ITS, which the model does
    not hold): its ISTE's PENDING becomes the operand's PENDING bit."""
    return _lpi_upd(ops, g, {"lpi_pending": pending})


def gicv5_lpi_cdia(ops: Ops, ctx: AccessContext, g: dict[str, Value], cpus: list, _: object = None) -> dict[str, Value]:
    """GICR CDIA acknowledging the LPI: it leaves the pending state (model choice: an
    edge-triggered LPI, as Linux's are: gicv5_lpi_config_reset issues GIC CDHM with HM 0; the LPI's ACTIVE bit is not modelled, spec/gicv5_irs.py
    holds its PENDING and ENABLE only). Only an enabled pending LPI is acknowledged."""
    ok = ops.and_(g["lpi_pending"], g["lpi_enable"])
    return _lpi_upd(ops, g, {"lpi_pending": ops.ite(ok, ops.const(0, 1), g["lpi_pending"])})


GICV5_EVENTS = (
    Event("GIC CDEN", "irq", gicv5_cden),
    Event("GIC CDDIS", "irq", gicv5_cddis),
    Event("GIC CDPEND", "irq", gicv5_cdpend, "level"),
    Event("GIC CDAFF IRM", "irq", gicv5_cdaff_irm, "level"),
    Event("GICR CDIA", "irq", gicv5_cdia),
    Event("GIC CDDI", "irq", gicv5_cddi),
    Event("line", "irq", gicv5_line, "level"),
    Event("GIC CDEN LPI", "vm", gicv5_lpi_cden),
    Event("GIC CDDIS LPI", "vm", gicv5_lpi_cddis),
    Event("GIC CDPEND LPI", "vm", gicv5_lpi_cdpend, "level"),
    Event("GICR CDIA LPI", "vm", gicv5_lpi_cdia),
)


def irs_event(m: Machine, name: str, intid: int = -1, param: object = None) -> None:
    """Run the GICv5 event ``name`` on a concrete machine: an SPI event on SPI ``intid``, an
    LPI event (scope "vm") on the representative LPI."""
    ev = next(e for e in GICV5_EVENTS if e.name == name)
    if ev.scope == "vm":
        for k, v in ev.fn(m.ops, m.ctx(0, user=False), m.state.glob, m.state.cpu, param).items():
            m.state.glob[k] = v
        return
    key, f = _irq_fields(m, intid, 0)
    if f is not None:
        _apply(m, ev.fn, f, m.ctx(max(key[0], 0), intid, user=False), param)
