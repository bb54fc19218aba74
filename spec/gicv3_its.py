"""GICv3 with an ITS: the VM's GICv3 (KVM_DEV_TYPE_ARM_VGIC_V3) and its ITS
(KVM_DEV_TYPE_ARM_VGIC_ITS) as one device, with the LPIs and the tables that live in guest
memory.

One file restores both devices (as every VMM does: QEMU's GICv3 post_load, then the ITS's,
MIG_PRI_GICV3 before MIG_PRI_GICV3_ITS), so "the redistributors before
KVM_DEV_ARM_ITS_RESTORE_TABLES" is an edge of one graph. The device is composed from two
tables (``spec.device.compose``): the GICv3's, with the rows an ITS changes
(GICR_CTLR.EnableLPIs, GICR_PROPBASER/PENDBASER ignored once LPIs are enabled), and the
ITS's (KVM_DEV_ARM_VGIC_GRP_ITS_REGS), plus the operations that move state between the
kernel and guest memory.

Sources:
  DOCITS = Documentation/virt/kvm/devices/arm-vgic-its.rst
  DOC3   = Documentation/virt/kvm/devices/arm-vgic-v3.rst
  ITS    = arch/arm64/kvm/vgic/vgic-its.c
  MMIO3  = arch/arm64/kvm/vgic/vgic-mmio-v3.c
  V3     = arch/arm64/kvm/vgic/vgic-v3.c
  QITS   = hw/intc/arm_gicv3_its_kvm.c (QEMU)

How the state is abstracted (what a verdict covers):
  * **One representative translation.** The ITS state is a set of independent entries: a
    device table entry (DTE) per DeviceID, an interrupt translation entry (ITE) per
    (DeviceID, EventID), a collection table entry (CTE) per collection ID, and an LPI per
    ITE. SAVE_TABLES and RESTORE_TABLES handle each entry on its own (vgic_its_save_dte /
    _ite / _cte and vgic_its_restore_dte / _ite / _cte, one per loop iteration), so the
    model holds one of each, symbolic: a device mapped or not, one of its events mapped
    or not to one LPI in one collection, the collection mapped or not to any vCPU, the
    LPI pending or not. A verdict covers every number of devices, events and
    collections, as one interrupt per class covers every interrupt count. Not covered:
    a restore that fails part-way through a table (the first failing entry stops
    RESTORE_TABLES; the model has one entry per table).
  * **Guest memory.** The tables live in guest RAM: fields with ``memory`` set. The LPI
    configuration table is the guest's (architectural: it must survive). The pending
    bit and the three table entries in memory are what KVM last wrote there (derived:
    KVM's save writes them from the kernel's state; they are excluded from the
    comparison and moved by the memory steps like any RAM).
  * **Addresses.** A table is read where its base register points. The model takes the
    restored base registers to point where the saved ones did (a sequence writes the
    saved value, or the reset value, which is not Valid / is address 0). Address 0 is
    QEMU virt's flash (a read-only KVM memory slot: reads give 0): an LPI table read
    through a GICR_PROPBASER/PENDBASER still at 0 reads 0 (model choice: QEMU's memory
    map).
  * LPIs mapped to a GICv4 vLPI (irq->hw) are not modelled: QEMU's TCG GIC offers no
    GICv4 to the oracle's kernels.
"""

from __future__ import annotations

from collections.abc import Mapping

from spec import gicv3
from spec.algebra import Ops, Value, bool_and, implies, mask
from spec.behaviours import read_raz, write_wi
from spec.device import (
    ARCHITECTURAL,
    DERIVED,
    HOST,
    AccessContext,
    Accessor,
    Effect,
    Operation,
    Register,
    StateField,
    compose,
    memory_operations,
)
from spec.sequence import Step

DOCITS = "Documentation/virt/kvm/devices/arm-vgic-its.rst"
ITS = "arch/arm64/kvm/vgic/vgic-its.c"
MMIO3 = gicv3.MMIO3
DOC3 = gicv3.DOC3
V3 = "arch/arm64/kvm/vgic/vgic-v3.c"
QITS = "hw/intc/arm_gicv3_its_kvm.c"
QRAM = ("QEMU migration/ram.c: RAM is migrated iteratively and its last pass runs after the VM has "
        "stopped (after the vm_change_state handlers' flushes), before the device state; on the "
        "destination RAM is loaded before the devices' post_load")
ITS_REGS = "KVM_DEV_ARM_VGIC_GRP_ITS_REGS"

GITS_CTLR_ENABLE = 1
GITS_CTLR_QUIESCENT = 1 << 31
VALID = 1 << 63
BASER_TYPE_DEVICE = 1
# a collection's target vCPU: 'u32 target_addr' (struct its_collection), from MAPC's RDbase
# field (its_cmd_get_target_addr: 'its_cmd_mask_field(cmd, 2, 16, 32)'), checked against
# online_vcpus; model choice: 16 bits, which hold every vCPU number up to VGIC_V3_MAX_CPUS
TARGET_BITS = 16
BASER_TYPE_COLLECTION = 4
# vgic-its.c: 'INITIAL_BASER_VALUE' (inner RaWb, outer SameAsInner, InnerShareable,
# 64K pages, 8-byte entries) and INITIAL_CBASER_VALUE (inner RaWb, outer SameAsInner,
# InnerShareable)
# (GIC_BASER_CacheRaWb is 3, InnerShareable 1, GITS_BASER_PAGE_SIZE_64K 2 << 8)
INITIAL_BASER = (3 << 59) | (1 << 10) | (2 << 8)
INITIAL_PROPBASER = (3 << 7) | (1 << 10)  # vgic-its.c INITIAL_PROPBASER_VALUE, set by vgic_its_create
# vgic_mmio_read_its_typer (the same in 5.10.223, 6.1.176, 6.12.107 and 7.1.8): 'u64 reg =
# GITS_TYPER_PLPIS;' and GIC_ENCODE_SZ(VITS_TYPER_DEVBITS = 16, 5) << GITS_TYPER_DEVBITS_SHIFT
# (13), GIC_ENCODE_SZ(VITS_TYPER_IDBITS = 16, 5) << GITS_TYPER_IDBITS_SHIFT (8),
# GIC_ENCODE_SZ(abi->ite_esz = 8, 4) << GITS_TYPER_ITT_ENTRY_SIZE_SHIFT (4); PTA and CIL 0
GITS_TYPER_VALUE = 1 | (8 - 1) << 4 | (16 - 1) << 8 | (16 - 1) << 13


def _cmd_offset_ok(ops: Ops, offset: Value, cbaser: Value) -> Value:
    """ITS_CMD_OFFSET(val) < ITS_CMD_BUFFER_SIZE(cbaser): the offset (bits 19:5) lies in the
    (CBASER.Size + 1) 4K pages of the queue, i.e. bits 19:12 <= Size."""
    return ops.ule(ops.extract(offset, 19, 12), ops.extract(cbaser, 7, 0))


# Queue offsets are kept in bits 19:5 ('ITS_CMD_OFFSET(reg) (reg & GENMASK(19, 5))')
CMD_OFFSET_MASK = mask(20) & ~mask(5)
# vgic_mmio_write_its_cbaser stores the written value through vgic_sanitise_its_cbaser, which
# fixes the shareability and cacheability fields and '/* Sanitise the physical address to be
# 64k aligned. */ reg &= ~GENMASK_ULL(15, 12);': every other bit is kept as written (the
# whole Size field 7:0, RES0 bits, address bits 51:48). The model kept only Valid, the
# cacheability/shareability fields, address bits 47:16 and Size 1:0 until gicproof conform
# gicv3-its found a written 0x61791fef read back as 0x1800000061790fef on every kernel.
CBASER_MASK = mask(64) & ~(mask(4) << 12)
# the page size is forced to 64K ('reg = (reg & ~GITS_BASER_PAGE_SIZE_MASK) |
# GITS_BASER_PAGE_SIZE_64K;'); Indirect (62) is kept for the device table only (the
# collection table is flat: vgic_mmio_write_its_baser clears it)
BASER_MASK = VALID | (mask(3) << 59) | (mask(3) << 53) | (mask(36) << 12) | (mask(2) << 10) | mask(8)
INDIRECT = 1 << 62


def _its_sanitise(ops: Ops, v: Value, fixed: int, keep: int) -> Value:
    """vgic_sanitise_its_baser / _cbaser: shareability (11:10), inner (61:59) and outer
    (55:53) cacheability fixed as for the redistributor's tables; read-only fields forced
    ('reg &= ~GITS_BASER_RO_MASK; reg |= (entry_size - 1) << GITS_BASER_ENTRY_SIZE_SHIFT;
    reg |= table_type << GITS_BASER_TYPE_SHIFT'). Model choice: the address and size fields
    are kept as written (their page-size alignment rules are not modelled)."""
    v = gicv3._field(ops, v, 11, 10, gicv3._shareability)
    v = gicv3._field(ops, v, 61, 59, gicv3._inner)
    v = gicv3._field(ops, v, 55, 53, gicv3._outer)
    return ops.or_(ops.and_(v, ops.const(keep, 64)), ops.const(fixed, 64))


def baser_fixed(table_type: int) -> int:
    return (table_type << 56) | (7 << 48) | (2 << 8)


def sanitise_baser(ops: Ops, v: Value, table_type: int) -> Value:
    keep = BASER_MASK | (INDIRECT if table_type == BASER_TYPE_DEVICE else 0)
    return _its_sanitise(ops, v, baser_fixed(table_type), keep)


def sanitise_cbaser(ops: Ops, v: Value) -> Value:
    return _its_sanitise(ops, v, 0, CBASER_MASK)


def _valid(ops: Ops, v: Value) -> Value:
    return ops.extract(v, 63, 63)


def _nonzero_address(ops: Ops, base: Value) -> Value:
    """A GICR_PROPBASER / PENDBASER that points somewhere (address bits 51:12 not 0)."""
    return ops.not_(ops.eq(ops.extract(base, 51, 12), ops.const(0, 40)), 1)


# ---------------------------------------------------------------------------------------
# State.

FIELDS = (
    StateField("enable_lpis", 1, "cpu", ARCHITECTURAL,
               f"{MMIO3}: vgic_mmio_write_v3r_ctlr (GICR_CTLR.EnableLPIs; 5.10: vgic_cpu->lpis_enabled, "
               "later: vgic_cpu->ctlr)"),
    StateField("its_enabled", 1, "global", ARCHITECTURAL, f"{ITS}: vgic_mmio_write_its_ctlr 'its->enabled'"),
    StateField("its_cbaser", 64, "global", ARCHITECTURAL, f"{ITS}: vgic_mmio_write_its_cbaser 'its->cbaser'"),
    StateField("its_creadr", 20, "global", ARCHITECTURAL,
               f"{ITS}: vgic_mmio_uaccess_write_its_creadr 'its->creadr = cmd_offset'"),
    StateField("its_cwriter", 20, "global", ARCHITECTURAL,
               f"{ITS}: vgic_mmio_uaccess_write_its_cwriter 'its->cwriter = reg'"),
    StateField("its_baser_device", 64, "global", ARCHITECTURAL,
               f"{ITS}: vgic_mmio_write_its_baser case 0 'its->baser_device_table'"),
    StateField("its_baser_coll", 64, "global", ARCHITECTURAL,
               f"{ITS}: vgic_mmio_write_its_baser case 1 'its->baser_coll_table'"),
    StateField("its_abi_rev", 4, "global", HOST,
               f"{ITS}: vgic_mmio_uaccess_write_its_iidr 'if (rev >= NR_ITS_ABIS) return -EINVAL' "
               "(one ABI, revision 0)"),
    # the representative translation (kernel state)
    StateField("dte_valid", 1, "global", ARCHITECTURAL,
               f"{ITS}: vgic_its_cmd_handle_mapd / vgic_its_restore_dte (the device is in its->device_list)"),
    StateField("ite_valid", 1, "global", ARCHITECTURAL,
               f"{ITS}: vgic_its_cmd_handle_mapi / vgic_its_restore_ite (the event is in the device's itt_head, "
               "translated to the LPI)"),
    StateField("cte_valid", 1, "global", ARCHITECTURAL,
               f"{ITS}: vgic_its_cmd_handle_mapc / vgic_its_restore_cte (the collection is mapped to a vCPU)"),
    StateField("cte_target", TARGET_BITS, "global", ARCHITECTURAL,
               f"{ITS}: 'collection->target_addr' (a vCPU index: GITS_TYPER.PTA is 0)"),
    StateField("lpi_pending", 1, "global", ARCHITECTURAL,
               "arch/arm64/kvm/vgic/vgic.c: the LPI's 'irq->pending_latch' (struct vgic_irq of the ITE)"),
    # guest memory
    StateField("lpi_prop", 8, "global", ARCHITECTURAL,
               f"{DOC3} / GICv3 architecture: the LPI's byte in the LPI configuration table at GICR_PROPBASER "
               "(priority, enable), written by the guest", memory=True),
    StateField("mem_pending", 1, "global", DERIVED,
               f"{V3}: vgic_v3_save_pending_tables writes it, vgic_v3_lpi_sync_pending_status reads it",
               reason="the LPI's bit in its vCPU's pending table: written from the pending state by "
               "KVM_DEV_ARM_VGIC_SAVE_PENDING_TABLES", memory=True),
    StateField("mem_dte", 1, "global", DERIVED, f"{ITS}: vgic_its_save_dte / vgic_its_restore_dte",
               reason="the DTE's Valid bit in the device table: written by KVM_DEV_ARM_ITS_SAVE_TABLES",
               memory=True),
    StateField("mem_ite", 1, "global", DERIVED, f"{ITS}: vgic_its_save_ite / vgic_its_restore_ite",
               reason="the ITE in the device's ITT: written by KVM_DEV_ARM_ITS_SAVE_TABLES", memory=True),
    StateField("mem_cte", 1, "global", DERIVED, f"{ITS}: vgic_its_save_cte / vgic_its_restore_cte",
               reason="the CTE's Valid bit in the collection table: written by KVM_DEV_ARM_ITS_SAVE_TABLES",
               memory=True),
    StateField("mem_cte_target", TARGET_BITS, "global", DERIVED, f"{ITS}: vgic_its_save_cte / vgic_its_restore_cte",
               reason="the CTE's RDBase: written by KVM_DEV_ARM_ITS_SAVE_TABLES", memory=True),
)


def reset(ops: Ops, ctx: AccessContext, scope: str) -> dict[str, Value]:
    """After KVM_CREATE_DEVICE (vgic_its_create: 'its->baser_device_table = INITIAL_BASER_VALUE |
    ((u64)GITS_BASER_TYPE_DEVICE << GITS_BASER_TYPE_SHIFT)', the same for the collection
    table, 'its->cbaser' 0 until written, 'dist->propbaser = INITIAL_PROPBASER_VALUE'), and a
    VM whose memory is fresh (zero)."""
    c = ops.const
    if scope == "cpu":
        return {"enable_lpis": c(0, 1)}
    if scope != "global":
        return {}
    return {"its_enabled": c(0, 1), "its_cbaser": c(0, 64), "its_creadr": c(0, 20), "its_cwriter": c(0, 20),
            "its_baser_device": c(INITIAL_BASER | baser_fixed(BASER_TYPE_DEVICE), 64),
            "its_baser_coll": c(INITIAL_BASER | baser_fixed(BASER_TYPE_COLLECTION), 64),
            "its_abi_rev": c(0, 4), "dte_valid": c(0, 1), "ite_valid": c(0, 1), "cte_valid": c(0, 1),
            "cte_target": c(0, TARGET_BITS), "lpi_pending": c(0, 1), "lpi_prop": c(0, 8), "mem_pending": c(0, 1),
            "mem_dte": c(0, 1), "mem_ite": c(0, 1), "mem_cte": c(0, 1), "mem_cte_target": c(0, TARGET_BITS),
            "propbaser": c(INITIAL_PROPBASER, 64)}


def _below_cpus(ops: Ops, v: Value, cpus: int) -> Value:
    """v names a vCPU of the VM (the kernel's 'target_addr >= online_vcpus' checks)."""
    return gicv3._ule(ops, v, cpus - 1, TARGET_BITS)


def _held_vcpu(ops: Ops, v: Value, ctx: AccessContext) -> Value:
    """v names one of the vCPUs the machine holds: every vCPU of the VM, or, with one vCPU
    per class (proofs/classes.py), one of those: a collection targeting another generic
    vCPU is the same state as one targeting the held generic vCPU, up to renaming."""
    if ctx.vcpus == tuple(range(ctx.cpus)):
        return _below_cpus(ops, v, ctx.cpus)
    out = ops.const(0, 1)
    for i in ctx.vcpus:
        out = ops.or_(out, ops.eq(v, ops.const(i, TARGET_BITS)))
    return out


def invariant_conjuncts(ops: Ops, ctx: AccessContext, scope: str, f: dict[str, Value]) -> list[tuple[str, Value]]:
    if scope != "global":
        return []
    c = ops.const
    one = c(1, 1)
    en = ops.eq(f["its_enabled"], one)
    cbaser = f["its_cbaser"]
    out = [
        ("PROPBASER sanitised (INITIAL_PROPBASER_VALUE at ITS creation, sanitised on every write)",
         ops.eq(f["propbaser"], gicv3.sanitise_propbaser(ops, f["propbaser"]))),
        # 0 until written (vgic_its_create leaves it zeroed), sanitised by every write
        ("CBASER is 0 or sanitised", ops.or_(ops.eq(cbaser, c(0, 64)), ops.eq(cbaser, sanitise_cbaser(ops, cbaser)))),
        ("device BASER sanitised", ops.eq(f["its_baser_device"], sanitise_baser(ops, f["its_baser_device"],
                                                                                 BASER_TYPE_DEVICE))),
        ("collection BASER sanitised", ops.eq(f["its_baser_coll"], sanitise_baser(ops, f["its_baser_coll"],
                                                                                   BASER_TYPE_COLLECTION))),
        ("queue offsets aligned", bool_and(ops, ops.eq(ops.extract(f["its_creadr"], 4, 0), c(0, 5)),
                                            ops.eq(ops.extract(f["its_cwriter"], 4, 0), c(0, 5)))),
        ("CREADR in the queue", _cmd_offset_ok(ops, f["its_creadr"], cbaser)),
        ("CWRITER in the queue", _cmd_offset_ok(ops, f["its_cwriter"], cbaser)),
        # vgic_mmio_write_its_ctlr: 'It is UNPREDICTABLE to enable the ITS if any of the
        # CBASER or device/collection BASER are invalid' (the write is ignored), and both
        # BASER and CBASER writes are ignored while enabled
        ("an enabled ITS has valid tables", implies(ops, en, bool_and(
            ops, _valid(ops, cbaser), _valid(ops, f["its_baser_device"]), _valid(ops, f["its_baser_coll"])))),
        # vgic_its_process_commands runs until 'its->cwriter == its->creadr' whenever the
        # ITS is enabled (on the CWRITER write and on enabling)
        ("an enabled ITS has an empty queue", implies(ops, en, ops.eq(f["its_creadr"], f["its_cwriter"]))),
        ("ABI revision 0", ops.eq(f["its_abi_rev"], c(0, 4))),
        # mappings are made by commands, which run only while the ITS is enabled (with
        # valid tables), and a BASER write that clears Valid frees them (while disabled;
        # ignored while enabled): a mapping lives in a table whose BASER is Valid
        ("a mapped device's table is valid", implies(ops, f["dte_valid"], _valid(ops, f["its_baser_device"]))),
        ("a mapped collection's table is valid", implies(ops, f["cte_valid"], _valid(ops, f["its_baser_coll"]))),
        # vgic_its_cmd_handle_mapd with V=0 frees the device and its ITEs
        ("an ITE belongs to a mapped device", implies(ops, f["ite_valid"], f["dte_valid"])),
        ("only a mapped event's LPI is pending", implies(ops, f["lpi_pending"], f["ite_valid"])),
        ("a collection targets a vCPU", _held_vcpu(ops, f["cte_target"], ctx)),
        ("an unmapped collection has no target", implies(ops, ops.not_(f["cte_valid"], 1),
                                                        ops.eq(f["cte_target"], c(0, TARGET_BITS)))),
        ("the saved collection targets a vCPU", _held_vcpu(ops, f["mem_cte_target"], ctx)),
        # model choice: an LPI whose collection is not mapped is not pending (INT refuses it:
        # vgic_its_trigger_msi 'E_ITS_INT_UNMAPPED_INTERRUPT'); an LPI made pending before
        # MAPC V=0 unmapped its collection keeps its old target_vcpu, which is not modelled
        ("a pending LPI's collection is mapped", implies(ops, f["lpi_pending"], f["cte_valid"])),
        # model choice: a mapped event's collection is mapped. MAPTI may name a collection
        # no MAPC has mapped (vgic_its_cmd_handle_mapi allocates it unmapped), and MAPC V=0
        # leaves its events with 'ite->collection = NULL' (vgic_its_free_collection), which
        # vgic_its_save_ite then dereferences ('ite->collection->collection_id'): neither
        # is modelled
        ("a mapped event's collection is mapped", implies(ops, f["ite_valid"], f["cte_valid"])),
    ]
    # memory KVM has not written holds what the guest zeroed the table with or what
    # KVM_DEV_ARM_ITS_SAVE_TABLES last wrote (model choice: the guest neither scribbles on
    # tables it gave the ITS, which the architecture makes UNPREDICTABLE, nor reuses an ITT
    # without zeroing it); once unmapping clears the entry (6.13, stable 6.1.120), an entry
    # in memory is one KVM has mapped
    sem = ctx.semantics
    if sem.its_clears_unmapped:
        out.append(("an unmapped device has no DTE in memory", implies(ops, f["mem_dte"], f["dte_valid"])))
        out.append(("an unmapped event has no ITE in memory", implies(ops, f["mem_ite"], f["ite_valid"])))
    return out


def invariant(ops: Ops, ctx: AccessContext, scope: str, f: dict[str, Value]) -> Value:
    return bool_and(ops, *(cond for _, cond in invariant_conjuncts(ops, ctx, scope, f)))


def cross_invariant(ops: Ops, ctx: AccessContext, g: dict[str, Value], cpus: list) -> list[tuple[str, Value]]:
    """Model choice (a well-behaved guest, as Linux's its_cpu_init_lpis): a vCPU's
    GICR_PENDBASER points at a pending table before LPIs are enabled on it, and stays so
    while one of its LPIs may be pending. (An LPI becomes pending only on a vCPU with LPIs
    enabled, vgic_its_resolve_lpi: 'if (!vgic_lpis_enabled(vcpu)) return -EBUSY;', but it
    stays pending when they are disabled, vgic_flush_pending_lpis, and MAPC may move it.)"""
    tables = [implies(ops, c["enable_lpis"], _nonzero_address(ops, c["pendbaser"])) for c in cpus]
    return [("a pending LPI's vCPU has a pending table",
             implies(ops, g["lpi_pending"], _nonzero_address(ops, _target_pendbaser(ops, ctx, g["cte_target"], cpus)))),
            ("LPIs are enabled only with a pending table", bool_and(ops, *tables))]


# ---------------------------------------------------------------------------------------
# Reading the LPI tables in guest memory (vgic-v3.c, vgic-its.c).


def at_target(ops: Ops, ctx: AccessContext, target: Value, cpus: list, name: str) -> Value:
    """A field of the vCPU a collection targets (an ite over the CPUs)."""
    # the fields come in the order of the vCPUs held (models.machine.CpuFields.items());
    # a plain list holds every vCPU
    held = list(cpus.items()) if hasattr(cpus, "items") else list(enumerate(cpus))
    out = held[0][1][name]
    for i, fields in held[1:]:
        out = ops.ite(ops.eq(target, ops.const(i, TARGET_BITS)), fields[name], out)
    return out


def _target_pendbaser(ops: Ops, ctx: AccessContext, target: Value, cpus: list) -> Value:
    """The GICR_PENDBASER of the vCPU the collection targets."""
    return at_target(ops, ctx, target, cpus, "pendbaser")


def _pending_read(ops: Ops, glob: Mapping[str, Value], pendbaser: Value) -> Value:
    """The LPI's bit read from its vCPU's pending table: the saved bit where PENDBASER points
    somewhere, 0 where it is still 0 (QEMU virt's flash)."""
    return ops.and_(glob["mem_pending"], _nonzero_address(ops, pendbaser))


# ---------------------------------------------------------------------------------------
# Redistributor rows an ITS changes.


def _read_rctlr(ops: Ops, ctx: AccessContext, f: dict[str, Value]) -> Value:
    # vgic_mmio_read_v3r_ctlr: 'val = atomic_read(&vgic_cpu->ctlr)' (EnableLPIs) plus IR/CES
    return ops.or_(gicv3._read_rctlr(ops, ctx, f), ops.zext(f["enable_lpis"], 1, 32))


def _write_rctlr(ops: Ops, ctx: AccessContext, f: dict[str, Value], d: Value) -> Effect:
    """vgic_mmio_write_v3r_ctlr: enabling LPIs (0 -> 1) calls vgic_enable_lpis, which
    (without PTZ, which the model does not keep) reads the pending table of every LPI
    targeting this vCPU (its_sync_lpi_pending_table: 'irq->pending_latch = pendmask & (1U
    << bit_nr)'); disabling (1 -> 0) only takes the vCPU's LPIs off its list
    (vgic_flush_pending_lpis: the pending latch stays)."""
    g = ctx.device
    new = ops.extract(d, 0, 0)
    enabling = ops.and_(ops.not_(f["enable_lpis"], 1), new)
    mine = bool_and(ops, g["ite_valid"], g["cte_valid"], ops.eq(g["cte_target"], ops.const(ctx.vcpu, TARGET_BITS)))
    synced = ops.ite(ops.and_(enabling, mine), _pending_read(ops, g, f["pendbaser"]), g["lpi_pending"])
    return Effect({"enable_lpis": new, "lpi_pending": synced})


_rctlr = (Accessor("vgic_mmio_read_v3r_ctlr", "read", _read_rctlr, f"{MMIO3}: vgic_mmio_read_v3r_ctlr",
                   "EnableLPIs, and IR/CES with IIDR revision 3"),
          Accessor("vgic_mmio_write_v3r_ctlr", "write", _write_rctlr, f"{MMIO3}: vgic_mmio_write_v3r_ctlr, "
                   f"{ITS}: vgic_enable_lpis / its_sync_lpi_pending_table",
                   "EnableLPIs 0 -> 1 reads this vCPU's LPIs' pending bits from its pending table"))


def _gicv3_rows() -> tuple[Register, ...]:
    out = []
    for r in gicv3.REGISTERS:
        if r.name == "GICR_CTLR":
            r = Register(r.name, r.group, r.offset, r.words, r.scope, ("enable_lpis",), _rctlr[0], _rctlr[1],
                         _rctlr[0], _rctlr[1], doc="EnableLPIs (an ITS exists)")
        out.append(r)
    return tuple(out)


# ---------------------------------------------------------------------------------------
# ITS registers (vgic-its.c its_registers[]; KVM_DEV_ARM_VGIC_GRP_ITS_REGS: 64-bit values,
# vgic_its_attr_regs_access).


def _read_its_ctlr(ops: Ops, ctx: AccessContext, f: dict[str, Value]) -> Value:
    # vgic_mmio_read_its_ctlr: 'if (its->enabled) reg |= GITS_CTLR_ENABLE; if (its->creadr ==
    # its->cwriter) reg |= GITS_CTLR_QUIESCENT;'
    q = ops.ite(ops.eq(f["its_creadr"], f["its_cwriter"]), ops.const(GITS_CTLR_QUIESCENT, 32), ops.const(0, 32))
    return ops.or_(q, ops.zext(f["its_enabled"], 1, 32))


def _write_its_ctlr(ops: Ops, ctx: AccessContext, f: dict[str, Value], d: Value) -> Effect:
    """vgic_mmio_write_its_ctlr: enabling with an invalid CBASER or device/collection BASER
    is ignored ('goto out'); otherwise 'its->enabled = !!(val & GITS_CTLR_ENABLE)' and the
    queue is processed (vgic_its_process_commands). Model choice: processing consumes the
    queue (CREADR := CWRITER) without interpreting the commands, which the guest model
    does; a restore never enables an ITS with a non-empty queue, as an enabled ITS always
    has an empty one (invariant)."""
    new = ops.extract(d, 0, 0)
    tables_ok = bool_and(ops, _valid(ops, f["its_cbaser"]), _valid(ops, f["its_baser_device"]),
                         _valid(ops, f["its_baser_coll"]))
    ignored = bool_and(ops, ops.not_(f["its_enabled"], 1), new, ops.not_(tables_ok, 1))
    enabled = ops.ite(ignored, f["its_enabled"], new)
    return Effect({"its_enabled": enabled,
                   "its_creadr": ops.ite(enabled, f["its_cwriter"], f["its_creadr"])})


def _read_its_iidr(ops: Ops, ctx: AccessContext, f: dict[str, Value]) -> Value:
    # vgic_mmio_read_its_iidr: 'val = (its->abi_rev << GITS_IIDR_REV_SHIFT) & GITS_IIDR_REV_MASK;
    # val |= (PRODUCT_ID_KVM << GITS_IIDR_PRODUCTID_SHIFT) | IMPLEMENTER_ARM;'
    return ops.or_(ops.const((gicv3.PRODUCT_ID_KVM << 24) | gicv3.IMPLEMENTER_ARM, 32),
                   ops.concat(ops.const(0, 16), ops.concat(f["its_abi_rev"], ops.const(0, 12), 12), 16))


def _uaccess_write_its_iidr(ops: Ops, ctx: AccessContext, f: dict[str, Value], d: Value) -> Effect:
    # vgic_mmio_uaccess_write_its_iidr: 'rev = ((val & GITS_IIDR_REV_MASK) >> GITS_IIDR_REV_SHIFT);
    # if (rev >= NR_ITS_ABIS) return -EINVAL; return vgic_its_set_abi(its, rev);'
    bad = ops.not_(ops.eq(ops.extract(d, 15, 12), ops.const(0, 4)), 1)
    return Effect({}, error=bad, errno="EINVAL")


def _write_its_cbaser(ops: Ops, ctx: AccessContext, f: dict[str, Value], d: Value) -> Effect:
    """vgic_mmio_write_its_cbaser: '/* When GITS_CTLR.Enable is 1, this register is RO. */ if
    (its->enabled) return;' else the sanitised value, 'its->creadr = 0;' and CWRITER reset to
    CREADR ('its->cwriter = its->creadr;')."""
    en = f["its_enabled"]
    z = ops.const(0, 20)
    return Effect({"its_cbaser": ops.ite(en, f["its_cbaser"], sanitise_cbaser(ops, d)),
                   "its_creadr": ops.ite(en, f["its_creadr"], z),
                   "its_cwriter": ops.ite(en, f["its_cwriter"], z)})


def _read_offset(name: str):
    def rd(ops: Ops, ctx: AccessContext, f: dict[str, Value]) -> Value:
        return ops.zext(f[name], 20, 64)
    return rd


def _uaccess_write_creadr(ops: Ops, ctx: AccessContext, f: dict[str, Value], d: Value) -> Effect:
    """vgic_mmio_uaccess_write_its_creadr: 'if (its->enabled) { ret = -EBUSY; goto out; }
    cmd_offset = ITS_CMD_OFFSET(val); if (cmd_offset >= ITS_CMD_BUFFER_SIZE(its->cbaser)) {
    ret = -EINVAL; goto out; } its->creadr = cmd_offset;'"""
    off = ops.and_(ops.extract(d, 19, 0), ops.const(CMD_OFFSET_MASK, 20))
    busy = f["its_enabled"]
    beyond = ops.not_(_cmd_offset_ok(ops, off, f["its_cbaser"]), 1)
    return Effect({"its_creadr": off}, error=ops.or_(busy, beyond), errno="EBUSY or EINVAL",
                  errnos=((busy, "EBUSY"), (beyond, "EINVAL")))


def _write_cwriter(ops: Ops, ctx: AccessContext, f: dict[str, Value], d: Value) -> Effect:
    """vgic_mmio_write_its_cwriter (userspace and guest alike: there is no uaccess variant):
    'reg = update_64bit_reg(its->cwriter, addr & 7, len, val); reg &= GENMASK_ULL(19, 5); if
    (reg >= ITS_CMD_BUFFER_SIZE(its->cbaser)) return;' (ignored, no error), else 'its->cwriter
    = reg;' and vgic_its_process_commands, which does nothing while the ITS is disabled
    (model choice as for GITS_CTLR: processing consumes the queue)."""
    off = ops.and_(ops.extract(d, 19, 0), ops.const(CMD_OFFSET_MASK, 20))
    ok = _cmd_offset_ok(ops, off, f["its_cbaser"])
    cwriter = ops.ite(ok, off, f["its_cwriter"])
    return Effect({"its_cwriter": cwriter,
                   "its_creadr": ops.ite(f["its_enabled"], cwriter, f["its_creadr"])})


def _baser_rw(n: int, field: str, table_type: int, clears: tuple[str, ...]) -> tuple[Accessor, Accessor]:
    def rd(ops: Ops, ctx: AccessContext, f: dict[str, Value]) -> Value:
        return f[field]

    def wr(ops: Ops, ctx: AccessContext, f: dict[str, Value], d: Value) -> Effect:
        en = f["its_enabled"]
        new = sanitise_baser(ops, d, table_type)
        value = ops.ite(en, f[field], new)
        # '/* When GITS_CTLR.Enable is 1, we ignore write accesses. */' then, for a write
        # that clears Valid: 'vgic_its_free_device_list' / 'vgic_its_free_collection_list';
        # from 7.2 (stable 6.12.117; spec/gicv3.py its_baser_change_frees) also for a write
        # that changes the stored value
        drop = ops.not_(_valid(ops, new), 1)
        if ctx.semantics.its_baser_change_frees:
            drop = ops.or_(drop, ops.not_(ops.eq(new, f[field]), 1))
        freed = ops.and_(ops.not_(en, 1), drop)
        upd = {field: value}
        for name in clears:
            upd[name] = ops.ite(freed, ops.const(0, TARGET_BITS if name == "cte_target" else 1), f[name])
        return Effect(upd)

    what = "device" if table_type == BASER_TYPE_DEVICE else "collection"
    return (Accessor(f"vgic_mmio_read_its_baser{n}", "read", rd, f"{ITS}: vgic_mmio_read_its_baser",
                     f"the {what} table's base"),
            Accessor(f"vgic_mmio_write_its_baser{n}", "write", wr, f"{ITS}: vgic_mmio_write_its_baser",
                     f"ignored while enabled; sanitised; clearing Valid (from 7.2, changing the value) "
                     f"frees every {what}"))


_baser0 = _baser_rw(0, "its_baser_device", BASER_TYPE_DEVICE, ("dte_valid", "ite_valid", "lpi_pending"))
_baser1 = _baser_rw(1, "its_baser_coll", BASER_TYPE_COLLECTION, ("cte_valid", "cte_target"))


def _its_row(name: str, offset: int, views: tuple[str, ...], rd: Accessor, wr: Accessor, uwr: Accessor | None = None,
             width: int = 64, doc: str = "") -> Register:
    return Register(name, ITS_REGS, offset, 1, "global", views, rd, wr, rd, uwr or wr, width=width,
                    unit=width // 8, doc=doc)


ITS_REGISTERS = (
    _its_row("GITS_CTLR", 0x00, ("its_enabled",),
             Accessor("vgic_mmio_read_its_ctlr", "read", _read_its_ctlr, f"{ITS}: vgic_mmio_read_its_ctlr",
                      "Enabled, and Quiescent when CREADR equals CWRITER"),
             Accessor("vgic_mmio_write_its_ctlr", "write", _write_its_ctlr, f"{ITS}: vgic_mmio_write_its_ctlr",
                      "enabling needs valid CBASER and device/collection BASERs (else ignored); "
                      "processes the queue"), width=32,
             doc=f"{DOCITS}: 'GITS_CTLR must be restored last' (after the tables)"),
    _its_row("GITS_IIDR", 0x04, (),
             Accessor("vgic_mmio_read_its_iidr", "read", _read_its_iidr, f"{ITS}: vgic_mmio_read_its_iidr",
                      "the table ABI revision (0), PRODUCT_ID_KVM, IMPLEMENTER_ARM"),
             write_wi(f"{ITS}: GITS_IIDR guest write vgic_mmio_write_wi"),
             Accessor("vgic_mmio_uaccess_write_its_iidr", "write", _uaccess_write_its_iidr,
                      f"{ITS}: vgic_mmio_uaccess_write_its_iidr", "a revision other than 0 is -EINVAL"),
             width=32, doc="selects the table ABI; QEMU writes it first"),
    _its_row("GITS_TYPER", 0x08, (),
             Accessor("vgic_mmio_read_its_typer", "read", lambda ops, ctx, f: ops.const(GITS_TYPER_VALUE, 64),
                      f"{ITS}: vgic_mmio_read_its_typer",
                      "a constant: PLPIS, ITT_entry_size 8 bytes, IDbits 16, Devbits 16, PTA 0, CIL 0"),
             write_wi(f"{ITS}: GITS_TYPER its_mmio_write_wi (no uaccess write: a userspace write is "
                      "ignored and succeeds)"),
             doc="read-only; QEMU does not migrate it"),
    _its_row("GITS_CBASER", 0x80, ("its_cbaser",),
             Accessor("vgic_mmio_read_its_cbaser", "read", lambda ops, ctx, f: f["its_cbaser"],
                      f"{ITS}: vgic_mmio_read_its_cbaser", "the command queue's base"),
             Accessor("vgic_mmio_write_its_cbaser", "write", _write_its_cbaser, f"{ITS}: vgic_mmio_write_its_cbaser",
                      "ignored while enabled; otherwise resets CREADR and CWRITER to 0")),
    _its_row("GITS_CWRITER", 0x88, ("its_cwriter",),
             Accessor("vgic_mmio_read_its_cwriter", "read", _read_offset("its_cwriter"),
                      f"{ITS}: vgic_mmio_read_its_cwriter", "the write offset"),
             Accessor("vgic_mmio_write_its_cwriter", "write", _write_cwriter, f"{ITS}: vgic_mmio_write_its_cwriter",
                      "stores an offset inside the queue (one outside is ignored) and processes the "
                      "queue if the ITS is enabled")),
    _its_row("GITS_CREADR", 0x90, ("its_creadr",),
             Accessor("vgic_mmio_read_its_creadr", "read", _read_offset("its_creadr"),
                      f"{ITS}: vgic_mmio_read_its_creadr", "the read offset"),
             write_wi(f"{ITS}: GITS_CREADR guest write vgic_mmio_write_wi"),
             Accessor("vgic_mmio_uaccess_write_its_creadr", "write", _uaccess_write_creadr,
                      f"{ITS}: vgic_mmio_uaccess_write_its_creadr",
                      "-EBUSY while enabled, -EINVAL beyond the queue")),
    _its_row("GITS_BASER0", 0x100, ("its_baser_device",), *_baser0, doc="the device table"),
    _its_row("GITS_BASER1", 0x108, ("its_baser_coll",), *_baser1, doc="the collection table"),
    *(_its_row(f"GITS_BASER{n}", 0x100 + 8 * n, (),
               read_raz(64, f"{ITS}: vgic_mmio_read_its_baser 'default: reg = 0' (no table of that type)"),
               write_wi(f"{ITS}: vgic_mmio_write_its_baser 'default: return'")) for n in range(2, 8)),
)


# ---------------------------------------------------------------------------------------
# Operations.


def _save_pending_tables(ops: Ops, ctx: AccessContext, g: dict[str, Value], cpus: list) -> Effect:
    """vgic_v3_save_pending_tables: for every LPI with a target vCPU, the bit in that vCPU's
    pending table at GICR_PENDBASER is read and rewritten when it differs from the pending
    state ('if (stored == is_pending) continue; ... vgic_write_guest_lock'). A write to
    address 0 (a PENDBASER never set: QEMU virt's read-only flash) fails: -EFAULT (model
    choice, from QEMU's memory map)."""
    mapped = bool_and(ops, g["ite_valid"], g["cte_valid"])
    pendbaser = _target_pendbaser(ops, ctx, g["cte_target"], cpus)
    nowhere = ops.not_(_nonzero_address(ops, pendbaser), 1)
    # the bit is first read ('kvm_read_guest_lock(kvm, ptr, &val, 1)'): 0 at address 0, so
    # only a pending LPI needs a write there
    fails = bool_and(ops, mapped, nowhere, g["lpi_pending"])
    return Effect({"mem_pending": ops.ite(mapped, g["lpi_pending"], g["mem_pending"])}, error=fails, errno="EFAULT")


def _save_tables(ops: Ops, ctx: AccessContext, g: dict[str, Value]) -> Effect:
    """vgic_its_save_tables_v0: vgic_its_save_device_tables (for each device: its ITT's ITEs,
    then its DTE), then vgic_its_save_collection_table (each collection's CTE). A table whose
    BASER is not Valid is skipped ('if (!(baser & GITS_BASER_VALID)) return 0;'). Only
    existing entries are written: memory for an unmapped device or collection keeps what it
    held (the device table and the ITTs are indexed by DeviceID and EventID)."""
    dev_ok = _valid(ops, g["its_baser_device"])
    coll_ok = _valid(ops, g["its_baser_coll"])
    one = ops.const(1, 1)
    dev = ops.and_(dev_ok, g["dte_valid"])
    ite = ops.and_(dev, g["ite_valid"])
    # the collection table is a list, not indexed by collection ID: every collection in
    # turn, then 'a last dummy element with valid bit unset' (vgic_its_save_collection_table),
    # so an unmapped collection leaves no entry behind
    return Effect({"mem_dte": ops.ite(dev, one, g["mem_dte"]),
                   "mem_ite": ops.ite(ite, one, g["mem_ite"]),
                   "mem_cte": ops.ite(coll_ok, g["cte_valid"], g["mem_cte"]),
                   "mem_cte_target": ops.ite(coll_ok, g["cte_target"], g["mem_cte_target"])})


def _restore_tables(ops: Ops, ctx: AccessContext, g: dict[str, Value], cpus: list) -> Effect:
    """vgic_its_restore_tables_v0: the collection table first (vgic_its_restore_cte: 'if
    (target_addr != COLLECTION_NOT_MAPPED && target_addr >= atomic_read(&kvm->online_vcpus))
    return -EINVAL; if (find_collection(its, coll_id)) return -EEXIST;'), then the device
    table (vgic_its_restore_dte, vgic_its_restore_itt / vgic_its_restore_ite: 'collection =
    find_collection(its, coll_id); if (!collection) return -EINVAL;', then vgic_add_lpi, which
    reads the LPI's configuration at GICR_PROPBASER (update_lpi_config) and its pending bit
    from the target vCPU's pending table (vgic_v3_lpi_sync_pending_status: 'irq->pending_latch
    = status;' and the consumed bit cleared in memory)). A table whose BASER is not Valid is
    not read."""
    c = ops.const
    coll_read = ops.and_(_valid(ops, g["its_baser_coll"]), g["mem_cte"])
    target_bad = ops.not_(_below_cpus(ops, g["mem_cte_target"], ctx.cpus), 1)
    exists = g["cte_valid"]
    cte_valid = ops.or_(g["cte_valid"], coll_read)
    cte_target = ops.ite(coll_read, g["mem_cte_target"], g["cte_target"])
    dev_read = ops.and_(_valid(ops, g["its_baser_device"]), g["mem_dte"])
    ite_read = ops.and_(dev_read, g["mem_ite"])
    no_collection = ops.and_(ite_read, ops.not_(cte_valid, 1))
    error = bool_and(ops, coll_read, ops.or_(target_bad, exists))
    error = ops.or_(error, no_collection)
    pendbaser = _target_pendbaser(ops, ctx, cte_target, cpus)
    pending = _pending_read(ops, g, pendbaser)
    return Effect({"cte_valid": cte_valid, "cte_target": cte_target,
                   "dte_valid": ops.or_(g["dte_valid"], dev_read),
                   "ite_valid": ops.or_(g["ite_valid"], ite_read),
                   "lpi_pending": ops.ite(ite_read, pending, g["lpi_pending"]),
                   "mem_pending": ops.ite(ite_read, c(0, 1), g["mem_pending"])},
                  error=error, errno="EINVAL or EEXIST")


def _ctrl_reset(ops: Ops, ctx: AccessContext, g: dict[str, Value]) -> Effect:
    """vgic_its_reset: 'its->baser_device_table &= ~GITS_BASER_VALID; its->baser_coll_table &=
    ~GITS_BASER_VALID; its->cbaser = 0; its->creadr = 0; its->cwriter = 0; its->enabled = 0;
    vgic_its_free_device_list(kvm, its); vgic_its_free_collection_list(kvm, its);'"""
    c = ops.const
    clear_valid = c(mask(63), 64)
    return Effect({"its_baser_device": ops.and_(g["its_baser_device"], clear_valid),
                   "its_baser_coll": ops.and_(g["its_baser_coll"], clear_valid),
                   "its_cbaser": c(0, 64), "its_creadr": c(0, 20), "its_cwriter": c(0, 20),
                   "its_enabled": c(0, 1), "dte_valid": c(0, 1), "ite_valid": c(0, 1), "cte_valid": c(0, 1),
                   "cte_target": c(0, TARGET_BITS), "lpi_pending": c(0, 1)})


OPERATIONS = (
    Operation("KVM_DEV_ARM_VGIC_SAVE_PENDING_TABLES", _save_pending_tables,
              f"{DOC3}: KVM_DEV_ARM_VGIC_SAVE_PENDING_TABLES 'save all LPI pending bits into guest RAM "
              f"pending tables'; {V3}: vgic_v3_save_pending_tables",
              "writes each LPI's pending state into its vCPU's pending table", views=("lpi_pending",), cpus=True,
              side="save"),
    Operation("KVM_DEV_ARM_ITS_SAVE_TABLES", _save_tables,
              f"{DOCITS}: KVM_DEV_ARM_ITS_SAVE_TABLES 'save the ITS table data into guest RAM, at the "
              f"location provisioned by the guest in corresponding registers/table entries'; {ITS}: "
              "vgic_its_save_tables_v0", "writes the device, ITT and collection entries into guest memory",
              views=("dte_valid", "ite_valid", "cte_valid", "cte_target"), side="save"),
    Operation("KVM_DEV_ARM_ITS_RESTORE_TABLES", _restore_tables,
              f"{DOCITS}: KVM_DEV_ARM_ITS_RESTORE_TABLES 'restore the ITS tables from guest RAM to ITS "
              f"internal structure'; {ITS}: vgic_its_restore_tables_v0",
              "reads the collection, device and ITT entries from guest memory, creating the LPIs",
              views=("dte_valid", "ite_valid", "cte_valid", "cte_target", "lpi_pending"), cpus=True),
    Operation("KVM_DEV_ARM_ITS_CTRL_RESET", _ctrl_reset,
              f"{DOCITS}: KVM_DEV_ARM_ITS_CTRL_RESET 'reset the ITS, no additional parameter'; {ITS}: "
              "vgic_its_reset", "clears the ITS: tables invalid, queue empty, every mapping freed", side="reset"),
    *memory_operations(QRAM),
)

# QEMU's save: at vm stop the GICv3's vm_change_state_handler saves the pending tables and
# the ITS's saves its tables, then the last RAM pass, then the registers (pre_save)
IDEAL_SAVE = (
    Step(0, "op", "KVM_DEV_ARM_VGIC_SAVE_PENDING_TABLES"),
    Step(0, "op", "KVM_DEV_ARM_ITS_SAVE_TABLES"),
    Step(0, "op", "save_memory"),
)


def _reset(ops: Ops, ctx: AccessContext, scope: str) -> dict[str, Value]:
    out = gicv3.reset(ops, ctx, scope)
    out.update(reset(ops, ctx, scope))
    return out


def _conjuncts(ops: Ops, ctx: AccessContext, scope: str, f: dict[str, Value]) -> list[tuple[str, Value]]:
    # the GICv3's "PROPBASER is 0 or sanitised" (0 until written without an ITS) gives way to
    # "sanitised": vgic_its_create sets INITIAL_PROPBASER_VALUE
    out = [(n, c) for n, c in gicv3.invariant_conjuncts(ops, ctx, scope, f) if not n.startswith("PROPBASER")]
    return out + invariant_conjuncts(ops, ctx, scope, f)


def _invariant(ops: Ops, ctx: AccessContext, scope: str, f: dict[str, Value]) -> Value:
    return bool_and(ops, *(cond for _, cond in _conjuncts(ops, ctx, scope, f)))


GICV3_ITS = compose(
    gicv3.GICV3,
    name="gicv3-its",
    title="GICv3 with an ITS (KVM_DEV_TYPE_ARM_VGIC_V3 + KVM_DEV_TYPE_ARM_VGIC_ITS), LPIs and guest memory",
    fields=FIELDS,
    registers=ITS_REGISTERS,
    replace_registers=_gicv3_rows(),
    operations=OPERATIONS,
    reset=_reset,
    invariant=_invariant,
    invariant_conjuncts=_conjuncts,
    cross_invariant=cross_invariant,
    # the releases where its semantics change: gicv3's, and 7.2, whose ITS changes (spec/gicv3.py
    # its_baser_change_frees, its_save_unmapped_ite, its_save_skips_unreachable_device) leave
    # the GICv3 rows as 7.1 has them, so gicv3 itself does not list it
    versions={**gicv3.VERSIONS, "7.2": gicv3.semantics_for("7.2")},
    # its GICv3 rows' invariant and clear-then-set obligations are gicv3's (the same rows);
    # the ITS's own invariant is not yet proved inductive (not in check); the ordering graph
    # of the two devices together is (about 9 s per kernel)
    obligations=("graph",),
    ideal_save=IDEAL_SAVE + tuple(Step(0, "read", r.name) for r in _gicv3_rows() + ITS_REGISTERS),
    doc=__doc__ or "",
)
