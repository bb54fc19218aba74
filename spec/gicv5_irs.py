"""GICv5 IRS as the proposed KVM series exposes it to userspace (device ``gicv5-irs``):
the IRS MMIO registers (KVM_DEV_ARM_VGIC_GRP_IRS_REGS), the interrupt state tables
(KVM_DEV_ARM_VGIC_GRP_IST), the IRS base address and the VM lifecycle, in three semantic
revisions of the interface.

**Source-only model.** Nothing on this machine runs a GICv5 IRS: no emulator offers one to
KVM (QEMU 7.2 has no gic-version=5; the registry's newest, sid's 11.1.3, has a TCG
``gic-version=x-5`` that "currently supports EL1 only", so no emulated GICv5 host runs
KVM), and no kernel in the registry has the IRS series (sid's 7.2.13 and experimental's
7.3~rc7 have the PPI-only VGICv5; the series is queued for 7.4). No verdict of this device
is confirmed on a kernel; every rule is read from the sources below (FACTS §6, §6b).

Sources:
  SEED  = ../shared/seeds/003_7e2ff99bfc3e01d0.txt, Sascha Bischoff's reply (2026-05-08) to
          Peter Maydell on "[PATCH 43/43] Documentation: KVM: Add the VGICv5 IRS
          save/restore sequences" (line numbers ``Lnn``): the proposed sequences (L83-L126,
          L165-L186), the objection (L127-L131, L188-L191), the simplified ones (L145-L231)
  FACTS = /work/notes/gicv5-facts.md (a research helper's notes from the seed and the
          series as found in the library): its §2.6 register table is read from
          arch/arm64/kvm/vgic/vgic-irs-v5.c (analogdevicesinc/linux@2dfb5d4fa408, the final
          series) and include/linux/irqchip/arm-gic-v5.h; §3 the ISTE format; §4 errnos
  FINAL = the final series' arm-vgic-v5.rst (analogdevicesinc/linux@2bc87b583a30, FACTS §2.4)

Revisions ("kernel" in a sequence file):
  * ``proposed``: the v1 series as patch 43 documents it. The LPI IST is created by the
    userspace IRS_IST_BASER write, from the IRS_IST_CFGR then in force ("KVM extracts
    fields from the CFGR to determine the size and structure of the [IST] ... The IST
    itself is created as part of the write to the IRS_IST_BASER", SEED L49-L54); the
    SPI's level/edge tracking comes from the per-SPI IRS_SPI_CFGR loop (L211-L213).
  * ``simplified``: Sascha's simplification (SEED L193-L219): the LPI IST is allocated by
    the KVM_DEV_ARM_VGIC_GRP_IST restore ("that allocation could made part of the
    KVM_DEV_ARM_VGIC_GRP_IST ioctl, removing the ordering requirement for the
    IRS_IST_BASER and IRS_IST_CFGR regs altogether", L197-L200), and the IST restore sets
    each SPI's level/edge from the ISTE ("that information already exists in the IST
    that is being restored, so if needs be, that can be extracted", L213-L215; the final
    series does it: vgic_v5_restore_spi_config, FACTS §3.1).
  * ``merged``: the final merged ABI (FINAL, FACTS §2.4): as ``simplified``, but the LPI
    IST too travels through a userspace buffer ('does not update guest memory'), IRS_PE_CR0
    is WI and reads DPS=1, and the userspace IRS_SPI_CFGR write is a no-op. Model choice:
    its step c) (KVM_DEV_ARM_VGIC_GRP_NR_IRQS before CTRL_INIT) is not a step: the SPI
    count is the VM's configuration, the same on both sides.

How the state is abstracted (what a verdict covers):
  * **SPIs** are the interrupts of this device (IDs 0..nr_spis-1: IRS_IDR7.SPI_BASE is 0,
    FACTS §2.6); each has the architected bits 4:0 of its SPI IST entry (PENDING, ACTIVE,
    HM, ENABLE, IRM: FACTS §3.2) and KVM's own record of its handling mode (``spi_config``,
    irq->config, which injection uses). Model choice: priority, IAFFID and HWU bits are not
    modelled. Model choice: 32 or 64 SPIs (KVM accepts multiples of 32 up to 1024).
  * **One representative LPI** (as gicv3-its holds one translation): its ISTE PENDING and
    ENABLE bits in the host LPI IST, and the copy the IST save writes into the guest's
    LPI IST in guest memory (SEED L33-L35: "the guest's LPI IST is written to guest
    memory"). The IST restore reads it back from guest memory (SEED L59-L60).
  * **Selectors.** IRS_PE_CR0 and IRS_SPI_CFGR act on the PE / SPI that IRS_PE_SELR /
    IRS_SPI_SELR selects (FACTS §2.6: "SPI_CFGR/SPI_STATUSR act on the SPI named by
    SPI_SELR ... PE_CR0/PE_STATUSR act on the vCPU whose vcpu_id == PE_SELR.IAFFID"); a
    bulk read of the frame therefore captures the selected one only. Proofs hold one SPI
    per class with a symbolic selector, which covers both "this SPI is selected" and "it
    is not" (the selector is compared with the SPI's own number only).
  * **Lifecycle** as global environment fields (vCPUs created, device created, IRS
    address set, initialised), whose operations and -EBUSY-before-INIT rule are the table
    ``spec.lifecycle.GICV5`` (through ``spec.lifecycle.as_effect``); the invariant keeps them in order (and the IRS at its
    initial state before CTRL_INIT); every proof assumes a running source (the device's
    premise ``running``); a fresh destination (an incoming QEMU process) has none. A sequence on this device is proved on
    ``destination = "fresh"`` only.
  * **The LPI buffer** (merged only): register ``VGIC_LPI_IST`` (GRP_IST) is the
    representative LPI's entry in the userspace LPI buffer; model choice: the restore's
    one ioctl is the operation (allocation) then the two buffer writes.
  * **The invariant is an obligation** (``gicproof check``): the reset state satisfies it
    and every action keeps it, guest actions (the IRS registers' guest accessors and the
    GICv5 events of models/guest.py) in a running VM (the premise): a guest cannot run
    before CTRL_INIT. The userspace writes ``INVARIANT_BREAKS`` lists are the exceptions
    it finds (proposed and simplified: a single write sets one of KVM's two copies of an
    SPI's handling mode); the verdicts do not cover a source left so. merged has none.
  * **1-of-N.** A guest that has not opted out of 1-of-N selection has IRS_PE_CR0.DPS = 0
    on some PE (SEED L204-L209); ``assume = ["no-one-of-n"]`` restricts the source to
    guests that opted out everywhere (DPS = 1, KVM's value: FACTS §2.6 "reads DPS=1").
Model choices are marked "model choice"; where FACTS has no rule, the choice says so.
"""

from __future__ import annotations

from dataclasses import dataclass

from spec import lifecycle
from spec.algebra import Ops, Value, bool_and, implies, mask
from spec.behaviours import write_wi
from spec.device import (
    ARCHITECTURAL,
    DERIVED,
    ENVIRONMENT,
    AccessContext,
    Accessor,
    Assumption,
    DeviceSpec,
    Effect,
    Operation,
    Register,
    StateField,
    memory_operations,
)
from spec.sequence import Step

SEED = "seed 003"
FACTS = "gicv5-facts.md"
IRS_C = "arch/arm64/kvm/vgic/vgic-irs-v5.c (final series, FACTS §2.6)"
IRS_REGS = "KVM_DEV_ARM_VGIC_GRP_IRS_REGS"
GRP_IST = "KVM_DEV_ARM_VGIC_GRP_IST"
QRAM = ("QEMU migration/ram.c: RAM is migrated before the device state on the destination "
        "(seed 003 L137-L143: 'd) Restore guest memory e) Restore state')")

# --- constants ------------------------------------------------------------------------
MAX_CPUS = 2  # model choice: proofs hold every vCPU (PE) of a 1- or 2-vCPU VM
SPI_COUNTS = (32, 64)  # model choice (KVM: multiples of 32, 32..1024: FACTS §4 GRP_NR_IRQS)
SEL_PE_BITS = 16  # IRS_PE_SELR.IAFFID[15:0] (FACTS §2.6)
SEL_SPI_BITS = 24  # IRS_SPI_SELR.ID[23:0] (FACTS §2.6)
# model choice: no host values are in FACTS; a host with 16 interrupt ID bits (KVM caps
# ID_BITS at 16: 'ID_BITS=min(16,host)') and a minimum LPI ID width of 14
ID_BITS = 16
MIN_LPI_ID_BITS = 14
PA_RANGE = 5  # model choice: the host's ID_AA64MMFR0.PARange (48 bits)
IAFFID_BITS = 15  # model choice: vpe_id_bits - 1 (FACTS §2.6: 'IAFFID_BITS=vpe_id_bits-1')
PRIORITY_BITS = 4  # 5 priority bits, minus 1 (ISTE PRIORITY[15:11] is 5 bits, FACTS §3.2)
CR0_IDLE = 1 << 1
# IRS_IST_CFGR: STRUCTURE[16], ISTSZ[8:7], L2SZ[6:5], LPI_ID_BITS[4:0]
CFGR_MASK = (1 << 16) | (mask(2) << 7) | (mask(2) << 5) | mask(5)
# IRS_IST_BASER: ADDR[55:6], VALID[0]
BASER_MASK = (mask(50) << 6) | 1


def idr_values(ctx: AccessContext) -> dict[str, int]:
    """The ID registers KVM presents (FACTS §2.6, kvm_vgic_v5_irs_init): IDR0 INT_DOM=NS
    (0b01), PA_RANGE, every capability flag 0 (ONE_N, VIRT_ONE_N among them); IDR1
    PRIORITY_BITS, IAFFID_BITS, PE_CNT = vCPUs; IDR2 LPI=1, IST_LEVELS=0 ('Only allow the
    guest to create Linear ISTs'), MIN_LPI_ID_BITS, ID_BITS; IDR5/IDR6 = nr_spis; IDR7
    SPI_BASE = 0."""
    spis = ctx.irqs
    return {
        "IRS_IDR0": (PA_RANGE << 2) | 0b01,
        "IRS_IDR1": (PRIORITY_BITS << 20) | (IAFFID_BITS << 16) | ctx.cpus,
        "IRS_IDR2": (MIN_LPI_ID_BITS << 6) | (1 << 5) | ID_BITS,
        "IRS_IDR5": spis,
        "IRS_IDR6": spis,
        "IRS_IDR7": 0,
    }


# --- semantics -------------------------------------------------------------------------

@dataclass(frozen=True)
class GicV5Semantics:
    kernel: str
    # the userspace IRS_IST_BASER write (VALID 0->1) allocates the host LPI IST (proposed:
    # SEED L53-L54, L171-L172); otherwise the GRP_IST restore does (SEED L196-L200)
    ist_alloc_at_baser: bool
    # the GRP_IST restore sets KVM's level/edge record of each SPI from the ISTE's HM
    # (SEED L211-L215); otherwise only an IRS_SPI_CFGR write does
    ist_restore_sets_config: bool
    source: str
    revision: str = ""
    # merged (FINAL): the LPI IST travels through a userspace buffer like the SPI IST ('Saving
    # the ISTs writes all IST state to userspace-provided buffers and does not update guest
    # memory'); IRS_PE_CR0 is WI and reads DPS=1 ('we don't support 1-of-N routing'); the
    # userspace IRS_SPI_CFGR write is a no-op (FACTS §2.4, §2.6)
    lpi_buffer: bool = False
    pe_cr0_wi: bool = False
    spi_cfgr_uaccess_noop: bool = False

    def flags(self) -> tuple:
        return (self.ist_alloc_at_baser, self.ist_restore_sets_config, self.lpi_buffer, self.pe_cr0_wi,
                self.spi_cfgr_uaccess_noop)


VERSIONS = {
    "proposed": GicV5Semantics("proposed", True, False,
                               f"{SEED} L25-L63 (patch 43's commit message), L83-L126, L165-L186", "proposed"),
    "simplified": GicV5Semantics("simplified", False, True, f"{SEED} L145-L231 (Sascha Bischoff, 2026-05-08)",
                                 "simplified"),
    "merged": GicV5Semantics("merged", False, True, "FACTS §2.4-§2.6: the final series' arm-vgic-v5.rst "
                             "(analogdevicesinc/linux@2bc87b583a30) and vgic-irs-v5.c (@2dfb5d4fa408), merged into "
                             "kvmarm next (kvm-arm64/gicv5-7.4)", "merged",
                             lpi_buffer=True, pe_cr0_wi=True, spi_cfgr_uaccess_noop=True),
}


# --- state -----------------------------------------------------------------------------

def _env(name: str, rule: str) -> StateField:
    return StateField(name, 1, "global", ENVIRONMENT, rule)


FIELDS = (
    _env("vcpus_created", f"{SEED} L116, L139: 'create vcpus' / 'a) Create VCPUs'"),
    _env("device_created", f"{SEED} L140: 'b) Create GIC, supply GIC base address'"),
    _env("addr_set", f"{SEED} L117-L118: KVM_DEV_ARM_VGIC_GRP_ADDR (KVM_VGIC_V5_ADDR_TYPE_IRS)"),
    _env("initialised", f"{SEED} L119-L121: CTRL_INIT 'sets up the default state and creates the SPI IST'"),
    StateField("irs_enabled", 1, "global", ARCHITECTURAL, f"{IRS_C}: IRS_CR0.IRSEN ('vgic->enabled = IRSEN')"),
    StateField("irs_cr1", 16, "global", ARCHITECTURAL, f"{IRS_C}: IRS_CR1 fields stored by the guest handler"),
    StateField("spi_selr", SEL_SPI_BITS, "global", ARCHITECTURAL,
               f"{IRS_C}: IRS_SPI_SELR 'spi_selr.id' (the guest's selector; reset -1)"),
    StateField("pe_selr", SEL_PE_BITS, "global", ARCHITECTURAL,
               f"{IRS_C}: IRS_PE_SELR 'pe_selr.iaffid' (the guest's selector; reset -1)"),
    StateField("ist_cfgr", 32, "global", ARCHITECTURAL, f"{IRS_C}: IRS_IST_CFGR (STRUCTURE, ISTSZ, L2SZ, LPI_ID_BITS)"),
    StateField("ist_baser", 64, "global", ARCHITECTURAL, f"{IRS_C}: IRS_IST_BASER (ADDR[55:6], VALID[0])"),
    StateField("lpi_ist", 1, "global", DERIVED, f"{SEED} L53-L54, L197-L198; {IRS_C}: vgic_v5_lpi_ist_alloc",
               reason="whether KVM has allocated the host LPI IST: it does so for a valid IRS_IST_BASER "
               "(the state that must survive is the LPI's ISTE, below)"),
    StateField("lpi_pending", 1, "global", ARCHITECTURAL, f"{FACTS} §3.2: the LPI's ISTE PENDING (host LPI IST)"),
    StateField("lpi_enable", 1, "global", ARCHITECTURAL, f"{FACTS} §3.2: the LPI's ISTE ENABLE (host LPI IST)"),
    StateField("mem_lpi_pending", 1, "global", DERIVED, f"{SEED} L33-L35, L89-L91",
               reason="the LPI's ISTE in the guest's LPI IST in guest memory: written by the IST save",
               memory=True),
    StateField("mem_lpi_enable", 1, "global", DERIVED, f"{SEED} L33-L35, L89-L91",
               reason="the LPI's ISTE in the guest's LPI IST in guest memory: written by the IST save",
               memory=True),
    StateField("pe_dps", 1, "cpu", ARCHITECTURAL,
               f"{FACTS} §5: IRS_PE_CR0.DPS, the PE's opt-out of 1-of-N selection; {SEED} L204-L205"),
    StateField("spi_pending", 1, "irq", ARCHITECTURAL, f"{FACTS} §3.2: SPI ISTE bit 0 PENDING"),
    StateField("spi_active", 1, "irq", ARCHITECTURAL, f"{FACTS} §3.2: SPI ISTE bit 1 ACTIVE"),
    StateField("spi_hm", 1, "irq", ARCHITECTURAL, f"{FACTS} §3.2: SPI ISTE bit 2 HM (0 edge, 1 level)"),
    StateField("spi_enable", 1, "irq", ARCHITECTURAL, f"{FACTS} §3.2: SPI ISTE bit 3 ENABLE"),
    StateField("spi_irm", 1, "irq", ARCHITECTURAL, f"{FACTS} §3.2: SPI ISTE bit 4 IRM (1: 1-of-N routing)"),
    StateField("spi_config", 1, "irq", ARCHITECTURAL,
               f"{SEED} L211-L213 ('make sure that KVM correctly tracks the state of level-sensitive and "
               f"edge-triggered SPIs'); {IRS_C}: irq->config, set by IRS_SPI_CFGR.TM"),
)

ISTE_FIELDS = ("spi_pending", "spi_active", "spi_hm", "spi_enable", "spi_irm")  # bits 0..4


def reset(ops: Ops, ctx: AccessContext, scope: str) -> dict[str, Value]:
    """A VM before any lifecycle step; after CTRL_INIT the IRS has KVM's initial values
    (FACTS §2.6, kvm_vgic_v5_irs_init): selectors -1, CR0/CR1/IST registers 0, no LPI IST,
    a zeroed SPI IST. Model choice: PE_CR0.DPS is 1 (KVM reads DPS=1 for every PE; no
    architectural reset value is in FACTS)."""
    c = ops.const
    if scope == "cpu":
        return {"pe_dps": c(1, 1)}
    if scope == "irq":
        return {n: c(0, 1) for n in ISTE_FIELDS + ("spi_config",)}
    return {"vcpus_created": c(0, 1), "device_created": c(0, 1), "addr_set": c(0, 1), "initialised": c(0, 1),
            "irs_enabled": c(0, 1), "irs_cr1": c(0, 16), "spi_selr": c(mask(SEL_SPI_BITS), SEL_SPI_BITS),
            "pe_selr": c(mask(SEL_PE_BITS), SEL_PE_BITS), "ist_cfgr": c(0, 32), "ist_baser": c(0, 64),
            "lpi_ist": c(0, 1), "lpi_pending": c(0, 1), "lpi_enable": c(0, 1), "mem_lpi_pending": c(0, 1),
            "mem_lpi_enable": c(0, 1)}


def cfgr_valid(ops: Ops, cfgr: Value) -> Value:
    """vgic_v5_ist_cfgr_valid (FACTS §2.6, the guest path): LPI_ID_BITS within
    [MIN_LPI_ID_BITS, ID_BITS], ISTSZ the 4-byte entry (ISTMD is 0), STRUCTURE linear
    (IST_LEVELS is 0)."""
    bits = ops.extract(cfgr, 4, 0)
    return bool_and(ops, ops.ule(ops.const(MIN_LPI_ID_BITS, 5), bits), ops.ule(bits, ops.const(ID_BITS, 5)),
                    ops.eq(ops.extract(cfgr, 8, 7), ops.const(0, 2)), ops.eq(ops.extract(cfgr, 16, 16), ops.const(0, 1)))


def _valid(ops: Ops, baser: Value) -> Value:
    return ops.extract(baser, 0, 0)


def invariant_conjuncts(ops: Ops, ctx: AccessContext, scope: str, f: dict[str, Value]) -> list[tuple[str, Value]]:
    one = ops.const(1, 1)
    if scope == "irq":
        # model choice: a guest's IRS_SPI_CFGR write sets KVM's record and the IRS keeps the
        # ISTE's HM to match (FACTS §2.6: the guest write 'sets irq->config of the selected SPI')
        return [("KVM's level/edge record is the ISTE's HM", ops.eq(f["spi_config"], f["spi_hm"]))]
    if scope == "cpu":
        if ctx.semantics.pe_cr0_wi:
            # 'The only thing that the guest can correctly write here is 0x1' (FACTS §2.6)
            return [("IRS_PE_CR0 is WI: DPS is 1", ops.eq(f["pe_dps"], one))]
        return []
    if scope != "global":
        return []
    return [
        # the lifecycle's order (the operations' preconditions): an address needs the
        # device, initialisation needs the address and the vCPUs
        ("lifecycle in order", bool_and(ops, implies(ops, f["addr_set"], f["device_created"]),
                                        implies(ops, f["initialised"], bool_and(ops, f["addr_set"], f["vcpus_created"])))),
        # registers are reachable from CTRL_INIT on (-EBUSY before): the IRS's state is KVM's
        # initial state until then
        ("nothing before CTRL_INIT", implies(ops, ops.not_(f["initialised"], 1), _is_reset(ops, f))),
        ("IST_CFGR holds its fields only", ops.eq(ops.and_(f["ist_cfgr"], ops.const(mask(32) ^ CFGR_MASK, 32)),
                                                    ops.const(0, 32))),
        ("IST_BASER holds ADDR and VALID only",
         ops.eq(ops.and_(f["ist_baser"], ops.const(mask(64) ^ BASER_MASK, 64)), ops.const(0, 64))),
        # a host LPI IST is allocated for a valid IST_BASER only (the guest's write, the proposed
        # userspace write, the simplified IST restore), under a valid CFGR (FACTS §2.6); a
        # userspace write in the simplified revision may leave a valid IST_BASER without one
        # until the IST restore (SEED L197-L200)
        ("an LPI IST needs a valid IST_BASER", implies(ops, ops.eq(f["lpi_ist"], one), _valid(ops, f["ist_baser"]))),
        ("an LPI IST was allocated under a valid IST_CFGR",
         implies(ops, ops.eq(f["lpi_ist"], one), cfgr_valid(ops, f["ist_cfgr"]))),
        ("no LPI state without an LPI IST",
         implies(ops, ops.eq(f["lpi_ist"], ops.const(0, 1)),
                 bool_and(ops, ops.eq(f["lpi_pending"], ops.const(0, 1)), ops.eq(f["lpi_enable"], ops.const(0, 1))))),
    ]


def _is_reset(ops: Ops, f: dict[str, Value]) -> Value:
    r = reset(ops, None, "global")  # type: ignore[arg-type]
    return bool_and(ops, *(ops.eq(f[k], r[k]) for k in r if k not in ("vcpus_created", "device_created", "addr_set",
                                                                       "initialised")))


def _running(ops: Ops, scope: str, f: dict[str, Value]) -> Value:
    if scope != "global":
        return ops.const(1, 1)
    # a VM that runs has the LPI IST its valid IST_BASER describes (the guest's write
    # allocates it; a restored VM's IST restore did before its first run, SEED L57-L60)
    return bool_and(ops, f["vcpus_created"], f["device_created"], f["addr_set"], f["initialised"],
                    ops.eq(f["lpi_ist"], _valid(ops, f["ist_baser"])))


RUNNING = Assumption(
    "running", _running,
    "the source VM is set up and initialised (vCPUs, the VGICv5 and its IRS address, CTRL_INIT) and has the LPI "
    "IST its IRS_IST_BASER describes: QEMU migrates a VM it has realised (it 'always creates the whole VM first ... initializing it', seed 003 L127-L131)",
    f"{SEED} L127-L131, L137-L143")


def _invariant(ops: Ops, ctx: AccessContext, scope: str, f: dict[str, Value]) -> Value:
    return bool_and(ops, *(c for _, c in invariant_conjuncts(ops, ctx, scope, f)))


# --- accessors -------------------------------------------------------------------------

def _not_init(ops: Ops, ctx: AccessContext) -> Value:
    """spec/lifecycle.py GICV5 'irs_regs' / 'ist': -EBUSY before CTRL_INIT."""
    eff = lifecycle.as_effect(lifecycle.GICV5, "irs_regs", ops, ctx.device)
    assert eff.error is not None and eff.errno == "EBUSY"
    return eff.error


# GRP_IRS_REGS before CTRL_INIT: -EBUSY ('VGIC is not initialized'; no register is allowed
# pre-init: v5_reg_allowed_pre_init(), FACTS §2.6, §4)
_EBUSY_RULE = "-EBUSY before CTRL_INIT"


def _user_read(name: str, fn, rule: str, source: str) -> Accessor:
    """A userspace read: -EBUSY before CTRL_INIT (FACTS §2.6, §4)."""
    return Accessor(name, "read", fn, source, f"{rule}; {_EBUSY_RULE}",
                    error=lambda ops, ctx, f: _not_init(ops, ctx), errno="EBUSY", absent=False)


def _user_write(name: str, fn, rule: str, source: str) -> Accessor:
    """A userspace write: -EBUSY before CTRL_INIT, then the register's own rule."""

    def wr(ops: Ops, ctx: AccessContext, f: dict[str, Value], d: Value) -> Effect:
        eff = fn(ops, ctx, f, d)
        busy = _not_init(ops, ctx)
        checks = ((busy, "EBUSY"),) + (eff.errnos or ((eff.error, eff.errno),) if eff.error is not None else ())
        error = busy if eff.error is None else ops.or_(busy, eff.error)
        errno = "EBUSY" if eff.error is None else "EBUSY or " + eff.errno
        return Effect(eff.updates, error=error, errno=errno, errnos=checks)

    return Accessor(name, "write", wr, source, f"{rule}; {_EBUSY_RULE}")


def _guest_read(name: str, fn, rule: str, source: str) -> Accessor:
    return Accessor(name, "read", fn, source, rule)


def _guest_write(name: str, fn, rule: str, source: str) -> Accessor:
    return Accessor(name, "write", fn, source, rule)


def _row(name: str, offset: int, views: tuple[str, ...], rd, wr, rule_r: str, rule_w: str, source: str,
         width: int = 32, uwr=None, rule_uw: str = "", doc: str = "", **kw) -> Register:
    """One IRS register: a single access of ``width`` bits at a byte offset (FACTS §2.6:
    'attr->attr = byte offset in IRS CONFIG_FRAME; value always a __u64')."""
    uwr = uwr or wr
    return Register(name, IRS_REGS, offset, 1, "global", views,
                    _guest_read(f"read_{name.lower()}", rd, rule_r, source),
                    _guest_write(f"write_{name.lower()}", wr, rule_w, source),
                    _user_read(f"uaccess_read_{name.lower()}", rd, rule_r, source),
                    _user_write(f"uaccess_write_{name.lower()}", uwr, rule_uw or rule_w, source),
                    width=width, unit=width // 8, doc=doc, **kw)


def _idr_row(name: str, offset: int) -> Register:
    def rd(ops: Ops, ctx: AccessContext, f: dict[str, Value]) -> Value:
        return ops.const(idr_values(ctx)[name], 32)

    def wr(ops: Ops, ctx: AccessContext, f: dict[str, Value], d: Value) -> Effect:
        want = idr_values(ctx)[name]
        if name == "IRS_IDR1":  # PE_CNT is ignored on a write (FACTS §2.6)
            d, want = ops.extract(d, 31, 16), want >> 16
            return Effect({}, error=ops.not_(ops.eq(d, ops.const(want, 16)), 1), errno="EINVAL")
        return Effect({}, error=ops.not_(ops.eq(d, ops.const(want, 32)), 1), errno="EINVAL")

    def guest_wr(ops: Ops, ctx: AccessContext, f: dict[str, Value], d: Value) -> Effect:
        return Effect({})

    # model choice: a userspace write must equal the value the destination presents (the
    # final series validates field by field, FACTS §2.6; the v1 rule is not in FACTS)
    return _row(name, offset, (), rd, guest_wr, "the ID value KVM presents (FACTS §2.6)", "read-only: ignored",
                f"{IRS_C}; {SEED} L101, L124 ('Restore IRS_IDR0-2 and IRS_IDR5-7 registers')", uwr=wr,
                rule_uw="checked: a value other than the destination's is -EINVAL", sized=name in ("IRS_IDR5", "IRS_IDR6"),
                doc=f"{SEED} L42-L44: 'they define the capabilities of the IRS'")


def _const_row(name: str, offset: int, value: int, what: str) -> Register:
    return _row(name, offset, (), lambda ops, ctx, f: ops.const(value, 32), lambda ops, ctx, f, d: Effect({}),
                what, "ignored", IRS_C, rule_uw="accepted, ignored")


def _raz_row(name: str, offset: int, what: str) -> Register:
    return _row(name, offset, (), lambda ops, ctx, f: ops.const(0, 32), lambda ops, ctx, f, d: Effect({}),
                "RAZ", "WI", f"{IRS_C}: {what}")


def _statusr_row(name: str, offset: int, rd, what: str) -> Register:
    # SEED L62-L63: 'the IRS_*_STATUSR registers can be ignored on restore. They are not
    # userspace writable.'; the final series makes the write a no-op (uaccess_write_wi)
    return _row(name, offset, (), rd, lambda ops, ctx, f, d: Effect({}), what, "not writable: ignored",
                f"{SEED} L62-L63; {IRS_C}")


def _cr0_rd(ops: Ops, ctx: AccessContext, f: dict[str, Value]) -> Value:
    return ops.or_(ops.const(CR0_IDLE, 32), ops.zext(f["irs_enabled"], 1, 32))


def _cr0_wr(ops: Ops, ctx: AccessContext, f: dict[str, Value], d: Value) -> Effect:
    return Effect({"irs_enabled": ops.extract(d, 0, 0)})


def _cr1_wr(ops: Ops, ctx: AccessContext, f: dict[str, Value], d: Value) -> Effect:
    # VPED_WA..IST_RA[15:6], IC[5:4], OC[3:2], SH[1:0]
    return Effect({"irs_cr1": ops.extract(d, 15, 0)})


def _selr_rw(field: str, bits: int):
    def rd(ops: Ops, ctx: AccessContext, f: dict[str, Value]) -> Value:
        return ops.zext(f[field], bits, 32)

    def wr(ops: Ops, ctx: AccessContext, f: dict[str, Value], d: Value) -> Effect:
        return Effect({field: ops.extract(d, bits - 1, 0)})

    return rd, wr


def _spi_cfgr_rd(ops: Ops, ctx: AccessContext, f: dict[str, Value]) -> Value:
    return ops.zext(f["spi_config"], 1, 32)


def _spi_cfgr_wr(ops: Ops, ctx: AccessContext, f: dict[str, Value], d: Value) -> Effect:
    # model choice: the guest's write sets KVM's record (FACTS §2.6) and the ISTE's HM
    tm = ops.extract(d, 0, 0)
    return Effect({"spi_config": tm, "spi_hm": tm})


def _spi_cfgr_uwr(ops: Ops, ctx: AccessContext, f: dict[str, Value], d: Value) -> Effect:
    if ctx.semantics.spi_cfgr_uaccess_noop:
        return Effect({})  # merged: 'case GICV5_IRS_SPI_CFGR: break;' (FACTS §2.6)
    # model choice (v1 and the seed's simplification): the userspace write sets KVM's
    # level/edge record of the selected SPI, what the seed's per-SPI loop restores (L211-L213)
    # (the final series makes it a no-op, FACTS §2.6)
    return Effect({"spi_config": ops.extract(d, 0, 0)})


def _pe_cr0_rd(ops: Ops, ctx: AccessContext, f: dict[str, Value]) -> Value:
    return ops.zext(f["pe_dps"], 1, 32)


def _pe_cr0_wr(ops: Ops, ctx: AccessContext, f: dict[str, Value], d: Value) -> Effect:
    if ctx.semantics.pe_cr0_wi:
        return Effect({})  # merged: WI, 'we don't support 1-of-N routing' (FACTS §2.6)
    # model choice: DPS of the selected PE is stored (the seed's per-PE loop restores it,
    # L204-L205; the final series makes it WI as KVM does not support 1-of-N, FACTS §2.6)
    return Effect({"pe_dps": ops.extract(d, 0, 0)})


def _baser_rd(ops: Ops, ctx: AccessContext, f: dict[str, Value]) -> Value:
    return f["ist_baser"]


def _baser_guest_wr(ops: Ops, ctx: AccessContext, f: dict[str, Value], d: Value) -> Effect:
    """The guest path (FACTS §2.6): VALID 1->1 ignored; 1->0 frees the host LPI IST; 0->1
    validates the CFGR (an invalid one: the write is dropped) and allocates a zeroed IST."""
    return _baser_alloc(ops, f, d, guest=True)


def _baser_alloc(ops: Ops, f: dict[str, Value], d: Value, guest: bool) -> Effect:
    c = ops.const
    new = ops.and_(d, c(BASER_MASK, 64))
    was = _valid(ops, f["ist_baser"])
    now = _valid(ops, new)
    one, zero = c(1, 1), c(0, 1)
    keep = ops.eq(was, one)
    validate = bool_and(ops, ops.eq(was, zero), ops.eq(now, one))
    bad = ops.and_(validate, ops.not_(cfgr_valid(ops, f["ist_cfgr"]), 1))
    free = ops.and_(ops.eq(was, one), ops.eq(now, zero))
    # 1->1 keeps the address ('The address cannot be changed while the IST is valid')
    value = ops.ite(ops.and_(keep, ops.eq(now, one)), f["ist_baser"], new)
    alloc = ops.and_(validate, ops.not_(bad, 1))
    lpi_ist = ops.ite(alloc, one, ops.ite(free, zero, f["lpi_ist"]))
    # model choice: a newly allocated host IST is zeroed; a freed one's state is gone
    gone = ops.or_(alloc, free)
    upd = {"ist_baser": value, "lpi_ist": lpi_ist, "lpi_pending": ops.ite(gone, zero, f["lpi_pending"]),
           "lpi_enable": ops.ite(gone, zero, f["lpi_enable"])}
    if guest:
        # the guest's invalid VALID 0->1 write is dropped silently (FACTS §2.6)
        return Effect({k: ops.ite(bad, f[k], v) for k, v in upd.items()})
    # model choice (proposed): the userspace write goes the guest's way (SEED L196-L197: 're-use
    # the existing LPI IST creation mechanism - on a write to the IRS_IST_BASER') but reports an
    # invalid CFGR as -EINVAL (the v1 errno is not in FACTS; the guest path's check returns it)
    return Effect(upd, error=bad, errno="EINVAL")


def _baser_user_wr(ops: Ops, ctx: AccessContext, f: dict[str, Value], d: Value) -> Effect:
    if ctx.semantics.ist_alloc_at_baser:
        return _baser_alloc(ops, f, d, guest=False)
    # simplified: the write only stores ADDR/VALID; the GRP_IST restore allocates (SEED
    # L196-L200; final series: 'stores ADDR/VALID; no allocation', and a value other than
    # the current one while the host LPI IST exists is -EINVAL, FACTS §2.6)
    new = ops.and_(d, ops.const(BASER_MASK, 64))
    bad = ops.and_(f["lpi_ist"], ops.not_(ops.eq(new, f["ist_baser"]), 1))
    return Effect({"ist_baser": new}, error=bad, errno="EINVAL")


def _cfgr_rd(ops: Ops, ctx: AccessContext, f: dict[str, Value]) -> Value:
    return f["ist_cfgr"]


def _cfgr_guest_wr(ops: Ops, ctx: AccessContext, f: dict[str, Value], d: Value) -> Effect:
    # 'Guest IST_CFGR write ignored while IST_BASER.VALID=1' (FACTS §2.6)
    new = ops.and_(d, ops.const(CFGR_MASK, 32))
    return Effect({"ist_cfgr": ops.ite(_valid(ops, f["ist_baser"]), f["ist_cfgr"], new)})


def _cfgr_user_wr(ops: Ops, ctx: AccessContext, f: dict[str, Value], d: Value) -> Effect:
    if ctx.semantics.ist_alloc_at_baser:
        # model choice (proposed): the guest's rule, as the v1 IST creation reused the guest
        # path (SEED L196-L197)
        return _cfgr_guest_wr(ops, ctx, f, d)
    # final series: 'if LPI IST exists and value != current -> -EINVAL' (FACTS §2.6)
    new = ops.and_(d, ops.const(CFGR_MASK, 32))
    bad = ops.and_(f["lpi_ist"], ops.not_(ops.eq(new, f["ist_cfgr"]), 1))
    return Effect({"ist_cfgr": new}, error=bad, errno="EINVAL")


def _spi_statusr(ops: Ops, ctx: AccessContext, f: dict[str, Value]) -> Value:
    # IDLE=1; V=1 iff SPI_SELR in [SPI_BASE, SPI_BASE+SPI_IRS_RANGE)
    v = ops.ule(f["spi_selr"], ops.const(ctx.irqs - 1, SEL_SPI_BITS))
    return ops.ite(v, ops.const(0b11, 32), ops.const(1, 32))


def _pe_statusr(ops: Ops, ctx: AccessContext, f: dict[str, Value]) -> Value:
    # IDLE=1; ONLINE=V=1 iff IAFFID selects an existing vCPU
    v = ops.ule(f["pe_selr"], ops.const(ctx.cpus - 1, SEL_PE_BITS))
    return ops.ite(v, ops.const(0b111, 32), ops.const(1, 32))


def _one(ops: Ops, ctx: AccessContext, f: dict[str, Value]) -> Value:
    return ops.const(1, 32)


_spi_selr = _selr_rw("spi_selr", SEL_SPI_BITS)
_pe_selr = _selr_rw("pe_selr", SEL_PE_BITS)
PRODUCT_ID_KVM, IMPLEMENTER_ARM = 0x4B, 0x43B  # KVM's IIDR (FACTS §2.6: PRODUCT_ID_KVM / IMPLEMENTER_ARM)

IRS_REGISTERS = (
    _idr_row("IRS_IDR0", 0x000),
    _idr_row("IRS_IDR1", 0x004),
    _idr_row("IRS_IDR2", 0x008),
    _raz_row("IRS_IDR3", 0x00C, "'RAZ/WI as nested virtualization is not supported'"),
    _raz_row("IRS_IDR4", 0x010, "'RAZ/WI as nested virtualization is not supported'"),
    _idr_row("IRS_IDR5", 0x014),
    _idr_row("IRS_IDR6", 0x018),
    _idr_row("IRS_IDR7", 0x01C),
    _const_row("IRS_IIDR", 0x040, (PRODUCT_ID_KVM << 20) | IMPLEMENTER_ARM, "PRODUCT_ID_KVM, IMPLEMENTER_ARM"),
    # model choice: AIDR COMPONENT IRS (0), architecture 5.0
    _const_row("IRS_AIDR", 0x044, 5 << 4, "component IRS, GICv5.0"),
    _row("IRS_CR0", 0x080, ("irs_enabled",), _cr0_rd, _cr0_wr, "IDLE always 1, IRSEN", "IRSEN stored", IRS_C),
    _row("IRS_CR1", 0x084, ("irs_cr1",), lambda ops, ctx, f: ops.zext(f["irs_cr1"], 16, 32), _cr1_wr,
         "the stored fields", "stores the fields (no uaccess: the guest handler)", IRS_C),
    _raz_row("IRS_SYNCR", 0x0C0, "RAZ, WI"),
    _statusr_row("IRS_SYNC_STATUSR", 0x0C4, _one, "IDLE=1"),
    _row("IRS_SPI_SELR", 0x108, ("spi_selr",), _spi_selr[0], _spi_selr[1], "the selected SPI ID", "selects an SPI",
         f"{IRS_C}: 'no uaccess: guest handler stores ID (selector)'"),
    _row("IRS_SPI_CFGR", 0x114, ("spi_config",), _spi_cfgr_rd, _spi_cfgr_wr,
         "TM of the SPI selected by IRS_SPI_SELR (0 if none)", "sets the selected SPI's TM", IRS_C,
         uwr=_spi_cfgr_uwr, rule_uw="sets KVM's level/edge record of the selected SPI",
         selects="irq", selected_by="spi_selr", doc=f"{SEED} L106-L108, L183-L185: the per-SPI loop"),
    _statusr_row("IRS_SPI_STATUSR", 0x118, _spi_statusr, "IDLE=1, V for a valid selector"),
    _row("IRS_PE_SELR", 0x140, ("pe_selr",), _pe_selr[0], _pe_selr[1], "the selected PE's IAFFID", "selects a PE",
         f"{IRS_C}: 'no uaccess: guest handler stores IAFFID (selector)'"),
    _statusr_row("IRS_PE_STATUSR", 0x144, _pe_statusr, "IDLE=1, ONLINE=V for an existing vCPU"),
    _row("IRS_PE_CR0", 0x148, ("pe_dps",), _pe_cr0_rd, _pe_cr0_wr, "DPS of the PE selected by IRS_PE_SELR (0 if none)",
         "sets the selected PE's DPS", IRS_C, selects="cpu", selected_by="pe_selr",
         doc=f"{SEED} L103-L105, L180-L182: the per-PE loop"),
    _row("IRS_IST_BASER", 0x180, ("ist_baser",), _baser_rd, _baser_guest_wr, "ADDR and VALID",
         "0->1 allocates the LPI IST (CFGR must be valid), 1->0 frees it, 1->1 ignored", IRS_C, width=64,
         uwr=_baser_user_wr, rule_uw="proposed: as the guest's write, an invalid CFGR is -EINVAL (creates the LPI "
         "IST: SEED L171-L172); simplified: stores ADDR/VALID (SEED L196-L200)"),
    _row("IRS_IST_CFGR", 0x190, ("ist_cfgr",), _cfgr_rd, _cfgr_guest_wr, "the stored fields",
         "ignored while IST_BASER is valid", IRS_C, uwr=_cfgr_user_wr,
         rule_uw="proposed: ignored while IST_BASER is valid; simplified: a change while the LPI IST exists is -EINVAL"),
    _statusr_row("IRS_IST_STATUSR", 0x194, _one, "IDLE=1"),
)


def _iste_slice_rd(ops: Ops, ctx: AccessContext, f: dict[str, Value]) -> Value:
    """The SPI's ISTE bits 7:0 as the save copies them into the userspace buffer (SEED
    L56-L58: 'The SPI IST gets extracted from a userspace provided buffer'); bits 7:5 of
    the model's slice are 0."""
    v = ops.const(0, 3)
    for name in reversed(ISTE_FIELDS):
        v = ops.concat(v, f[name], 1)
    return v


def _iste_slice_wr(ops: Ops, ctx: AccessContext, f: dict[str, Value], d: Value) -> Effect:
    upd = {name: ops.extract(d, i, i) for i, name in enumerate(ISTE_FIELDS)}
    if ctx.semantics.ist_restore_sets_config:
        upd["spi_config"] = ops.extract(d, 2, 2)  # HM -> irq->config (SEED L213-L215)
    # the SPI IST exists from CTRL_INIT (SEED L119-L121); before it: -EBUSY ('VGIC not
    # initialized', FACTS §4 GRP_IST)
    return Effect(upd, error=_not_init(ops, ctx), errno="EBUSY")


def _lpi_buf_rd(ops: Ops, ctx: AccessContext, f: dict[str, Value]) -> Value:
    """merged: the LPI's ISTE (bits 3 ENABLE, 0 PENDING) as the IST save copies it into the
    userspace LPI buffer ('BIT(lpi_id_bits) * sizeof(__u32)', FACTS §2.5); 0 without an LPI IST."""
    v = ops.concat(ops.concat(f["lpi_enable"], ops.const(0, 2), 2), f["lpi_pending"], 1)
    return ops.ite(f["lpi_ist"], ops.zext(v, 4, 32), ops.const(0, 32))


def _lpi_buf_wr(ops: Ops, ctx: AccessContext, f: dict[str, Value], d: Value) -> Effect:
    """merged: the LPI buffer restored into the host LPI IST the same GRP_IST restore
    allocated; 'non-zero LPI buffer when no LPI IST configured' is -EINVAL (FACTS §2.4 Doc-C
    errors). Other revisions have no LPI buffer: -ENXIO (model choice)."""
    if not ctx.semantics.lpi_buffer:
        return Effect({}, error=ops.const(1, 1), errno="ENXIO")
    none = ops.not_(f["lpi_ist"], 1)
    bad = ops.and_(none, ops.not_(ops.eq(d, ops.const(0, 32)), 1))
    return Effect({"lpi_pending": ops.ite(f["lpi_ist"], ops.extract(d, 0, 0), f["lpi_pending"]),
                   "lpi_enable": ops.ite(f["lpi_ist"], ops.extract(d, 3, 3), f["lpi_enable"])},
                  error=bad, errno="EINVAL")


IST_REGISTERS = (
    Register("VGIC_SPI_IST", GRP_IST, 0, max(SPI_COUNTS) // 4, "irq",
             ("spi_pending", "spi_active", "spi_hm", "spi_enable", "spi_irm"),
             _guest_read("guest_no_access", _iste_slice_rd, "the IRS's view", f"{FACTS} §3.2"),
             write_wi(f"{FACTS} §3.1: the guest reaches the SPI IST only through the IRS"),
             _user_read("get_spi_ist", _iste_slice_rd,
                        "KVM_GET_DEVICE_ATTR GRP_IST: each SPI's ISTE into the userspace buffer", f"{SEED} L56-L58, L89"),
             Accessor("set_spi_ist", "write", _iste_slice_wr, f"{SEED} L56-L58, L176-L177; {FACTS} §3.1",
                      "KVM_SET_DEVICE_ATTR GRP_IST: each SPI's ISTE from the userspace buffer; simplified: "
                      "also its level/edge record from HM"),
             bits_per_irq=8, first_irq=0, irqs=max(SPI_COUNTS),
             doc="model choice: the SPI half of the GRP_IST attribute (its userspace buffer), one byte per SPI "
             "(ISTE bits 7:0); the LPI half is the operations KVM_DEV_ARM_VGIC_GRP_IST_GET/_SET"),
    Register("VGIC_LPI_IST", GRP_IST, 0x100, 1, "global", ("lpi_pending", "lpi_enable"),
             _guest_read("guest_no_access_lpi", _lpi_buf_rd, "the IRS's view", f"{FACTS} §3.2"),
             write_wi(f"{FACTS} §3.1: the guest reaches the LPI IST only through the IRS"),
             Accessor("get_lpi_ist", "read", _lpi_buf_rd, f"{FACTS} §2.4-§2.5 (FINAL)",
                      "merged: the LPI's ISTE into the userspace LPI buffer",
                      error=lambda ops, ctx, f: ops.const(0 if ctx.semantics.lpi_buffer else 1, 1), errno="ENXIO"),
             _user_write("set_lpi_ist", _lpi_buf_wr, "merged: the LPI's ISTE from the userspace LPI buffer",
                         f"{FACTS} §2.4-§2.5 (FINAL)"),
             width=32,
             doc="model choice: the merged revision's LPI buffer of the GRP_IST attribute (struct kvm_vgic_v5_ist "
             "lpi_ist_addr), the representative LPI's entry; no such buffer in the other revisions"),
)


# --- operations --------------------------------------------------------------------------

def _lifecycle(name: str):
    """A lifecycle operation, as spec/lifecycle.py's GICV5 table says (checks, errnos, effects)."""

    def fn(ops: Ops, ctx: AccessContext, g: dict[str, Value]) -> Effect:
        return lifecycle.as_effect(lifecycle.GICV5, name, ops, g)

    return fn


def _ist_get(ops: Ops, ctx: AccessContext, g: dict[str, Value]) -> Effect:
    """KVM_GET_DEVICE_ATTR GRP_IST, the LPI half: 'the LPI IST is stored directly to guest
    memory' (SEED L89-L91); nothing without a host LPI IST."""
    has = g["lpi_ist"]
    if ctx.semantics.lpi_buffer:
        # merged: into the userspace buffer (VGIC_LPI_IST), 'does not update guest memory'
        return Effect({}, error=_not_init(ops, ctx), errno="EBUSY")
    return Effect({"mem_lpi_pending": ops.ite(has, g["lpi_pending"], g["mem_lpi_pending"]),
                   "mem_lpi_enable": ops.ite(has, g["lpi_enable"], g["mem_lpi_enable"])},
                  error=_not_init(ops, ctx), errno="EBUSY")


def _ist_set(ops: Ops, ctx: AccessContext, g: dict[str, Value]) -> Effect:
    """KVM_SET_DEVICE_ATTR GRP_IST, the LPI half: 'The LPI IST is extracted from guest
    memory, and is written to the host-allocated LPI IST' (SEED L59-L60).
    proposed: the host LPI IST must already exist (created by the IRS_IST_BASER write, SEED
    L57-L58: 'Once the LPI IST has been created ... the IST state can be restored');
    without one there is nothing to write (model choice: no error; FACTS has no v1 errno).
    simplified: allocates it here for a valid IRS_IST_BASER (SEED L197-L200): an LPI IST
    that already exists is -EBUSY (FACTS §4, final doc); model choice: an invalid CFGR is
    -EINVAL ('size mismatch', final doc)."""
    c = ops.const
    busy = _not_init(ops, ctx)
    if ctx.semantics.ist_alloc_at_baser:
        has = g["lpi_ist"]
        return Effect({"lpi_pending": ops.ite(has, g["mem_lpi_pending"], g["lpi_pending"]),
                       "lpi_enable": ops.ite(has, g["mem_lpi_enable"], g["lpi_enable"])},
                      error=busy, errno="EBUSY")
    valid = _valid(ops, g["ist_baser"])
    exists = g["lpi_ist"]
    bad_cfg = ops.and_(valid, ops.not_(cfgr_valid(ops, g["ist_cfgr"]), 1))
    error = ops.or_(busy, ops.or_(exists, bad_cfg))
    if ctx.semantics.lpi_buffer:
        # merged: the allocation only; the entries come from the LPI buffer (VGIC_LPI_IST)
        return Effect({"lpi_ist": ops.ite(valid, c(1, 1), exists)}, error=error, errno="EBUSY or EINVAL",
                      errnos=((busy, "EBUSY"), (exists, "EBUSY"), (bad_cfg, "EINVAL")))
    return Effect({"lpi_ist": ops.ite(valid, c(1, 1), exists),
                   "lpi_pending": ops.ite(valid, g["mem_lpi_pending"], g["lpi_pending"]),
                   "lpi_enable": ops.ite(valid, g["mem_lpi_enable"], g["lpi_enable"])},
                  error=error, errno="EBUSY or EINVAL",
                  errnos=((busy, "EBUSY"), (exists, "EBUSY"), (bad_cfg, "EINVAL")))


_LC = "spec/lifecycle.py GICV5"
OPERATIONS = (
    Operation("create_vcpus", _lifecycle("create_vcpus"), f"{_LC} create_vcpus; {SEED} L116, L139",
              "creates the VM's vCPUs (-EBUSY after CTRL_INIT)", side="setup"),
    Operation("create_device", _lifecycle("create_device"), f"{_LC} create_device; {SEED} L140",
              "KVM_CREATE_DEVICE (the VGICv5; a second is -EEXIST)", side="setup"),
    Operation("set_address", _lifecycle("set_address"), f"{_LC} set_address; {SEED} L117-L118; FACTS §4",
              "KVM_SET_DEVICE_ATTR KVM_DEV_ARM_VGIC_GRP_ADDR: the IRS base address (-ENXIO without the device, "
              "-EEXIST when set)", side="setup"),
    Operation("KVM_DEV_ARM_VGIC_CTRL_INIT", _lifecycle("KVM_DEV_ARM_VGIC_CTRL_INIT"),
              f"{_LC} KVM_DEV_ARM_VGIC_CTRL_INIT; {SEED} L119-L121; FACTS §4",
              "initialises the VGIC: default IRS state, creates the SPI IST (-ENXIO without the IRS address, "
              "-ENODEV without vCPUs)", side="setup"),
    Operation("KVM_DEV_ARM_VGIC_GRP_IST_GET", _ist_get, f"{SEED} L89-L91",
              "the LPI half of KVM_GET_DEVICE_ATTR GRP_IST: writes the host LPI IST into the guest's LPI IST",
              views=("lpi_pending", "lpi_enable"), side="save"),
    Operation("KVM_DEV_ARM_VGIC_GRP_IST_SET", _ist_set, f"{SEED} L57-L60, L176-L177, L197-L200",
              "the LPI half of KVM_SET_DEVICE_ATTR GRP_IST: reads the guest's LPI IST into the host LPI IST "
              "(simplified: allocating it)", views=("lpi_pending", "lpi_enable")),
    *memory_operations(QRAM),
)


def _no_one_of_n(ops: Ops, scope: str, f: dict[str, Value]) -> Value:
    if scope == "cpu":
        return ops.eq(f["pe_dps"], ops.const(1, 1))
    if scope == "irq":
        return ops.eq(f["spi_irm"], ops.const(0, 1))
    return ops.const(1, 1)


NO_ONE_OF_N = Assumption(
    "no-one-of-n", _no_one_of_n,
    "the guest opted out of 1-of-N selection on every PE (IRS_PE_CR0.DPS = 1) and routes no SPI 1-of-N "
    "(ISTE.IRM = 0): the simplification's premise ('As long as we are happy to say that 1-of-N is not "
    "supported, then this can be removed')", f"{SEED} L204-L209")

# What userspace can do that the invariant excludes (the invariant obligation finds these
# and no other break; guest actions are taken in a running VM only). KVM's level/edge record
# of an SPI and its ISTE's HM are two copies of one fact; a complete restore leaves them
# equal, but each of these single writes sets one copy only, so a VMM that made it on a
# running VM outside a restore would leave them apart. The verdicts do not cover such a
# source. The merged ABI has neither write (FACTS §2.6: 'case GICV5_IRS_SPI_CFGR: break;',
# and its IST restore sets the record from HM).
_CFGR_BREAK = ("userspace write IRS_SPI_CFGR / KVM's level/edge record is the ISTE's HM",
               "the userspace IRS_SPI_CFGR write sets KVM's record of the selected SPI, not its ISTE's HM "
               "(model choice: what the seed's per-SPI loop restores, L211-L213); the IST restore sets both "
               "(simplified: the record from HM, L213-L215)")
INVARIANT_BREAKS = {
    "proposed": dict([
        _CFGR_BREAK,
        ("userspace write VGIC_SPI_IST[0] / KVM's level/edge record is the ISTE's HM",
         "the proposed IST restore sets the ISTE's HM and not KVM's record, which only the per-SPI IRS_SPI_CFGR "
         "loop after it restores (L211-L213): the gap the simplification closes by extracting the record from "
         "the IST (L213-L215)")]),
    "simplified": dict([_CFGR_BREAK]),
}

# The ideal save: the ISTs (LPI into guest memory, SPI into the buffer), every register
# (selectors first, as the bulk read has them), each PE's and each SPI's selected register
# through its selector, then guest memory. It leaves the source's selectors moved (the
# restore writes back the saved ones before the loops' values matter: see the files).
IDEAL_SAVE = (
    Step(0, "op", "KVM_DEV_ARM_VGIC_GRP_IST_GET"),
    Step(0, "read", "VGIC_SPI_IST"),
    Step(0, "read", "VGIC_LPI_IST"),
    *(Step(0, "read", r.name) for r in IRS_REGISTERS),
    Step(0, "op", "save_memory"),
)

GICV5_IRS = DeviceSpec(
    name="gicv5-irs",
    title="GICv5 IRS (VGICv5, proposed KVM_DEV_ARM_VGIC_GRP_IRS_REGS / GRP_IST), source-only model",
    fields=FIELDS,
    registers=IRS_REGISTERS + IST_REGISTERS,
    operations=OPERATIONS,
    versions=VERSIONS,
    default_kernel="simplified",
    interrupt_kind=lambda intid: "spi",
    reset=reset,
    invariant=_invariant,
    invariant_conjuncts=invariant_conjuncts,
    max_cpus=MAX_CPUS,
    irq_counts=SPI_COUNTS,
    private_irqs=0,
    assumptions=(RUNNING, NO_ONE_OF_N),
    premises=("running",),
    # the graph's ideal save is the bulk one: with 1-of-N in use, IRS_PE_CR0 of the PEs not
    # selected is lost in every order (simplified-qemu-one-of-n.toml shows it)
    order_assumption=_no_one_of_n,
    order_assumption_reason="the guest does not use 1-of-N selection (DPS = 1 on every PE): the bulk save "
                            "reads IRS_PE_CR0 for the selected PE only, a loss no order avoids",
    # the proposal's order (SEED L111-L126, L165-L186) in QEMU's lifecycle (L137-L143)
    interface_order=("create_vcpus", "create_device", "set_address", "KVM_DEV_ARM_VGIC_CTRL_INIT", "restore_memory",
                     "IRS_IST_CFGR", "IRS_IST_BASER", "VGIC_SPI_IST", "KVM_DEV_ARM_VGIC_GRP_IST_SET", "VGIC_LPI_IST", "IRS_CR0",
                     "IRS_CR1", "IRS_SPI_SELR", "IRS_PE_SELR", "IRS_PE_CR0", "IRS_SPI_CFGR"),
    selectors=("pe", "spi"),
    scope_names={"global": "IRS", "cpu": "PE"},
    selector_domains={"pe": "cpu", "spi": "irq"},
    obligations=("invariant", "graph"),
    invariant_breaks=INVARIANT_BREAKS,
    ideal_save=IDEAL_SAVE,
    doc=__doc__ or "",
).validate()
