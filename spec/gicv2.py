"""GICv2 as KVM exposes it to userspace (KVM_DEV_TYPE_ARM_VGIC_V2).

Sources (quoted in each rule below):
  DOC   = Documentation/virt/kvm/devices/arm-vgic.rst
  MMIO2 = arch/arm64/kvm/vgic/vgic-mmio-v2.c   (virt/kvm/arm/vgic/ before 5.6)
  MMIO  = arch/arm64/kvm/vgic/vgic-mmio.c
  INIT  = arch/arm64/kvm/vgic/vgic-init.c
  QEMU  = hw/intc/arm_gic_kvm.c (QEMU)
  seed 000 = ../shared/seeds/000_3320b6318e498174.txt (QEMU RFC v2 of the GICv2 save/restore)
  ORIGINAL = virt/kvm/arm/vgic.c (3.18-4.6; its GICv2 parts in virt/kvm/arm/vgic-v2-emul.c
             from 4.0), read as torvalds/linux vgic.c 016ed39c54b8 and vgic-v2-emul.c
             47a98b15ba7c, the msm-3.18 tree, a 4.2+ vgic.c (irq_phys_map) and the Ubuntu
             utopic (3.16) tree; vgic-v2.c vgic_v2_set_vmcr; include/linux/irqchip/arm-gic.h

Kernel releases: any release from 3.18 to the newest series checked (``NEWEST``), stable
point releases included, resolves to a ``GicV2Semantics`` through ``BOUNDARIES`` below:
each change of the userspace semantics with its commit, its first mainline release, the
stable point releases carrying it, and how that was established ("believed" marks a
release number not confirmed from a release tag's contents; the research read Debian's
5.10.262, 6.1.176, 6.12.107 and 7.1.8 sources, stable trees 4.4.121 and 4.9.45, pull
requests, stable review mails and Debian changelogs). ``VERSIONS`` holds one semantics per
*revision*: 3.18 and each mainline release where a boundary starts; ``gicproof describe
gicv2`` prints them all.

The original VGIC (virt/kvm/arm/vgic.c, revisions 3.18 and 4.1): userspace accesses go
through the guest's MMIO handlers (vgic_attr_regs_access calls range->handle_mmio after
vgic_unqueue_irqs), so guest and userspace semantics are the same. Per interrupt it keeps
irq_pending, irq_soft_pend and irq_level, which map one to one onto the canonical fields
(``original_bits``): a GICD_ISPENDR write sets irq_soft_pend only if the interrupt is
level-sensitive when written, and a GICD_ICFGR write re-derives nothing, so the order of
the two matters (QEMU's 74fdb781c1). SPIs reset level-triggered, every private interrupt is
edge-triggered and its configuration write-ignored, SGIs cannot be disabled, priorities
keep 8 bits, an SPI targets exactly one vCPU, GICD_IGROUPR and (before 4.1) GICD_I{S,C}ACTIVER
are read-as-zero/write-ignored, GICC_APRn too, GICD_IIDR reads 0x4b00043b. Not modelled
for it: a userspace access at an offset with no handler returns -ENXIO there (the model
ignores it, as later kernels do); an access while a vCPU runs returns -EBUSY (sequences
stop the vCPUs); an SGI pending with no source is dropped at the next guest entry
(vgic_queue_sgi), which the model does only when a guest acknowledges it. 3.14-3.17 have
userspace register access but index GICD_C/SPENDSGIR words 1-3 into another vCPU's SGIs,
which a per-bank model cannot express: they are refused with that reason, and releases
before 3.14 have no userspace register access.

Model choices (said here once, cited where used):
  * Host kinds (``HOSTS``): a GICv2 host (VGIC_V2, the default), where only GICC_APR0 is
    stored, or a GICv3 host running the guest through GICv2 compatibility, where GICC_APRn
    are ICH_AP1Rn up to vgic_v3_max_apr_idx() (5, 6 or 7 priority bits).
  * The line level of an interrupt is *environment*: its source (a QEMU device through
    KVM_IRQ_LINE, the in-kernel timer for PPIs) drives it, and the GICv2 device API has no
    attribute for it (KVM_DEV_ARM_VGIC_GRP_LEVEL_INFO exists for GICv3 only,
    arm-vgic-v3.rst). We assume the source drives the same level on the destination,
    where its kernel records one (the original VGIC keeps none for a private interrupt).
  * Hardware-mapped interrupts (irq->hw: the timer PPIs, mapped at a vCPU's first KVM_RUN)
    are environment too, but the destination's own (``hw_mapped``, not carried): none on a
    fresh destination, either way on an 'any' one; every verdict's 'covers' says so. From
    4.16 the kernel ignores userspace active writes to them (vgic_hw_irq_change_active),
    and pending writes until 5.7.
  * GICv4 is out of scope for GICv2.
"""

from __future__ import annotations

import dataclasses
import re
from dataclasses import dataclass

from spec.algebra import Ops, Value, bool_and, implies, mask, nonzero, subset
from spec.behaviours import (
    read_const,
    read_field,
    write_field,
    write_one_to_set,
    write_wi,
)
from spec.device import (
    ARCHITECTURAL,
    DERIVED,
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

DOC = "Documentation/virt/kvm/devices/arm-vgic.rst"
MMIO2 = "arch/arm64/kvm/vgic/vgic-mmio-v2.c"
MMIO = "arch/arm64/kvm/vgic/vgic-mmio.c"
INIT = "arch/arm64/kvm/vgic/vgic-init.c"
SEED000 = "seed 000_3320b6318e498174.txt"

DIST = "KVM_DEV_ARM_VGIC_GRP_DIST_REGS"
CPUIF = "KVM_DEV_ARM_VGIC_GRP_CPU_REGS"

NR_SGIS = 16
NR_PRIVATE = 32
MAX_CPUS = 8
# vgic_set_common_attr(): "at least 32 SPIs on top of the 16 SGIs and 16 PPIs, at most 1024
# interrupts, a multiple of 32", checked as val > VGIC_MAX_RESERVED (1023): so 64..992.
IRQ_COUNTS = tuple(range(64, 1024, 32))

PRODUCT_ID_KVM = 0x4B
IMPLEMENTER_ARM = 0x43B
IIDR_REVISION_SHIFT = 12
IIDR_REVISION_MASK = 0xF << IIDR_REVISION_SHIFT
GICC_CTLR_STORED = 0x21F  # EnableGrp0|EnableGrp1|AckCtl|FIQEn|CBPR (bits 0-4), EOImodeNS (9)


@dataclass(frozen=True)
class Boundary:
    """A change of the userspace semantics: the mainline release that first has it, the
    stable point releases it was backported to ((major, minor) -> first point release),
    the commit, and how the release numbers were established ("believed": from pull
    requests or mails, not from a release tag's contents)."""

    name: str
    what: str
    mainline: tuple[int, int]
    commit: str
    evidence: str
    stable: tuple[tuple[tuple[int, int], int], ...] = ()

    def applies(self, release: tuple[int, int, int]) -> bool:
        if release[:2] >= self.mainline:
            return True
        return any(release[:2] == series and release[2] >= point for series, point in self.stable)

    def releases(self) -> str:
        out = f"v{self.mainline[0]}.{self.mainline[1]}"
        if self.stable:
            out += " (stable: " + ", ".join(f"{a}.{b}.{p}" for (a, b), p in self.stable) + ")"
        return out


BOUNDARIES = (
    Boundary("sgi_pend_index", "original VGIC: a GICD_CPENDSGIR/SPENDSGIR word n reaches SGIs 4n..4n+3 of the "
             "accessing vCPU ('int min_sgi = (offset & ~0x3);'); before it, 3.14-3.17, 'min_sgi = (offset "
             "& ~0x3) * 4' reaches another vCPU's SGIs 0-3, so those releases are refused (OLDEST)", (3, 18),
             "the SGI pending-register indexing fix (commit not identified)",
             "believed v3.18: the msm-3.18 tree and torvalds/linux virt/kvm/arm/vgic.c 016ed39c54b8 have the "
             "fixed indexing; the Ubuntu utopic tree (3.16, irq_state) and an unidentified vgic.c with "
             "irq_soft_pend and VGIC_NR_IRQS (3.17 era) the buggy one; whether 3.17 as released carries the "
             "fix was not established"),
    Boundary("active_state", "original VGIC: GICD_ISACTIVER/ICACTIVER store the active state (irq_active, "
             "vgic_handle_set/clear_active_reg); before it they are handle_mmio_raz_wi and the active state "
             "lives only in the list registers, which no attribute reaches", (4, 1),
             "47a98b15ba7c 'arm/arm64: KVM: Implement support for unqueueing active IRQs' (title believed)",
             "believed v4.1: torvalds/linux virt/kvm/arm/vgic-v2-emul.c stored at 47a98b15ba7c maps "
             "GIC_DIST_ACTIVE_SET/CLEAR to handle_mmio_set/clear_active_reg; virt/kvm/arm/vgic.c at "
             "016ed39c54b8 (3.18/3.19 era, before the vgic-v2-emul.c split of v4.0) and the msm-3.18 tree "
             "map them to handle_mmio_raz_wi"),
    Boundary("rewritten", "the rewritten VGIC (virt/kvm/arm/vgic/, vgic-mmio*.c) replaces the original "
             "virt/kvm/arm/vgic.c: per-interrupt struct vgic_irq, GICD_IGROUPR read-as-one, priorities "
             "narrowed to 5 bits, targets masked with the online vCPUs, SPIs reset edge-triggered and PPIs "
             "level-triggered, GICD_ICENABLER0 can disable SGIs", (4, 7),
             "the 'vgic-new' series, e.g. 96b298000db4 'KVM: arm/arm64: vgic-new: Add PENDING registers "
             "handlers'", "believed v4.7 (the vgic-new series was merged for 4.7); v4.9.45 has "
             "virt/kvm/arm/vgic/ and no virt/kvm/arm/vgic.c"),
    Boundary("latch", "pending/soft_pending replaced by pending_latch; a GICD_ICFGR write no longer "
             "re-derives the pending state", (4, 11),
             "8694e4da66a6 'KVM: arm/arm64: Remove struct vgic_irq pending field'",
             "believed v4.11: v4.9.45 vgic_mmio_write_config recomputes 'irq->pending = "
             "irq->line_level || irq->soft_pending', v5.10 only sets irq->config"),
    Boundary("apr", "userspace access to GICC_APRn (before it: read-as-zero, write-ignored)", (4, 12),
             "9b87e7a8bfb5 'KVM: arm/arm64: Support uaccess of GICC_APRn'",
             "believed v4.12; v4.9.45 vgic-mmio-v2.c: GIC_CPU_ACTIVEPRIO is vgic_mmio_read_raz / "
             "vgic_mmio_write_wi"),
    Boundary("hw_uaccess", "userspace writes to the active state of an interrupt mapped to hardware "
             "(irq->hw: the arch timer PPIs, mapped by kvm_timer_enable at the vCPU's first KVM_RUN) "
             "are ignored: vgic_hw_irq_change_active 'if (is_uaccess) return;'; so are userspace "
             "pending writes to it (vgic_hw_irq_spending/cpending) until the separate userspace "
             "pending accessors of 5.7 (ba1ed9e17b58), which set and clear the latch whatever irq->hw",
             (4, 16),
             "df635c5b17d0 'KVM: arm/arm64: Support VGIC dist pend/active changes for mapped IRQs' (believed)",
             "its message: 'Changing the state of mapped interrupts from userspace is not supported ... One "
             "annoying exception with this is the arch timer, which is mapped directly from the kernel "
             "without userspace knowing when that happens'; believed v4.16 (kvmarm 'level-mapped-v3' series, Dec 2017); absent from v4.9.45 "
             "vgic_mmio_change_active (no irq->hw case), present in the 82e40f558de5 diff context (2019: "
             "'if (irq->hw) vgic_hw_irq_spending(vcpu, irq, is_uaccess)'), removed for pending by the "
             "ba1ed9e17b58 diff, and present for active in 5.10.262 and 7.1.8"),
    Boundary("active_source", "a GICv2 SGI made active remembers its source vCPU (irq->active_source); a "
             "userspace GICD_ISACTIVER write sets it to vCPU 0: 'This may lead to a VCPU not being able "
             "to receive additional instances of a particular SGI after migration for a GICv2 VM on "
             "some GIC implementations. Oh well.' (vgic_mmio_change_active)", (4, 17),
             "53692908b0f5 'KVM: arm/arm64: vgic: Fix source vcpu issues for GICv2 SGI' (believed)",
             "believed v4.17: absent from v4.9.45 virt/kvm/arm/vgic/vgic-mmio.c (vgic_mmio_change_active "
             "has no active_source), present in 5.10.262, 6.1.176, 6.12.107 and 7.1.8"),
    Boundary("groups", "interrupt groups configurable; userspace GICD_IGROUPR writes need a GICD_IIDR "
             "write first, which must match exactly (IIDR revision 2); before it GICD_IGROUPR reads "
             "as all ones (vgic_mmio_read_rao) and IIDR revision 0 ignores writes", (4, 19),
             "d53c2c29ae0d 'KVM: arm/arm64: vgic: Allow configuration of interrupt groups', "
             "32f8777ed92d 'KVM: arm/arm64: vgic: Let userspace opt-in to writable v2 IGROUPR'",
             "'Second batch of KVM changes for 4.19-rc1' pull; v4.9.45 vgic-mmio-v2.c: GIC_DIST_IGROUP "
             "is vgic_mmio_read_rao / vgic_mmio_write_wi; v5.10.262 vgic_mmio_uaccess_write_v2_misc"),
    Boundary("sgi_wi", "SGI bits of GICD_I{S,C}PENDR0 write-ignored, for the guest and (through the same "
             "accessors until 5.7) for userspace", (5, 3),
             "82e40f558de5 'KVM: arm/arm64: vgic-v2: Handle SGI bits in GICD_I{S,C}PENDR0 as WI'",
             "v5.3 ('arm64 fixes for -rc7' pull); 4.9.191 (4.9.191-rc1 shortlog), 4.14.142 and 4.19.70 "
             "(stable review mails, point numbers believed), 5.2.12 (Debian changelog)",
             (((4, 9), 191), ((4, 14), 142), ((4, 19), 70), ((5, 2), 12))),
    Boundary("uaccess_pending", "separate userspace pending accessors: a GICv2 SGI set pending gets the "
             "accessing vCPU as its source, a clear drops all its sources", (5, 7),
             "ba1ed9e17b58 'KVM: arm: vgic-v2: Only use the virtual state when userspace accesses "
             "pending bits'",
             "v5.7 (kvmarm-fixes-5.7-1); 5.6.14 (Debian changelog); no 5.4.y or 4.19.y backport found",
             (((5, 6), 14),)),
    Boundary("iidr_rev3", "GICD_IIDR revision 3; a userspace IIDR write may differ from it in the "
             "Revision field only, and the revision is then taken from the current value", (5, 19),
             "49a1a2c70a7f 'KVM: arm64: vgic-v3: Advertise GICR_CTLR.{IR, CES} as a new GICD_IIDR "
             "revision'", "believed v5.19; in the 6.1.176 source, not in 5.10.262; the oracle reads "
             "0x4b00243b on Debian 5.10.223 and 0x4b00343b on 6.1.176"),
    Boundary("iidr_from_value", "the revision of a userspace GICD_IIDR write is taken from the written "
             "value: 2 or 3 is stored (and read back), anything else is -EINVAL", (7, 1),
             "a0e6ae45af17 'KVM: arm64: vgic: Fix IIDR revision field extracted from wrong value'",
             "believed v7.1; 6.1.175 and 6.12.88 (Debian changelogs); the 6.18.y and 7.0.y point "
             "releases carrying it were not established, so those series are modelled without it",
             (((6, 1), 175), ((6, 12), 88))),
)

# KVM_DEV_ARM_VGIC_GRP_DIST_REGS/CPU_REGS (userspace register access) first exist in v3.14
# (vgic_attr_regs_access, 'KVM: arm-vgic: Add vgic reg access from dev attr', c07a0191ef2d, believed).
FIRST_UACCESS = (3, 14)
# The oldest release modelled: from 3.14 to 3.17 read/write_set_clear_sgi_pend_reg compute
# 'int min_sgi = (offset & ~0x3) * 4;', so a GICD_C/SPENDSGIR access to word 1-3 of vCPU v reaches
# SGIs 0-3 of vCPU v+1..v+3 (irq_sgi_sources[vcpu][16] is one array), or memory beyond it for the
# last vCPUs: state of another bank, which a per-bank model cannot express, so those releases are
# refused. Read in the Ubuntu utopic (3.16) tree and in an unidentified blob with irq_soft_pend and
# VGIC_NR_IRQS (3.17 era); the msm-3.18 tree and torvalds/linux vgic.c 016ed39c54b8 have
# 'int min_sgi = (offset & ~0x3);'. The fixing commit and its release (3.17 or 3.18) were not
# identified, so 3.17 is refused too.
OLDEST = (3, 18)
REWRITTEN = (4, 7)  # the rewritten VGIC (virt/kvm/arm/vgic/); before it: the original virt/kvm/arm/vgic.c
# The newest series whose sources were read (7.1.8) or which the oracle ran (Debian 7.2.13):
# a later release may have changed the semantics, so it is refused until checked.
NEWEST = (7, 2)


def parse_release(text: str) -> tuple[int, int, int] | None:
    """'4.19' (as released), '4.19.70' (a stable point release) -> (4, 19, 70)."""
    m = re.fullmatch(r"(\d{1,2})\.(\d{1,3})(?:\.(\d{1,4}))?", text.strip())
    if not m:
        return None
    return int(m.group(1)), int(m.group(2)), int(m.group(3) or 0)


@dataclass(frozen=True)
class GicV2Semantics:
    """The userspace (and guest) semantics of one kernel release, from ``BOUNDARIES``."""

    kernel: str
    vgic: str  # "original" (virt/kvm/arm/vgic.c, 3.18-4.6) | "rewritten" (virt/kvm/arm/vgic/, 4.7+)
    active_uaccess: bool  # GICD_I{S,C}ACTIVER store the active state (original VGIC from 4.1; always after)
    pending_model: str  # "original" (irq_pending/irq_soft_pend/irq_level) | "soft_pending" (4.7-4.10) | "latch" (4.11+)
    apr_uaccess: bool  # GICC_APRn readable and writable from userspace (4.12)
    active_source: bool  # an active GICv2 SGI's source vCPU is kept, and set to 0 by userspace (4.17)
    groups: bool  # interrupt groups guest-configurable; userspace gated by IIDR (4.19+)
    sgi_pending_wi: bool  # SGI bits of GICD_I{S,C}PENDR0 write-ignored through the MMIO accessors (5.3)
    uaccess_pending: bool  # separate userspace ISPENDR/ICPENDR accessors (GICv2 SGI sources, 5.7)
    iidr_write: str  # "ignored" | "exact" | "revision-ignored" | "revision-from-value"
    iidr_revision: int  # the IIDR revision after reset
    revision: str  # the semantic revision this release falls in (a key of VERSIONS)
    source: str
    # userspace writes to the active (and, before 5.7, pending) state of an interrupt mapped
    # to hardware are ignored (4.16)
    hw_uaccess_wi: bool = False
    host: str = "gicv2"  # the host kind (HOSTS): where GICC_APRn live

    @property
    def apr_max_idx(self) -> int:
        """The last GICC_APRn userspace reaches: 0 on a GICv2 host ('GICv2 hardware systems
        support max. 32 groups'); on a GICv3 host vgic_v3_max_apr_idx() from the host's
        priority bits (ICH_VTR_EL2.PRIbits: 7 -> 3, 6 -> 1, otherwise 0)."""
        return HOSTS[self.host][0]

    @property
    def hw_pending_uaccess_wi(self) -> bool:
        """Userspace pending writes to a mapped interrupt are ignored (4.16 to 5.6)."""
        return self.hw_uaccess_wi and not self.uaccess_pending

    def iidr(self) -> int:
        """GICD_IIDR after reset."""
        return (PRODUCT_ID_KVM << 24) | (self.iidr_revision << IIDR_REVISION_SHIFT) | IMPLEMENTER_ARM

    def flags(self) -> tuple:
        return (self.vgic, self.active_uaccess, self.pending_model, self.apr_uaccess, self.active_source,
                self.hw_uaccess_wi, self.groups, self.sgi_pending_wi, self.uaccess_pending, self.iidr_write,
                self.iidr_revision)


def _base(kernel: str) -> GicV2Semantics:
    """The semantics of a kernel release, without its revision name."""
    rel = parse_release(kernel)
    if rel is None:
        raise ValueError(f"'{kernel}' is not a kernel release: write X.Y (as released) or X.Y.Z "
                         "(a stable point release), e.g. 4.19 or 4.19.70")
    if rel[:2] > NEWEST:
        raise ValueError(f"kernel {kernel} is newer than the newest series checked ({NEWEST[0]}.{NEWEST[1]}): "
                         "its semantics are not known yet (run gicproof conform on it, then extend "
                         "spec/gicv2.py BOUNDARIES and NEWEST)")
    if rel[:2] < FIRST_UACCESS:
        raise ValueError(f"kernel {kernel} has no userspace access to the GICv2 registers "
                         "(KVM_DEV_ARM_VGIC_GRP_DIST_REGS/CPU_REGS came in 3.14): the oldest modelled "
                         f"release is {OLDEST[0]}.{OLDEST[1]}")
    if rel[:2] < OLDEST:
        raise ValueError(f"kernel {kernel} (3.14-3.17) indexes GICD_CPENDSGIR/SPENDSGIR words 1-3 into "
                         "another vCPU's SGIs ('int min_sgi = (offset & ~0x3) * 4;' in "
                         "read/write_set_clear_sgi_pend_reg, virt/kvm/arm/vgic.c), which the per-bank "
                         f"model cannot express: the oldest modelled release is {OLDEST[0]}.{OLDEST[1]}")
    has = {b.name: b.applies(rel) for b in BOUNDARIES}
    if has["iidr_from_value"]:
        iidr_write, rev = "revision-from-value", 3
    elif has["iidr_rev3"]:
        iidr_write, rev = "revision-ignored", 3
    elif has["groups"]:
        iidr_write, rev = "exact", 2
    else:
        iidr_write, rev = "ignored", 0
    applied = [b for b in BOUNDARIES if has[b.name]]
    source = "; ".join(f"{b.commit} ({b.releases()})" for b in applied
                       if b.name not in ("sgi_pend_index", "active_state") or not has["rewritten"])
    if not has["rewritten"]:
        source = "the original VGIC (virt/kvm/arm/vgic.c; vgic-v2-emul.c from v4.0); " + source
    pending_model = "latch" if has["latch"] else "soft_pending" if has["rewritten"] else "original"
    return GicV2Semantics(
        kernel=kernel, vgic="rewritten" if has["rewritten"] else "original",
        active_uaccess=has["active_state"] or has["rewritten"], pending_model=pending_model,
        apr_uaccess=has["apr"], active_source=has["active_source"], groups=has["groups"], sgi_pending_wi=has["sgi_wi"],
        uaccess_pending=has["uaccess_pending"], iidr_write=iidr_write, iidr_revision=rev,
        revision="", source=source, hw_uaccess_wi=has["hw_uaccess"])


# The semantic revisions: 4.7 and every mainline release where a boundary starts. A
# stable point release may combine them differently (4.19.70 is 4.19 plus the 5.3 rule):
# it is then a revision of its own, named by the release.
REVISIONS = ("3.18", "4.1", "4.7", "4.11", "4.12", "4.16", "4.17", "4.19", "5.3", "5.7", "5.19", "7.1")
_FLAGS = {name: _base(name).flags() for name in REVISIONS}


def semantics_for(kernel: str) -> GicV2Semantics:
    """The semantics of a kernel release ('6.12', '4.19.70'); ValueError if not modelled."""
    sem = _base(kernel)
    revision = next((n for n in REVISIONS if _FLAGS[n] == sem.flags()), kernel)
    return dataclasses.replace(sem, revision=revision)


VERSIONS = {name: semantics_for(name) for name in REVISIONS}
DEFAULT_KERNEL = "7.1"

# Host kinds: name -> (vgic_v3_max_apr_idx, description). A GICv2 guest runs on a GICv2
# host (GICH_* list registers, kvm_vgic_global_state.type == VGIC_V2) or, through the
# GICv3 CPU interface's GICv2 compatibility, on a GICv3 host (VGIC_V3), where the guest's
# active priorities are ICH_AP1Rn_EL2 and userspace reaches APR0..APRn up to
# vgic_v3_max_apr_idx(): vgic-mmio-v2.c vgic_mmio_read_apr/vgic_mmio_write_apr ('GICv3
# only uses ICH_AP1Rn for memory mapped (GICv2) guests'); num_pri_bits comes from the
# host's ICH_VTR_EL2 (vgic-v3.c: 'num_pri_bits = ((kvm_vgic_global_state.ich_vtr_el2 &
# ICH_VTR_PRI_BITS_MASK) >> ICH_VTR_PRI_BITS_SHIFT) + 1'), and nothing restores it for a
# GICv2 guest (a GICv3 guest's ICC_CTLR_EL1.PRIbits write is checked; GICv2 has no such
# register). Same in 5.10.262 and 7.1.8.
HOSTS = {
    "gicv2": (0, "a GICv2 host: GICC_APR0 only (GICH_APR)"),
    "gicv3": (0, "a GICv3 host with 5 priority bits (ICH_VTR_EL2.PRIbits = 4) or fewer: "
                 "GICC_APR0 only (ICH_AP1R0_EL2)"),
    "gicv3-pri6": (1, "a GICv3 host with 6 priority bits: GICC_APR0-1 (ICH_AP1R0-1_EL2)"),
    "gicv3-pri7": (3, "a GICv3 host with 7 priority bits: GICC_APR0-3 (ICH_AP1R0-3_EL2)"),
}
DEFAULT_HOST = "gicv2"


def with_host(sem: GicV2Semantics, host: str) -> GicV2Semantics:
    """``sem`` on host kind ``host`` (a key of HOSTS)."""
    if host not in HOSTS:
        raise ValueError(f"host '{host}' is not modelled for gicv2: valid: {', '.join(HOSTS)}")
    return dataclasses.replace(sem, host=host)


def interrupt_kind(intid: int) -> str:
    """SGIs 0-15, PPIs 16-31, SPIs 32 and up (GICv2 2.2.1)."""
    if intid < NR_SGIS:
        return "sgi"
    if intid < NR_PRIVATE:
        return "ppi"
    return "spi"


def cpu_mask(cpus: int) -> int:
    """GENMASK(online_vcpus - 1, 0) as in vgic_mmio_write_target."""
    return mask(cpus)


# ---------------------------------------------------------------------------------------
# Canonical state.

FIELDS = (
    StateField("dist_enabled", 1, "global", ARCHITECTURAL,
               f"{MMIO2}: vgic_mmio_write_v2_misc 'dist->enabled = val & GICD_ENABLE'"),
    StateField("implementation_rev", 4, "global", HOST,
               f"{MMIO2}: vgic_mmio_read_v2_misc GIC_DIST_IIDR (dist->implementation_rev in the "
               "Revision field); from a0e6ae45af17 a userspace IIDR write sets it (2 or 3)"),
    StateField("groups_user_writable", 1, "global", ENVIRONMENT,
               f"{DOC}: 'Unless GICD_IIDR has been set from userspace, writes to the interrupt "
               "group registers (GICD_IGROUPR) are ignored.' (kvm->arch.vgic.v2_groups_user_writable)"),
    StateField("ctlr", 10, "cpu", ARCHITECTURAL,
               f"{MMIO2}: vgic_mmio_write_vcpuif GIC_CPU_CTRL (grpen0, grpen1, ackctl, fiqen, cbpr, eoim)"),
    StateField("pmr", 5, "cpu", ARCHITECTURAL,
               f"{DOC}: GICC_PMR 'in the format of the GICH_VMCR.VMPriMask field in the lower 5 bits'"),
    StateField("bpr", 3, "cpu", ARCHITECTURAL, "vgic-v2.c: vgic_v2_set_vmcr (GICH_VMCR.VMBP, 3 bits)"),
    StateField("abpr", 3, "cpu", ARCHITECTURAL, "vgic-v2.c: vgic_v2_set_vmcr (GICH_VMCR.VMABP, 3 bits)"),
    StateField("apr", 32, "cpu", ARCHITECTURAL,
               f"{DOC}: APRn 'preemption level X has one or more active interrupts iff APRn[X mod 32]'; "
               f"{MMIO2}: vgic_mmio_write_apr (GICv2 host: 'support max. 32 groups', APR0 only)"),
    *(StateField(f"apr{n}", 32, "cpu", ARCHITECTURAL,
                 f"{MMIO2}: vgic_mmio_write_apr on a GICv3 host: vgic_ap1r[{n}] (ICH_AP1R{n}_EL2) when "
                 f"{n} <= vgic_v3_max_apr_idx() (host priority bits); none on a GICv2 host")
      for n in (1, 2, 3)),
    StateField("enabled", 1, "irq", ARCHITECTURAL, f"{MMIO}: vgic_uaccess_write_senable/cenable"),
    StateField("pending_latch", 1, "irq", ARCHITECTURAL,
               "arch/arm64/kvm/vgic/vgic.h: irq_is_pending (latch, ORed with line_level when level)"),
    StateField("line_level", 1, "irq", ENVIRONMENT,
               "driven by the interrupt's source (KVM_IRQ_LINE, in-kernel timer); no GICv2 "
               "device attribute restores it (LEVEL_INFO is GICv3-only, arm-vgic-v3.rst)"),
    StateField("hw_mapped", 1, "irq", ENVIRONMENT,
               "irq->hw: the interrupt is mapped to a physical one (kvm_vgic_map_phys_irq); on "
               "arm64 KVM that is the arch timer PPIs, mapped by kvm_timer_enable "
               "(arch/arm64/kvm/arch_timer.c) at the vCPU's first KVM_RUN, so a destination "
               "restored before its vCPUs run has none mapped, and one whose vCPUs ran (a "
               "snapshot loaded into a running VM) has them mapped; not carried from the source",
               kinds=("ppi",), carried=False),
    StateField("soft_pending", 1, "irq", DERIVED,
               "virt/kvm/arm/vgic/vgic-mmio.c at v4.7: irq->soft_pending; 3.18-4.6: virt/kvm/arm/vgic.c "
               "irq_soft_pend / irq_pending (original_bits)",
               reason="4.7-4.10 kernel shadow of the latch of a level-sensitive interrupt: equal "
               "to pending_latch while the interrupt is level-sensitive; unused from 4.11. On the "
               "original VGIC (3.18-4.6): an edge-triggered interrupt's stale irq_soft_pend, and for a "
               "level-sensitive one irq_pending xor (irq_level or irq_soft_pend), which only a "
               "GICD_ICFGR write makes nonzero; it shows in the pending read, so a restore that "
               "changes it changes pending_latch or is seen in that read, but a difference in it "
               "alone is not compared"),
    StateField("active", 1, "irq", ARCHITECTURAL, f"{MMIO}: vgic_mmio_uaccess_write_sactive/cactive"),
    StateField("group", 1, "irq", ARCHITECTURAL, f"{MMIO}: vgic_mmio_write_group"),
    StateField("priority", 8, "irq", ARCHITECTURAL,
               f"{MMIO}: vgic_mmio_write_priority 'Narrow the priority range to what we actually "
               "support' (VGIC_PRI_BITS = 5)"),
    StateField("targets", 8, "irq", ARCHITECTURAL, f"{MMIO2}: vgic_mmio_write_target"),
    StateField("edge", 1, "irq", ARCHITECTURAL,
               f"{MMIO}: vgic_mmio_write_config (1 = VGIC_CONFIG_EDGE, GICD_ICFGR bit 2i+1)"),
    StateField("sgi_sources", 8, "irq", ARCHITECTURAL,
               f"{MMIO2}: vgic_mmio_write_sgipends/sgipendc (irq->source)", kinds=("sgi",)),
    StateField("active_source", 3, "irq", ARCHITECTURAL,
               f"{MMIO}: vgic_mmio_change_active (irq->active_source, 4.17): the vCPU whose SGI is "
               "active, which the guest reads back in GICC_AIAR/IAR's CPUID; model choice: 0 while "
               "the SGI is not active (the kernel leaves a stale value nothing reads)", kinds=("sgi",)),
)

NOT_STATE = (
    NotState("running_priority", DERIVED,
             "the priority of the highest active preemption level: derived from the active "
             "priorities (GICC_APRn) and the active bits", SEED000 + " (Christoffer Dall, Nov 19 2013)"),
    NotState("running_irq / last_active", DERIVED,
             "which interrupt is running: derived from the active state and the APRs; the "
             "virtual CPU interface keeps it in the list registers", SEED000),
    NotState("current_pending", DERIVED,
             "the highest-priority pending interrupt of a CPU interface: computed from "
             "enabled/pending/priority/targets ('The necessary state ... is preserved through "
             "the registers that we do save an restore')", SEED000),
    NotState("model (1:N / N:N)", HOST,
             "static for GICv2.0: 'all SGIs are N:N and all peripheral interrupts are 1:N and it "
             "is therefore a static property'", SEED000),
    NotState("GICD_TYPER, GICD_IIDR, GICC_IIDR", HOST,
             "ID values of the destination host: checked (TYPER by QEMU, IIDR by the kernel on "
             "write), not restored", f"{MMIO2}: vgic_mmio_read_v2_misc"),
)

# ---------------------------------------------------------------------------------------
# Reset and reachable states.


def reset(ops: Ops, ctx: AccessContext, scope: str) -> dict[str, Value]:
    """Fields of one scope on a freshly created and initialised GICv2.

    INIT: kvm_vgic_vcpu_init / vgic_allocate_private_irqs_locked: 'Enable and configure all
    SGIs to be edge-triggered and configure all PPIs as level-triggered'; v2:
    'irq->group = 0; irq->targets = BIT(vcpu->vcpu_id)'. kvm_vgic_dist_init: SPIs are
    kcalloc'd, so config = 0 = VGIC_CONFIG_EDGE, targets 0, group 0. vgic_v2_enable:
    'vgic_vmcr = 0'. dist->enabled and v2_groups_user_writable start at 0.
    """
    c = ops.const
    if scope == "global":
        return {"dist_enabled": c(0, 1), "groups_user_writable": c(0, 1),
                "implementation_rev": c(ctx.semantics.iidr_revision, 4)}
    if scope == "cpu":
        out = {"ctlr": c(0, 10), "pmr": c(0, 5), "bpr": c(0, 3), "abpr": c(0, 3), "apr": c(0, 32)}
        # GICC_APR1-3 exist only up to vgic_v3_max_apr_idx() on a GICv3 host
        out.update({f"apr{n}": c(0, 32) for n in range(1, ctx.semantics.apr_max_idx + 1)})
        return out
    kind = ctx.kind
    if ctx.semantics.vgic == "original":
        # virt/kvm/arm/vgic.c kvm_vgic_vcpu_init (vgic_init from 3.19): 'if (i < VGIC_NR_PPIS)
        # vgic_bitmap_set_irq_val(&dist->irq_enabled, vcpu->vcpu_id, i, 1); if (i <
        # VGIC_NR_PRIVATE_IRQS) vgic_bitmap_set_irq_val(&dist->irq_cfg, vcpu->vcpu_id, i,
        # VGIC_CFG_EDGE);' (VGIC_NR_PPIS is 16: the SGIs are enabled; every private interrupt is
        # edge-triggered); the bitmaps are kzalloc'd, so SPIs are VGIC_CFG_LEVEL (0) and
        # disabled; irq_spi_cpu is 0 (vgic_v2_init_model: 'vgic_set_target_reg(kvm, 0, i)'),
        # read as target CPU0; priorities 0; vgic_v2_enable: 'vgic_vmcr = 0'.
        spi_target, edge = 1, 0 if kind == "spi" else 1
    else:
        spi_target, edge = 0, 0 if kind == "ppi" else 1
    out = {
        "enabled": c(1 if kind == "sgi" else 0, 1),
        "pending_latch": c(0, 1),
        "line_level": c(0, 1),
        "soft_pending": c(0, 1),
        "active": c(0, 1),
        "group": c(0, 1),
        "priority": c(0, 8),
        "targets": c((1 << ctx.vcpu) if kind != "spi" else spi_target, 8),
        "edge": c(edge, 1),
    }
    if kind == "sgi":
        out["sgi_sources"] = c(0, 8)
        out["active_source"] = c(0, 3)
    if kind == "ppi":
        # not mapped until the vCPU's first run (kvm_timer_enable); the original VGIC mapped
        # the timer too (4.2+), but no rule of it reads the mapping
        out["hw_mapped"] = c(0, 1)
    return out


def invariant_conjuncts(ops: Ops, ctx: AccessContext, scope: str, f: dict[str, Value]) -> list[tuple[str, Value]]:
    """The states the device can reach, as named conjuncts, each with the rule that keeps
    it. These are not assumed: ``proofs.invariant`` proves each one holds after reset and
    is preserved by every guest access, userspace access and guest/device event the model
    has (``gicproof check`` runs that proof for every kernel revision)."""
    c = ops.const
    sem: GicV2Semantics = ctx.semantics
    if scope == "global":
        rev = f["implementation_rev"]
        if sem.iidr_write == "revision-from-value":
            # vgic_mmio_uaccess_write_v2_misc: 'case KVM_VGIC_IMP_REV_2: case KVM_VGIC_IMP_REV_3:'
            return [("IIDR revision is 2 or 3", ops.or_(ops.eq(rev, c(2, 4)), ops.eq(rev, c(3, 4))))]
        return [("IIDR revision is the kernel's", ops.eq(rev, c(sem.iidr_revision, 4)))]
    if scope == "cpu":
        # GICC_CTLR stores only the bits of vgic_mmio_write_vcpuif; the rest is 0.
        return [("GICC_CTLR holds only the stored bits", subset(ops, f["ctlr"], GICC_CTLR_STORED, 10))]
    kind = ctx.kind
    if sem.vgic == "original":
        return _original_conjuncts(ops, ctx, f)
    conds = [
        # vgic_mmio_write_priority: '& GENMASK(7, 8 - VGIC_PRI_BITS)'
        ("priority keeps 5 bits", subset(ops, f["priority"], 0xF8, 8)),
    ]
    if kind == "spi":
        # vgic_mmio_write_target: '(val >> (i * 8)) & cpu_mask'
        conds.append(("SPI targets are online vCPUs", subset(ops, f["targets"], cpu_mask(ctx.cpus), 8)))
    else:
        # 'GICD_ITARGETSR[0-7] are read-only'; config of SGIs/PPIs is read-only
        conds.append(("private targets are the owning vCPU", ops.eq(f["targets"], c(1 << ctx.vcpu, 8))))
        conds.append(("private trigger is fixed", ops.eq(f["edge"], c(1 if kind == "sgi" else 0, 1))))
    if kind == "sgi":
        conds.append(("an SGI has no line", ops.eq(f["line_level"], c(0, 1))))
        conds.append(("an inactive SGI has no active source (model choice)",
                      implies(ops, ops.not_(f["active"], 1), ops.eq(f["active_source"], c(0, 3)))))
        if not sem.active_source:
            conds.append(("no active source before 4.17", ops.eq(f["active_source"], c(0, 3))))
        if sem.sgi_pending_wi:
            # From 5.3 the SGI bits of GICD_I{S,C}PENDR0 are WI through the MMIO accessors
            # (82e40f558de5), and from 5.7 the userspace accessors give an SGI set pending
            # the accessing vCPU as its source and clear all sources with the latch
            # (vgic_uaccess_write_spending/cpending); GICD_SGIR and SPENDSGIR set a source
            # with the latch, CPENDSGIR drops the latch with the last source
            # (vgic_mmio_write_sgipendc). So the latch is exactly "some source".
            # Before 5.3 neither holds: a guest GICD_ICPENDR0 write clears the latch and
            # keeps the sources, a GICD_ISPENDR0 write sets it with none.
            conds.append(("an SGI is pending exactly when it has a source",
                          ops.eq(f["pending_latch"], nonzero(ops, f["sgi_sources"], 8))))
    if not sem.groups:
        conds.append(("groups are RAZ/WI before 4.19", ops.eq(f["group"], c(0, 1))))
    if sem.pending_model == "soft_pending":
        # while level-sensitive, pending = line_level || soft_pending (4.7 vgic_mmio_write_config)
        conds.append(("4.7: a level interrupt's latch is its soft_pending",
                      implies(ops, ops.not_(f["edge"], 1), ops.eq(f["soft_pending"], f["pending_latch"]))))
    else:
        conds.append(("soft_pending unused from 4.11", ops.eq(f["soft_pending"], c(0, 1))))
    return conds


def _original_conjuncts(ops: Ops, ctx: AccessContext, f: dict[str, Value]) -> list[tuple[str, Value]]:
    """The per-interrupt conjuncts of the original VGIC (3.18-4.6). Priorities keep all 8
    bits (handle_mmio_priority_reg), pending/soft-pend/level take any combination (see
    ``original_bits``), groups are RAZ/WI."""
    c = ops.const
    kind = ctx.kind
    conds: list[tuple[str, Value]] = [("groups are RAZ/WI before 4.19", ops.eq(f["group"], c(0, 1)))]
    if kind == "spi":
        # vgic_set_target_reg: 'This ensures we target exactly one vcpu per IRQ'
        one_hot = ops.eq(f["targets"], c(1, 8))
        for i in range(1, 8):
            one_hot = ops.or_(one_hot, ops.eq(f["targets"], c(1 << i, 8)))
        conds.append(("original: an SPI targets exactly one vCPU", one_hot))
    else:
        conds.append(("private targets are the owning vCPU", ops.eq(f["targets"], c(1 << ctx.vcpu, 8))))
        # 'Force PPIs/SGIs to 1' (vgic_handle_cfg_reg); kvm_vgic_vcpu_init: VGIC_CFG_EDGE
        conds.append(("original: private interrupts are edge-triggered", ops.eq(f["edge"], c(1, 1))))
        # vgic_update_irq_pending sets irq_level only 'if (level_triggered)'
        conds.append(("original: a private interrupt records no line", ops.eq(f["line_level"], c(0, 1))))
    if kind == "sgi":
        # vgic_handle_enable_reg: 'Force SGI enabled'
        conds.append(("original: SGIs are always enabled", ops.eq(f["enabled"], c(1, 1))))
        conds.append(("no active source before 4.17", ops.eq(f["active_source"], c(0, 3))))
    return conds


def invariant(ops: Ops, ctx: AccessContext, scope: str, f: dict[str, Value]) -> Value:
    """The conjunction of ``invariant_conjuncts``."""
    return bool_and(ops, *(cond for _, cond in invariant_conjuncts(ops, ctx, scope, f)))


# ---------------------------------------------------------------------------------------
# Named accessors that depend on the kernel version.


def pending_view(ops: Ops, f: dict[str, Value], sem: GicV2Semantics | None = None) -> Value:
    """irq_is_pending(): 'if (irq->config == VGIC_CONFIG_EDGE) return irq->pending_latch;
    else return irq->pending_latch || irq->line_level;'. The original VGIC (``sem.vgic ==
    "original"``) reads its irq_pending bit instead (``original_bits``)."""
    if sem is not None and sem.vgic == "original":
        return original_bits(ops, f)[0]
    return ops.or_(f["pending_latch"], ops.and_(f["line_level"], ops.not_(f["edge"], 1)))


# The original VGIC (virt/kvm/arm/vgic.c, 3.18-4.6) keeps three bitmaps per interrupt:
# irq_pending (P, what GICD_ISPENDR reads), irq_soft_pend (S, set by a GICD_ISPENDR write to an
# interrupt that is level-sensitive at the time) and irq_level (L, the line of a level-sensitive
# interrupt). The canonical state maps them one to one:
#   edge-triggered:  pending_latch = P, soft_pending = S (a stale soft-pend, used again only if
#                    the interrupt is made level-sensitive), line_level = L (stale likewise);
#   level-sensitive: pending_latch = S (the software latch: 'Note that level-triggered interrupts
#                    can also be set to pending from writes to GICD_ISPENDRn and lowering the
#                    external input line does not cause the interrupt to become inactive'),
#                    soft_pending = P xor (L or S) (0 while P = L|S, which every action keeps
#                    except a GICD_ICFGR write: the original does not re-derive P when the trigger
#                    changes, handle_mmio_cfg_reg), line_level = L.
# Each accessor below computes the kernel's bits, applies the kernel's code to them, and maps
# the result back, so the model does exactly what the C code does.


def original_bits(ops: Ops, f: dict[str, Value]) -> tuple[Value, Value]:
    """(irq_pending, irq_soft_pend) of the original VGIC from the canonical fields."""
    edge, latch, soft, line = f["edge"], f["pending_latch"], f["soft_pending"], f["line_level"]
    pend = ops.ite(edge, latch, ops.xor(ops.or_(line, latch), soft))
    return pend, ops.ite(edge, soft, latch)


def original_fields(ops: Ops, edge: Value, pend: Value, soft_pend: Value, line: Value) -> dict[str, Value]:
    """The canonical fields of the original VGIC's (irq_cfg, irq_pending, irq_soft_pend, irq_level)."""
    return {"pending_latch": ops.ite(edge, pend, soft_pend),
            "soft_pending": ops.ite(edge, soft_pend, ops.xor(pend, ops.or_(line, soft_pend)))}


def _read_pending(ops: Ops, ctx: AccessContext, f: dict[str, Value]) -> Value:
    return pending_view(ops, f, ctx.semantics)


read_pending = Accessor(
    "read_pending", "read", _read_pending,
    f"{MMIO}: __read_pending / vgic_uaccess_read_pending ('default: val = irq_is_pending(irq)' "
    "for a GICv2 model, guest and userspace alike); original VGIC: virt/kvm/arm/vgic.c "
    "vgic_handle_set_pending_reg reads irq_pending (ACCESS_READ_VALUE)",
    "a GICv2 pending read returns the latch ORed with the line level for a level-sensitive "
    "interrupt (irq_is_pending)",
)


def _unless_mapped(ops: Ops, ctx: AccessContext, f: dict[str, Value], eff: Effect, applies: bool) -> Effect:
    """``eff``, except on an interrupt mapped to hardware when ``applies`` (a userspace write
    the kernel ignores there: vgic_hw_irq_change_active / vgic_hw_irq_spending / _cpending
    'if (is_uaccess) return;', 4.16). Only PPIs can be mapped (the timer, ``hw_mapped``)."""
    if not (applies and ctx.user and "hw_mapped" in f):
        return eff
    mapped = f["hw_mapped"]
    return Effect({k: ops.ite(mapped, f[k], v) for k, v in eff.updates.items()}, eff.error, eff.errno)


def _original_set_pending(ops: Ops, ctx: AccessContext, f: dict[str, Value], d: Value) -> Effect:
    """virt/kvm/arm/vgic.c vgic_handle_set_pending_reg (handle_mmio_set_pending_reg before 4.0):
    'level_mask = (~(*reg))' (irq_cfg); '/* Mark both level and edge triggered irqs as pending */'
    irq_pending |= data; '/* Set the soft-pending flag only for level-triggered irqs */'
    irq_soft_pend |= data, '*reg &= level_mask'; then '/* Ignore writes to SGIs */ if (offset < 2)
    { *reg &= ~0xffff; *reg |= orig & 0xffff; }' applied to irq_soft_pend, with orig the old
    irq_pending: so an SGI bit *sets* irq_pending (with no source) and copies the old
    irq_pending into irq_soft_pend."""
    pend, soft = original_bits(ops, f)
    new_pend = ops.or_(pend, d)
    if ctx.kind == "sgi":
        new_soft = pend
    else:
        # '*reg &= level_mask' masks the whole word: a stale soft-pend of an edge-triggered
        # interrupt is cleared by any GICD_ISPENDR write to its word
        new_soft = ops.and_(ops.or_(soft, d), ops.not_(f["edge"], 1))
    return Effect(original_fields(ops, f["edge"], new_pend, new_soft, f["line_level"]))


def _original_clear_pending(ops: Ops, ctx: AccessContext, f: dict[str, Value], d: Value) -> Effect:
    """virt/kvm/arm/vgic.c vgic_handle_clear_pending_reg: irq_pending &= ~data; '/* Re-set level
    triggered level-active interrupts */ *reg |= *level_active' (irq_level, whatever the current
    trigger); '/* Ignore writes to SGIs */' restores the SGI bits of irq_pending; '/* Clear
    soft-pending flags */' irq_soft_pend &= ~data (SGI bits included)."""
    pend, soft = original_bits(ops, f)
    line = f["line_level"]
    new_pend = pend if ctx.kind == "sgi" else ops.or_(ops.and_(pend, ops.not_(d, 1)), line)
    new_soft = ops.and_(soft, ops.not_(d, 1))
    return Effect(original_fields(ops, f["edge"], new_pend, new_soft, line))


def _set_pending(ops: Ops, ctx: AccessContext, f: dict[str, Value], d: Value) -> Effect:
    return _unless_mapped(ops, ctx, f, _set_pending_unmapped(ops, ctx, f, d), ctx.semantics.hw_pending_uaccess_wi)


def _set_pending_unmapped(ops: Ops, ctx: AccessContext, f: dict[str, Value], d: Value) -> Effect:
    sem: GicV2Semantics = ctx.semantics
    one = ops.const(1, 1)
    if sem.vgic == "original":
        return _original_set_pending(ops, ctx, f, d)
    if ctx.kind == "sgi" and not (ctx.user and sem.uaccess_pending) and sem.sgi_pending_wi:
        # 5.3: 'GICD_ISPENDR0 SGI bits are WI' through the MMIO accessors, which userspace
        # also used until 5.7
        return Effect({})
    if ctx.kind == "sgi" and ctx.user and sem.uaccess_pending:
        # 'GICv2 SGIs are terribly broken. We can't restore the source of the interrupt, so
        # just pick the vcpu itself as the source...'
        src = ops.ite(d, ops.or_(f["sgi_sources"], ops.const(1 << ctx.vcpu, 8)), f["sgi_sources"])
        return Effect({"sgi_sources": src, "pending_latch": ops.or_(f["pending_latch"], d)})
    if sem.pending_model == "soft_pending":
        # 4.7: 'irq->pending = true; if (irq->config == VGIC_CONFIG_LEVEL) irq->soft_pending = true;'
        level = ops.not_(f["edge"], 1)
        return Effect({
            "pending_latch": ops.ite(d, one, f["pending_latch"]),
            "soft_pending": ops.ite(ops.and_(d, level), one, f["soft_pending"]),
        })
    # 'pending_latch is set irrespective of irq type (level or edge)'
    return Effect({"pending_latch": ops.or_(f["pending_latch"], d)})


write_spending = Accessor(
    "write_spending", "write", _set_pending,
    f"{MMIO}: vgic_mmio_write_spending / vgic_uaccess_write_spending (__set_pending from 6.8); "
    "4.7: virt/kvm/arm/vgic/vgic-mmio.c vgic_mmio_write_spending; 3.18-4.6: virt/kvm/arm/vgic.c "
    "vgic_handle_set_pending_reg",
    "4.11 and later: a pending write sets the latch whatever the trigger configuration; "
    "4.7-4.10: it sets soft_pending only if the interrupt is level-sensitive at the time of "
    "the write; a userspace write to a GICv2 SGI bit adds the accessing vCPU as a source; "
    "4.16-5.6: ignored from userspace on an interrupt mapped to hardware (vgic_hw_irq_spending); "
    "3.18-4.6 (original VGIC): irq_pending is set, and irq_soft_pend too if the interrupt is "
    "level-sensitive at the time of the write; an SGI bit sets irq_pending with no source",
)


def _clear_pending(ops: Ops, ctx: AccessContext, f: dict[str, Value], d: Value) -> Effect:
    return _unless_mapped(ops, ctx, f, _clear_pending_unmapped(ops, ctx, f, d), ctx.semantics.hw_pending_uaccess_wi)


def _clear_pending_unmapped(ops: Ops, ctx: AccessContext, f: dict[str, Value], d: Value) -> Effect:
    sem: GicV2Semantics = ctx.semantics
    zero = ops.const(0, 1)
    if sem.vgic == "original":
        return _original_clear_pending(ops, ctx, f, d)
    if ctx.kind == "sgi" and not (ctx.user and sem.uaccess_pending) and sem.sgi_pending_wi:
        return Effect({})  # 5.3: 'GICD_ICPENDR0 SGI bits are WI' (userspace too until 5.7)
    if ctx.kind == "sgi" and ctx.user and sem.uaccess_pending:
        # 'If we're clearing one of them from userspace, which source vcpu to clear? Let's
        # not even think of it, and blow the whole set.'
        return Effect({
            "sgi_sources": ops.ite(d, ops.const(0, 8), f["sgi_sources"]),
            "pending_latch": ops.ite(d, zero, f["pending_latch"]),
        })
    if sem.pending_model == "soft_pending":
        # 4.7: level: 'irq->soft_pending = false; irq->pending = irq->line_level;' edge:
        # 'irq->pending = false;' (soft_pending of an edge interrupt is left as it was)
        level = ops.not_(f["edge"], 1)
        return Effect({
            "pending_latch": ops.ite(d, zero, f["pending_latch"]),
            "soft_pending": ops.ite(ops.and_(d, level), zero, f["soft_pending"]),
        })
    return Effect({"pending_latch": ops.and_(f["pending_latch"], ops.not_(d, 1))})


write_cpending = Accessor(
    "write_cpending", "write", _clear_pending,
    f"{MMIO}: vgic_mmio_write_cpending / vgic_uaccess_write_cpending (__clear_pending from 6.8); "
    "3.18-4.6: virt/kvm/arm/vgic.c vgic_handle_clear_pending_reg",
    "a clear-pending write clears the latch (not the line level); from userspace a GICv2 SGI "
    "bit clears all its sources; 4.16-5.6: ignored from userspace on an interrupt mapped to "
    "hardware (vgic_hw_irq_cpending); "
    "3.18-4.6 (original VGIC): SGI bits are ignored, and the "
    "pending bit of any interrupt whose irq_level is set is set again",
)


def _write_config(ops: Ops, ctx: AccessContext, f: dict[str, Value], d: Value) -> Effect:
    if ctx.kind != "spi":
        # original VGIC: 'if (offset < 8) { *reg = ~0U; /* Force PPIs/SGIs to 1 */' (all
        # private interrupts stay edge-triggered, vgic_handle_cfg_reg)
        # 'The configuration cannot be changed for SGIs in general, for PPIs this is
        # IMPLEMENTATION DEFINED ... we also make them read-only here.'
        return Effect({})
    edge = ops.extract(d, 1, 1)
    sem: GicV2Semantics = ctx.semantics
    if sem.vgic == "original":
        # vgic_handle_cfg_reg (handle_mmio_cfg_reg before 4.0) only stores irq_cfg: irq_pending,
        # irq_soft_pend and irq_level are kept as they are, and now mean what they mean for
        # the new trigger (a latch set while edge stays in irq_pending, not in irq_soft_pend)
        pend, soft = original_bits(ops, f)
        return Effect({"edge": edge} | original_fields(ops, edge, pend, soft, f["line_level"]))
    if sem.pending_model == "soft_pending":
        # 4.7: to level: 'irq->pending = irq->line_level | irq->soft_pending' (so the latch
        # becomes soft_pending); to edge: the pending value (line_level | soft_pending while
        # level) is kept as the edge latch.
        was_level = ops.not_(f["edge"], 1)
        latch = ops.ite(
            edge,
            ops.ite(was_level, ops.or_(f["pending_latch"], f["line_level"]), f["pending_latch"]),
            f["soft_pending"],
        )
        return Effect({"edge": edge, "pending_latch": latch})
    return Effect({"edge": edge})


write_config = Accessor(
    "write_config", "write", _write_config,
    f"{MMIO}: vgic_mmio_write_config; 4.7: virt/kvm/arm/vgic/vgic-mmio.c vgic_mmio_write_config; "
    "3.18-4.6: virt/kvm/arm/vgic.c vgic_handle_cfg_reg",
    "SGI/PPI configuration is read-only; 4.7-4.10: switching an SPI to level re-derives its "
    "pending state as line_level || soft_pending, dropping a latch set while it was edge; "
    "3.18-4.6: only the trigger changes, so a pending bit set while the SPI was edge-triggered "
    "is not a soft-pend latch once it is level-sensitive",
)


def _read_config(ops: Ops, ctx: AccessContext, f: dict[str, Value]) -> Value:
    return ops.concat(f["edge"], ops.const(0, 1), 1)  # 'value |= (2U << (i * 2))' when edge


read_config = Accessor("read_config", "read", _read_config, f"{MMIO}: vgic_mmio_read_config",
                       "bit 2i+1 is 1 for an edge-triggered interrupt")


def lowest_target(ops: Ops, d: Value) -> Value:
    """vgic_set_target_reg (original VGIC): 'Pick the LSB in each byte. This ensures we target
    exactly one vcpu per IRQ. If the byte is null, assume we target CPU0.' The register then
    reads '1 << (dist->irq_spi_cpu[irq + i] + i * 8)' (vgic_get_target_reg): one bit."""
    out = ops.const(1, 8)
    for i in reversed(range(8)):
        out = ops.ite(ops.extract(d, i, i), ops.const(1 << i, 8), out)
    return out


def _write_target(ops: Ops, ctx: AccessContext, f: dict[str, Value], d: Value) -> Effect:
    if ctx.kind != "spi":
        return Effect({})  # 'GICD_ITARGETSR[0-7] are read-only' ('We treat the banked interrupts targets as read-only')
    if ctx.semantics.vgic == "original":
        return Effect({"targets": lowest_target(ops, d)})  # not masked with the online vCPUs
    return Effect({"targets": ops.and_(d, ops.const(cpu_mask(ctx.cpus), 8))})


write_target = Accessor("write_target", "write", _write_target,
                        f"{MMIO2}: vgic_mmio_write_target; 3.18-4.6: vgic_set_target_reg (virt/kvm/arm/vgic.c, "
                        "vgic-v2-emul.c from 4.0)",
                        "SPI targets are masked with the online vCPUs; private targets are read-only; "
                        "3.18-4.6: an SPI targets the lowest vCPU named (CPU0 if none), any of the 8")


def _write_priority(ops: Ops, ctx: AccessContext, f: dict[str, Value], d: Value) -> Effect:
    if ctx.semantics.vgic == "original":
        # handle_mmio_priority_reg: 'ACCESS_READ_VALUE | ACCESS_WRITE_VALUE' on the irq_priority
        # bytemap: all 8 bits are stored
        return Effect({"priority": d})
    return Effect({"priority": ops.and_(d, ops.const(0xF8, 8))})


write_priority = Accessor("write_priority", "write", _write_priority,
                          f"{MMIO}: vgic_mmio_write_priority; 3.18-4.6: handle_mmio_priority_reg",
                          "only the top VGIC_PRI_BITS (5) bits of a priority are kept (3.18-4.6: all 8)")


def _read_group(ops: Ops, ctx: AccessContext, f: dict[str, Value]) -> Value:
    if ctx.semantics.vgic == "original":
        return ops.const(0, 1)  # 3.18-4.6: GIC_DIST_IGROUP is handle_mmio_raz_wi
    if not ctx.semantics.groups:
        return ops.const(1, 1)  # before 4.19: vgic_mmio_read_rao (groups not modelled by KVM)
    return f["group"]


def _guest_write_group(ops: Ops, ctx: AccessContext, f: dict[str, Value], d: Value) -> Effect:
    if not ctx.semantics.groups:
        return Effect({})
    return Effect({"group": d})


def _uaccess_write_group(ops: Ops, ctx: AccessContext, f: dict[str, Value], d: Value) -> Effect:
    if not ctx.semantics.groups:
        return Effect({})
    return Effect({"group": ops.ite(ctx.device["groups_user_writable"], d, f["group"])})


read_group = Accessor("read_group", "read", _read_group,
                      f"{MMIO}: vgic_mmio_read_group (4.19+); 4.7-4.18: vgic_mmio_read_rao; 3.18-4.6: "
                      "handle_mmio_raz_wi (virt/kvm/arm/vgic.c vgic_dist_ranges GIC_DIST_IGROUP)",
                      "reads the group bit (all ones 4.7-4.18, all zeros 3.18-4.6)")
guest_write_group = Accessor("write_group", "write", _guest_write_group,
                             f"{MMIO}: vgic_mmio_write_group (4.19+; vgic_mmio_write_wi 4.7-4.18, "
                             "handle_mmio_raz_wi 3.18-4.6)",
                             "the guest sets the group of an interrupt")
uaccess_write_group = Accessor(
    "uaccess_write_v2_group", "write", _uaccess_write_group,
    f"{MMIO2}: vgic_mmio_uaccess_write_v2_group; {DOC}: 'Unless GICD_IIDR has been set from "
    "userspace, writes to the interrupt group registers (GICD_IGROUPR) are ignored.'",
    "Unless GICD_IIDR has been set from userspace, writes to the interrupt group registers "
    "(GICD_IGROUPR) are ignored.",
)


def _iidr_value(ops: Ops, rev: Value) -> Value:
    """(PRODUCT_ID_KVM << 24) | (rev << GICD_IIDR_REVISION_SHIFT) | IMPLEMENTER_ARM."""
    high = ops.const(PRODUCT_ID_KVM << 8, 16)  # bits 31:16
    return ops.concat(high, ops.concat(rev, ops.const(IMPLEMENTER_ARM, 12), 12), 16)


def _read_iidr(ops: Ops, ctx: AccessContext, f: dict[str, Value]) -> Value:
    return _iidr_value(ops, f["implementation_rev"])


def _uaccess_write_iidr(ops: Ops, ctx: AccessContext, f: dict[str, Value], d: Value) -> Effect:
    sem: GicV2Semantics = ctx.semantics
    current = _iidr_value(ops, f["implementation_rev"])
    if sem.iidr_write == "ignored":
        return Effect({})  # before 4.19: 'GIC_DIST_IIDR: Nothing to do'
    updates = {"groups_user_writable": ops.const(1, 1)}  # 'we now allow groups to be user writable'
    if sem.iidr_write == "exact":
        # 4.19-5.18: 'if (val != vgic_mmio_read_v2_misc(vcpu, addr, len)) return -EINVAL'
        mismatch = ops.not_(ops.eq(d, current), 1)
    else:
        # 5.19: '(reg ^ val) & ~GICD_IIDR_REVISION_MASK' must be 0
        diff = ops.and_(ops.xor(d, current), ops.const(~IIDR_REVISION_MASK & 0xFFFFFFFF, 32))
        mismatch = nonzero(ops, diff, 32)
        if sem.iidr_write == "revision-from-value":
            # a0e6ae45af17: 'reg = FIELD_GET(GICD_IIDR_REVISION_MASK, val)': 2 or 3 is
            # stored in dist->implementation_rev, anything else is -EINVAL
            rev = ops.extract(d, 15, 12)
            valid = ops.or_(ops.eq(rev, ops.const(2, 4)), ops.eq(rev, ops.const(3, 4)))
            mismatch = ops.or_(mismatch, ops.not_(valid, 1))
            updates["implementation_rev"] = rev
        # before a0e6ae45af17 the switch read the revision of the current value (3): kept
    return Effect(updates, error=mismatch, errno="EINVAL")


uaccess_write_iidr = Accessor(
    "uaccess_write_v2_misc", "write", _uaccess_write_iidr,
    f"{MMIO2}: vgic_mmio_uaccess_write_v2_misc; {DOC}: 'Userspace should read GICD_IIDR from "
    "KVM and write back the read value to confirm its expected behavior is aligned with the "
    "KVM implementation.'",
    "a userspace GICD_IIDR write must match the kernel's IIDR (4.19-5.18 exactly; 5.19+ all "
    "but Revision, and from a0e6ae45af17 the written Revision, 2 or 3, is stored), else "
    "-EINVAL; it makes GICD_IGROUPR user-writable (before 4.19 IIDR writes are ignored)",
)


def _read_ctlr(ops: Ops, ctx: AccessContext, f: dict[str, Value]) -> Value:
    return ops.zext(f["dist_enabled"], 1, 32)


def _write_ctlr(ops: Ops, ctx: AccessContext, f: dict[str, Value], d: Value) -> Effect:
    return Effect({"dist_enabled": ops.extract(d, 0, 0)})


def _typer(ctx: object) -> int:
    c: AccessContext = ctx  # type: ignore[assignment]
    return ((c.irqs // 32) - 1) | ((c.cpus - 1) << 5)


def _vcpuif(field_name: str, width: int) -> tuple[Accessor, Accessor]:
    def rd(ops: Ops, ctx: AccessContext, f: dict[str, Value]) -> Value:
        return ops.zext(f[field_name], width, 32)

    def wr(ops: Ops, ctx: AccessContext, f: dict[str, Value], d: Value) -> Effect:
        return Effect({field_name: ops.extract(d, width - 1, 0)})

    src = f"{MMIO2}: vgic_mmio_read_vcpuif / vgic_mmio_write_vcpuif; vgic-v2.c vgic_v2_set_vmcr"
    return (Accessor("read_vcpuif", "read", rd, src, f"reads {field_name}"),
            Accessor("write_vcpuif", "write", wr, src,
                     f"stores the low {width} bits in GICH_VMCR ({field_name})"))


def _read_gicc_ctlr(ops: Ops, ctx: AccessContext, f: dict[str, Value]) -> Value:
    return ops.zext(f["ctlr"], 10, 32)


def _write_gicc_ctlr(ops: Ops, ctx: AccessContext, f: dict[str, Value], d: Value) -> Effect:
    return Effect({"ctlr": ops.and_(ops.extract(d, 9, 0), ops.const(GICC_CTLR_STORED, 10))})


# ---------------------------------------------------------------------------------------
# The table (one row per register, sorted by offset within each attribute group).


def _irq_row(name: str, offset: int, bits: int, views: tuple[str, ...],
             guest_read: Accessor, guest_write: Accessor,
             user_read: Accessor | None = None, user_write: Accessor | None = None,
             pair: str = "", role: str = "", words: int = 0, doc: str = "") -> Register:
    n_words = words or (1024 * bits) // 32
    return Register(
        name=name, group=DIST, offset=offset, words=n_words, scope="irq", views=views,
        guest_read=guest_read, guest_write=guest_write,
        user_read=user_read or guest_read, user_write=user_write or guest_write,
        bits_per_irq=bits, irqs=n_words * (32 // bits), pair=pair, pair_role=role, doc=doc,
    )


_enable_read = read_field("read_enable", "enabled", f"{MMIO}: vgic_mmio_read_enable")


def _write_cenable(ops: Ops, ctx: AccessContext, f: dict[str, Value], d: Value) -> Effect:
    if ctx.semantics.vgic == "original" and ctx.kind == "sgi":
        return Effect({})  # vgic_handle_enable_reg: 'if (offset < 4) /* Force SGI enabled */ *reg |= 0xffff;'
    return Effect({"enabled": ops.and_(f["enabled"], ops.not_(d, 1))})


write_cenable = Accessor("write_cenable", "write", _write_cenable,
                         f"{MMIO}: vgic_mmio_write_cenable / vgic_uaccess_write_cenable; 3.18-4.6: "
                         "vgic_handle_enable_reg (handle_mmio_clear_enable_reg before 4.0)",
                         "write_one_to_clear on enabled (3.18-4.6: SGIs stay enabled)")


def _change_active(ops: Ops, ctx: AccessContext, f: dict[str, Value], d: Value, set_: bool) -> Effect:
    """vgic_mmio_change_active: 'irq->active = active'; for a GICv2 SGI made active,
    'irq->active_source = requester_vcpu ? requester_vcpu->vcpu_id : 0' (4.17): a guest
    write names the writing vCPU (the SGI's bank), a userspace ioctl has no running vCPU,
    so 0. Model choice: clearing active clears the source too (see the field)."""
    if not ctx.semantics.active_uaccess:
        return Effect({})  # 3.18-4.0: GIC_DIST_ACTIVE_SET/CLEAR are handle_mmio_raz_wi
    active = ops.or_(f["active"], d) if set_ else ops.and_(f["active"], ops.not_(d, 1))
    out = {"active": active}
    if ctx.kind == "sgi":
        src = f["active_source"]
        if set_ and ctx.semantics.active_source:
            src = ops.ite(d, ops.const(0 if ctx.user else ctx.vcpu, 3), src)
        out["active_source"] = ops.ite(active, src, ops.const(0, 3))
    # 4.16: 'if (irq->hw && !vgic_irq_is_sgi(irq->intid)) vgic_hw_irq_change_active(vcpu,
    # irq, active, !requester_vcpu)', which returns at once for userspace
    return _unless_mapped(ops, ctx, f, Effect(out), ctx.semantics.hw_uaccess_wi)


write_sactive = Accessor("write_sactive", "write", lambda ops, ctx, f, d: _change_active(ops, ctx, f, d, True),
                         f"{MMIO}: vgic_mmio_write_sactive / vgic_mmio_uaccess_write_sactive (vgic_mmio_change_active, "
                         "vgic_hw_irq_change_active); 4.1-4.6: vgic_handle_set_active_reg; 3.18-4.0: handle_mmio_raz_wi",
                         "write-1-to-set on active; a GICv2 SGI made active from userspace gets vCPU 0 as its "
                         "active source (4.17+: 'Oh well'); ignored from userspace on an interrupt mapped to "
                         "hardware (4.16+); ignored before 4.1")
write_cactive = Accessor("write_cactive", "write", lambda ops, ctx, f, d: _change_active(ops, ctx, f, d, False),
                         f"{MMIO}: vgic_mmio_write_cactive / vgic_mmio_uaccess_write_cactive (vgic_mmio_change_active, "
                         "vgic_hw_irq_change_active); 4.1-4.6: vgic_handle_clear_active_reg; 3.18-4.0: handle_mmio_raz_wi",
                         "write-1-to-clear on active; ignored from userspace on an interrupt mapped to hardware "
                         "(4.16+); ignored before 4.1")


def _read_active(ops: Ops, ctx: AccessContext, f: dict[str, Value]) -> Value:
    if not ctx.semantics.active_uaccess:
        # 3.18-4.0: handle_mmio_raz_wi; vgic_unqueue_irqs: 'the active state stays in the LRs,
        # because we don't track the active state on the distributor side'
        return ops.const(0, 1)
    return f["active"]


_active_read = Accessor("read_active", "read", _read_active,
                        f"{MMIO}: vgic_mmio_read_active / vgic_uaccess_read_active; 4.1-4.6: "
                        "vgic_handle_set_active_reg (irq_active); 3.18-4.0: handle_mmio_raz_wi",
                        "reads the active bit (read-as-zero before 4.1: the active state is only in "
                        "the list registers)")
_sgi_read = read_field("read_sgipend", "sgi_sources", f"{MMIO2}: vgic_mmio_read_sgipend")


def _write_sgipendc(ops: Ops, ctx: AccessContext, f: dict[str, Value], d: Value) -> Effect:
    src = ops.and_(f["sgi_sources"], ops.not_(d, 8))
    if ctx.semantics.vgic == "original":
        # write_set_clear_sgi_pend_reg: '*src &= ~mask' only; irq_pending is left as it is (an
        # SGI pending with no source left is dropped at the next guest entry, vgic_queue_sgi)
        return Effect({"sgi_sources": src})
    # 'irq->source &= ~...; if (!irq->source) irq->pending_latch = false;'
    return Effect({"sgi_sources": src, "pending_latch": ops.and_(f["pending_latch"], nonzero(ops, src, 8))})


def _write_sgipends(ops: Ops, ctx: AccessContext, f: dict[str, Value], d: Value) -> Effect:
    src = ops.or_(f["sgi_sources"], d)
    if ctx.semantics.vgic == "original":
        # write_set_clear_sgi_pend_reg: '*src |= mask' only; irq_pending is not set, so the SGI
        # is not delivered until something sets it (compute_pending_for_cpu reads irq_pending)
        return Effect({"sgi_sources": src})
    # 'irq->source |= ...; if (irq->source) { irq->pending_latch = true; ...'
    return Effect({"sgi_sources": src, "pending_latch": ops.or_(f["pending_latch"], nonzero(ops, src, 8))})


write_sgipendc = Accessor("write_sgipendc", "write", _write_sgipendc,
                          f"{MMIO2}: vgic_mmio_write_sgipendc; 3.18-4.6: write_set_clear_sgi_pend_reg",
                          "clears source bits; the SGI stops pending with its last source (3.18-4.6: "
                          "only the sources change)")
write_sgipends = Accessor("write_sgipends", "write", _write_sgipends,
                          f"{MMIO2}: vgic_mmio_write_sgipends; 3.18-4.6: write_set_clear_sgi_pend_reg",
                          "sets source bits; the SGI is pending while it has a source (3.18-4.6: only "
                          "the sources change, the pending bit is not set)")

_pmr = _vcpuif("pmr", 5)
_bpr = _vcpuif("bpr", 3)
_abpr = _vcpuif("abpr", 3)
_gicc_ctlr = (
    Accessor("read_vcpuif", "read", _read_gicc_ctlr, f"{MMIO2}: vgic_mmio_read_vcpuif GIC_CPU_CTRL", "reads GICC_CTLR"),
    Accessor("write_vcpuif", "write", _write_gicc_ctlr, f"{MMIO2}: vgic_mmio_write_vcpuif GIC_CPU_CTRL",
             "stores EnableGrp0/1, AckCtl, FIQEn, CBPR, EOImodeNS"),
)
def _user_read_apr0(ops: Ops, ctx: AccessContext, f: dict[str, Value]) -> Value:
    if not ctx.semantics.apr_uaccess:
        return ops.const(0, 32)  # before 4.12: GIC_CPU_ACTIVEPRIO is vgic_mmio_read_raz
    return f["apr"]


def _user_write_apr0(ops: Ops, ctx: AccessContext, f: dict[str, Value], d: Value) -> Effect:
    if not ctx.semantics.apr_uaccess:
        return Effect({})  # before 4.12: vgic_mmio_write_wi
    return Effect({"apr": d})


_apr0 = (
    read_field("read_apr", "apr", f"{MMIO2}: vgic_mmio_read_apr"),
    write_field("write_apr", "apr", lambda ops, old, d, w: d, 32, f"{MMIO2}: vgic_mmio_write_apr",
                "a GICv2 host stores GICC_APR0 as written"),
)
_apr0_user = (
    Accessor("read_apr", "read", _user_read_apr0,
             f"{MMIO2}: vgic_mmio_read_apr (4.12, 9b87e7a8bfb5); before: vgic_mmio_read_raz",
             "reads GICC_APR0 (read-as-zero for userspace before 4.12)"),
    Accessor("write_apr", "write", _user_write_apr0,
             f"{MMIO2}: vgic_mmio_write_apr (4.12, 9b87e7a8bfb5); before: vgic_mmio_write_wi",
             "a GICv2 host stores GICC_APR0 as written (writes ignored from userspace before 4.12, "
             "so the active priorities are lost)"),
)
def _apr_n(n: int, user: bool) -> tuple[Accessor, Accessor]:
    """GICC_APRn, n = 1..3: ICH_AP1Rn on a GICv3 host whose vgic_v3_max_apr_idx() >= n;
    otherwise read-as-zero / write-ignored ('GICv2 hardware systems support max. 32 groups',
    'if (n > vgic_v3_max_apr_idx(vcpu)) return 0;'). Userspace reaches it from 4.12."""
    name = f"apr{n}"

    def reaches(ctx: AccessContext) -> bool:
        sem: GicV2Semantics = ctx.semantics
        return n <= sem.apr_max_idx and (sem.apr_uaccess or not user)

    def rd(ops: Ops, ctx: AccessContext, f: dict[str, Value]) -> Value:
        return f[name] if reaches(ctx) else ops.const(0, 32)

    def wr(ops: Ops, ctx: AccessContext, f: dict[str, Value], d: Value) -> Effect:
        return Effect({name: d}) if reaches(ctx) else Effect({})

    src = (f"{MMIO2}: vgic_mmio_read_apr / vgic_mmio_write_apr: a GICv3 host's vgic_ap1r[{n}] when "
           f"{n} <= vgic_v3_max_apr_idx(); a GICv2 host: 'if (n != 0) return'")
    return (Accessor("read_apr", "read", rd, src, f"reads ICH_AP1R{n} on a GICv3 host with enough priority "
                     "bits; read-as-zero otherwise" + (" (and for userspace before 4.12)" if user else "")),
            Accessor("write_apr", "write", wr, src, f"writes ICH_AP1R{n} on a GICv3 host with enough priority "
                     "bits; ignored otherwise" + (" (and from userspace before 4.12)" if user else "")))


def _apr_row(n: int) -> Register:
    guest, user = _apr_n(n, False), _apr_n(n, True)
    return Register(name=f"GICC_APR{n}", group=CPUIF, offset=0xD0 + 4 * n, words=1, scope="cpu",
                    views=(f"apr{n}",), guest_read=guest[0], guest_write=guest[1],
                    user_read=user[0], user_write=user[1],
                    doc="RAZ/WI on a GICv2 host; ICH_AP1Rn on a GICv3 host with enough priority bits")


def _cpu_row(name: str, offset: int, views: tuple[str, ...], acc: tuple[Accessor, Accessor],
             doc: str = "") -> Register:
    # 'These are for userland accesses only, there is no guest-facing emulation.'
    return Register(name=name, group=CPUIF, offset=offset, words=1, scope="cpu", views=views,
                    guest_read=acc[0], guest_write=acc[1], user_read=acc[0], user_write=acc[1],
                    doc=doc)


_iidr_read = Accessor("read_v2_misc", "read", _read_iidr,
                      f"{MMIO2}: vgic_mmio_read_v2_misc GIC_DIST_IIDR",
                      "PRODUCT_ID_KVM, implementation revision, IMPLEMENTER_ARM")
_ro_wi = write_wi(f"{MMIO2}: vgic_mmio_write_v2_misc 'GIC_DIST_CTR, GIC_DIST_IIDR: Nothing to do'")

REGISTERS = (
    Register("GICD_CTLR", DIST, 0x000, 1, "global", ("dist_enabled",),
             Accessor("read_v2_misc", "read", _read_ctlr, f"{MMIO2}: vgic_mmio_read_v2_misc", "bit 0 = dist->enabled"),
             Accessor("write_v2_misc", "write", _write_ctlr, f"{MMIO2}: vgic_mmio_write_v2_misc",
                      "dist->enabled = val & GICD_ENABLE"),
             Accessor("read_v2_misc", "read", _read_ctlr, f"{MMIO2}: vgic_mmio_read_v2_misc", "bit 0 = dist->enabled"),
             Accessor("write_v2_misc", "write", _write_ctlr, f"{MMIO2}: vgic_mmio_uaccess_write_v2_misc",
                      "dist->enabled = val & GICD_ENABLE")),
    Register("GICD_TYPER", DIST, 0x004, 1, "global", (),
             read_const("read_v2_misc", _typer, 32, f"{MMIO2}: vgic_mmio_read_v2_misc GIC_DIST_CTR",
                        "ITLinesNumber = nr_irqs/32 - 1, CPUNumber = online vCPUs - 1"),
             _ro_wi,
             read_const("read_v2_misc", _typer, 32, f"{MMIO2}: vgic_mmio_read_v2_misc GIC_DIST_CTR",
                        "ITLinesNumber = nr_irqs/32 - 1, CPUNumber = online vCPUs - 1"),
             _ro_wi, sized=True, doc="host value: checked by QEMU, not restored"),
    Register("GICD_IIDR", DIST, 0x008, 1, "global", ("groups_user_writable", "implementation_rev"),
             _iidr_read, _ro_wi, _iidr_read,
             uaccess_write_iidr, doc="host value; a userspace write confirms it"),
    _irq_row("GICD_IGROUPR", 0x080, 1, ("group",), read_group, guest_write_group,
             user_write=uaccess_write_group),
    _irq_row("GICD_ISENABLER", 0x100, 1, ("enabled",), _enable_read,
             write_field("write_senable", "enabled", write_one_to_set, 1, f"{MMIO}: vgic_mmio_write_senable / vgic_uaccess_write_senable"),
             pair="GICD_ICENABLER", role="set"),
    _irq_row("GICD_ICENABLER", 0x180, 1, ("enabled",), _enable_read,
             write_cenable,
             pair="GICD_ISENABLER", role="clear"),
    _irq_row("GICD_ISPENDR", 0x200, 1, ("pending_latch", "sgi_sources", "soft_pending"),
             read_pending, write_spending, pair="GICD_ICPENDR", role="set"),
    _irq_row("GICD_ICPENDR", 0x280, 1, ("pending_latch", "sgi_sources", "soft_pending"),
             read_pending, write_cpending, pair="GICD_ISPENDR", role="clear"),
    _irq_row("GICD_ISACTIVER", 0x300, 1, ("active", "active_source"), _active_read, write_sactive,
             pair="GICD_ICACTIVER", role="set"),
    _irq_row("GICD_ICACTIVER", 0x380, 1, ("active", "active_source"), _active_read, write_cactive,
             pair="GICD_ISACTIVER", role="clear"),
    _irq_row("GICD_IPRIORITYR", 0x400, 8, ("priority",),
             read_field("read_priority", "priority", f"{MMIO}: vgic_mmio_read_priority"), write_priority),
    _irq_row("GICD_ITARGETSR", 0x800, 8, ("targets",),
             read_field("read_target", "targets", f"{MMIO2}: vgic_mmio_read_target"), write_target),
    _irq_row("GICD_ICFGR", 0xC00, 2, ("edge", "pending_latch"), read_config, write_config),
    _irq_row("GICD_CPENDSGIR", 0xF10, 8, ("sgi_sources", "pending_latch"), _sgi_read, write_sgipendc,
             pair="GICD_SPENDSGIR", role="clear", words=4),
    _irq_row("GICD_SPENDSGIR", 0xF20, 8, ("sgi_sources", "pending_latch"), _sgi_read, write_sgipends,
             pair="GICD_CPENDSGIR", role="set", words=4),
    _cpu_row("GICC_CTLR", 0x00, ("ctlr",), _gicc_ctlr),
    _cpu_row("GICC_PMR", 0x04, ("pmr",), _pmr,
             doc="GICH_VMCR.VMPriMask format: the low 5 bits; shift left by 3 for the mask level"),
    _cpu_row("GICC_BPR", 0x08, ("bpr",), _bpr),
    _cpu_row("GICC_ABPR", 0x1C, ("abpr",), _abpr),
    Register(name="GICC_APR0", group=CPUIF, offset=0xD0, words=1, scope="cpu", views=("apr",),
             guest_read=_apr0[0], guest_write=_apr0[1], user_read=_apr0_user[0], user_write=_apr0_user[1],
             doc="the guest's own active priorities are GICH_APR; userspace reaches them from 4.12"),
    _apr_row(1),
    _apr_row(2),
    _apr_row(3),
    _cpu_row("GICC_IIDR", 0xFC, (),
             (read_const("read_vcpuif", lambda ctx: (PRODUCT_ID_KVM << 20) | (2 << 16) | IMPLEMENTER_ARM, 32,
                         f"{MMIO2}: vgic_mmio_read_vcpuif GIC_CPU_IDENT", "KVM product, architecture v2"),
              write_wi(f"{MMIO2}: vgic_mmio_write_vcpuif (no case for GIC_CPU_IDENT)"))),
)


def _ctrl_init(ops: Ops, ctx: AccessContext, f: dict[str, Value]) -> Effect:
    # vgic_init() returns 0 when already initialised, and every GICv2 register access
    # already calls it (vgic_v2_attr_regs_access), so CTRL_INIT changes no modelled state.
    return Effect({})


OPERATIONS = (
    Operation("KVM_DEV_ARM_VGIC_CTRL_INIT", _ctrl_init,
              f"{DOC}: KVM_DEV_ARM_VGIC_CTRL_INIT 'request the initialization of the VGIC'; "
              "vgic-kvm-device.c: vgic_v2_attr_regs_access calls vgic_init() on every access",
              "initialises the VGIC (idempotent)"),
)

def _irq_field_is_zero(name: str, width: int):
    """An assumption condition: every interrupt that has field ``name`` has it 0."""
    def cond(ops: Ops, scope: str, f: dict[str, Value]) -> Value:
        if scope != "irq" or name not in f:
            return ops.const(1, 1)
        return ops.eq(f[name], ops.const(0, width))

    return cond


no_held_line = _irq_field_is_zero("line_level", 1)  # the source holds no interrupt line asserted


def _orders_compared_on(ops: Ops, scope: str, f: dict[str, Value]) -> Value:
    """The ordering graph's source states: no line held, and no level-sensitive interrupt whose
    pending bit the original VGIC left apart from its line and soft-pend (soft_pending set
    while the latch is not, see ``original_bits``: only a GICD_ICFGR write reaches it, and no
    order restores it: the pending read is 1, and a GICD_ISPENDR write makes it a soft-pend).
    Under every later kernel's invariant the second part always holds (4.7-4.10: a level
    interrupt's soft_pending equals its latch; 4.11+: soft_pending is 0)."""
    held = no_held_line(ops, scope, f)
    if scope != "irq" or "soft_pending" not in f:
        return held
    ok = ops.or_(f["edge"], ops.or_(ops.eq(f["soft_pending"], ops.const(0, 1)),
                                    ops.eq(f["soft_pending"], f["pending_latch"])))
    return bool_and(ops, held, ok)


NO_HELD_LINES = Assumption(
    "no-held-lines", no_held_line,
    "no level-sensitive line is held at save: the VMM re-asserts its lines after the restore "
    "(a GICv2 pending read returns latch|line level, and no GICv2 attribute restores the "
    "line, so a line held at save otherwise comes back as a latch)",
    f"{MMIO}: __read_pending / vgic_uaccess_read_pending (irq_is_pending); {DOC} has no "
    "LEVEL_INFO group for GICv2 (arm-vgic-v3.rst has KVM_DEV_ARM_VGIC_GRP_LEVEL_INFO)",
)


def environment_coverage(destination: str) -> str:
    """What a verdict covers of the interrupts mapped to hardware (``hw_mapped``)."""
    if destination == "fresh":
        return ("timer PPIs mapped to hardware on the source or not; none mapped on the destination "
                "(restored before its vCPUs first run: kvm_timer_enable maps them at the first KVM_RUN)")
    return "timer PPIs mapped to hardware or not, on the source and on the destination"


def clear_set_gap(sem: GicV2Semantics, set_reg: str, kind: str) -> str:
    """Where clear-then-set cannot restore a GICv2 field from userspace."""
    if sem.vgic == "original":
        if set_reg == "GICD_ISENABLER" and kind == "sgi":
            return ("3.18-4.6: GICD_ICENABLER0 cannot disable an SGI (vgic_handle_enable_reg: 'if "
                    "(offset < 4) /* Force SGI enabled */ *reg |= 0xffff;'); every SGI reads enabled, "
                    "so only a value no kernel of that age saves is out of reach")
        if set_reg == "GICD_ISPENDR" and kind == "sgi":
            return ("3.18-4.6: GICD_ICPENDR0 ignores the SGI bits (vgic_handle_clear_pending_reg: "
                    "'/* Ignore writes to SGIs */') while GICD_ISPENDR0 sets them, so a pending SGI "
                    "on the destination stays pending")
        if set_reg == "GICD_ISPENDR" and kind == "spi":
            return ("3.18-4.6: a GICD_ICPENDR write sets the pending bit again for every interrupt "
                    "whose irq_level is set ('/* Re-set level triggered level-active interrupts */ "
                    "*reg |= *level_active', vgic_handle_clear_pending_reg), also for an SPI made "
                    "edge-triggered while its line was held (irq_level is kept)")
        if set_reg == "GICD_ISACTIVER" and not sem.active_uaccess:
            return ("3.18-4.0: GICD_I{S,C}ACTIVER are handle_mmio_raz_wi; the active state lives only "
                    "in the list registers ('we don't track the active state on the distributor "
                    "side', vgic_unqueue_irqs) until 47a98b15ba7c (4.1)")
        return ""
    if set_reg == "GICD_ISPENDR" and kind == "sgi" and sem.sgi_pending_wi and not sem.uaccess_pending:
        return ("from 82e40f558de5 (5.3; 4.9.191, 4.14.142, 4.19.70, 5.2.12) until ba1ed9e17b58 (5.7; "
                "5.6.14) the SGI bits of GICD_I{S,C}PENDR0 are write-ignored for userspace too, which "
                "'has broken migration with GICv2 (if you migrated with a pending SGI, you cannot "
                "restore it...)' (Marc Zyngier, posting ba1ed9e17b58); only GICD_SPENDSGIR restores "
                "an SGI's pending state there")
    return ""


NO_ACTIVE_SGI_SOURCE = Assumption(
    "no-active-sgi-source", _irq_field_is_zero("active_source", 3),
    "no SGI is active at save with a source other than vCPU 0: from 4.17 the kernel remembers an "
    "active GICv2 SGI's source, and no attribute restores it (a userspace GICD_ISACTIVER write "
    "sets vCPU 0), so such an SGI comes back with the wrong source",
    f"{MMIO}: vgic_mmio_change_active: 'This may lead to a VCPU not being able to receive "
    "additional instances of a particular SGI after migration for a GICv2 VM on some GIC "
    "implementations. Oh well.'",
)


NO_MAPPED_DESTINATION = Assumption(
    "no-mapped-destination", _irq_field_is_zero("hw_mapped", 1),
    "the destination's vCPUs have not run before the restore, so no interrupt is mapped to "
    "hardware there (an incoming migration, not a snapshot loaded into a running VM): from 4.16 "
    "the kernel ignores userspace writes to a mapped interrupt's active state (and to its pending "
    "state until 5.7)",
    "arch/arm64/kvm/arch_timer.c: kvm_timer_enable maps the timer PPIs (kvm_vgic_map_phys_irq) at "
    f"the vCPU's first KVM_RUN; {MMIO}: vgic_hw_irq_change_active 'if (is_uaccess) return;'",
    side="destination",
)


GICV2 = DeviceSpec(
    name="gicv2",
    title="GICv2 (KVM_DEV_TYPE_ARM_VGIC_V2)",
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
    irq_counts=IRQ_COUNTS,
    private_irqs=NR_PRIVATE,
    not_state=NOT_STATE,
    assumptions=(NO_HELD_LINES, NO_ACTIVE_SGI_SOURCE, NO_MAPPED_DESTINATION),
    resolve=semantics_for,
    boundaries=BOUNDARIES,
    clear_set_gap=clear_set_gap,
    hosts={name: desc for name, (_, desc) in HOSTS.items()},
    default_host=DEFAULT_HOST,
    with_host=with_host,
    environment_coverage=environment_coverage,
    # the original VGIC records no line for a private interrupt: 'vgic_update_irq_pending'
    # sets irq_level only 'if (level_triggered)', and private interrupts are edge there
    records_environment=lambda sem, kind, name: not (sem.vgic == "original" and name == "line_level"
                                                     and kind != "spi"),
    unmodelled_writes={(DIST, 0xF00): (
        "GICD_SGIR: the kernel has no userspace accessor there, so a userspace write reaches the "
        "guest's vgic_mmio_write_sgir with the attribute's vCPU as the sender and sends an SGI "
        "(vgic-mmio-v2.c: REGISTER_DESC_WITH_LENGTH(GIC_DIST_SOFTINT, vgic_mmio_read_raz, "
        "vgic_mmio_write_sgir, ...); seen on Debian 5.10.223 and 7.2.13); the device table has no "
        "row for a write that changes other interrupts' state")},
    # userspace cannot change a mapped interrupt's state (4.16+): the round trip with an
    # 'any' destination reports that loss; clear-then-set is about the registers' semantics
    clear_set_assumption=_irq_field_is_zero("hw_mapped", 1),
    clear_set_assumption_reason="no interrupt mapped to hardware (from 4.16 the kernel ignores userspace "
    "writes to a mapped interrupt's active state, and to its pending state until 5.7: "
    "vgic_hw_irq_change_active/_spending/_cpending; the round trip reports that loss)",
    order_assumption=_orders_compared_on,
    order_assumption_reason=(
        "orders are compared on sources with no interrupt line held: a GICv2 pending read "
        "returns latch|line level (irq_is_pending) and no attribute restores the line, so a "
        "held level line becomes a latch in every order; on 4.7 a stale soft_pending can hide "
        "that loss in a wrong order, which would make wrong orders look as good as right ones; "
        "on the original VGIC (3.18-4.6) also with no level-sensitive interrupt pending apart "
        "from its line and soft-pend (left by a GICD_ICFGR write), which no order restores"),
    doc=__doc__ or "",
).validate()
