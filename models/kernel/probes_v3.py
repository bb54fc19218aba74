"""A battery of GICv3/ITS probes for the real-kernel oracle: what KVM's vgic-v3 and its ITS
do with userspace device-attribute accesses, side by side across the cached kernels.

Each probe is one program on a fresh VM (``harness.v3_setup`` plus the probe's steps), so
that no probe sees another's state. A kernel is booted twice with ``gic-version=3``: first
a short discovery batch reads the values some probes write back (GICD_IIDR, GICD_TYPER2,
ICC_CTLR_EL1, GITS_IIDR: they may differ between kernels), then the battery itself.

``python -m models.kernel.harness --probe-v3 [--kernel 6.12,sid]`` prints the table;
``run_battery()`` returns the results for other uses (the notes, the kernel tests).
Every cell is what the kernel printed: a value read, ``ok``, or an errno name.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from models.kernel.harness import (
    GICD,
    GICR,
    GITS,
    BatchResult,
    Op,
    Result,
    level_info_attr,
    redist_attr,
    run_batch,
    sysreg_attr,
    v3_mpidr_attr,
    v3_setup,
)

D, R, S, L, IT = "DIST_REGS", "REDIST_REGS", "CPU_SYSREGS", "LEVEL_INFO", "ITS_REGS"

# The SPI and PPI the pending-latch probes use, and where their bits live.
SPI = 40  # GICD_ISPENDR1 bit 8, GICD_ICFGR2 bits 17:16, LEVEL_INFO vINTID 32 bit 8
SPI_BIT = 1 << (SPI % 32)
SPI_WORD = 4 * (SPI // 32)
SPI_ICFGR = GICD["ICFGR"] + 4 * (SPI // 16)
SPI_EDGE = 2 << 2 * (SPI % 16)
PPI = 20  # GICR_ISPENDR0 bit 20, GICR_ICFGR1 bits 9:8, LEVEL_INFO vINTID 0 bit 20
PPI_BIT = 1 << PPI
PPI_EDGE = 2 << 2 * (PPI % 16)

# Guest-physical memory the table probes back with RAM (above QEMU's virt RAM base).
RAM = 0x40000000
RAM_SIZE = 0x100000
PROPBASE = RAM + 0x10000  # LPI property table (64 KiB: 16 ID bits)
PENDBASE = RAM + 0x20000  # LPI pending table
ITS_DT = RAM + 0x40000  # ITS device table
ITS_CT = RAM + 0x50000  # ITS collection table
ITS_CQ = RAM + 0x60000  # ITS command queue

# GICR_PROPBASER: IDbits 15 (16 bits), InnerCache WB-RaWa (7 << 7), Inner Shareable (1 << 10)
PROPBASER = PROPBASE | 1 << 10 | 7 << 7 | 15
# GICR_PENDBASER: the same attributes, PTZ (bit 62) set
PENDBASER = 1 << 62 | PENDBASE | 1 << 10 | 7 << 7
# GITS_CBASER: Valid, InnerCache WB-RaWa (7 << 59), Inner Shareable, one 4 KiB page
CBASER = 1 << 63 | 7 << 59 | ITS_CQ | 1 << 10
# GITS_BASER<n>: Valid, InnerCache WB-RaWa, Inner Shareable, 4 KiB pages, one page
BASER_DT = 1 << 63 | 7 << 59 | ITS_DT | 1 << 10
BASER_CT = 1 << 63 | 7 << 59 | ITS_CT | 1 << 10


def decode_icc_ctlr(v: int) -> dict[str, int]:
    """ICC_CTLR_EL1's fields (Arm IHI 0069: CBPR 0, EOImode 1, PMHE 6, PRIbits 10:8
    (priority bits - 1), IDbits 13:11 (0: 16 bits, 1: 24 bits), SEIS 14, A3V 15, RSS 18,
    ExtRange 19)."""
    return {"CBPR": v & 1, "EOImode": v >> 1 & 1, "PMHE": v >> 6 & 1, "PRIbits": v >> 8 & 7,
            "IDbits": v >> 11 & 7, "SEIS": v >> 14 & 1, "A3V": v >> 15 & 1, "RSS": v >> 18 & 1,
            "ExtRange": v >> 19 & 1}


def with_revision(iidr: int, rev: int) -> int:
    """An IIDR with its Revision field (bits 15:12) replaced."""
    return iidr & ~0xF000 | (rev & 0xF) << 12


# ---------------------------------------------------------------------------------------
# Probes.


@dataclass
class Step:
    op: Op
    note: str = ""


@dataclass
class Probe:
    key: str  # "e3"
    title: str
    setup: list[Op]
    steps: list[Step] = field(default_factory=list)

    def __call__(self, op: Op, note: str = "") -> Probe:
        self.steps.append(Step(op, note))
        return self

    @property
    def ops(self) -> list[Op]:
        return [*self.setup, *(s.op for s in self.steps)]


@dataclass(frozen=True)
class Discovered:
    """Values read on one kernel before the battery, so that probes can write them back."""

    gicd_iidr: int = 0x4B00343B
    gicd_typer2: int = 0
    icc_ctlr: int = 0x8C00
    gits_iidr: int = 0x4B00043B


def discovery_programs() -> list[list[Op]]:
    return [v3_setup(its=True) + [Op.get(0, D, GICD["IIDR"]), Op.get(0, D, GICD["TYPER2"]),
                                  Op.get(0, S, sysreg_attr(0, "ICC_CTLR_EL1"), 64),
                                  Op.get(1, IT, GITS["IIDR"], 64)]]


def parse_discovery(res: BatchResult) -> Discovered:
    vals = [r.value for r in res[0][-4:]]
    d = Discovered()
    return Discovered(*(v if v is not None else dflt for v, dflt in
                        zip(vals, (d.gicd_iidr, d.gicd_typer2, d.icc_ctlr, d.gits_iidr), strict=True)))


def _dist_access(p: Probe, iidr: int) -> Probe:
    for name in ("CTLR", "TYPER", "IIDR", "TYPER2", "ISENABLER"):
        off = GICD[name] + (4 if name == "ISENABLER" else 0)
        p(Op.get(0, D, off), f"get GICD_{name}{'1' if name == 'ISENABLER' else ''}")
    p(Op.set(0, D, GICD["CTLR"], 0x12), "set GICD_CTLR = 0x12")
    p(Op.set(0, D, GICD["IIDR"], iidr), "set GICD_IIDR = as read")
    p(Op.set(0, D, GICD["TYPER2"], 0), "set GICD_TYPER2 = 0")
    p(Op.set(0, D, GICD["ISENABLER"] + 4, 0x1), "set GICD_ISENABLER1 = 1 (SPI 32)")
    p(Op.get(0, D, GICD["ISENABLER"] + 4), "get GICD_ISENABLER1")
    return p


def battery(d: Discovered = Discovered()) -> list[Probe]:
    """The probes, with the values ``d`` read on the kernel they will run on."""
    pre = v3_setup(init=False)  # everything but KVM_DEV_ARM_VGIC_CTRL_INIT
    post = v3_setup()
    probes: list[Probe] = []

    def probe(key: str, title: str, setup: Sequence[Op]) -> Probe:
        p = Probe(key, title, list(setup))
        probes.append(p)
        return p

    # a. distributor access before and after INIT
    _dist_access(probe("a1", "DIST_REGS before CTRL_INIT", pre), d.gicd_iidr)
    _dist_access(probe("a2", "DIST_REGS after CTRL_INIT", post), d.gicd_iidr)
    p = probe("a3", "KVM_HAS_DEVICE_ATTR and other groups before CTRL_INIT", pre)
    for name in ("CTLR", "IIDR", "TYPER2", "ISENABLER"):
        p(Op.has(0, D, GICD[name]), f"has GICD_{name}")
    p(Op.has(0, R, redist_attr(0, GICR["CTLR"])), "has GICR_CTLR vCPU 0")
    p(Op.has(0, S, sysreg_attr(0, "ICC_PMR_EL1")), "has ICC_PMR_EL1 vCPU 0")
    p(Op.get(0, R, redist_attr(0, GICR["TYPER"])), "get GICR_TYPER vCPU 0")
    p(Op.get(0, S, sysreg_attr(0, "ICC_CTLR_EL1"), 64), "get ICC_CTLR_EL1 vCPU 0")
    p(Op.get(0, L, level_info_attr(0, 32)), "get LEVEL_INFO 32..63")
    p(Op.get(0, "NR_IRQS", 0), "get NR_IRQS")
    p(Op.irq("SPI", 0, SPI, 1), f"KVM_IRQ_LINE SPI {SPI} high")
    p = probe("a4", "GICD_TYPER, GICD_PIDR2, NR_IRQS after CTRL_INIT; without and with an ITS",
              post + [Op.device("its"), Op.set(1, "ADDR", 4, 0x08080000, 64)])
    p(Op.get(0, D, GICD["TYPER"]), "get GICD_TYPER (ITS created after INIT)")
    p(Op.get(0, D, GICD["PIDR2"]), "get GICD_PIDR2")
    p(Op.get(0, "NR_IRQS", 0), "get NR_IRQS")
    p = probe("a5", "GICD_TYPER with the ITS created before CTRL_INIT",
              pre + [Op.device("its"), Op.set(1, "ADDR", 4, 0x08080000, 64), Op.ctrl(0, "INIT")])
    p(Op.get(0, D, GICD["TYPER"]), "get GICD_TYPER")
    p(Op.get(0, R, redist_attr(0, GICR["TYPER"])), "get GICR_TYPER vCPU 0")
    p = probe("a6", "GICD_TYPER without an ITS", post)
    p(Op.get(0, D, GICD["TYPER"]), "get GICD_TYPER")

    # b. GICD_IIDR
    iidr = d.gicd_iidr
    rev = iidr >> 12 & 0xF
    p = probe("b1", "GICD_IIDR write before CTRL_INIT, then INIT and read", pre)
    p(Op.set(0, D, GICD["IIDR"], with_revision(iidr, 2)), "set IIDR rev 2")
    p(Op.ctrl(0, "INIT"), "CTRL_INIT")
    p(Op.get(0, D, GICD["IIDR"]), "get IIDR")
    for r in sorted({0, 1, 2, 3, 4, rev}):
        p = probe(f"b2.{r}", f"GICD_IIDR after INIT: write Revision {r}", post)
        p(Op.get(0, D, GICD["IIDR"]), "get IIDR")
        p(Op.set(0, D, GICD["IIDR"], with_revision(iidr, r)), f"set IIDR rev {r}")
        p(Op.get(0, D, GICD["IIDR"]), "get IIDR")
        p(Op.get(0, R, redist_attr(0, GICR["CTLR"])), "get GICR_CTLR vCPU 0 (IR/CES: rev 3)")
        p(Op.set(0, D, GICD["IGROUPR"] + 4, 0x1), "set GICD_IGROUPR1 = 1")
        p(Op.get(0, D, GICD["IGROUPR"] + 4), "get GICD_IGROUPR1 (writable: rev >= 2)")
    p = probe("b3", "GICD_IIDR after INIT: change ProductID, then Implementer", post)
    p(Op.set(0, D, GICD["IIDR"], iidr ^ 0x01000000), "set IIDR ProductID ^ 1")
    p(Op.set(0, D, GICD["IIDR"], iidr ^ 0x1), "set IIDR Implementer ^ 1")
    p(Op.set(0, D, GICD["IIDR"], iidr ^ 0x10000), "set IIDR Variant ^ 1")
    p(Op.get(0, D, GICD["IIDR"]), "get IIDR")
    p = probe("b4", "GICD_IIDR: lower to rev 2, then raise back to the read revision", post)
    p(Op.set(0, D, GICD["IIDR"], with_revision(iidr, 2)), "set IIDR rev 2")
    p(Op.get(0, D, GICD["IIDR"]), "get IIDR")
    p(Op.set(0, D, GICD["IIDR"], iidr), "set IIDR as read")
    p(Op.get(0, D, GICD["IIDR"]), "get IIDR")

    # c. GICD_TYPER2
    t2 = d.gicd_typer2
    for when, setup in (("before", pre), ("after", post)):
        for key, label, val in (("same", "same", t2), ("0", "0", 0),
                                ("nassgi", "nASSGIcap flipped", t2 ^ 0x100),
                                ("vil", "VIL set, VID 31", t2 | 0x80 | 0x1F)):
            p = probe(f"c.{when}.{key}", f"GICD_TYPER2 write {label} {when} CTRL_INIT", setup)
            p(Op.set(0, D, GICD["TYPER2"], val), f"set TYPER2 = {label}")
            if when == "before":
                p(Op.ctrl(0, "INIT"), "CTRL_INIT")
            p(Op.get(0, D, GICD["TYPER2"]), "get TYPER2")
            p(Op.get(0, D, GICD["CTLR"]), "get GICD_CTLR")

    # d. GICD_CTLR
    p = probe("d", "GICD_CTLR writes after INIT", post)
    p(Op.get(0, D, GICD["CTLR"]), "get CTLR")
    for v in (0x2, 0x12, 0x102, 0x0, 0x3, 0x1, 0x40, 0x80000000):
        p(Op.set(0, D, GICD["CTLR"], v), f"set CTLR = {v:#x}")
        p(Op.get(0, D, GICD["CTLR"]), "get CTLR")

    # e. pending latch and line level
    isp, icp = GICD["ISPENDR"] + SPI_WORD, GICD["ICPENDR"] + SPI_WORD
    lvl = level_info_attr(0, 32)
    bit = f"bit {SPI % 32} (SPI {SPI})"

    def spi(key: str, title: str, edge: bool) -> Probe:
        p = probe(key, f"SPI {SPI} {'edge' if edge else 'level'}: {title}", post)
        p(Op.set(0, D, SPI_ICFGR, SPI_EDGE if edge else 0), f"set GICD_ICFGR{SPI // 16} "
          + ("edge" if edge else "level"))
        p(Op.get(0, D, SPI_ICFGR), "get ICFGR")
        return p

    p = spi("e1", "userspace ISPENDR set, then ISPENDR 0, line low throughout", False)
    p(Op.set(0, D, isp, SPI_BIT), f"set ISPENDR1 {bit}")
    p(Op.get(0, D, isp), "get ISPENDR1")
    p(Op.get(0, L, lvl), "get LEVEL_INFO 32")
    p(Op.set(0, D, isp, 0), "set ISPENDR1 = 0")
    p(Op.get(0, D, isp), "get ISPENDR1")
    p(Op.set(0, D, isp, SPI_BIT), f"set ISPENDR1 {bit}")
    p(Op.set(0, D, icp, SPI_BIT), f"set ICPENDR1 {bit}")
    p(Op.get(0, D, isp), "get ISPENDR1")
    p(Op.get(0, D, icp), "get ICPENDR1")
    p = spi("e2", "KVM_IRQ_LINE high, then low (no ISPENDR write)", False)
    p(Op.irq("SPI", 0, SPI, 1), "line high")
    p(Op.get(0, D, isp), "get ISPENDR1")
    p(Op.get(0, D, icp), "get ICPENDR1")
    p(Op.get(0, L, lvl), "get LEVEL_INFO 32")
    p(Op.irq("SPI", 0, SPI, 0), "line low")
    p(Op.get(0, D, isp), "get ISPENDR1")
    p(Op.get(0, L, lvl), "get LEVEL_INFO 32")
    p = spi("e3", "line high, userspace ICPENDR, then line low", False)
    p(Op.irq("SPI", 0, SPI, 1), "line high")
    p(Op.set(0, D, icp, SPI_BIT), f"set ICPENDR1 {bit}")
    p(Op.get(0, D, isp), "get ISPENDR1")
    p(Op.get(0, L, lvl), "get LEVEL_INFO 32")
    p(Op.irq("SPI", 0, SPI, 0), "line low")
    p(Op.get(0, D, isp), "get ISPENDR1")
    p = spi("e4", "line high, userspace ISPENDR = 0, then line low", False)
    p(Op.irq("SPI", 0, SPI, 1), "line high")
    p(Op.set(0, D, isp, 0), "set ISPENDR1 = 0")
    p(Op.get(0, D, isp), "get ISPENDR1")
    p(Op.irq("SPI", 0, SPI, 0), "line low")
    p(Op.get(0, D, isp), "get ISPENDR1")
    p = spi("e5", "userspace ISPENDR set with the line high, then line low", False)
    p(Op.irq("SPI", 0, SPI, 1), "line high")
    p(Op.set(0, D, isp, SPI_BIT), f"set ISPENDR1 {bit}")
    p(Op.get(0, D, isp), "get ISPENDR1")
    p(Op.irq("SPI", 0, SPI, 0), "line low")
    p(Op.get(0, D, isp), "get ISPENDR1")
    p(Op.get(0, L, lvl), "get LEVEL_INFO 32")
    p = spi("e6", "LEVEL_INFO 1 then 0 (no ISPENDR write)", False)
    p(Op.set(0, L, lvl, SPI_BIT), f"set LEVEL_INFO 32 {bit}")
    p(Op.get(0, L, lvl), "get LEVEL_INFO 32")
    p(Op.get(0, D, isp), "get ISPENDR1")
    p(Op.set(0, L, lvl, 0), "set LEVEL_INFO 32 = 0")
    p(Op.get(0, L, lvl), "get LEVEL_INFO 32")
    p(Op.get(0, D, isp), "get ISPENDR1")
    p = spi("e7", "ISPENDR set, LEVEL_INFO 1, LEVEL_INFO 0", False)
    p(Op.set(0, D, isp, SPI_BIT), f"set ISPENDR1 {bit}")
    p(Op.set(0, L, lvl, SPI_BIT), f"set LEVEL_INFO 32 {bit}")
    p(Op.get(0, D, isp), "get ISPENDR1")
    p(Op.set(0, L, lvl, 0), "set LEVEL_INFO 32 = 0")
    p(Op.get(0, D, isp), "get ISPENDR1")
    p(Op.get(0, L, lvl), "get LEVEL_INFO 32")
    p = spi("e8", "LEVEL_INFO 1, ICPENDR, ISPENDR = 0, LEVEL_INFO 0", False)
    p(Op.set(0, L, lvl, SPI_BIT), f"set LEVEL_INFO 32 {bit}")
    p(Op.set(0, D, icp, SPI_BIT), f"set ICPENDR1 {bit}")
    p(Op.get(0, D, isp), "get ISPENDR1")
    p(Op.set(0, D, isp, 0), "set ISPENDR1 = 0")
    p(Op.get(0, D, isp), "get ISPENDR1")
    p(Op.set(0, L, lvl, 0), "set LEVEL_INFO 32 = 0")
    p(Op.get(0, D, isp), "get ISPENDR1")
    p = spi("e9", "userspace ISPENDR set, 0, ICPENDR; line pulse", True)
    p(Op.set(0, D, isp, SPI_BIT), f"set ISPENDR1 {bit}")
    p(Op.get(0, D, isp), "get ISPENDR1")
    p(Op.set(0, D, isp, 0), "set ISPENDR1 = 0")
    p(Op.get(0, D, isp), "get ISPENDR1")
    p(Op.set(0, D, isp, SPI_BIT), f"set ISPENDR1 {bit}")
    p(Op.set(0, D, icp, SPI_BIT), f"set ICPENDR1 {bit}")
    p(Op.get(0, D, isp), "get ISPENDR1")
    p(Op.irq("SPI", 0, SPI, 1), "line high")
    p(Op.get(0, D, isp), "get ISPENDR1")
    p(Op.get(0, L, lvl), "get LEVEL_INFO 32")
    p(Op.irq("SPI", 0, SPI, 0), "line low")
    p(Op.get(0, D, isp), "get ISPENDR1")
    p(Op.get(0, L, lvl), "get LEVEL_INFO 32")
    p = spi("e10", "line high, ICPENDR, ISPENDR = 0; LEVEL_INFO 1/0", True)
    p(Op.irq("SPI", 0, SPI, 1), "line high")
    p(Op.set(0, D, icp, SPI_BIT), f"set ICPENDR1 {bit}")
    p(Op.get(0, D, isp), "get ISPENDR1")
    p(Op.set(0, D, isp, 0), "set ISPENDR1 = 0")
    p(Op.get(0, D, isp), "get ISPENDR1")
    p(Op.irq("SPI", 0, SPI, 0), "line low")
    p(Op.set(0, L, lvl, SPI_BIT), f"set LEVEL_INFO 32 {bit}")
    p(Op.get(0, D, isp), "get ISPENDR1")
    p(Op.get(0, L, lvl), "get LEVEL_INFO 32")
    p(Op.set(0, L, lvl, 0), "set LEVEL_INFO 32 = 0")
    p(Op.get(0, D, isp), "get ISPENDR1")

    ispr, icpr = redist_attr(0, GICR["ISPENDR0"]), redist_attr(0, GICR["ICPENDR0"])
    ispr1 = redist_attr(1, GICR["ISPENDR0"])
    plvl, plvl1 = level_info_attr(0, 0), level_info_attr(1, 0)
    pbit = f"bit {PPI} (PPI {PPI})"
    for key, edge in (("e11", False), ("e12", True)):
        kind = "edge" if edge else "level"
        p = probe(key, f"PPI {PPI} vCPU 0, {kind}: the same through REDIST_REGS", post)
        p(Op.get(0, R, redist_attr(0, GICR["ICFGR1"])), "get GICR_ICFGR1")
        p(Op.set(0, R, redist_attr(0, GICR["ICFGR1"]), PPI_EDGE if edge else 0),
          f"set GICR_ICFGR1 {kind}")
        p(Op.get(0, R, redist_attr(0, GICR["ICFGR1"])), "get GICR_ICFGR1")
        p(Op.set(0, R, ispr, PPI_BIT), f"set GICR_ISPENDR0 {pbit}")
        p(Op.get(0, R, ispr), "get GICR_ISPENDR0")
        p(Op.get(0, R, ispr1), "get GICR_ISPENDR0 vCPU 1")
        p(Op.set(0, R, icpr, PPI_BIT), f"set GICR_ICPENDR0 {pbit}")
        p(Op.get(0, R, ispr), "get GICR_ISPENDR0")
        p(Op.irq("PPI", 0, PPI, 1), "line high (vCPU 0)")
        p(Op.get(0, R, ispr), "get GICR_ISPENDR0")
        p(Op.get(0, L, plvl), "get LEVEL_INFO 0 vCPU 0")
        p(Op.get(0, L, plvl1), "get LEVEL_INFO 0 vCPU 1")
        p(Op.set(0, R, icpr, PPI_BIT), f"set GICR_ICPENDR0 {pbit}")
        p(Op.get(0, R, ispr), "get GICR_ISPENDR0")
        p(Op.set(0, R, ispr, 0), "set GICR_ISPENDR0 = 0")
        p(Op.get(0, R, ispr), "get GICR_ISPENDR0")
        p(Op.irq("PPI", 0, PPI, 0), "line low")
        p(Op.get(0, R, ispr), "get GICR_ISPENDR0")
        p(Op.set(0, L, plvl, PPI_BIT), f"set LEVEL_INFO 0 {pbit}")
        p(Op.get(0, R, ispr), "get GICR_ISPENDR0")
        p(Op.get(0, L, plvl), "get LEVEL_INFO 0")
        p(Op.set(0, L, plvl, 0), "set LEVEL_INFO 0 = 0")
        p(Op.get(0, R, ispr), "get GICR_ISPENDR0")
    p = probe("e13", "LEVEL_INFO encodings: SGIs, beyond NR_IRQS, unaligned vINTID, info 1", post)
    p(Op.set(0, L, level_info_attr(0, 0), 0xFFFF), "set LEVEL_INFO 0 = 0xffff (SGIs)")
    p(Op.get(0, L, level_info_attr(0, 0)), "get LEVEL_INFO 0")
    p(Op.get(0, L, level_info_attr(0, 128)), "get LEVEL_INFO 128 (NR_IRQS=128)")
    p(Op.set(0, L, level_info_attr(0, 128), 1), "set LEVEL_INFO 128 = 1")
    p(Op.get(0, L, level_info_attr(0, 33)), "get LEVEL_INFO 33 (unaligned)")
    p(Op.get(0, L, level_info_attr(0, 32, info=1)), "get LEVEL_INFO info=1")
    p(Op.get(0, L, level_info_attr(2, 32)), "get LEVEL_INFO 32, MPIDR of vCPU 2 (none)")
    p(Op.get(0, L, level_info_attr(2, 0)), "get LEVEL_INFO 0, MPIDR of vCPU 2 (none)")
    p(Op.get(0, L, v3_mpidr_attr(0, 32) | 1 << 63), "get LEVEL_INFO 32, Aff3=0x80")

    # after a first KVM_RUN (immediate exit): the timer PPIs are mapped to the host's
    vt = 1 << 27  # EL1 virtual timer, PPI 27
    p = probe("e14", "after a first KVM_RUN: timer PPI 27 (mapped to hardware) through "
              "userspace", post + [Op.run(0), Op.run(1)])
    p(Op.get(0, R, redist_attr(0, GICR["ICFGR1"])), "get GICR_ICFGR1")
    p(Op.get(0, R, ispr), "get GICR_ISPENDR0")
    p(Op.get(0, L, plvl), "get LEVEL_INFO 0")
    p(Op.set(0, R, ispr, vt), "set GICR_ISPENDR0 bit 27")
    p(Op.get(0, R, ispr), "get GICR_ISPENDR0")
    p(Op.set(0, R, icpr, vt), "set GICR_ICPENDR0 bit 27")
    p(Op.get(0, R, ispr), "get GICR_ISPENDR0")
    p(Op.set(0, R, ispr, 0), "set GICR_ISPENDR0 = 0")
    p(Op.get(0, R, ispr), "get GICR_ISPENDR0")
    p(Op.set(0, L, plvl, vt), "set LEVEL_INFO 0 bit 27")
    p(Op.get(0, L, plvl), "get LEVEL_INFO 0")
    p(Op.get(0, R, ispr), "get GICR_ISPENDR0")
    p(Op.irq("PPI", 0, 27, 1), "KVM_IRQ_LINE PPI 27 high (owned by the timer)")
    p(Op.set(0, D, SPI_ICFGR, 0), "set GICD_ICFGR2 level")
    p(Op.set(0, D, isp, SPI_BIT), f"set ISPENDR1 {bit}")
    p(Op.get(0, D, isp), "get ISPENDR1")
    p(Op.set(0, D, GICD["IIDR"], with_revision(iidr := d.gicd_iidr, 2)), "set IIDR rev 2")
    p(Op.get(0, D, GICD["IIDR"]), "get IIDR")
    p(Op.set(0, D, GICD["IIDR"], iidr), "set IIDR as read")
    p(Op.set(0, D, GICD["TYPER2"], d.gicd_typer2), "set TYPER2 as read")
    p(Op.ctrl(0, "INIT"), "CTRL_INIT again")
    p(Op.set(0, S, sysreg_attr(0, "ICC_PMR_EL1"), 0xF0, 64), "set ICC_PMR_EL1 = 0xf0")
    p(Op.get(0, S, sysreg_attr(0, "ICC_PMR_EL1"), 64), "get ICC_PMR_EL1")
    p = probe("e15", "KVM_RUN without CTRL_INIT", pre)
    p(Op.run(0), "run vCPU 0 (immediate exit)")
    p(Op.get(0, D, GICD["CTLR"]), "get GICD_CTLR")
    p(Op.ctrl(0, "INIT"), "CTRL_INIT")
    # f. redistributors
    for key, its in (("f1", False), ("f2", True)):
        p = probe(key, f"GICR registers {'with' if its else 'without'} an ITS", v3_setup(its=its))
        for cpu in (0, 1):
            p(Op.get(0, R, redist_attr(cpu, GICR["TYPER"])), f"get GICR_TYPER low vCPU {cpu}")
            p(Op.get(0, R, redist_attr(cpu, GICR["TYPER"] + 4)), f"get GICR_TYPER high vCPU {cpu}")
        p(Op.get(0, R, redist_attr(0, GICR["IIDR"])), "get GICR_IIDR")
        p(Op.get(0, R, redist_attr(0, GICR["PIDR2"])), "get GICR_PIDR2")
        p(Op.get(0, R, redist_attr(0, GICR["STATUSR"])), "get GICR_STATUSR")
        p(Op.get(0, R, redist_attr(0, GICR["WAKER"])), "get GICR_WAKER")
        p(Op.set(0, R, redist_attr(0, GICR["WAKER"]), 0x2), "set GICR_WAKER = 2 (ProcessorSleep)")
        p(Op.get(0, R, redist_attr(0, GICR["WAKER"])), "get GICR_WAKER")
        p(Op.set(0, R, redist_attr(0, GICR["WAKER"]), 0x0), "set GICR_WAKER = 0")
        p(Op.get(0, R, redist_attr(0, GICR["WAKER"])), "get GICR_WAKER")
        p(Op.get(0, R, redist_attr(0, GICR["CTLR"])), "get GICR_CTLR")
        p(Op.get(0, R, redist_attr(0, GICR["PROPBASER"])), "get PROPBASER low")
        p(Op.get(0, R, redist_attr(0, GICR["PENDBASER"])), "get PENDBASER low")
        p(Op.set(0, R, redist_attr(0, GICR["PROPBASER"]), PROPBASER | 0x7 << 56, 64),
          "set64 PROPBASER (OuterCache 7)")
        p(Op.get(0, R, redist_attr(0, GICR["PROPBASER"]), 64), "get64 PROPBASER")
        p(Op.get(0, R, redist_attr(0, GICR["PROPBASER"] + 4)), "get PROPBASER high")
        p(Op.set(0, R, redist_attr(0, GICR["PROPBASER"] + 4), 0x07000001),
          "set PROPBASER high = 0x07000001")
        p(Op.get(0, R, redist_attr(0, GICR["PROPBASER"])), "get PROPBASER low")
        p(Op.get(0, R, redist_attr(0, GICR["PROPBASER"] + 4)), "get PROPBASER high")
        p(Op.get(0, R, redist_attr(1, GICR["PROPBASER"])), "get PROPBASER low vCPU 1 (shared?)")
        p(Op.set(0, R, redist_attr(0, GICR["PENDBASER"]), PENDBASER & 0xFFFFFFFF),
          "set PENDBASER low")
        p(Op.set(0, R, redist_attr(0, GICR["PENDBASER"] + 4), PENDBASER >> 32 | 0x07000000),
          "set PENDBASER high (PTZ, OuterCache 7)")
        p(Op.get(0, R, redist_attr(0, GICR["PENDBASER"])), "get PENDBASER low")
        p(Op.get(0, R, redist_attr(0, GICR["PENDBASER"] + 4)), "get PENDBASER high")
        p(Op.get(0, R, redist_attr(1, GICR["PENDBASER"])), "get PENDBASER low vCPU 1")
        p(Op.set(0, R, redist_attr(0, GICR["CTLR"]), 0x1), "set GICR_CTLR = 1 (EnableLPIs)")
        p(Op.get(0, R, redist_attr(0, GICR["CTLR"])), "get GICR_CTLR")
        p(Op.set(0, R, redist_attr(0, GICR["PROPBASER"]), 0x4003078F), "set PROPBASER low (LPIs on)")
        p(Op.get(0, R, redist_attr(0, GICR["PROPBASER"])), "get PROPBASER low")
        p(Op.set(0, R, redist_attr(0, GICR["PENDBASER"]), 0x40030780), "set PENDBASER low (LPIs on)")
        p(Op.get(0, R, redist_attr(0, GICR["PENDBASER"])), "get PENDBASER low")
        p(Op.set(0, R, redist_attr(0, GICR["CTLR"]), 0x0), "set GICR_CTLR = 0")
        p(Op.get(0, R, redist_attr(0, GICR["CTLR"])), "get GICR_CTLR")
        p(Op.set(0, R, redist_attr(0, GICR["PROPBASER"]), 0x4004078F), "set PROPBASER low (LPIs off?)")
        p(Op.get(0, R, redist_attr(0, GICR["PROPBASER"])), "get PROPBASER low")
        p(Op.get(0, R, redist_attr(2, GICR["CTLR"])), "get GICR_CTLR, MPIDR of vCPU 2 (none)")
    for key, n, region in (("f3", 3, None), ("f4", 3, 3), ("f5", 3, 4)):
        setup = v3_setup(vcpus=n, redist_region_attr=region is not None)
        if region is not None and region != n:
            i = next(j for j, op in enumerate(setup) if op.name == "set64" and op.args[2] == 5)
            setup[i] = Op.set(0, "ADDR", 5, region << 52 | 0x080A0000, 64)
        p = probe(key, f"GICR_TYPER of {n} vCPUs, "
                  + ("KVM_VGIC_V3_ADDR_TYPE_REDIST" if region is None
                     else f"one REDIST_REGION of count {region}"), setup)
        for cpu in range(n):
            p(Op.get(0, R, redist_attr(cpu, GICR["TYPER"])), f"get GICR_TYPER low vCPU {cpu}")
            p(Op.get(0, R, redist_attr(cpu, GICR["TYPER"] + 4)), f"get GICR_TYPER high vCPU {cpu}")
        if region is not None:
            p(Op.get(0, "ADDR", 5, 64), "get REDIST_REGION (index 0 preset)")
        p(Op.get_reg(n - 1, 0x603000000013C005), f"get_reg MPIDR_EL1 vCPU {n - 1}")
    p = probe("f6", "GICR_TYPER of vCPU 17 (MPIDR Aff1=1, Aff0=1) in 18 vCPUs", v3_setup(vcpus=18))
    p(Op.get(0, R, redist_attr(17, GICR["TYPER"])), "get GICR_TYPER low vCPU 17")
    p(Op.get(0, R, redist_attr(17, GICR["TYPER"] + 4)), "get GICR_TYPER high vCPU 17")
    p(Op.get(0, R, v3_mpidr_attr(0, GICR["TYPER"]) | 17 << 32), "get GICR_TYPER low, Aff0=17")
    p(Op.get_reg(17, 0x603000000013C005), "get_reg MPIDR_EL1 vCPU 17")

    # l. round trips of the per-interrupt registers (set/clear views of one field)
    p = probe("l1", "distributor per-interrupt registers: reset values; write, read, clear "
              "view, read", post)
    for name in ("IGROUPR", "ISENABLER", "ISPENDR", "ISACTIVER", "IGRPMODR", "IPRIORITYR", "ICFGR"):
        off = GICD[name] + (0x20 if name == "IPRIORITYR" else 8 if name == "ICFGR" else 4)
        p(Op.get(0, D, off), f"get GICD_{name} (reset)")
    for name, clr, val in (("IGROUPR", None, 0xF0F0F0F0), ("ISENABLER", "ICENABLER", 0x0F0F0F0F),
                           ("ISACTIVER", "ICACTIVER", 0x00FF00FF), ("IGRPMODR", None, 0x12345678),
                           ("IPRIORITYR", None, 0xFFA05008), ("ICFGR", None, 0xFFFFFFFF)):
        off = GICD[name] + (0x20 if name == "IPRIORITYR" else 8 if name == "ICFGR" else 4)
        p(Op.set(0, D, off, val), f"set GICD_{name} = {val:#x}")
        p(Op.get(0, D, off), f"get GICD_{name}")
        if clr:
            p(Op.set(0, D, GICD[clr] + 4, 0xFFFFFFFF), f"set GICD_{clr} = ones")
            p(Op.get(0, D, off), f"get GICD_{name}")
    p = probe("l2", "redistributor SGI/PPI registers (vCPU 1): reset values; write, read, "
              "clear view, read", post)
    for name in ("IGROUPR0", "ISENABLER0", "ISPENDR0", "ISACTIVER0", "IGRPMODR0", "IPRIORITYR",
                 "ICFGR0", "ICFGR1"):
        p(Op.get(0, R, redist_attr(1, GICR[name])), f"get GICR_{name} (reset)")
    for name, clr, val in (("IGROUPR0", None, 0xF0F0F0F0), ("ISENABLER0", "ICENABLER0", 0x0F0F0F0F),
                           ("ISACTIVER0", "ICACTIVER0", 0x00FF00FF), ("IGRPMODR0", None, 0x12345678),
                           ("IPRIORITYR", None, 0xFFA05008), ("ICFGR0", None, 0xFFFFFFFF),
                           ("ICFGR1", None, 0xFFFFFFFF), ("ISPENDR0", None, 0x0000FFFF)):
        off = redist_attr(1, GICR[name])
        p(Op.set(0, R, off, val), f"set GICR_{name} = {val:#x}")
        p(Op.get(0, R, off), f"get GICR_{name}")
        if clr:
            p(Op.set(0, R, redist_attr(1, GICR[clr]), 0xFFFFFFFF), f"set GICR_{clr} = ones")
            p(Op.get(0, R, off), f"get GICR_{name}")
    p(Op.get(0, R, redist_attr(0, GICR["ISPENDR0"])), "get GICR_ISPENDR0 vCPU 0")

    # g. GICD_IROUTER
    irouter = GICD["IROUTER"] + 8 * SPI
    p = probe("g", f"GICD_IROUTER{SPI}: 64-bit and 32-bit halves", post)
    p(Op.get(0, D, irouter), "get low")
    p(Op.get(0, D, irouter + 4), "get high")
    p(Op.set(0, D, irouter, 0x0000000100000001, 64), "set64 0x1_00000001")
    p(Op.get(0, D, irouter, 64), "get64")
    p(Op.get(0, D, irouter + 4), "get high")
    p(Op.set(0, D, irouter, 0x0), "set low = 0")
    p(Op.set(0, D, irouter + 4, 0x1), "set high = 1 (Aff3 = 1: no such vCPU)")
    p(Op.get(0, D, irouter), "get low")
    p(Op.get(0, D, irouter + 4), "get high")
    p(Op.set(0, D, irouter + 4, 0x0), "set high = 0")
    p(Op.set(0, D, irouter, 0x5), "set low = 5 (Aff0 = 5: no such vCPU)")
    p(Op.get(0, D, irouter), "get low")
    p(Op.set(0, D, irouter, 0x80000000), "set low = IRM")
    p(Op.get(0, D, irouter), "get low")
    p(Op.set(0, D, irouter, 0xFF00FFFF), "set low = 0xff00ffff (bits 30:24 RES0)")
    p(Op.get(0, D, irouter), "get low")
    p(Op.get(0, D, GICD["IROUTER"] + 8 * 20), "get IROUTER20 (a PPI: reserved)")
    p(Op.get(0, D, GICD["IROUTER"] + 8 * 127), "get IROUTER127 (last SPI)")
    p(Op.get(0, D, GICD["IROUTER"] + 8 * 128), "get IROUTER128 (beyond NR_IRQS)")
    p(Op.set(0, D, GICD["IROUTER"] + 8 * 128, 1), "set IROUTER128 = 1")

    # h. CPU interface system registers
    p = probe("h1", "CPU_SYSREGS reads, vCPU 0 (and 1, and none)", post)
    for name in ("ICC_CTLR_EL1", "ICC_SRE_EL1", "ICC_PMR_EL1", "ICC_BPR0_EL1", "ICC_BPR1_EL1",
                 "ICC_IGRPEN0_EL1", "ICC_IGRPEN1_EL1", *(f"ICC_AP{g}R{n}_EL1" for g in (0, 1)
                                                        for n in range(4)),
                 "ICC_RPR_EL1", "ICC_HPPIR1_EL1"):
        p(Op.get(0, S, sysreg_attr(0, name), 64), f"get {name}")
    p(Op.has(0, S, sysreg_attr(0, "ICC_AP0R1_EL1")), "has ICC_AP0R1_EL1")
    p(Op.get(0, S, sysreg_attr(1, "ICC_CTLR_EL1"), 64), "get ICC_CTLR_EL1 vCPU 1")
    p(Op.get(0, S, sysreg_attr(2, "ICC_CTLR_EL1"), 64), "get ICC_CTLR_EL1, MPIDR of vCPU 2 (none)")
    p(Op.get(0, S, sysreg_attr(0, "ICC_CTLR_EL1")), "get32 ICC_CTLR_EL1")
    ctlr = d.icc_ctlr
    pri = ctlr >> 8 & 7
    ids = ctlr >> 11 & 7
    for key, label, v in (("same", "as read", ctlr),
                          ("pri+1", "PRIbits + 1", ctlr & ~0x700 | min(pri + 1, 7) << 8),
                          ("pri-1", "PRIbits - 1", ctlr & ~0x700 | max(pri - 1, 0) << 8),
                          ("idbits", "IDbits changed", ctlr & ~0x3800 | (ids ^ 1) << 11),
                          ("seis", "SEIS flipped", ctlr ^ 1 << 14),
                          ("a3v", "A3V flipped", ctlr ^ 1 << 15),
                          ("cbpr", "CBPR, EOImode set", ctlr | 0x3),
                          ("pmhe", "PMHE set", ctlr | 0x40),
                          ("rss", "RSS set", ctlr | 1 << 18)):
        p = probe(f"h2.{key}", f"ICC_CTLR_EL1 write: {label}", post)
        p(Op.set(0, S, sysreg_attr(0, "ICC_CTLR_EL1"), v, 64), f"set ICC_CTLR_EL1 ({label})")
        p(Op.get(0, S, sysreg_attr(0, "ICC_CTLR_EL1"), 64), "get ICC_CTLR_EL1")
        p(Op.get(0, S, sysreg_attr(1, "ICC_CTLR_EL1"), 64), "get ICC_CTLR_EL1 vCPU 1")
    p = probe("h3", "ICC_PMR/BPR/IGRPEN/AP/SRE writes and masking", post)
    for name, vals in (("ICC_PMR_EL1", (0xFF, 0x0F, 0x1FF)), ("ICC_BPR0_EL1", (0, 7, 3)),
                       ("ICC_BPR1_EL1", (0, 7, 4)), ("ICC_IGRPEN0_EL1", (1, 3)),
                       ("ICC_IGRPEN1_EL1", (1, 3)), ("ICC_AP0R0_EL1", (0xFFFFFFFF, 0x1_0000_0001)),
                       ("ICC_AP1R0_EL1", (0xFFFFFFFF,)), ("ICC_AP1R1_EL1", (1,)),
                       ("ICC_AP1R3_EL1", (1,)), ("ICC_SRE_EL1", (0x0, 0x7, 0xF))):
        for v in vals:
            p(Op.set(0, S, sysreg_attr(0, name), v, 64), f"set {name} = {v:#x}")
            p(Op.get(0, S, sysreg_attr(0, name), 64), f"get {name}")
    p = probe("h4", "ICC_BPR1 with ICC_CTLR.CBPR set; ICC_PMR of vCPU 1", post)
    p(Op.set(0, S, sysreg_attr(0, "ICC_CTLR_EL1"), ctlr | 1, 64), "set ICC_CTLR_EL1 CBPR")
    p(Op.set(0, S, sysreg_attr(0, "ICC_BPR0_EL1"), 5, 64), "set ICC_BPR0_EL1 = 5")
    p(Op.get(0, S, sysreg_attr(0, "ICC_BPR1_EL1"), 64), "get ICC_BPR1_EL1")
    p(Op.set(0, S, sysreg_attr(0, "ICC_BPR1_EL1"), 6, 64), "set ICC_BPR1_EL1 = 6")
    p(Op.get(0, S, sysreg_attr(0, "ICC_BPR1_EL1"), 64), "get ICC_BPR1_EL1")
    p(Op.get(0, S, sysreg_attr(0, "ICC_BPR0_EL1"), 64), "get ICC_BPR0_EL1")
    p(Op.set(0, S, sysreg_attr(0, "ICC_CTLR_EL1"), ctlr, 64), "set ICC_CTLR_EL1 CBPR clear")
    p(Op.get(0, S, sysreg_attr(0, "ICC_BPR1_EL1"), 64), "get ICC_BPR1_EL1")
    p(Op.set(0, S, sysreg_attr(1, "ICC_PMR_EL1"), 0xA0, 64), "set ICC_PMR_EL1 vCPU 1 = 0xa0")
    p(Op.get(0, S, sysreg_attr(1, "ICC_PMR_EL1"), 64), "get ICC_PMR_EL1 vCPU 1")
    p(Op.get(0, S, sysreg_attr(0, "ICC_PMR_EL1"), 64), "get ICC_PMR_EL1 vCPU 0")
    p = probe("h5", "CPU_SYSREGS before CTRL_INIT", pre)
    p(Op.get(0, S, sysreg_attr(0, "ICC_CTLR_EL1"), 64), "get ICC_CTLR_EL1")
    p(Op.set(0, S, sysreg_attr(0, "ICC_PMR_EL1"), 0xF0, 64), "set ICC_PMR_EL1 = 0xf0")
    p(Op.ctrl(0, "INIT"), "CTRL_INIT")
    p(Op.get(0, S, sysreg_attr(0, "ICC_PMR_EL1"), 64), "get ICC_PMR_EL1")

    # i. SAVE_PENDING_TABLES
    p = probe("i1", "SAVE_PENDING_TABLES before CTRL_INIT", pre)
    p(Op.ctrl(0, "SAVE_PENDING_TABLES"), "SAVE_PENDING_TABLES")
    p = probe("i2", "SAVE_PENDING_TABLES after CTRL_INIT, no ITS", post)
    p(Op.ctrl(0, "SAVE_PENDING_TABLES"), "SAVE_PENDING_TABLES")
    p(Op.has(0, "CTRL", 3), "has SAVE_PENDING_TABLES")
    p = probe("i3", "SAVE_PENDING_TABLES with an ITS, no tables, no RAM", v3_setup(its=True))
    p(Op.ctrl(0, "SAVE_PENDING_TABLES"), "SAVE_PENDING_TABLES")
    p = probe("i4", "SAVE_PENDING_TABLES with an ITS, PENDBASER set, EnableLPIs, RAM",
              v3_setup(its=True) + [Op.mem(RAM, RAM_SIZE)])
    for cpu in (0, 1):
        p(Op.set(0, R, redist_attr(cpu, GICR["PROPBASER"]), PROPBASER & 0xFFFFFFFF),
          f"set PROPBASER low vCPU {cpu}")
        p(Op.set(0, R, redist_attr(cpu, GICR["PENDBASER"]), (PENDBASER + cpu * 0x10000) & 0xFFFFFFFF),
          f"set PENDBASER low vCPU {cpu}")
        p(Op.set(0, R, redist_attr(cpu, GICR["CTLR"]), 1), f"set GICR_CTLR = 1 vCPU {cpu}")
    p(Op.ctrl(0, "SAVE_PENDING_TABLES"), "SAVE_PENDING_TABLES")
    p(Op.peek(PENDBASE + 0x400), "peek pending table +0x400")
    p = probe("i5", "SAVE_PENDING_TABLES with an ITS, EnableLPIs, no RAM", v3_setup(its=True))
    p(Op.set(0, R, redist_attr(0, GICR["CTLR"]), 1), "set GICR_CTLR = 1")
    p(Op.get(0, R, redist_attr(0, GICR["CTLR"])), "get GICR_CTLR")
    p(Op.ctrl(0, "SAVE_PENDING_TABLES"), "SAVE_PENDING_TABLES")

    # j. the ITS
    its_regs = ("CTLR", "IIDR", "TYPER", "CBASER", "CREADR", "CWRITER",
                *(f"BASER{n}" for n in range(8)))

    def its_gets(p: Probe) -> None:
        for name in its_regs:
            p(Op.get(1, IT, GITS[name], 64), f"get GITS_{name}")

    p = probe("j1", "ITS created, no address set", post + [Op.device("its")])
    p(Op.get(1, IT, GITS["CTLR"], 64), "get GITS_CTLR")
    p(Op.ctrl(1, "INIT"), "ITS CTRL_INIT")
    p(Op.get(1, IT, GITS["CTLR"], 64), "get GITS_CTLR")
    p(Op.get(1, "ADDR", 4, 64), "get ITS address")
    p = probe("j2", "ITS registers before the ITS's CTRL_INIT (GIC initialised)",
              v3_setup(its=True, its_init=False))
    its_gets(p)
    p = probe("j3", "ITS registers after the ITS's CTRL_INIT", v3_setup(its=True))
    its_gets(p)
    p(Op.get(1, IT, GITS["TYPER"] + 4, 64), "get offset 0xc (TYPER high)")
    p(Op.get(1, IT, GITS["IIDR"], 32), "get32 GITS_IIDR")
    p(Op.get(1, IT, 0xFFE8, 64), "get GITS_PIDR2")
    p = probe("j4", "ITS registers with the GIC not initialised",
              v3_setup(init=False, its=True, its_init=True))
    p(Op.get(1, IT, GITS["CTLR"], 64), "get GITS_CTLR")
    p(Op.get(1, IT, GITS["IIDR"], 64), "get GITS_IIDR")
    p(Op.ctrl(0, "INIT"), "GIC CTRL_INIT")
    p(Op.get(1, IT, GITS["CTLR"], 64), "get GITS_CTLR")
    p = probe("j5", "GITS_CBASER, CREADR, CWRITER", v3_setup(its=True))
    p(Op.set(1, IT, GITS["CREADR"], 0x20, 64), "set CREADR = 0x20 (no CBASER)")
    p(Op.get(1, IT, GITS["CREADR"], 64), "get CREADR")
    p(Op.set(1, IT, GITS["CWRITER"], 0x40, 64), "set CWRITER = 0x40 (no CBASER)")
    p(Op.get(1, IT, GITS["CWRITER"], 64), "get CWRITER")
    p(Op.set(1, IT, GITS["CBASER"], CBASER, 64), "set CBASER (valid, 1 page)")
    p(Op.get(1, IT, GITS["CBASER"], 64), "get CBASER")
    p(Op.get(1, IT, GITS["CREADR"], 64), "get CREADR (reset by CBASER?)")
    p(Op.get(1, IT, GITS["CWRITER"], 64), "get CWRITER (reset by CBASER?)")
    p(Op.set(1, IT, GITS["CREADR"], 0x60, 64), "set CREADR = 0x60")
    p(Op.get(1, IT, GITS["CREADR"], 64), "get CREADR")
    p(Op.set(1, IT, GITS["CWRITER"], 0x80, 64), "set CWRITER = 0x80")
    p(Op.get(1, IT, GITS["CWRITER"], 64), "get CWRITER")
    p(Op.set(1, IT, GITS["CREADR"], 0x61, 64), "set CREADR = 0x61 (unaligned)")
    p(Op.get(1, IT, GITS["CREADR"], 64), "get CREADR")
    p(Op.set(1, IT, GITS["CREADR"], 0x1000, 64), "set CREADR = 0x1000 (= queue size)")
    p(Op.get(1, IT, GITS["CREADR"], 64), "get CREADR")
    p(Op.set(1, IT, GITS["CWRITER"], 0x2000, 64), "set CWRITER = 0x2000 (beyond queue)")
    p(Op.get(1, IT, GITS["CWRITER"], 64), "get CWRITER")
    p(Op.set(1, IT, GITS["CREADR"], 1 << 0, 64), "set CREADR = 1 (Stalled bit)")
    p(Op.get(1, IT, GITS["CREADR"], 64), "get CREADR")
    p(Op.set(1, IT, GITS["CBASER"], CBASER, 64), "set CBASER again (same)")
    p(Op.get(1, IT, GITS["CREADR"], 64), "get CREADR")
    p(Op.get(1, IT, GITS["CWRITER"], 64), "get CWRITER")
    p(Op.set(1, IT, GITS["BASER0"], BASER_DT, 64), "set BASER0 (device table)")
    p(Op.get(1, IT, GITS["BASER0"], 64), "get BASER0")
    p(Op.set(1, IT, GITS["BASER1"], BASER_CT, 64), "set BASER1 (collection table)")
    p(Op.get(1, IT, GITS["BASER1"], 64), "get BASER1")
    p(Op.set(1, IT, GITS["BASER2"], BASER_DT, 64), "set BASER2")
    p(Op.get(1, IT, GITS["BASER2"], 64), "get BASER2")
    p = probe("j6", "SAVE/RESTORE_TABLES and CTRL_RESET with no tables", v3_setup(its=True))
    p(Op.ctrl(1, "ITS_SAVE_TABLES"), "ITS_SAVE_TABLES")
    p(Op.ctrl(1, "ITS_RESTORE_TABLES"), "ITS_RESTORE_TABLES")
    p(Op.ctrl(1, "ITS_CTRL_RESET"), "ITS_CTRL_RESET")
    p(Op.get(1, IT, GITS["CTLR"], 64), "get GITS_CTLR")
    p(Op.ctrl(1, 99), "CTRL attr 99")
    p = probe("j7", "GITS_CTLR.Enabled with no tables", v3_setup(its=True))
    p(Op.set(1, IT, GITS["CTLR"], 1, 64), "set GITS_CTLR = 1")
    p(Op.get(1, IT, GITS["CTLR"], 64), "get GITS_CTLR")
    p(Op.set(1, IT, GITS["CBASER"], CBASER, 64), "set CBASER")
    p(Op.set(1, IT, GITS["CTLR"], 1, 64), "set GITS_CTLR = 1")
    p(Op.get(1, IT, GITS["CTLR"], 64), "get GITS_CTLR")
    p(Op.ctrl(1, "ITS_SAVE_TABLES"), "ITS_SAVE_TABLES")
    for key, ram in (("j8", True), ("j9", False)):
        p = probe(key, "GITS_CTLR.Enabled with CBASER and BASER0/1 valid, "
                  + ("tables in RAM" if ram else "no RAM behind them"),
                  v3_setup(its=True) + ([Op.mem(RAM, RAM_SIZE)] if ram else []))
        p(Op.set(1, IT, GITS["CBASER"], CBASER, 64), "set CBASER")
        p(Op.set(1, IT, GITS["BASER0"], BASER_DT, 64), "set BASER0")
        p(Op.set(1, IT, GITS["BASER1"], BASER_CT, 64), "set BASER1")
        p(Op.ctrl(1, "ITS_RESTORE_TABLES"), "ITS_RESTORE_TABLES (ITS disabled)")
        p(Op.set(1, IT, GITS["CTLR"], 1, 64), "set GITS_CTLR = 1")
        p(Op.get(1, IT, GITS["CTLR"], 64), "get GITS_CTLR")
        p(Op.ctrl(1, "ITS_SAVE_TABLES"), "ITS_SAVE_TABLES (enabled)")
        if ram:
            p(Op.peek(ITS_CT), "peek collection table +0")
            p(Op.poke(ITS_CT, 0xDEAD), "poke collection table +0 = 0xdead")
        p(Op.ctrl(1, "ITS_RESTORE_TABLES"), "ITS_RESTORE_TABLES (enabled)")
        p(Op.set(1, IT, GITS["CWRITER"], 0x20, 64), "set CWRITER = 0x20 (enabled)")
        p(Op.get(1, IT, GITS["CREADR"], 64), "get CREADR")
        p(Op.ctrl(1, "ITS_CTRL_RESET"), "ITS_CTRL_RESET")
        its_gets(p)
        if ram:
            p(Op.peek(ITS_CT), "peek collection table +0")
    p = probe("j10", "GITS_IIDR writes", v3_setup(its=True))
    gi = d.gits_iidr
    p(Op.get(1, IT, GITS["IIDR"], 64), "get GITS_IIDR")
    for r in (1, 0, 2):
        p(Op.set(1, IT, GITS["IIDR"], with_revision(gi, r), 64), f"set GITS_IIDR rev {r}")
        p(Op.get(1, IT, GITS["IIDR"], 64), "get GITS_IIDR")
    p(Op.set(1, IT, GITS["IIDR"], gi ^ 0x01000000, 64), "set GITS_IIDR ProductID ^ 1")
    p(Op.get(1, IT, GITS["IIDR"], 64), "get GITS_IIDR")
    p(Op.set(1, IT, GITS["TYPER"], 0, 64), "set GITS_TYPER = 0 (read-only)")
    p(Op.get(1, IT, GITS["TYPER"], 64), "get GITS_TYPER")
    p = probe("j11", "GITS_BASER0 fields: Type/Entry_Size read-only, Indirect, PageSize, Size",
              v3_setup(its=True))
    p(Op.set(1, IT, GITS["BASER0"], 0xFFFFFFFFFFFFFFFF, 64), "set BASER0 = all ones")
    p(Op.get(1, IT, GITS["BASER0"], 64), "get BASER0")
    p(Op.set(1, IT, GITS["BASER1"], 0xFFFFFFFFFFFFFFFF, 64), "set BASER1 = all ones")
    p(Op.get(1, IT, GITS["BASER1"], 64), "get BASER1")
    p(Op.set(1, IT, GITS["CBASER"], 0xFFFFFFFFFFFFFFFF, 64), "set CBASER = all ones")
    p(Op.get(1, IT, GITS["CBASER"], 64), "get CBASER")
    return probes


# ---------------------------------------------------------------------------------------
# Running and showing.


@dataclass
class KernelRun:
    label: str
    uname_r: str  # what the guest printed
    describe: str  # the manifest's label, uname -r, package and Debian version
    discovered: Discovered
    probes: list[Probe]
    results: list[list[Result]]
    dmesg: list[str] = field(default_factory=list)  # the guest's KVM/GIC boot messages


def run_battery(kernels: Sequence[str], gic: int = 3, timeout: float = 600.0,
                append: str = "") -> list[KernelRun]:
    """Two boots per kernel: discovery, then the battery. Raises KernelOracleError."""
    runs = []
    for k in kernels:
        disc = parse_discovery(run_batch(k, gic, discovery_programs(), timeout, append))
        probes = battery(disc)
        res = run_batch(k, gic, [p.ops for p in probes], timeout, append)
        runs.append(KernelRun(res.kernel.label, res.uname_r, res.kernel.describe(), disc,
                              probes, res.programs, res.dmesg))
    return runs


def _cell(run: KernelRun, i: int, j: int, line: str) -> str:
    """The result of step j of probe i on one kernel (the op line too when it differs)."""
    p = run.probes[i]
    r = run.results[i][len(p.setup) + j].text
    own = p.steps[j].op.line()
    return r if own == line else f"{r} [{own}]"


def _setup_cell(run: KernelRun, i: int) -> str:
    """"ok" when every setup operation did what it is there for (a `run` is meant to
    return EINTR: kvm_run.immediate_exit), else the ones that did not."""
    p = run.probes[i]
    bad = [f"{op.line()} -> {r.text}" for op, r in zip(p.setup, run.results[i], strict=False)
           if not (r.ok or (op.name == "run" and r.errno == "EINTR"))]
    return "ok" if not bad else "; ".join(bad)


def rows(runs: Sequence[KernelRun]) -> list[tuple[str, str, list[str]]]:
    """(probe key, what, cells per kernel) for every probe header and step."""
    first = runs[0]
    out = []
    for i, p in enumerate(first.probes):
        out.append((p.key, p.title, [_setup_cell(r, i) for r in runs]))
        for j, s in enumerate(p.steps):
            line = s.op.line()
            out.append(("", f"{s.note:<44} {line}", [_cell(r, i, j, line) for r in runs]))
    return out


def format_table(runs: Sequence[KernelRun]) -> str:
    lines = [f"{r.label}: {r.describe}; guest uname -r {r.uname_r}" for r in runs]
    lines.append("")
    w = 100
    cw = 12
    lines.append(f"{'':<{w}}" + "".join(f"{r.label:<{cw}}" for r in runs))
    for key, what, cells in rows(runs):
        if key:
            lines.append("")
            lines.append(f"[{key}] {what}  (setup: " + ", ".join(
                f"{r.label} {c}" for r, c in zip(runs, cells, strict=True)) + ")")
        else:
            lines.append(f"  {what:<{w - 2}}" + "".join(f"{c:<{cw}}" for c in cells))
    return "\n".join(lines)


def format_markdown(runs: Sequence[KernelRun], readings: dict[str, str] | None = None) -> str:
    """Per probe: its program text (the setup as one line), a reading, and one row per step
    with every kernel's result side by side."""
    readings = readings or {}
    out = ["| kernel | manifest | guest `uname -r` |", "|---|---|---|"]
    out += [f"| {r.label} | {r.describe} | {r.uname_r} |" for r in runs]
    first = runs[0]
    for i, p in enumerate(first.probes):
        out += ["", f"### {p.key}: {p.title}", ""]
        if p.key in readings:
            out += [f"**Reading:** {readings[p.key]}", ""]
        setups = {_setup_cell(r, i) for r in runs}
        out += ["```", f"# setup ({len(p.setup)} ops, "
                + ("all ok on every kernel" if setups == {"ok"} else "NOT all ok: see table")
                + "): " + "; ".join(op.line() for op in p.setup),
                *(s.op.line() for s in p.steps), "```", ""]
        out.append("| # | step | " + " | ".join(r.label for r in runs) + " |")
        out.append("|---|---|" + "---|" * len(runs))
        if setups != {"ok"}:
            out.append("| | setup | " + " | ".join(_setup_cell(r, i) for r in runs) + " |")
        for j, s in enumerate(p.steps):
            line = s.op.line()
            cells = [_cell(r, i, j, line) for r in runs]
            mark = " **≠**" if len(set(c.split(" [")[0] for c in cells)) > 1 else ""
            out.append(f"| {j + 1} | {s.note}{mark} | " + " | ".join(f"`{c}`" for c in cells) + " |")
    return "\n".join(out) + "\n"
