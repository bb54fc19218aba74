"""GICv3 as KVM exposes it to userspace (KVM_DEV_TYPE_ARM_VGIC_V3), without an ITS.

Sources (quoted in each rule below; read in the Debian sources of the oracle's kernels,
5.10.223, 6.1.176, 6.12.107 and 7.1.8):
  DOC3  = Documentation/virt/kvm/devices/arm-vgic-v3.rst
  MMIO3 = arch/arm64/kvm/vgic/vgic-mmio-v3.c
  MMIO  = arch/arm64/kvm/vgic/vgic-mmio.c
  SYSREG = arch/arm64/kvm/vgic-sys-reg-v3.c
  KVMDEV = arch/arm64/kvm/vgic/vgic-kvm-device.c
  QEMU3 = hw/intc/arm_gicv3_kvm.c (QEMU)
  seed 002 = ../shared/seeds/002_322bd28bec502ed3.txt (the GICD_TYPER2 patch and its review)

Scope of this model (said once; ``gicproof describe gicv3`` prints it):
  * The distributor (KVM_DEV_ARM_VGIC_GRP_DIST_REGS), the redistributors
    (KVM_DEV_ARM_VGIC_GRP_REDIST_REGS, RD and SGI frames), the CPU interface system
    registers (KVM_DEV_ARM_VGIC_GRP_CPU_SYSREGS) and the line levels
    (KVM_DEV_ARM_VGIC_GRP_LEVEL_INFO) of a VM *without an ITS*: GICR_CTLR.EnableLPIs
    cannot be set (vgic_mmio_write_v3r_ctlr: 'if (!vgic_has_its(vcpu->kvm)) return;'), so
    GICR_PROPBASER/PENDBASER are plain stored values. The ITS, LPIs and guest memory are
    not modelled yet.
  * Releases 5.10 to 7.2 (the oldest and newest the oracle boots); older releases are
    refused with that reason. Register accesses after KVM_DEV_ARM_VGIC_CTRL_INIT (QEMU's
    lifecycle: realize creates the device, sets the interrupt count and initialises it
    before any put).
  * Host kinds: a GICv3 host, a GICv4.1 host (GICD_TYPER2.nASSGIcap, GICD_CTLR.nASSGIreq),
    each with the host's virtual priority bits (ICH_VTR_EL2.PRIbits), which set how many
    ICC_AP0R/AP1R registers a vCPU holds; userspace reaches those the vCPU's current
    priority bits allow (ICC_CTLR_EL1.PRIbits, which a userspace write may lower).
Model choices are marked "model choice".
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

from spec.algebra import Ops, Value, bool_and, mask, subset
from spec.behaviours import (
    read_const,
    read_field,
    read_raz,
    write_field,
    write_one_to_set,
    write_wi,
)
from spec.device import (
    ARCHITECTURAL,
    ENVIRONMENT,
    HOST,
    AccessContext,
    Accessor,
    Assumption,
    DeviceSpec,
    Effect,
    NotState,
    Operation,
    Register,
    StateField,
)
from spec.gicv2 import Boundary, _irq_field_is_zero, parse_release

DOC3 = "Documentation/virt/kvm/devices/arm-vgic-v3.rst"
MMIO3 = "arch/arm64/kvm/vgic/vgic-mmio-v3.c"
MMIO = "arch/arm64/kvm/vgic/vgic-mmio.c"
SYSREG = "arch/arm64/kvm/vgic-sys-reg-v3.c"
KVMDEV = "arch/arm64/kvm/vgic/vgic-kvm-device.c"
SEED002 = "seed 002_322bd28bec502ed3.txt"

DIST = "KVM_DEV_ARM_VGIC_GRP_DIST_REGS"
REDIST = "KVM_DEV_ARM_VGIC_GRP_REDIST_REGS"
SYSREGS = "KVM_DEV_ARM_VGIC_GRP_CPU_SYSREGS"
LEVEL = "KVM_DEV_ARM_VGIC_GRP_LEVEL_INFO"

NR_SGIS = 16
NR_PRIVATE = 32
# the model's CPU range: every count KVM allows, 'VGIC_V3_MAX_CPUS 512' (include/kvm/arm_vgic.h,
# 5.10.223 and 7.1.8; 'KVM_MAX_VCPUS VGIC_V3_MAX_CPUS'); proofs hold one vCPU per class
# (proofs/classes.py, points 5-6)
MAX_CPUS = 512
IRQ_COUNTS = tuple(range(64, 1024, 32))  # vgic_set_common_attr: 64..992, multiple of 32
SGI_BASE = 0x10000  # the SGI frame follows the RD frame: 'SZ_64K + GICR_IGROUPR0' (MMIO3)

PRODUCT_ID_KVM = 0x4B
IMPLEMENTER_ARM = 0x43B
GICD_CTLR_ENABLE_G1A = 1 << 1  # GICD_CTLR_ENABLE_SS_G1
GICD_CTLR_ARE_NS = 1 << 4
GICD_CTLR_DS = 1 << 6
GICD_CTLR_NASSGIREQ = 1 << 8
GICD_TYPER2_NASSGICAP = 1 << 8
GICR_CTLR_CES = 1 << 1
GICR_CTLR_IR = 1 << 2
GICR_TYPER_LAST = 1 << 4


def sysreg(op0: int, op1: int, crn: int, crm: int, op2: int) -> int:
    """The attribute of a CPU system register: its encoding as KVM_REG_ARM64_SYSREG packs
    it (DOC3 KVM_DEV_ARM_VGIC_GRP_CPU_SYSREGS: 'op0, op1, CRn, CRm, op2' in bits 15:0)."""
    return (op0 << 14) | (op1 << 11) | (crn << 7) | (crm << 3) | op2


# ---------------------------------------------------------------------------------------
# Releases.

BOUNDARIES = (
    Boundary("typer_last", "a userspace GICR_TYPER read reports Last (vgic_mmio_vcpu_rdist_is_last); "
             "before it 'reporting of the Last bit is not supported for userspace' "
             "(vgic_uaccess_read_v3r_typer)", (5, 13),
             "28e9d4bce3be 'KVM: arm64: vgic-v3: Expose GICR_TYPER.Last for userspace'",
             "believed v5.13; absent from 5.10.223, present in 6.1.176, 6.12.107 and 7.1.8"),
    Boundary("iidr_rev3", "GICD_IIDR revision 3 (GICR_CTLR reads IR and CES); a userspace IIDR "
             "write may differ in the Revision field only, the revision is kept", (5, 19),
             "49a1a2c70a7f 'KVM: arm64: vgic-v3: Advertise GICR_CTLR.{IR, CES} as a new GICD_IIDR "
             "revision'", "believed v5.19; in 6.1.176, not in 5.10.223 (which needs the exact value)"),
    Boundary("typer2_nassgicap", "GICD_TYPER2 and GICD_IIDR accessible before KVM_DEV_ARM_VGIC_CTRL_INIT; "
             "a GICD_TYPER2 write equal to the read value succeeds, a different one fails -EBUSY "
             "after INIT (before it only nASSGIcap may change, and only to what the host supports)",
             (6, 17),
             "c652887a9288 'KVM: arm64: vgic-v3: Allow userspace to write GICD_TYPER2.nASSGIcap', "
             "f26e6af75782 'KVM: arm64: vgic-v3: Allow access to GICD_IIDR prior to initialization'",
             "v6.17 ('KVM changes for Linux 6.17' pull); present in 7.1.8"),
    Boundary("iidr_from_value", "the revision of a userspace GICD_IIDR write is taken from the written "
             "value: 2 or 3 is stored, anything else is -EINVAL", (7, 1),
             "a0e6ae45af17 'KVM: arm64: vgic: Fix IIDR revision field extracted from wrong value'",
             "believed v7.1; 6.1.175 and 6.12.88 (Debian changelogs); present in 6.1.176 and 6.12.107",
             (((6, 1), 175), ((6, 12), 88))),
    Boundary("its_clears_unmapped", "with an ITS: MAPD with V=0 writes a zero DTE into the device table and "
             "DISCARD a zero ITE into the ITT (vgic_its_cmd_handle_mapd: 'if (!valid) return "
             "vgic_its_write_entry_lock(its, gpa, 0, ...)'; vgic_its_cmd_handle_discard); before it an unmapped "
             "entry stays in guest memory as KVM_DEV_ARM_ITS_SAVE_TABLES last wrote it, and "
             "KVM_DEV_ARM_ITS_RESTORE_TABLES brings it back", (6, 13),
             "7602ffd1d5e8 'KVM: arm64: vgic-its: Clear DTE when MAPD unmaps a device', e9649129d33d 'KVM: "
             "arm64: vgic-its: Clear ITE when DISCARD frees an ITE'",
             "believed v6.13; Debian's 6.1 changelog lists both under the 6.1.120 stable update; present in "
             "6.1.176, 6.12.107 and 7.1.8, absent from 5.10.223 (read in each); later 5.10 stable releases "
             "were not checked (the model takes every 5.10 release as without it)",
             (((6, 1), 120), ((6, 12), 1))),
    Boundary("its_restore_checks", "with an ITS: KVM_DEV_ARM_ITS_RESTORE_TABLES checks every restored "
             "collection's ICID and device's DeviceID against its table (vgic_its_restore_cte / "
             "vgic_its_restore_dte: 'if (!vgic_its_check_id(...)) return -EINVAL;') and, when it fails, frees "
             "what it restored (vgic_its_restore_collection_table / _device_tables / _tables_v0: "
             "vgic_its_free_collection_list, vgic_its_free_device_list); before it a collection outside "
             "its table was skipped and the scan went on (vgic_its_alloc_collection returned the positive "
             "E_ITS_MAPC_COLLECTION_OOR, which vgic_its_restore_collection_table reads as 'next entry'), a "
             "DeviceID above 0xffff was restored, and a failed restore kept what it had restored", (5, 19),
             "270e5f87fe19 'KVM: arm64: vgic: Add more checks when restoring ITS tables' and the rest of its "
             "series (lore 20220510001633.552496-*; the other patches' subjects were not read)",
             "believed v5.19 (the series was posted in May 2022); absent from 5.10.223, present in 6.1.176, "
             "6.12.107 and 7.1.8 (read in each)"),
    Boundary("its_dte_eventid_bits", "with an ITS: KVM_DEV_ARM_ITS_RESTORE_TABLES refuses a DTE with more than "
             "16 EventID bits with -EINVAL (vgic_its_restore_dte: '/* Mimic the MAPD behaviour and reject "
             "invalid EID bits. */ if (num_eventid_bits > VITS_TYPER_IDBITS) return -EINVAL;'); before it "
             "such a device is restored and its ITT of 2^bits entries scanned (scan_its_table takes the size "
             "as an int)", (7, 1),
             "'KVM: arm64: vgic-its: Reject restored DTE with out-of-range num_eventid_bits' (commit id not "
             "read)", "believed v7.1; Debian's changelogs list it under the 6.1.175 and 6.12.92 stable "
             "updates; present in 6.1.176, 6.12.107 and 7.1.8, absent from 5.10.223",
             (((6, 1), 175), ((6, 12), 92))),
    Boundary("its_baser_change_frees", "with an ITS: a GITS_BASER0/1 write that changes the stored value "
             "(after sanitising) frees the table's devices or collections, as one clearing Valid always did "
             "(vgic_mmio_write_its_baser); before it a Valid base moved elsewhere kept them, and a second "
             "RESTORE_TABLES found them (-EEXIST)", (7, 2),
             "not identified: no 7.2 or 6.12.108+ source was available (the 6.12.107 and 7.1.8 sources, and "
             "the kvmarm tree snapshots the library stores, free only on Valid clear)",
             "observed by gicproof conform gicv3-its on Debian 6.12.117 and 7.2.13 (any change: address, "
             "size, shareability, outer cacheability; a rewrite of the same value or of read-only fields "
             "frees nothing), not on 6.1.176 and 5.10.223; not pinned: taken as v7.2 and stable 6.12.117, the "
             "first releases seen with it", (((6, 12), 117),)),
    Boundary("its_save_unmapped_ite", "with an ITS: KVM_DEV_ARM_ITS_SAVE_TABLES writes a zero entry for an event "
             "whose collection was freed (a GITS_BASER1 write) and links the ITT's entries around it "
             "(vgic_its_save_ite: 'MAPC with V=0 keeps the ITEs mapped but drops their collection ... Save a "
             "zeroed entry'; compute_next_eventid_offset skips such entries); before it vgic_its_save_ite "
             "dereferenced 'ite->collection->collection_id': an oops (seen on 5.10.223 and 6.1.176, "
             "tests/test_kernel_oracle.py)", (7, 2),
             "not identified; the code is in the vgic-its.c of Marc Zyngier's arm-platforms tree stored by "
             "the library (snapshot 3a81112544), not in 7.1.8",
             "observed on Debian 6.12.117 and 7.2.13 (a zero ITE, no oops); not pinned: taken as v7.2 and "
             "stable 6.12.117", (((6, 12), 117),)),
    Boundary("its_save_skips_unreachable_device", "with an ITS: KVM_DEV_ARM_ITS_SAVE_TABLES skips a device whose "
             "entry the device table no longer reaches (vgic_its_check_id fails: its level-1 entry cleared) "
             "and links the entries it writes around it (the previous DTE's next offset points at the next "
             "device it writes; the skipped device's ITT is not written; the device stays mapped); before it "
             "the save stopped there with -EINVAL (vgic_its_save_device_tables: 'if "
             "(!vgic_its_check_id(...)) return -EINVAL;')", (7, 2),
             "not identified: no 7.2 or 6.12.108+ source was available (the kvmarm tree snapshot with the "
             "zero-ITE change still returns -EINVAL here)",
             "observed by gicproof conform gicv3-its on Debian 6.12.117 and 7.2.13, not on 6.1.176; not "
             "pinned: taken as v7.2 and stable 6.12.117", (((6, 12), 117),)),
)

OLDEST = (5, 10)
NEWEST = (7, 2)


@dataclass(frozen=True)
class GicV3Semantics:
    kernel: str
    iidr_write: str  # "exact" | "revision-ignored" | "revision-from-value"
    iidr_revision: int  # the revision after INIT
    typer2_write: str  # "equal" (a write must equal the read value) | "nassgicap" (6.17)
    typer_last_uaccess: bool  # a userspace GICR_TYPER read reports Last (5.13)
    revision: str
    source: str
    host: str = "gicv3"
    # the interface the rewritten-VGIC guest events (models.guest) look at
    vgic: str = "rewritten"
    active_source: bool = False
    # with an ITS: unmapping a device (MAPD V=0) or an event (DISCARD) clears its entry in
    # guest memory (6.13, stable 6.1.120)
    its_clears_unmapped: bool = False
    # with an ITS: RESTORE_TABLES checks restored IDs against their tables and undoes a failed
    # restore (5.19); refuses a DTE with more than 16 EventID bits (7.1, stable 6.1.175, 6.12.92)
    its_restore_checks: bool = False
    its_dte_eventid_bits: bool = False
    # with an ITS: a GITS_BASER write that changes the value frees the table's list; SAVE_TABLES
    # writes a zero ITE for an event whose collection was freed (both seen on 6.12.117 and 7.2.13)
    its_baser_change_frees: bool = False
    its_save_unmapped_ite: bool = False
    its_save_skips_unreachable_device: bool = False

    @property
    def host_info(self) -> HostKind:
        return HOSTS[self.host]

    def iidr(self) -> int:
        return (PRODUCT_ID_KVM << 24) | (self.iidr_revision << 12) | IMPLEMENTER_ARM

    def typer2(self) -> int:
        """GICD_TYPER2 as the host makes it: nASSGIcap on a GICv4.1 host with vSGI support
        (vgic_mmio_read_v3_misc: 'if (kvm_vgic_global_state.has_gicv4_1 &&
        gic_cpuif_has_vsgi()) value = GICD_TYPER2_nASSGIcap;'); VIL and VID are always 0."""
        return GICD_TYPER2_NASSGICAP if self.host_info.v41 else 0

    def flags(self) -> tuple:
        return (self.iidr_write, self.iidr_revision, self.typer2_write, self.typer_last_uaccess,
                self.its_clears_unmapped, self.its_restore_checks, self.its_dte_eventid_bits,
                self.its_baser_change_frees, self.its_save_unmapped_ite, self.its_save_skips_unreachable_device)


@dataclass(frozen=True)
class HostKind:
    v41: bool  # GICv4.1 with vSGIs (kvm_vgic_global_state.has_gicv4_1 && gic_cpuif_has_vsgi())
    pri_bits: int  # ICH_VTR_EL2.PRIbits + 1: the virtual priority bits
    description: str
    # ICC_CTLR_EL1.IDbits as ICH_VTR_EL2 gives it (0: 16 INTID bits, 1: 24); model choice:
    # 1 on every kind, as the oracle reads on QEMU's emulated GICv3 (ICC_CTLR_EL1 = 0x8c00
    # on 5.10.223, 6.1.176, 6.12.117 and 7.2.13)
    id_bits: int = 1

    @property
    def apr_max_idx(self) -> int:
        """vgic_v3_max_apr_idx() (vgic.h) of a vCPU as the host creates it (7 bits -> 3, 6 ->
        1, otherwise 0): which vgic_ap<g>r[] the state holds. Which of them userspace
        reaches follows the vCPU's current priority bits (``apr_accessible``)."""
        return {7: 3, 6: 1}.get(self.pri_bits, 0)


HOSTS = {
    "gicv3": HostKind(False, 5, "a GICv3 (or GICv4.0) host, 5 virtual priority bits: GICD_TYPER2 reads 0, "
                      "nASSGIreq is not stored, ICC_AP0R0/AP1R0 only"),
    "gicv4.1": HostKind(True, 5, "a GICv4.1 host with vSGIs, 5 virtual priority bits: GICD_TYPER2 reads "
                        "nASSGIcap, GICD_CTLR.nASSGIreq is stored"),
    "gicv3-pri7": HostKind(False, 7, "a GICv3 host with 7 virtual priority bits: ICC_AP0R0-3/AP1R0-3"),
}
DEFAULT_HOST = "gicv3"


def _base(kernel: str) -> GicV3Semantics:
    rel = parse_release(kernel)
    if rel is None:
        raise ValueError(f"'{kernel}' is not a kernel release: write X.Y or X.Y.Z, e.g. 6.12 or 6.1.176")
    if rel[:2] > NEWEST:
        raise ValueError(f"kernel {kernel} is newer than the newest series checked ({NEWEST[0]}.{NEWEST[1]}) "
                         "for gicv3: its semantics are not known yet")
    if rel[:2] < OLDEST:
        raise ValueError(f"kernel {kernel} is older than the oldest release modelled for gicv3 "
                         f"({OLDEST[0]}.{OLDEST[1]}, the oldest the oracle boots): its GICv3 userspace "
                         "semantics (believed since 4.11) are not modelled yet")
    has = {b.name: b.applies(rel) for b in BOUNDARIES}
    if has["iidr_from_value"]:
        iidr_write, rev = "revision-from-value", 3
    elif has["iidr_rev3"]:
        iidr_write, rev = "revision-ignored", 3
    else:
        # 5.10.223 vgic_mmio_uaccess_write_v3_misc: 'case GICD_TYPER2: case GICD_IIDR: if (val
        # != vgic_mmio_read_v3_misc(vcpu, addr, len)) return -EINVAL;'; vgic_init:
        # 'dist->implementation_rev = 2;'
        iidr_write, rev = "exact", 2
    source = "; ".join(f"{b.commit} ({b.releases()})" for b in BOUNDARIES if has[b.name]) or \
        "the 5.10 GICv3 userspace interface (5.10.223 sources)"
    return GicV3Semantics(kernel=kernel, iidr_write=iidr_write, iidr_revision=rev,
                          typer2_write="nassgicap" if has["typer2_nassgicap"] else "equal",
                          typer_last_uaccess=has["typer_last"], revision="", source=source,
                          its_clears_unmapped=has["its_clears_unmapped"],
                          its_restore_checks=has["its_restore_checks"],
                          its_dte_eventid_bits=has["its_dte_eventid_bits"],
                          its_baser_change_frees=has["its_baser_change_frees"],
                          its_save_unmapped_ite=has["its_save_unmapped_ite"],
                          its_save_skips_unreachable_device=has["its_save_skips_unreachable_device"])


REVISIONS = ("5.10", "5.13", "5.19", "6.13", "6.17", "7.1")
_FLAGS = {name: _base(name).flags() for name in REVISIONS}


def semantics_for(kernel: str) -> GicV3Semantics:
    sem = _base(kernel)
    revision = next((n for n in REVISIONS if _FLAGS[n] == sem.flags()), kernel)
    return dataclasses.replace(sem, revision=revision)


VERSIONS = {name: semantics_for(name) for name in REVISIONS}
DEFAULT_KERNEL = "7.1"


def with_host(sem: GicV3Semantics, host: str) -> GicV3Semantics:
    if host not in HOSTS:
        raise ValueError(f"host '{host}' is not modelled for gicv3: valid: {', '.join(HOSTS)}")
    return dataclasses.replace(sem, host=host)


def interrupt_kind(intid: int) -> str:
    if intid < NR_SGIS:
        return "sgi"
    if intid < NR_PRIVATE:
        return "ppi"
    return "spi"


# ---------------------------------------------------------------------------------------
# Canonical state.

FIELDS = (
    StateField("dist_enabled", 1, "global", ARCHITECTURAL,
               f"{MMIO3}: vgic_mmio_uaccess_write_v3_misc 'dist->enabled = val & GICD_CTLR_ENABLE_SS_G1'"),
    StateField("nassgireq", 1, "global", ARCHITECTURAL,
               f"{MMIO3}: vgic_mmio_uaccess_write_v3_misc 'dist->nassgireq = val & GICD_CTLR_nASSGIreq' "
               "('Not a GICv4.1? No HW SGIs': cleared on other hosts)"),
    StateField("implementation_rev", 4, "global", HOST,
               f"{MMIO3}: vgic_mmio_read_v3_misc GICD_IIDR (vgic->implementation_rev); a userspace IIDR "
               "write may set it to 2 or 3 (a0e6ae45af17)"),
    StateField("propbaser", 64, "global", ARCHITECTURAL,
               f"{MMIO3}: vgic_mmio_write_propbase: one GICR_PROPBASER per VM (dist->propbaser), written "
               "through any redistributor, sanitised (vgic_sanitise_propbaser)"),
    StateField("pendbaser", 64, "cpu", ARCHITECTURAL,
               f"{MMIO3}: vgic_mmio_write_pendbase (vgic_cpu->pendbaser, sanitised); model choice: PTZ "
               "(bit 62) is not kept: vgic_mmio_read_pendbase masks it ('value &= ~GICR_PENDBASER_PTZ') "
               "and only enabling LPIs reads it (vgic_enable_lpis), which needs an ITS"),
    StateField("pri_bits", 3, "cpu", ARCHITECTURAL,
               f"{SYSREG}: set_gic_ctlr 'vgic_v3_cpu->num_pri_bits = host_pri_bits' (ICC_CTLR_EL1.PRIbits "
               "= num_pri_bits - 1; it may only stay or decrease)"),
    StateField("id_bits", 3, "cpu", ARCHITECTURAL,
               f"{SYSREG}: set_gic_ctlr 'vgic_v3_cpu->num_id_bits = host_id_bits' (may only stay or decrease)"),
    StateField("cbpr", 1, "cpu", ARCHITECTURAL, f"{SYSREG}: set_gic_ctlr 'vmcr.cbpr = ...' (ICH_VMCR_EL2.VCBPR)"),
    StateField("eoimode", 1, "cpu", ARCHITECTURAL, f"{SYSREG}: set_gic_ctlr 'vmcr.eoim = ...'"),
    StateField("pmr", 8, "cpu", ARCHITECTURAL, f"{SYSREG}: set_gic_pmr 'vmcr.pmr = FIELD_GET(ICC_PMR_EL1_MASK, val)'"),
    StateField("bpr0", 3, "cpu", ARCHITECTURAL, f"{SYSREG}: set_gic_bpr0 'vmcr.bpr = FIELD_GET(ICC_BPR0_EL1_MASK, val)'"),
    StateField("bpr1", 3, "cpu", ARCHITECTURAL,
               f"{SYSREG}: set_gic_bpr1 'if (!vmcr.cbpr) vmcr.abpr = ...' (ICH_VMCR_EL2.VBPR1)"),
    StateField("grpen0", 1, "cpu", ARCHITECTURAL, f"{SYSREG}: set_gic_grpen0"),
    StateField("grpen1", 1, "cpu", ARCHITECTURAL, f"{SYSREG}: set_gic_grpen1"),
    *(StateField(f"ap{g}r{n}", 32, "cpu", ARCHITECTURAL,
                 f"{SYSREG}: set_apr_reg (vgic_ap{g}r[{n}]); held on a host with enough priority bits for "
                 f"index {n} (vgic_v3_max_apr_idx() of the host's: vgic_v3_enable sets num_pri_bits from "
                 "ICH_VTR_EL2); userspace reaches it while the vCPU's num_pri_bits allows it, which an "
                 "ICC_CTLR_EL1 write may lower (set_gic_ctlr) without touching the value")
      for g in (0, 1) for n in range(4)),
    StateField("enabled", 1, "irq", ARCHITECTURAL, f"{MMIO}: vgic_uaccess_write_senable/cenable"),
    StateField("pending_latch", 1, "irq", ARCHITECTURAL,
               f"{MMIO3}: vgic_v3_uaccess_write_pending / {MMIO}: __read_pending ('case "
               "KVM_DEV_TYPE_ARM_VGIC_V3: if (is_user) { val = irq->pending_latch; ...')"),
    StateField("line_level", 1, "irq", ARCHITECTURAL,
               f"{MMIO}: vgic_write_irq_line_level_info / vgic_read_irq_line_level_info; {DOC3} "
               "KVM_DEV_ARM_VGIC_GRP_LEVEL_INFO: restored by userspace (QEMU does: "
               "kvm_gic_put_line_level_bmp), so architectural for a GICv3, unlike a GICv2"),
    StateField("hw_mapped", 1, "irq", ENVIRONMENT,
               "irq->hw: the arch timer PPIs, mapped at the vCPU's first KVM_RUN (kvm_timer_enable); "
               "not carried from the source (see spec/gicv2.py)", kinds=("ppi",), carried=False),
    StateField("active", 1, "irq", ARCHITECTURAL, f"{MMIO}: vgic_mmio_uaccess_write_sactive/cactive"),
    StateField("group", 1, "irq", ARCHITECTURAL, f"{MMIO}: vgic_mmio_write_group"),
    StateField("priority", 8, "irq", ARCHITECTURAL,
               f"{MMIO}: vgic_mmio_write_priority 'Narrow the priority range to what we actually support'"),
    StateField("edge", 1, "irq", ARCHITECTURAL, f"{MMIO}: vgic_mmio_write_config"),
    StateField("mpidr", 24, "irq", ARCHITECTURAL,
               f"{MMIO3}: vgic_mmio_write_irouter 'We only care about and preserve Aff0, Aff1 and Aff2' "
               "(irq->mpidr; irq->target_vcpu is resolved from it at write time)", kinds=("spi",)),
)

NOT_STATE = (
    NotState("target_vcpu", "derived",
             "resolved from irq->mpidr when GICD_IROUTER is written (kvm_mpidr_to_vcpu); every vCPU "
             "exists by then (KVM_CREATE_VCPU fails after INIT: arm.c)", f"{MMIO3}: vgic_mmio_write_irouter"),
    NotState("GICD_TYPER, GICD_TYPER2, GICD_IIDR, GICR_TYPER, GICR_IIDR, ICC_CTLR_EL1.{SEIS,A3V}", HOST,
             "ID values of the destination host and VM configuration: checked (IIDR, TYPER2 and "
             "ICC_CTLR_EL1 by the kernel on write), not restored", f"{MMIO3}: vgic_mmio_read_v3_misc"),
    NotState("GICD_STATUSR, GICR_STATUSR, GICR_WAKER", "derived",
             f"not stored: GICD_STATUSR is vgic_mmio_read_rao/vgic_mmio_write_wi, GICR_STATUSR and "
             f"GICR_WAKER vgic_mmio_read_raz/vgic_mmio_write_wi ({MMIO3}); {DOC3} says a STATUSR write "
             "'simply sets the non-reserved bits to the value written', which the code does not do",
             MMIO3),
)


def reset(ops: Ops, ctx: AccessContext, scope: str) -> dict[str, Value]:
    """A GICv3 after KVM_DEV_ARM_VGIC_CTRL_INIT.

    vgic-init.c kvm_vgic_vcpu_init / vgic_allocate_private_irqs_locked: SGIs 'irq->enabled =
    1; irq->config = VGIC_CONFIG_EDGE;', PPIs 'irq->config = VGIC_CONFIG_LEVEL;', private
    'irq->group = 1' for a GICv3 model ('if (vgic_model == KVM_DEV_TYPE_ARM_VGIC_V3) irq->group
    = 1'); kvm_vgic_dist_init: SPIs kcalloc'd, 'irq->group = 1' for GICv3, config 0 = edge,
    mpidr 0. vgic_v3_enable: 'vgic_v3->vgic_vmcr = 0', num_pri_bits and num_id_bits from the
    host (ICH_VTR_EL2); the APRs are 0."""
    c = ops.const
    sem: GicV3Semantics = ctx.semantics
    host = sem.host_info
    if scope == "global":
        return {"dist_enabled": c(0, 1), "nassgireq": c(0, 1), "implementation_rev": c(sem.iidr_revision, 4),
                "propbaser": c(0, 64)}
    if scope == "cpu":
        # vgic_v3_reset: 'vcpu->arch.vgic_cpu.pendbaser = INITIAL_PENDBASER_VALUE;' (inner RaWb,
        # outer SameAsInner, InnerShareable: 0x580)
        out = {"pendbaser": c(INITIAL_PENDBASER, 64), "pri_bits": c(host.pri_bits - 1, 3), "id_bits": c(host.id_bits, 3),
               "cbpr": c(0, 1), "eoimode": c(0, 1), "pmr": c(0, 8), "bpr0": c(0, 3), "bpr1": c(0, 3),
               "grpen0": c(0, 1), "grpen1": c(0, 1)}
        for g in (0, 1):
            out.update({f"ap{g}r{n}": c(0, 32) for n in range(host.apr_max_idx + 1)})
        return out
    kind = ctx.kind
    out = {"enabled": c(1 if kind == "sgi" else 0, 1), "pending_latch": c(0, 1), "line_level": c(0, 1),
           "active": c(0, 1), "group": c(1, 1), "priority": c(0, 8), "edge": c(0 if kind == "ppi" else 1, 1)}
    if kind == "spi":
        out["mpidr"] = c(0, 24)
    if kind == "ppi":
        out["hw_mapped"] = c(0, 1)
    return out


def invariant_conjuncts(ops: Ops, ctx: AccessContext, scope: str, f: dict[str, Value]) -> list[tuple[str, Value]]:
    c = ops.const
    sem: GicV3Semantics = ctx.semantics
    host = sem.host_info
    if scope == "global":
        rev = f["implementation_rev"]
        # 0 until written: INITIAL_PROPBASER_VALUE is set only when an ITS is created
        # (vgic_its_create), and this model has none
        prop = f["propbaser"]
        conds = [("PROPBASER is 0 or sanitised", ops.or_(ops.eq(prop, c(0, 64)),
                                                         ops.eq(prop, sanitise_propbaser(ops, prop))))]
        if sem.iidr_write == "revision-from-value":
            conds.append(("IIDR revision is 2 or 3", ops.or_(ops.eq(rev, c(2, 4)), ops.eq(rev, c(3, 4)))))
        else:
            conds.append(("IIDR revision is the kernel's", ops.eq(rev, c(sem.iidr_revision, 4))))
        if not host.v41:
            conds.append(("no nASSGIreq without GICv4.1", ops.eq(f["nassgireq"], c(0, 1))))
        return conds
    if scope == "cpu":
        return [
            ("PENDBASER is sanitised", ops.eq(f["pendbaser"], sanitise_pendbaser(ops, f["pendbaser"]))),
            # set_gic_ctlr: 'if (host_pri_bits > vgic_v3_cpu->num_pri_bits) return -EINVAL;'
            ("PRIbits at most the host's", _ule(ops, f["pri_bits"], host.pri_bits - 1, 3)),
            ("IDbits at most the host's", _ule(ops, f["id_bits"], host.id_bits, 3)),
        ]
    kind = ctx.kind
    conds = [("priority keeps 5 bits", subset(ops, f["priority"], 0xF8, 8))]
    if kind != "spi":
        # vgic_mmio_write_config: 'if (intid + i < VGIC_NR_PRIVATE_IRQS) continue;'
        conds.append(("private trigger is fixed", ops.eq(f["edge"], c(1 if kind == "sgi" else 0, 1))))
    if kind == "sgi":
        # vgic_write_irq_line_level_info: 'if ((intid + i) < VGIC_NR_SGIS ...) continue;'
        conds.append(("an SGI has no line", ops.eq(f["line_level"], c(0, 1))))
    return conds


def _ule(ops: Ops, v: Value, limit: int, width: int) -> Value:
    """v <= limit, for a constant limit."""
    return ops.ule(v, ops.const(limit, width))


def invariant(ops: Ops, ctx: AccessContext, scope: str, f: dict[str, Value]) -> Value:
    return bool_and(ops, *(cond for _, cond in invariant_conjuncts(ops, ctx, scope, f)))


# ---------------------------------------------------------------------------------------
# 64-bit values written in halves, and the BASER sanitising (vgic-mmio-v3.c).


def update_half(ops: Ops, old: Value, half: int, d: Value) -> Value:
    """update_64bit_reg(reg, addr & 4, 4, val): replace one 32-bit half of a 64-bit value."""
    if half:
        return ops.concat(d, ops.extract(old, 31, 0), 32)
    return ops.concat(ops.extract(old, 63, 32), d, 32)


def read_half(ops: Ops, v: Value, half: int) -> Value:
    """extract_bytes(value, addr & 7, 4)."""
    return ops.extract(v, 63, 32) if half else ops.extract(v, 31, 0)


def _field(ops: Ops, v: Value, hi: int, lo: int, fix) -> Value:
    """``v`` with bits hi:lo replaced by fix(old field) (vgic_sanitise_field)."""
    old = ops.extract(v, hi, lo)
    new = fix(ops, old)
    parts = []
    if hi < 63:
        parts.append((ops.extract(v, 63, hi + 1), 63 - hi))
    parts.append((new, hi - lo + 1))
    if lo > 0:
        parts.append((ops.extract(v, lo - 1, 0), lo))
    out, _ = parts[-1]
    width = parts[-1][1]
    for part, w in reversed(parts[:-1]):
        out = ops.concat(part, out, width)
        width += w
    return out


def _shareability(ops: Ops, f: Value) -> Value:
    # vgic_sanitise_shareability: 'case GIC_BASER_OuterShareable: return GIC_BASER_InnerShareable;'
    return ops.ite(ops.eq(f, ops.const(2, 2)), ops.const(1, 2), f)


def _inner(ops: Ops, f: Value) -> Value:
    # vgic_sanitise_inner_cacheability: nCnB (0) and nC (1) -> RaWb (3)
    bad = ops.or_(ops.eq(f, ops.const(0, 3)), ops.eq(f, ops.const(1, 3)))
    return ops.ite(bad, ops.const(3, 3), f)


def _outer(ops: Ops, f: Value) -> Value:
    # vgic_sanitise_outer_cacheability: SameAsInner (0) and nC (1) kept, else SameAsInner
    ok = ops.or_(ops.eq(f, ops.const(0, 3)), ops.eq(f, ops.const(1, 3)))
    return ops.ite(ok, f, ops.const(0, 3))


PROPBASER_RES0 = (mask(5) << 59) | (mask(4) << 52) | (mask(2) << 5)
PENDBASER_RES0 = (1 << 63) | (mask(3) << 59) | (mask(4) << 52) | (mask(4) << 12) | mask(7)
PENDBASER_PTZ = 1 << 62
INITIAL_PENDBASER = (3 << 7) | (1 << 10)  # vgic-v3.c INITIAL_PENDBASER_VALUE


def _sanitise(ops: Ops, v: Value, res0: int) -> Value:
    v = _field(ops, v, 11, 10, _shareability)
    v = _field(ops, v, 9, 7, _inner)
    v = _field(ops, v, 58, 56, _outer)
    return ops.and_(v, ops.const(mask(64) & ~res0, 64))


def sanitise_propbaser(ops: Ops, v: Value) -> Value:
    """vgic_sanitise_propbaser: shareability, inner and outer cacheability fixed, RES0 cleared."""
    return _sanitise(ops, v, PROPBASER_RES0)


def sanitise_pendbaser(ops: Ops, v: Value) -> Value:
    """vgic_sanitise_pendbaser, and (model choice) PTZ dropped: see the pendbaser field."""
    return _sanitise(ops, v, PENDBASER_RES0 | PENDBASER_PTZ)


# ---------------------------------------------------------------------------------------
# Distributor accessors.


def _read_ctlr(ops: Ops, ctx: AccessContext, f: dict[str, Value]) -> Value:
    # vgic_mmio_read_v3_misc: 'if (vgic->enabled) value |= GICD_CTLR_ENABLE_SS_G1; value |=
    # GICD_CTLR_ARE_NS | GICD_CTLR_DS; if (vgic->nassgireq) value |= GICD_CTLR_nASSGIreq;'
    c = ops.const
    v = ops.or_(c(GICD_CTLR_ARE_NS | GICD_CTLR_DS, 32),
                ops.ite(f["dist_enabled"], c(GICD_CTLR_ENABLE_G1A, 32), c(0, 32)))
    return ops.or_(v, ops.ite(f["nassgireq"], c(GICD_CTLR_NASSGIREQ, 32), c(0, 32)))


def _uaccess_write_ctlr(ops: Ops, ctx: AccessContext, f: dict[str, Value], d: Value) -> Effect:
    sem: GicV3Semantics = ctx.semantics
    upd = {"dist_enabled": ops.extract(d, 1, 1)}
    # 'Not a GICv4.1? No HW SGIs': 'val &= ~GICD_CTLR_nASSGIreq'
    upd["nassgireq"] = ops.extract(d, 8, 8) if sem.host_info.v41 else ops.const(0, 1)
    return Effect(upd)


def _guest_write_ctlr(ops: Ops, ctx: AccessContext, f: dict[str, Value], d: Value) -> Effect:
    sem: GicV3Semantics = ctx.semantics
    enabled = ops.extract(d, 1, 1)
    req = ops.extract(d, 8, 8) if sem.host_info.v41 else ops.const(0, 1)
    # vgic_mmio_write_v3_misc: '/* Dist stays enabled? nASSGIreq is RO */'
    stays = ops.and_(f["dist_enabled"], enabled)
    return Effect({"dist_enabled": enabled, "nassgireq": ops.ite(stays, f["nassgireq"], req)})


def _typer(ctx: object) -> int:
    c: AccessContext = ctx  # type: ignore[assignment]
    # 'value = (nr_spis + VGIC_NR_PRIVATE_IRQS) >> 5) - 1'; no ITS: '(INTERRUPT_ID_BITS_SPIS - 1) << 19'
    return ((c.irqs >> 5) - 1) | ((10 - 1) << 19)


def _iidr_value(ops: Ops, rev: Value) -> Value:
    return ops.concat(ops.const(PRODUCT_ID_KVM << 8, 16), ops.concat(rev, ops.const(IMPLEMENTER_ARM, 12), 12), 16)


def _uaccess_write_iidr(ops: Ops, ctx: AccessContext, f: dict[str, Value], d: Value) -> Effect:
    sem: GicV3Semantics = ctx.semantics
    current = _iidr_value(ops, f["implementation_rev"])
    if sem.iidr_write == "exact":
        return Effect({}, error=ops.not_(ops.eq(d, current), 1), errno="EINVAL")
    diff = ops.and_(ops.xor(d, current), ops.const(~(0xF << 12) & mask(32), 32))
    mismatch = ops.not_(ops.eq(diff, ops.const(0, 32)), 1)
    if sem.iidr_write == "revision-ignored":
        return Effect({}, error=mismatch, errno="EINVAL")
    rev = ops.extract(d, 15, 12)
    valid = ops.or_(ops.eq(rev, ops.const(2, 4)), ops.eq(rev, ops.const(3, 4)))
    return Effect({"implementation_rev": rev}, error=ops.or_(mismatch, ops.not_(valid, 1)), errno="EINVAL")


def _read_typer2(ops: Ops, ctx: AccessContext, f: dict[str, Value]) -> Value:
    return ops.const(ctx.semantics.typer2(), 32)


def _uaccess_write_typer2(ops: Ops, ctx: AccessContext, f: dict[str, Value], d: Value) -> Effect:
    """5.7-6.16: 'if (val != vgic_mmio_read_v3_misc(vcpu, addr, len)) return -EINVAL;'.
    6.17 (c652887a9288): 'if (reg == val) return 0; if (vgic_initialized(vcpu->kvm)) return
    -EBUSY;' (every access modelled here is after INIT)."""
    differs = ops.not_(ops.eq(d, ops.const(ctx.semantics.typer2(), 32)), 1)
    return Effect({}, error=differs, errno="EINVAL" if ctx.semantics.typer2_write == "equal" else "EBUSY")


# ---------------------------------------------------------------------------------------
# Per-interrupt accessors.

_read_enable = read_field("read_enable", "enabled", f"{MMIO}: vgic_mmio_read_enable")
_write_senable = write_field("write_senable", "enabled", write_one_to_set, 1,
                             f"{MMIO}: vgic_mmio_write_senable / vgic_uaccess_write_senable")
_write_cenable = Accessor("write_cenable", "write",
                          lambda ops, ctx, f, d: Effect({"enabled": ops.and_(f["enabled"], ops.not_(d, 1))}),
                          f"{MMIO}: vgic_mmio_write_cenable / vgic_uaccess_write_cenable",
                          "write_one_to_clear on enabled")


def _guest_read_pending(ops: Ops, ctx: AccessContext, f: dict[str, Value]) -> Value:
    # irq_is_pending(): latch, or latch || line_level for a level-sensitive interrupt
    return ops.or_(f["pending_latch"], ops.and_(f["line_level"], ops.not_(f["edge"], 1)))


_guest_read_pend = Accessor("read_pending", "read", _guest_read_pending, f"{MMIO}: vgic_mmio_read_pending (irq_is_pending)",
                            "latch, ORed with the line level for a level-sensitive interrupt")
_uaccess_read_pend = read_field(
    "uaccess_read_pending", "pending_latch",
    f"{MMIO}: vgic_uaccess_read_pending / __read_pending ('case KVM_DEV_TYPE_ARM_VGIC_V3: if (is_user) "
    "{ val = irq->pending_latch;'); 5.10: vgic_v3_uaccess_read_pending 'bool state = irq->pending_latch;'",
    "a userspace read of a GICv3 pending register returns the latch only (the line level is "
    "KVM_DEV_ARM_VGIC_GRP_LEVEL_INFO's)")
_guest_write_spend = Accessor("write_spending", "write",
                              lambda ops, ctx, f, d: Effect({"pending_latch": ops.or_(f["pending_latch"], d)}),
                              f"{MMIO}: vgic_mmio_write_spending", "sets the latch")
_guest_write_cpend = Accessor("write_cpending", "write",
                              lambda ops, ctx, f, d: Effect({"pending_latch": ops.and_(f["pending_latch"], ops.not_(d, 1))}),
                              f"{MMIO}: vgic_mmio_write_cpending", "clears the latch")
_uaccess_write_pend = Accessor(
    "uaccess_write_pending", "write", lambda ops, ctx, f, d: Effect({"pending_latch": d}),
    f"{MMIO3}: vgic_v3_uaccess_write_pending: 5.10, 6.1 'irq->pending_latch = test_bit(i, &val);' ('pending_latch "
    "is set irrespective of irq type (level or edge) to avoid dependency that VM should restore irq "
    "config before pending info'); 6.12, 7.1 vgic_uaccess_write_spending(val) then "
    "vgic_uaccess_write_cpending(~val) (believed 6.8, same end state)",
    "a userspace GICD_ISPENDR/GICR_ISPENDR0 write sets each latch to its bit: it is a full write, "
    "not write-1-to-set")
_uaccess_icpendr = (read_raz(1, f"{MMIO3}: GICD_ICPENDR / GICR_ICPENDR0 uaccess_read vgic_mmio_read_raz"),
                    write_wi(f"{MMIO3}: GICD_ICPENDR / GICR_ICPENDR0 uaccess_write vgic_mmio_uaccess_write_wi",
                             "uaccess_write_wi"))


def _change_active(ops: Ops, ctx: AccessContext, f: dict[str, Value], d: Value, active: bool) -> Effect:
    new = ops.or_(f["active"], d) if active else ops.and_(f["active"], ops.not_(d, 1))
    if ctx.user and "hw_mapped" in f:
        # vgic_hw_irq_change_active: 'if (is_uaccess) return;' on a mapped interrupt
        new = ops.ite(f["hw_mapped"], f["active"], new)
    return Effect({"active": new})


_read_active = read_field("read_active", "active", f"{MMIO}: vgic_mmio_read_active / vgic_uaccess_read_active")
_write_sactive = Accessor("write_sactive", "write", lambda ops, ctx, f, d: _change_active(ops, ctx, f, d, True),
                          f"{MMIO}: vgic_mmio_write_sactive / vgic_mmio_uaccess_write_sactive (vgic_mmio_change_active)",
                          "sets the active state; ignored from userspace on an interrupt mapped to hardware")
_write_cactive = Accessor("write_cactive", "write", lambda ops, ctx, f, d: _change_active(ops, ctx, f, d, False),
                          f"{MMIO}: vgic_mmio_write_cactive / vgic_mmio_uaccess_write_cactive",
                          "clears the active state; ignored from userspace on an interrupt mapped to hardware")
_read_group = read_field("read_group", "group", f"{MMIO}: vgic_mmio_read_group")
_write_group = write_field("write_group", "group", lambda ops, old, d, w: d, 1,
                           f"{MMIO}: vgic_mmio_write_group ('irq->group = !!(val & BIT(i))')",
                           "sets the group bit (GICv3: no IIDR gate, unlike GICv2)")
_read_priority = read_field("read_priority", "priority", f"{MMIO}: vgic_mmio_read_priority")
_write_priority = Accessor("write_priority", "write",
                           lambda ops, ctx, f, d: Effect({"priority": ops.and_(d, ops.const(0xF8, 8))}),
                           f"{MMIO}: vgic_mmio_write_priority '& GENMASK(7, 8 - VGIC_PRI_BITS)'",
                           "only the top 5 bits of a priority are kept")


def _write_config(ops: Ops, ctx: AccessContext, f: dict[str, Value], d: Value) -> Effect:
    if ctx.kind != "spi":
        return Effect({})  # 'The arch timer code relies on PPIs being level triggered, so we also make them read-only'
    return Effect({"edge": ops.extract(d, 1, 1)})


_read_config = Accessor("read_config", "read", lambda ops, ctx, f: ops.concat(f["edge"], ops.const(0, 1), 1),
                        f"{MMIO}: vgic_mmio_read_config", "bit 2i+1 is 1 for an edge-triggered interrupt")
_write_config_acc = Accessor("write_config", "write", _write_config, f"{MMIO}: vgic_mmio_write_config",
                             "SPI trigger; SGI/PPI configuration is read-only")


def _read_line(ops: Ops, ctx: AccessContext, f: dict[str, Value]) -> Value:
    # vgic_read_irq_line_level_info: 'if (irq->config == VGIC_CONFIG_LEVEL && irq->line_level)'
    return ops.and_(f["line_level"], ops.not_(f["edge"], 1))


def _write_line(ops: Ops, ctx: AccessContext, f: dict[str, Value], d: Value) -> Effect:
    if ctx.kind == "sgi":
        return Effect({})  # '(intid + i) < VGIC_NR_SGIS ... continue'
    # 'Line level is set irrespective of irq type (level or edge) to avoid dependency that
    # VM should restore irq config before line level.'
    return Effect({"line_level": d})


_line_read = Accessor("read_irq_line_level_info", "read", _read_line,
                      f"{MMIO}: vgic_read_irq_line_level_info",
                      "the line level of a level-sensitive interrupt (0 for an edge-triggered one)")
_line_write = Accessor("write_irq_line_level_info", "write", _write_line,
                       f"{MMIO}: vgic_write_irq_line_level_info",
                       "Line level is set irrespective of irq type (level or edge) to avoid dependency "
                       "that VM should restore irq config before line level.")


def _read_irouter(ops: Ops, ctx: AccessContext, f: dict[str, Value]) -> Value:
    if ctx.half:
        return ops.const(0, 32)  # 'The upper word is RAZ for us.'
    return ops.zext(f["mpidr"], 24, 32)


def _write_irouter(ops: Ops, ctx: AccessContext, f: dict[str, Value], d: Value) -> Effect:
    if ctx.half:
        return Effect({})  # 'The upper word is WI for us since we don't implement Aff3.'
    return Effect({"mpidr": ops.extract(d, 23, 0)})  # 'irq->mpidr = val & GENMASK(23, 0);'


_irouter = (Accessor("read_irouter", "read", _read_irouter, f"{MMIO3}: vgic_mmio_read_irouter",
                     "Aff2.Aff1.Aff0 of the route in the low word; the upper word reads 0"),
            Accessor("write_irouter", "write", _write_irouter, f"{MMIO3}: vgic_mmio_write_irouter",
                     "the low word sets Aff0-2 (IRM and bits 31:24 dropped); the upper word is write-ignored"))


def _spi_row(name: str, offset: int, bits: int, views: tuple[str, ...], guest: tuple[Accessor, Accessor],
             user: tuple[Accessor, Accessor] | None = None, pair: str = "", role: str = "", doc: str = "") -> Register:
    """A distributor row for SPIs 32..1023: its first 32 interrupts' words are RAZ/WI
    ('Trying to set private IRQs in this block gets ignored', REGISTER_DESC_WITH_BITS_PER_IRQ_SHARED),
    so the row starts at the SPIs and those words have no row (the kernel reads zero and
    ignores writes there too)."""
    irqs = 1024 - NR_PRIVATE
    words = 2 * irqs if bits == 64 else irqs * bits // 32
    u = user or guest
    return Register(name, DIST, offset + NR_PRIVATE * bits // 8, words, "irq", views, guest[0], guest[1],
                    u[0], u[1], bits_per_irq=bits, first_irq=NR_PRIVATE, irqs=irqs, pair=pair, pair_role=role, doc=doc)


def _private_row(name: str, offset: int, bits: int, views: tuple[str, ...], guest: tuple[Accessor, Accessor],
                 user: tuple[Accessor, Accessor] | None = None, pair: str = "", role: str = "",
                 first: int = 0, irqs: int = NR_PRIVATE) -> Register:
    """A redistributor SGI-frame row (SZ_64K + offset) for this vCPU's private interrupts."""
    u = user or guest
    return Register(name, REDIST, SGI_BASE + offset, irqs * bits // 32, "irq", views, guest[0], guest[1],
                    u[0], u[1], bits_per_irq=bits, first_irq=first, irqs=irqs, pair=pair, pair_role=role)


# ---------------------------------------------------------------------------------------
# Redistributor RD frame.


def _read_rctlr(ops: Ops, ctx: AccessContext, f: dict[str, Value]) -> Value:
    # vgic_mmio_read_v3r_ctlr: 'if (vgic_get_implementation_rev(vcpu) >= KVM_VGIC_IMP_REV_3) val
    # |= GICR_CTLR_IR | GICR_CTLR_CES;' (EnableLPIs is 0 without an ITS)
    rev3 = ops.eq(ctx.device["implementation_rev"], ops.const(3, 4))
    return ops.ite(rev3, ops.const(GICR_CTLR_IR | GICR_CTLR_CES, 32), ops.const(0, 32))


def _gicr_typer(ctx: object) -> int:
    c: AccessContext = ctx  # type: ignore[assignment]
    # vgic_mmio_read_v3r_typer: 'value = (u64)(mpidr & GENMASK(23, 0)) << 32; value |=
    # ((target_vcpu_id & 0xffff) << 8);' and Last for the last redistributor of the region
    # (one region holding every vCPU, as QEMU sets it up for up to 123 vCPUs); 5.10
    # userspace reads no Last. PLPIS needs an ITS.
    if c.half:
        return vcpu_mpidr(c.vcpu)
    last = GICR_TYPER_LAST if (c.semantics.typer_last_uaccess and c.vcpu == c.cpus - 1) else 0
    return ((c.vcpu & 0xFFFF) << 8) | last


def vcpu_mpidr(vcpu: int) -> int:
    """Aff2.Aff1.Aff0 of a vCPU's default MPIDR_EL1 (arch/arm64/kvm/sys_regs.c reset_mpidr:
    'mpidr = (vcpu->vcpu_id & 0x0f) << MPIDR_LEVEL_SHIFT(0); mpidr |= ((vcpu->vcpu_id >> 4) &
    0xff) << MPIDR_LEVEL_SHIFT(1); mpidr |= ((vcpu->vcpu_id >> 12) & 0xff) <<
    MPIDR_LEVEL_SHIFT(2);')."""
    return (vcpu & 0x0F) | (((vcpu >> 4) & 0xFF) << 8) | (((vcpu >> 12) & 0xFF) << 16)


def _base_rw(name: str, field: str, sanitise, scope_note: str) -> tuple[Accessor, Accessor]:
    def rd(ops: Ops, ctx: AccessContext, f: dict[str, Value]) -> Value:
        v = f[field] if field in f else ctx.device[field]
        return read_half(ops, v, ctx.half)

    def wr(ops: Ops, ctx: AccessContext, f: dict[str, Value], d: Value) -> Effect:
        # '/* Storing a value with LPIs already enabled is undefined */ if
        # (vgic_lpis_enabled(vcpu)) return;' (5.10: 'if (vgic_cpu->lpis_enabled) return;'):
        # only a VM with an ITS has the EnableLPIs field (spec/gicv3_its.py)
        old = f[field] if field in f else ctx.device[field]
        new = sanitise(ops, update_half(ops, old, ctx.half, d))
        if "enable_lpis" in f:
            new = ops.ite(f["enable_lpis"], old, new)
        return Effect({field: new})

    return (Accessor(f"vgic_mmio_read_{name}", "read", rd, f"{MMIO3}: vgic_mmio_read_{name}",
                     f"one half of {scope_note}"),
            Accessor(f"vgic_mmio_write_{name}", "write", wr, f"{MMIO3}: vgic_mmio_write_{name} (update_64bit_reg, "
                     f"vgic_sanitise_{name}r)", f"replaces one half of {scope_note}, then sanitises it"))


_propbase = _base_rw("propbase", "propbaser", sanitise_propbaser, "the VM's one GICR_PROPBASER")
_pendbase = _base_rw("pendbase", "pendbaser", sanitise_pendbaser, "this redistributor's GICR_PENDBASER")


def _rd_row(name: str, offset: int, views: tuple[str, ...], acc: tuple[Accessor, Accessor],
            words: int = 1, doc: str = "") -> Register:
    return Register(name, REDIST, offset, words, "cpu", views, acc[0], acc[1], acc[0], acc[1], doc=doc)


# ---------------------------------------------------------------------------------------
# CPU interface system registers (vgic-sys-reg-v3.c). Userspace only: the guest reaches
# them through the hardware's virtual CPU interface, which the guest events model.

ICC_CTLR_PRIBITS_SHIFT = 8
ICC_CTLR_IDBITS_SHIFT = 11
ICC_CTLR_SEIS = 1 << 14
ICC_CTLR_A3V = 1 << 15


def _host_ctlr_bits(ctx: AccessContext) -> int:
    """SEIS and A3V as the host's ICH_VTR_EL2 gives them (vgic_v3_enable); model choice:
    SEIS 0, A3V 1 on every host kind (GIC-600/700 and QEMU's emulated GICv3 alike)."""
    return ICC_CTLR_A3V


def _read_icc_ctlr(ops: Ops, ctx: AccessContext, f: dict[str, Value]) -> Value:
    # get_gic_ctlr: PRIbits = num_pri_bits - 1, IDbits, SEIS, A3V, CBPR, EOImode
    c = ops.const
    v = ops.or_(ops.zext(f["cbpr"], 1, 64), ops.concat(ops.zext(f["eoimode"], 1, 63), c(0, 1), 1))
    v = ops.or_(v, ops.concat(ops.zext(f["pri_bits"], 3, 56), c(0, 8), 8))
    v = ops.or_(v, ops.concat(ops.zext(f["id_bits"], 3, 53), c(0, 11), 11))
    return ops.or_(v, c(_host_ctlr_bits(ctx), 64))


def _write_icc_ctlr(ops: Ops, ctx: AccessContext, f: dict[str, Value], d: Value) -> Effect:
    """set_gic_ctlr: 'if (host_pri_bits > vgic_v3_cpu->num_pri_bits) return -EINVAL;
    vgic_v3_cpu->num_pri_bits = host_pri_bits;' (lowering it hides ICC_AP<g>R1-3 from
    userspace from then on: vgic_v3_max_apr_idx) then the same for IDbits, then SEIS and A3V
    must equal the host's, then CBPR and EOImode are stored. A write that lowers PRIbits
    (or IDbits, once PRIbits passed) and then fails keeps the lower value (Effect.kept):
    'vgic_v3_cpu->num_id_bits = host_id_bits;' comes before the SEIS and A3V checks too
    (5.10.223 access_gic_ctlr, 7.1.8 set_gic_ctlr; found by gicproof conform gicv3: a
    write of 0 reads back IDbits 0 after its EINVAL on every oracle kernel)."""
    pri = ops.extract(d, 10, 8)
    ids = ops.extract(d, 13, 11)
    pri_bad = ops.not_(ops.ule(pri, f["pri_bits"]), 1)
    id_bad = ops.not_(ops.ule(ids, f["id_bits"]), 1)
    host = _host_ctlr_bits(ctx)
    seis_bad = ops.not_(ops.eq(ops.extract(d, 14, 14), ops.const((host >> 14) & 1, 1)), 1)
    a3v_bad = ops.not_(ops.eq(ops.extract(d, 15, 15), ops.const((host >> 15) & 1, 1)), 1)
    later = ops.or_(id_bad, ops.or_(seis_bad, a3v_bad))
    return Effect({"pri_bits": pri, "id_bits": ids, "cbpr": ops.extract(d, 0, 0), "eoimode": ops.extract(d, 1, 1)},
                  error=ops.or_(pri_bad, later), errno="EINVAL",
                  kept={"pri_bits": ops.ite(pri_bad, f["pri_bits"], pri),
                        "id_bits": ops.ite(ops.or_(pri_bad, id_bad), f["id_bits"], ids)})


def _sysreg_row(name: str, enc: int, views: tuple[str, ...], rd, wr, src: str, rule_r: str, rule_w: str,
                doc: str = "") -> Register:
    r = Accessor(f"get_{name.lower()}", "read", rd, f"{SYSREG}: {src}", rule_r)
    w = Accessor(f"set_{name.lower()}", "write", wr, f"{SYSREG}: {src}", rule_w)
    return Register(name, SYSREGS, enc, 1, "cpu", views, r, w, r, w, width=64, unit=1, doc=doc)


def _simple_sysreg(name: str, enc: int, field: str, bits: int, src: str) -> Register:
    return _sysreg_row(name, enc, (field,),
                       lambda ops, ctx, f: ops.zext(f[field], bits, 64),
                       lambda ops, ctx, f, d: Effect({field: ops.extract(d, bits - 1, 0)}),
                       src, f"reads {field}", f"sets {field} from bits {bits - 1}:0")


def _read_bpr1(ops: Ops, ctx: AccessContext, f: dict[str, Value]) -> Value:
    # get_gic_bpr1: 'if (!vmcr.cbpr) *val = abpr; else *val = min((vmcr.bpr + 1), 7U);'
    plus = ops.ite(ops.eq(f["bpr0"], ops.const(7, 3)), ops.const(7, 3), _inc3(ops, f["bpr0"]))
    return ops.zext(ops.ite(f["cbpr"], plus, f["bpr1"]), 3, 64)


def _inc3(ops: Ops, v: Value) -> Value:
    out = ops.const(0, 3)
    for k in range(7):
        out = ops.ite(ops.eq(v, ops.const(k, 3)), ops.const(k + 1, 3), out)
    return out


def _write_bpr1(ops: Ops, ctx: AccessContext, f: dict[str, Value], d: Value) -> Effect:
    # set_gic_bpr1: 'if (!vmcr.cbpr) { vmcr.abpr = FIELD_GET(ICC_BPR1_EL1_MASK, val); ...'
    return Effect({"bpr1": ops.ite(f["cbpr"], f["bpr1"], ops.extract(d, 2, 0))})


def _read_sre(ops: Ops, ctx: AccessContext, f: dict[str, Value]) -> Value:
    # access_gic_sre / get_gic_sre: vgic_v3->vgic_sre = ICC_SRE_EL1_DIB | ICC_SRE_EL1_DFB | ICC_SRE_EL1_SRE
    return ops.const(0x7, 64)


def _write_sre(ops: Ops, ctx: AccessContext, f: dict[str, Value], d: Value) -> Effect:
    # set_gic_sre: 'if (!(val & ICC_SRE_EL1_SRE)) return -EINVAL;' else ignored
    return Effect({}, error=ops.not_(ops.extract(d, 0, 0), 1), errno="EINVAL")


VGIC_H = "arch/arm64/kvm/vgic/vgic.h"
APR_SOURCE = (
    f"{VGIC_H}: vgic_v3_max_apr_idx 'switch (cpu_if->num_pri_bits) {{ case 7: return 3; case 6: return 1; "
    "default: return 0; }' (the vCPU's num_pri_bits, which a userspace ICC_CTLR_EL1 write may lower: "
    f"set_gic_ctlr); {SYSREG}: 5.10.223 access_gic_aprn 'if (idx > vgic_v3_max_apr_idx(vcpu)) goto err;' "
    "('return false', which vgic_v3_cpu_sysregs_uaccess turns into 'return -EINVAL', read or write); "
    "6.1.176, 6.12.107, 7.1.8 get_gic_ap0r / set_gic_ap0r / get_gic_ap1r / set_gic_ap1r "
    "'u8 idx = r->Op2 & 3; if (idx > vgic_v3_max_apr_idx(vcpu)) return -EINVAL;' (kvm_sys_reg_get_user "
    "returns it before put_user: a refused read returns no value)")


def apr_accessible(ops: Ops, n: int, pri_bits: Value) -> Value:
    """Whether ICC_AP<g>R<n>_EL1 is within vgic_v3_max_apr_idx() of a vCPU whose
    ICC_CTLR_EL1.PRIbits field (``pri_bits`` = num_pri_bits - 1) is what it is now: index 0
    always, 1 with 6 or 7 bits, 2 and 3 with 7 (APR_SOURCE)."""
    if n == 0:
        return ops.const(1, 1)
    if n == 1:
        return ops.or_(ops.eq(pri_bits, ops.const(5, 3)), ops.eq(pri_bits, ops.const(6, 3)))
    return ops.eq(pri_bits, ops.const(6, 3))


def _apr_rows(g: int) -> list[Register]:
    """ICC_AP<g>R0-3_EL1. Whether userspace reaches one depends on the vCPU's current
    priority bits, not the host's (APR_SOURCE): a vCPU whose ICC_CTLR_EL1.PRIbits was
    lowered from 7 to 5 bits refuses ICC_AP<g>R1-3 with -EINVAL, read or write, although
    the kernel keeps vgic_ap<g>r[1-3] (set_gic_ctlr changes num_pri_bits only). The field
    exists only on a host with that many priority bits (whose pri_bits can be that high)."""
    rows = []
    for n in range(4):
        name = f"ap{g}r{n}"

        def refused(ops: Ops, ctx: AccessContext, f: dict[str, Value], _n=name, _i=n) -> Value:
            if _n not in f:
                return ops.const(1, 1)  # beyond the host's index, so beyond every vCPU's
            return ops.not_(apr_accessible(ops, _i, f["pri_bits"]), 1)

        def rd(ops: Ops, ctx: AccessContext, f: dict[str, Value], _n=name) -> Value:
            # the value of a refused read is never seen (Accessor.error)
            return ops.zext(f[_n], 32, 64) if _n in f else ops.const(0, 64)

        def wr(ops: Ops, ctx: AccessContext, f: dict[str, Value], d: Value, _n=name, _refused=refused,
               _i=n) -> Effect:
            if _i == 0:
                return Effect({_n: ops.extract(d, 31, 0)})  # index 0 is never beyond the maximum
            return Effect({_n: ops.extract(d, 31, 0)} if _n in f else {}, error=_refused(ops, ctx, f), errno="EINVAL")

        rule_r = f"vgic_ap{g}r[{n}]" + ("" if n == 0 else
                                        f"; -EINVAL unless the vCPU has {'6 or 7' if n == 1 else '7'} priority bits")
        rule_w = f"sets vgic_ap{g}r[{n}]" + ("" if n == 0 else
                                             f"; -EINVAL unless the vCPU has {'6 or 7' if n == 1 else '7'} "
                                             "priority bits (ICC_CTLR_EL1.PRIbits now)")
        r = Accessor(f"get_icc_ap{g}r{n}_el1", "read", rd, f"{SYSREG}: get_gic_ap{g}r; {APR_SOURCE}", rule_r,
                     error=refused if n else None, errno="EINVAL" if n else "")
        w = Accessor(f"set_icc_ap{g}r{n}_el1", "write", wr, f"{SYSREG}: set_gic_ap{g}r; {APR_SOURCE}", rule_w)
        rows.append(Register(f"ICC_AP{g}R{n}_EL1", SYSREGS, sysreg(3, 0, 12, 8 + g, (4 if g == 0 else 0) | n),
                             1, "cpu", (name,), r, w, r, w, width=64, unit=1,
                             doc="index 0 always; 1 with 6 or 7 priority bits, 2-3 with 7: the vCPU's "
                                 "ICC_CTLR_EL1.PRIbits (vgic_v3_max_apr_idx), else -EINVAL"))
    return rows


REGISTERS = (
    # -- distributor ----------------------------------------------------------------------
    Register("GICD_CTLR", DIST, 0x000, 1, "global", ("dist_enabled", "nassgireq"),
             Accessor("read_v3_misc", "read", _read_ctlr, f"{MMIO3}: vgic_mmio_read_v3_misc GICD_CTLR",
                      "EnableGrp1A, ARE_NS and DS (always 1), nASSGIreq"),
             Accessor("write_v3_misc", "write", _guest_write_ctlr, f"{MMIO3}: vgic_mmio_write_v3_misc GICD_CTLR",
                      "Dist stays enabled? nASSGIreq is RO"),
             Accessor("read_v3_misc", "read", _read_ctlr, f"{MMIO3}: vgic_mmio_read_v3_misc GICD_CTLR",
                      "EnableGrp1A, ARE_NS and DS (always 1), nASSGIreq"),
             Accessor("uaccess_write_v3_misc", "write", _uaccess_write_ctlr,
                      f"{MMIO3}: vgic_mmio_uaccess_write_v3_misc GICD_CTLR",
                      "stores EnableGrp1A and (GICv4.1 hosts only) nASSGIreq, at any time")),
    Register("GICD_TYPER", DIST, 0x004, 1, "global", (),
             read_const("read_v3_misc", _typer, 32, f"{MMIO3}: vgic_mmio_read_v3_misc GICD_TYPER",
                        "ITLinesNumber = nr_irqs/32 - 1, IDbits = 9 (no ITS)"),
             write_wi(f"{MMIO3}: vgic_mmio_write_v3_misc 'This is at best for documentation purposes...'"),
             read_const("read_v3_misc", _typer, 32, f"{MMIO3}: vgic_mmio_read_v3_misc GICD_TYPER",
                        "ITLinesNumber = nr_irqs/32 - 1, IDbits = 9 (no ITS)"),
             write_wi(f"{MMIO3}: vgic_mmio_uaccess_write_v3_misc (falls through to vgic_mmio_write_v3_misc)"),
             sized=True, doc="host value: checked by QEMU (kvm_arm_gicv3_check), not restored"),
    Register("GICD_IIDR", DIST, 0x008, 1, "global", ("implementation_rev",),
             Accessor("read_v3_misc", "read", lambda ops, ctx, f: _iidr_value(ops, f["implementation_rev"]),
                      f"{MMIO3}: vgic_mmio_read_v3_misc GICD_IIDR", "PRODUCT_ID_KVM, revision, IMPLEMENTER_ARM"),
             write_wi(f"{MMIO3}: vgic_mmio_write_v3_misc"),
             Accessor("read_v3_misc", "read", lambda ops, ctx, f: _iidr_value(ops, f["implementation_rev"]),
                      f"{MMIO3}: vgic_mmio_read_v3_misc GICD_IIDR", "PRODUCT_ID_KVM, revision, IMPLEMENTER_ARM"),
             Accessor("uaccess_write_v3_misc", "write", _uaccess_write_iidr,
                      f"{MMIO3}: vgic_mmio_uaccess_write_v3_misc GICD_IIDR",
                      "5.10: must equal the read value; 5.19: may differ in Revision only; a0e6ae45af17: "
                      "the written Revision (2 or 3) is stored; otherwise -EINVAL"),
             doc="host value; a userspace write confirms it"),
    Register("GICD_TYPER2", DIST, 0x00C, 1, "global", (),
             Accessor("read_v3_misc", "read", _read_typer2, f"{MMIO3}: vgic_mmio_read_v3_misc GICD_TYPER2",
                      "nASSGIcap on a GICv4.1 host with vSGIs, else 0; VIL and VID 0"),
             write_wi(f"{MMIO3}: vgic_mmio_write_v3_misc"),
             Accessor("read_v3_misc", "read", _read_typer2, f"{MMIO3}: vgic_mmio_read_v3_misc GICD_TYPER2",
                      "nASSGIcap on a GICv4.1 host with vSGIs, else 0; VIL and VID 0"),
             Accessor("uaccess_write_v3_misc", "write", _uaccess_write_typer2,
                      f"{MMIO3}: vgic_mmio_uaccess_write_v3_misc GICD_TYPER2",
                      "a write must equal the read value: -EINVAL (5.7-6.16), -EBUSY after INIT (6.17)"),
             doc="host value (an ID register): seed 002 migrates it so the destination checks it"),
    Register("GICD_STATUSR", DIST, 0x010, 1, "global", (),
             read_const("read_rao", lambda ctx: mask(32), 32, f"{MMIO3}: GICD_STATUSR vgic_mmio_read_rao",
                        "reads all ones"),
             write_wi(f"{MMIO3}: GICD_STATUSR vgic_mmio_write_wi"),
             read_const("read_rao", lambda ctx: mask(32), 32, f"{MMIO3}: GICD_STATUSR vgic_mmio_read_rao",
                        "reads all ones"),
             write_wi(f"{MMIO3}: GICD_STATUSR vgic_mmio_write_wi"),
             doc=f"not stored (the doc says otherwise: {DOC3})"),
    _spi_row("GICD_IGROUPR", 0x080, 1, ("group",), (_read_group, _write_group)),
    _spi_row("GICD_ISENABLER", 0x100, 1, ("enabled",), (_read_enable, _write_senable), pair="GICD_ICENABLER", role="set"),
    _spi_row("GICD_ICENABLER", 0x180, 1, ("enabled",), (_read_enable, _write_cenable), pair="GICD_ISENABLER", role="clear"),
    _spi_row("GICD_ISPENDR", 0x200, 1, ("pending_latch",), (_guest_read_pend, _guest_write_spend),
             (_uaccess_read_pend, _uaccess_write_pend)),
    _spi_row("GICD_ICPENDR", 0x280, 1, ("pending_latch",), (_guest_read_pend, _guest_write_cpend), _uaccess_icpendr),
    _spi_row("GICD_ISACTIVER", 0x300, 1, ("active",), (_read_active, _write_sactive), pair="GICD_ICACTIVER", role="set"),
    _spi_row("GICD_ICACTIVER", 0x380, 1, ("active",), (_read_active, _write_cactive), pair="GICD_ISACTIVER", role="clear"),
    _spi_row("GICD_IPRIORITYR", 0x400, 8, ("priority",), (_read_priority, _write_priority)),
    _spi_row("GICD_ICFGR", 0xC00, 2, ("edge",), (_read_config, _write_config_acc)),
    _spi_row("GICD_IROUTER", 0x6000, 64, ("mpidr",), _irouter,
             doc="64 bits per SPI, accessed in 32-bit halves: the upper word is RAZ/WI"),
    # -- redistributor RD frame ----------------------------------------------------------
    _rd_row("GICR_CTLR", 0x000, (),
            (Accessor("read_v3r_ctlr", "read", _read_rctlr, f"{MMIO3}: vgic_mmio_read_v3r_ctlr",
                      "IR and CES with IIDR revision 3; EnableLPIs 0 without an ITS"),
             write_wi(f"{MMIO3}: vgic_mmio_write_v3r_ctlr 'if (!vgic_has_its(vcpu->kvm)) return;'",
                      "write_v3r_ctlr"))),
    _rd_row("GICR_IIDR", 0x004, (),
            (read_const("read_v3r_iidr", lambda ctx: (PRODUCT_ID_KVM << 24) | IMPLEMENTER_ARM, 32,
                        f"{MMIO3}: vgic_mmio_read_v3r_iidr", "PRODUCT_ID_KVM, IMPLEMENTER_ARM"),
             write_wi(f"{MMIO3}: GICR_IIDR vgic_mmio_write_wi"))),
    _rd_row("GICR_TYPER", 0x008, (),
            (read_const("read_v3r_typer", _gicr_typer, 32, f"{MMIO3}: vgic_mmio_read_v3r_typer "
                        "(5.10: vgic_uaccess_read_v3r_typer, no Last)",
                        "affinity (upper word), processor number, Last"),
             write_wi(f"{MMIO3}: GICR_TYPER vgic_mmio_uaccess_write_wi", "uaccess_write_wi")),
            words=2, doc="read-only: QEMU reads it for PLPIS and the affinity it addresses redistributors by"),
    _rd_row("GICR_STATUSR", 0x010, (), (read_raz(32, f"{MMIO3}: GICR_STATUSR vgic_mmio_read_raz"),
                                        write_wi(f"{MMIO3}: GICR_STATUSR vgic_mmio_write_wi"))),
    _rd_row("GICR_WAKER", 0x014, (), (read_raz(32, f"{MMIO3}: GICR_WAKER vgic_mmio_read_raz"),
                                      write_wi(f"{MMIO3}: GICR_WAKER vgic_mmio_write_wi"))),
    _rd_row("GICR_PROPBASER", 0x070, ("propbaser",), _propbase, words=2,
            doc="one value per VM (dist->propbaser) whichever redistributor is written"),
    _rd_row("GICR_PENDBASER", 0x078, ("pendbaser",), _pendbase, words=2),
    # -- redistributor SGI frame -------------------------------------------------------
    _private_row("GICR_IGROUPR0", 0x080, 1, ("group",), (_read_group, _write_group)),
    _private_row("GICR_ISENABLER0", 0x100, 1, ("enabled",), (_read_enable, _write_senable),
                 pair="GICR_ICENABLER0", role="set"),
    _private_row("GICR_ICENABLER0", 0x180, 1, ("enabled",), (_read_enable, _write_cenable),
                 pair="GICR_ISENABLER0", role="clear"),
    _private_row("GICR_ISPENDR0", 0x200, 1, ("pending_latch",), (_guest_read_pend, _guest_write_spend),
                 (_uaccess_read_pend, _uaccess_write_pend)),
    _private_row("GICR_ICPENDR0", 0x280, 1, ("pending_latch",), (_guest_read_pend, _guest_write_cpend),
                 _uaccess_icpendr),
    _private_row("GICR_ISACTIVER0", 0x300, 1, ("active",), (_read_active, _write_sactive),
                 pair="GICR_ICACTIVER0", role="set"),
    _private_row("GICR_ICACTIVER0", 0x380, 1, ("active",), (_read_active, _write_cactive),
                 pair="GICR_ISACTIVER0", role="clear"),
    _private_row("GICR_IPRIORITYR", 0x400, 8, ("priority",), (_read_priority, _write_priority)),
    _private_row("GICR_ICFGR0", 0xC00, 2, ("edge",), (_read_config, _write_config_acc), irqs=16),
    _private_row("GICR_ICFGR1", 0xC04, 2, ("edge",), (_read_config, _write_config_acc), first=16, irqs=16),
    # -- CPU interface system registers (attribute = encoding) ---------------------------
    _simple_sysreg("ICC_PMR_EL1", sysreg(3, 0, 4, 6, 0), "pmr", 8, "set_gic_pmr / get_gic_pmr"),
    _simple_sysreg("ICC_BPR0_EL1", sysreg(3, 0, 12, 8, 3), "bpr0", 3, "set_gic_bpr0 / get_gic_bpr0"),
    *_apr_rows(0),
    *_apr_rows(1),
    _sysreg_row("ICC_BPR1_EL1", sysreg(3, 0, 12, 12, 3), ("bpr1",), _read_bpr1, _write_bpr1,
                "set_gic_bpr1 / get_gic_bpr1", "BPR1, or min(BPR0 + 1, 7) while CBPR is set",
                "sets BPR1 unless CBPR is set (then ignored)"),
    _sysreg_row("ICC_CTLR_EL1", sysreg(3, 0, 12, 12, 4), ("pri_bits", "id_bits", "cbpr", "eoimode"),
                _read_icc_ctlr, _write_icc_ctlr, "set_gic_ctlr / get_gic_ctlr",
                "PRIbits, IDbits, SEIS, A3V, CBPR, EOImode",
                "PRIbits and IDbits may only stay or decrease, SEIS and A3V must equal the host's "
                "(-EINVAL); CBPR and EOImode are stored"),
    _sysreg_row("ICC_SRE_EL1", sysreg(3, 0, 12, 12, 5), (), _read_sre, _write_sre, "set_gic_sre / get_gic_sre",
                "SRE, DFB, DIB (0x7)", "-EINVAL unless SRE is set; otherwise ignored"),
    _simple_sysreg("ICC_IGRPEN0_EL1", sysreg(3, 0, 12, 12, 6), "grpen0", 1, "set_gic_grpen0 / get_gic_grpen0"),
    _simple_sysreg("ICC_IGRPEN1_EL1", sysreg(3, 0, 12, 12, 7), "grpen1", 1, "set_gic_grpen1 / get_gic_grpen1"),
    # -- line levels (attribute = first INTID of the word, KVM_DEV_ARM_VGIC_LINE_LEVEL_INFO) -
    Register("VGIC_LINE_LEVEL", LEVEL, 0, 32, "irq", ("line_level",), _line_read, _line_write, _line_read,
             _line_write, bits_per_irq=1, irqs=1024, unit=32,
             doc="KVM_DEV_ARM_VGIC_GRP_LEVEL_INFO with KVM_DEV_ARM_VGIC_LINE_LEVEL_INFO: word 0 is "
                 "banked per vCPU (its PPIs), the others are SPIs"),
)


def _ctrl_init(ops: Ops, ctx: AccessContext, f: dict[str, Value]) -> Effect:
    # vgic_init returns 0 when already initialised; QEMU initialises at realize, before any put
    return Effect({})


OPERATIONS = (
    Operation("KVM_DEV_ARM_VGIC_CTRL_INIT", _ctrl_init,
              f"{DOC3}: KVM_DEV_ARM_VGIC_CTRL_INIT 'request the initialization of the VGIC'",
              "initialises the VGIC (idempotent)"),
)


NO_MAPPED_DESTINATION = Assumption(
    "no-mapped-destination", _irq_field_is_zero("hw_mapped", 1),
    "the destination's vCPUs have not run before the restore, so no timer PPI is mapped to hardware "
    "there: the kernel ignores userspace writes to a mapped interrupt's active state",
    f"{MMIO}: vgic_hw_irq_change_active 'if (is_uaccess) return;'", side="destination")


def environment_coverage(destination: str) -> str:
    if destination == "fresh":
        return "timer PPIs mapped or not on the source; none mapped on the destination"
    return "timer PPIs mapped to hardware or not, on the source and on the destination"


GICV3 = DeviceSpec(
    name="gicv3",
    title="GICv3 without an ITS (KVM_DEV_TYPE_ARM_VGIC_V3)",
    fields=FIELDS,
    registers=REGISTERS,
    operations=OPERATIONS,
    versions=VERSIONS,
    default_kernel=DEFAULT_KERNEL,
    interrupt_kind=interrupt_kind,
    reset=reset,
    invariant=invariant,
    invariant_conjuncts=invariant_conjuncts,
    max_cpus=MAX_CPUS,
    vcpu_classes=True,
    irq_counts=IRQ_COUNTS,
    private_irqs=NR_PRIVATE,
    not_state=NOT_STATE,
    assumptions=(NO_MAPPED_DESTINATION,),
    resolve=semantics_for,
    boundaries=BOUNDARIES,
    hosts={name: h.description for name, h in HOSTS.items()},
    default_host=DEFAULT_HOST,
    with_host=with_host,
    environment_coverage=environment_coverage,
    clear_set_assumption=_irq_field_is_zero("hw_mapped", 1),
    clear_set_assumption_reason="no interrupt mapped to hardware (the kernel ignores userspace active "
    "writes to a mapped interrupt: vgic_hw_irq_change_active; the round trip reports that loss)",
    order_assumption=lambda ops, scope, f: ops.eq(f["cbpr"], ops.const(0, 1)) if scope == "cpu"
    else ops.const(1, 1),
    order_assumption_reason=(
        "orders are compared on sources whose CPU interfaces have ICC_CTLR_EL1.CBPR clear: with "
        "CBPR set, a userspace ICC_BPR1_EL1 read returns min(BPR0 + 1, 7), not the stored BPR1, and "
        "a write is ignored (get_gic_bpr1 / set_gic_bpr1), so no order restores the stored value, "
        "which would make every order look as bad as any other"),
    doc=__doc__ or "",
).validate()
