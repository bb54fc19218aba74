"""Guest and device actions, for fuzzing (concrete backend only).

These drive a GICv2 model into the states a running VM reaches: guest register writes (the
guest accessors of the table), GICD_SGIR, an interrupt source raising or lowering its
line, and a CPU interface acknowledging and ending an interrupt. ``next_interrupt`` is the
observation the differential tests compare: which interrupt a CPU would take next.

The CPU-interface side follows the GICv2 architecture (Arm IHI 0048B 3.2-3.3), which the
virtual CPU interface implements in hardware; model choices are marked.
"""

from __future__ import annotations

from models.machine import SPI_BANK, Machine
from spec.gicv2 import pending_view

SPURIOUS = 1023


def raise_line(m: Machine, intid: int, cpu: int = 0, level: int = 1) -> None:
    """An interrupt source drives its line (KVM_IRQ_LINE for SPIs; a PPI's device for
    its CPU). vgic_update_irq_pending(): 'irq->line_level = level' for level-sensitive
    interrupts; an edge-triggered interrupt latches on a rising edge."""
    key = (cpu if intid < m.spec.private_irqs else SPI_BANK, intid)
    f = m.state.irq.get(key)
    if f is None or intid < 16:
        return
    if f["edge"]:
        if level and not f["line_level"]:
            f["pending_latch"] = 1
    f["line_level"] = level


def send_sgi(m: Machine, sender: int, value: int) -> None:
    """GICD_SGIR from ``sender`` (vgic_mmio_write_sgir): TargetListFilter 0 = the target
    list, 1 = all but self, 2 = self, 3 = reserved; each target gets the sender as a
    source and the SGI pending."""
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
            f = m.state.irq.get((c, intid))
            if f is None:
                continue
            f["sgi_sources"] |= 1 << sender
            f["pending_latch"] = 1


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
        if not (f["enabled"] and pending_view(m.ops, f) and not f["active"]):
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
    """GICC_IAR: the next interrupt becomes active, its latch is consumed (one SGI
    source at a time), and its preemption level is marked in APR0."""
    intid = next_interrupt(m, cpu)
    if intid == SPURIOUS:
        return intid
    key = (cpu if intid < m.spec.private_irqs else SPI_BANK, intid)
    f = m.state.irq[key]
    f["active"] = 1
    if intid < 16:
        src = f["sgi_sources"]
        if src:
            src &= src - 1  # the lowest source is delivered first
        f["sgi_sources"] = src
        f["pending_latch"] = 1 if src else 0
    else:
        f["pending_latch"] = 0
        f["soft_pending"] = 0
    m.state.cpu[cpu]["apr"] |= 1 << (f["priority"] >> 3)
    return intid


def end_of_interrupt(m: Machine, cpu: int, intid: int) -> None:
    """GICC_EOIR with EOImode 0: priority drop (the highest active level leaves APR0) and
    deactivation of ``intid``."""
    key = (cpu if intid < m.spec.private_irqs else SPI_BANK, intid)
    f = m.state.irq.get(key)
    if f is None or not f["active"]:
        return
    f["active"] = 0
    apr = m.state.cpu[cpu]["apr"]
    if apr:
        m.state.cpu[cpu]["apr"] = apr & (apr - 1)
