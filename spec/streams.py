"""QEMU's migration streams of the GIC devices (VMStateDescription), as data.

A device's state travels from QEMU to QEMU in a VMState stream: a section with a
``version_id`` (the destination accepts ``minimum_version_id`` .. its own ``version_id``),
its fields in a fixed order with no tags, then optional subsections, each sent only when
its ``needed`` predicate holds on the source and looked up by name on the destination (an
unknown name fails the load). A destination field that nothing in the stream sets keeps
what it had before the load: a value its ``pre_load`` sets, or its reset value (QEMU
resets every device before an incoming migration). Then ``post_load`` runs: for the
in-kernel GICs that is QEMU's put, which writes the loaded values into the kernel.

This module describes those streams (one ``StreamVersion`` per QEMU version or patch),
with the facts about the in-kernel GIC that decide which subsections a KVM VM ever sends
(``Stream.config``), what the kernel reads for the ID values a stream carries on each host
kind (``Stream.hosts``), and what the destination's put does with them (``Check``).
``proofs.streams`` decides old <-> new compatibility from it and says what QEMU's
``scripts/vmstate-static-checker.py`` would report. Sources, quoted where used:

  COMMON3  = hw/intc/arm_gicv3_common.c (QEMU ece408818d, /work/src/qemu-ece408818d)
  KVM3     = hw/intc/arm_gicv3_kvm.c (the same tree)
  COMMON2  = hw/intc/arm_gic_common.c (qemu/qemu 45b1f81d9088 for version 12, 003f8dbc8e09
             for version 7)
  VMSTATE  = migration/vmstate.c (qemu/qemu 0098207eb1d9): vmstate_load_state,
             vmstate_subsection_load
  MACHINE  = hw/core/machine.c: qdev_machine_creation_done 'qemu_system_reset(SHUTDOWN_CAUSE_NONE)'
             before an incoming migration is loaded
  seed 002 = ../shared/seeds/002_322bd28bec502ed3.txt (the GICD_TYPER2 patch, v1)
  v2       = '[PATCH v2 2/3] hw/intc/arm_gicv3_kvm: Migrate GICD_TYPER2' (Peter Maydell,
             8 Jul 2025, Message-ID <20250708115238.667050-3-peter.maydell@linaro.org>)
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

COMMON3 = "hw/intc/arm_gicv3_common.c"
KVM3 = "hw/intc/arm_gicv3_kvm.c"
COMMON2 = "hw/intc/arm_gic_common.c"
SEED002 = "seed 002_322bd28bec502ed3.txt"
V2 = "[PATCH v2 2/3] hw/intc/arm_gicv3_kvm: Migrate GICD_TYPER2 (8 Jul 2025)"

# What a field's value is, for deciding compatibility:
STATE = "state"  # guest state: any value the device can hold
HOST = "host"  # an ID value the kernel reads on the host kind (Stream.hosts)
FIXED = "fixed"  # a value the in-kernel GIC always has (Stream.fixed)
QEMU = "qemu"  # QEMU's own bookkeeping, or state only QEMU's emulation has (no in-kernel GIC state)


@dataclass(frozen=True)
class Needed:
    """A subsection's ``needed`` predicate: ``field OP value`` on the source's device (a
    migrated field, or a configuration property listed in ``Stream.config``); no field
    means always."""

    function: str
    field: str = ""
    op: str = "!="  # "!=" | "==" | ">"
    value: int = 0
    source: str = ""

    def holds(self, value: int) -> bool:
        if not self.field:
            return True
        if self.op == "!=":
            return value != self.value
        if self.op == "==":
            return value == self.value
        if self.op == ">":
            return value > self.value
        raise ValueError(f"unknown operator {self.op!r}")

    def describe(self) -> str:
        return f"{self.function}: always" if not self.field else f"{self.function}: {self.field} {self.op} {self.value:#x}"


@dataclass(frozen=True)
class Field:
    """One VMSTATE_* entry: the C member, the macro, the element size in bytes and count (as
    ``-dump-vmstate`` prints them: ``size`` and ``num``), the section version it exists
    from, and what its value is. ``register``: the device table's register whose value
    QEMU's get/put moves through it (a link to ``spec.devices``), where there is one."""

    name: str
    vmstate: str
    size: int
    count: int = 1
    version_id: int = 0
    value: str = STATE
    register: str = ""
    struct: Description | None = None  # VMSTATE_STRUCT_*: the nested description


@dataclass(frozen=True)
class Description:
    """A VMStateDescription."""

    name: str
    version_id: int
    minimum_version_id: int
    fields: tuple[Field, ...]
    subsections: tuple[Description, ...] = ()
    needed: Needed | None = None  # a subsection's predicate
    pre_load: Mapping[str, int] = field(default_factory=dict)  # fields its pre_load sets
    pre_load_source: str = ""
    source: str = ""


@dataclass(frozen=True)
class Check:
    """What the destination's post_load (QEMU's put) does with a loaded ID value: it writes
    ``register`` to the kernel, which refuses a value other than its own (``rule`` =
    "equal"), with ``errno``; QEMU aborts the destination there (error_abort)."""

    register: str
    rule: str
    errno: str  # short: "EINVAL/EBUSY"
    source: str
    errno_detail: str = ""  # which kernel gives which


@dataclass(frozen=True)
class StreamVersion:
    """The stream as one QEMU version (or patch) has it. ``reset``: a field's value on the
    destination before the load, when the device's reset sets it (a number, or HOST: the
    value the kernel reads on the destination's host kind); fields not named reset to 0."""

    name: str
    title: str
    source: str
    description: Description
    reset: Mapping[str, Any] = field(default_factory=dict)
    reset_source: str = ""
    checks: Mapping[str, Check] = field(default_factory=dict)
    sequences: tuple[str, ...] = ()  # shipped sequence files that model this version's get/put


@dataclass(frozen=True)
class Stream:
    """One device's stream across QEMU versions (oldest first)."""

    name: str
    device: str  # the gicproof device (spec.devices) whose state it carries
    versions: tuple[StreamVersion, ...]
    # host kind -> the kernel's values of the HOST fields there
    hosts: Mapping[str, Mapping[str, int]] = field(default_factory=dict)
    hosts_source: str = ""
    # configuration properties a `needed` tests, with the only values a KVM VM can have
    config: Mapping[str, int] = field(default_factory=dict)
    config_source: Mapping[str, str] = field(default_factory=dict)
    fixed: Mapping[str, int] = field(default_factory=dict)  # FIXED fields' values
    fixed_source: Mapping[str, str] = field(default_factory=dict)

    def version(self, name: str) -> StreamVersion:
        for v in self.versions:
            if v.name == name:
                return v
        raise KeyError(name)


# ---------------------------------------------------------------------------------------
# GICv3 (arm_gicv3).

_SRE = Description(
    "arm_gicv3_cpu/sre_el1", 1, 1, (Field("icc_sre_el1", "VMSTATE_UINT64", 8, value=FIXED, register="ICC_SRE_EL1"),),
    needed=Needed("icc_sre_el1_reg_needed", "icc_sre_el1", "!=", 7, f"{COMMON3}: 'return cs->icc_sre_el1 != 7;'"),
    source=f"{COMMON3}: vmstate_gicv3_cpu_sre_el1")

_CPU = Description(
    "arm_gicv3_cpu", 1, 1,
    (Field("level", "VMSTATE_UINT32", 4, value=QEMU),
     Field("gicr_ctlr", "VMSTATE_UINT32", 4, register="GICR_CTLR"),
     Field("gicr_statusr", "VMSTATE_UINT32_ARRAY", 4, 2, register="GICR_STATUSR"),
     Field("gicr_waker", "VMSTATE_UINT32", 4, register="GICR_WAKER"),
     Field("gicr_propbaser", "VMSTATE_UINT64", 8, register="GICR_PROPBASER"),
     Field("gicr_pendbaser", "VMSTATE_UINT64", 8, register="GICR_PENDBASER"),
     Field("gicr_igroupr0", "VMSTATE_UINT32", 4, register="GICR_IGROUPR0"),
     Field("gicr_ienabler0", "VMSTATE_UINT32", 4, register="GICR_ISENABLER0"),
     Field("gicr_ipendr0", "VMSTATE_UINT32", 4, register="GICR_ISPENDR0"),
     Field("gicr_iactiver0", "VMSTATE_UINT32", 4, register="GICR_ISACTIVER0"),
     Field("edge_trigger", "VMSTATE_UINT32", 4, register="GICR_ICFGR1"),
     Field("gicr_igrpmodr0", "VMSTATE_UINT32", 4),
     Field("gicr_nsacr", "VMSTATE_UINT32", 4),
     Field("gicr_ipriorityr", "VMSTATE_UINT8_ARRAY", 1, 32, register="GICR_IPRIORITYR"),
     Field("icc_ctlr_el1", "VMSTATE_UINT64_ARRAY", 8, 2, register="ICC_CTLR_EL1"),
     Field("icc_pmr_el1", "VMSTATE_UINT64", 8, register="ICC_PMR_EL1"),
     Field("icc_bpr", "VMSTATE_UINT64_ARRAY", 8, 3, register="ICC_BPR1_EL1"),
     Field("icc_apr", "VMSTATE_UINT64_2DARRAY", 8, 12, register="ICC_AP1R0_EL1"),
     Field("icc_igrpen", "VMSTATE_UINT64_ARRAY", 8, 3, register="ICC_IGRPEN1_EL1"),
     Field("icc_ctlr_el3", "VMSTATE_UINT64", 8)),
    subsections=(
        Description("arm_gicv3_cpu/virt", 1, 1,
                    (Field("ich_apr", "VMSTATE_UINT64_2DARRAY", 8, 12, value=QEMU),
                     Field("ich_hcr_el2", "VMSTATE_UINT64", 8, value=QEMU),
                     Field("ich_lr_el2", "VMSTATE_UINT64_ARRAY", 8, 16, value=QEMU),
                     Field("ich_vmcr_el2", "VMSTATE_UINT64", 8, value=QEMU)),
                    needed=Needed("virt_state_needed", "num_list_regs", "!=", 0,
                                  f"{COMMON3}: 'return cs->num_list_regs != 0;'"),
                    source=f"{COMMON3}: vmstate_gicv3_cpu_virt"),
        _SRE,
        Description("arm_gicv3_cpu/gicv4", 1, 1,
                    (Field("gicr_vpropbaser", "VMSTATE_UINT64", 8, value=QEMU),
                     Field("gicr_vpendbaser", "VMSTATE_UINT64", 8, value=QEMU)),
                    needed=Needed("gicv4_needed", "revision", ">", 3, f"{COMMON3}: 'return cs->gic->revision > 3;'"),
                    source=f"{COMMON3}: vmstate_gicv3_gicv4"),
        Description("arm_gicv3_cpu/nmi", 1, 1, (Field("gicr_inmir0", "VMSTATE_UINT32", 4, value=QEMU),),
                    needed=Needed("gicv3_cpu_nmi_needed", "nmi_support", "!=", 0,
                                  f"{COMMON3}: 'return cs->gic->nmi_support;'"),
                    source=f"{COMMON3}: vmstate_gicv3_cpu_nmi"),
    ),
    pre_load={"icc_sre_el1": 7},
    pre_load_source=(f"{COMMON3}: vmstate_gicv3_cpu_pre_load 'If the sre_el1 subsection is not transferred "
                     "this means SRE_EL1 is 0x7 (which might not be the same as our reset value).' "
                     "'cs->icc_sre_el1 = 0x7;'"),
    source=f"{COMMON3}: vmstate_gicv3_cpu")

_SHIFT_BUG = Description(
    "arm_gicv3/gicd_no_migration_shift_bug", 1, 1,
    (Field("gicd_no_migration_shift_bug", "VMSTATE_BOOL", 1, value=QEMU),),
    needed=Needed("needed_always", source=f"{COMMON3}: needed_always 'return true;'"),
    source=f"{COMMON3}: vmstate_gicv3_gicd_no_migration_shift_bug")

_NMI = Description(
    "arm_gicv3/gicd_nmi", 1, 1, (Field("nmi", "VMSTATE_UINT32_ARRAY", 4, 32, value=QEMU),),
    needed=Needed("gicv3_nmi_needed", "nmi_support", "!=", 0, f"{COMMON3}: 'return cs->nmi_support;'"),
    source=f"{COMMON3}: vmstate_gicv3_gicd_nmi")

_TYPER2 = Description(
    "arm_gicv3/gicd_typer2", 1, 1, (Field("gicd_typer2", "VMSTATE_UINT32", 4, value=HOST, register="GICD_TYPER2"),),
    needed=Needed("gicv3_typer2_needed", "gicd_typer2", "!=", 0,
                  f"{SEED002}: gicv3_typer2_needed 'Was RES0 for GICv3 and GICv4.0; don't migrate if zero for "
                  "backwards compatibility.' 'return cs->gicd_typer2 != 0;'"),
    source=f"{SEED002}: vmstate_gicv3_gicd_typer2 (the same in v2)")

_GICV3_FIELDS = (
    Field("gicd_ctlr", "VMSTATE_UINT32", 4, register="GICD_CTLR"),
    Field("gicd_statusr", "VMSTATE_UINT32_ARRAY", 4, 2, register="GICD_STATUSR"),
    Field("group", "VMSTATE_UINT32_ARRAY", 4, 32, register="GICD_IGROUPR"),
    Field("grpmod", "VMSTATE_UINT32_ARRAY", 4, 32),
    Field("enabled", "VMSTATE_UINT32_ARRAY", 4, 32, register="GICD_ISENABLER"),
    Field("pending", "VMSTATE_UINT32_ARRAY", 4, 32, register="GICD_ISPENDR"),
    Field("active", "VMSTATE_UINT32_ARRAY", 4, 32, register="GICD_ISACTIVER"),
    Field("level", "VMSTATE_UINT32_ARRAY", 4, 32, register="VGIC_LINE_LEVEL"),
    Field("edge_trigger", "VMSTATE_UINT32_ARRAY", 4, 32, register="GICD_ICFGR"),
    Field("gicd_ipriority", "VMSTATE_UINT8_ARRAY", 1, 1020, register="GICD_IPRIORITYR"),
    Field("gicd_irouter", "VMSTATE_UINT64_ARRAY", 8, 1020, register="GICD_IROUTER"),
    Field("gicd_nsacr", "VMSTATE_UINT32_ARRAY", 4, 64),
    Field("cpu", "VMSTATE_STRUCT_VARRAY_POINTER_UINT32", 0, 0, struct=_CPU),
)

_GICV3_PRE_LOAD = (f"{COMMON3}: gicv3_pre_load 'if (kvm_enabled()) {{ cs->gicd_no_migration_shift_bug = false; }}' "
                   "(a source without the subsection had the bug; gicv3_post_load then moves the bitmaps)")


def _gicv3(subsections: tuple[Description, ...], source: str) -> Description:
    return Description("arm_gicv3", 1, 1, _GICV3_FIELDS, subsections, pre_load={"gicd_no_migration_shift_bug": 0},
                       pre_load_source=_GICV3_PRE_LOAD, source=source)


_TYPER2_CHECK = Check(
    "GICD_TYPER2", "equal", "EINVAL/EBUSY",
    f"{SEED002}: kvm_arm_gicv3_put 'reg = s->gicd_typer2; kvm_gicd_access(s, GICD_TYPER2, &reg, true);'; "
    "arch/arm64/kvm/vgic/vgic-mmio-v3.c vgic_mmio_uaccess_write_v3_misc: 6.12.107 'if (val != "
    "vgic_mmio_read_v3_misc(vcpu, addr, len)) return -EINVAL;', 7.1.8 'if (reg == val) return 0; if "
    "(vgic_initialized(vcpu->kvm)) return -EBUSY;' (c652887a9288); kernels before GICv4.1 support ignore the "
    "write (seed 002: 'older kernels pre-dating GICv4.1 support in the KVM GIC will just ignore whatever "
    "userspace writes to GICD_TYPER2')",
    errno_detail="EINVAL before 6.17, EBUSY from 6.17 (the write comes after INIT)")

GICV3_STREAM = Stream(
    name="arm_gicv3",
    device="gicv3",
    versions=(
        StreamVersion(
            "qemu-ece408818d", "QEMU master (ece408818d): no GICD_TYPER2",
            f"{COMMON3}: vmstate_gicv3, vmstate_gicv3_cpu and their subsections",
            _gicv3((_SHIFT_BUG, _NMI), f"{COMMON3}: vmstate_gicv3"),
            sequences=("gicv3/qemu-current-7.1.toml", "gicv3/qemu-current-gicv4.1-to-gicv3-7.1.toml")),
        StreamVersion(
            "typer2-v1", "the GICD_TYPER2 patch v1 (seed 002)", f"{SEED002}: the arm_gicv3_common.c hunks",
            _gicv3((_SHIFT_BUG, _NMI, _TYPER2), f"{SEED002}: vmstate_gicv3 with &vmstate_gicv3_gicd_typer2"),
            reset={"gicd_typer2": 0},
            reset_source=(f"{SEED002} (Peter Maydell): 'On reset the gicd_typer2 field in the struct will be zero, "
                          "and then the reset_hold function calls kvm_arm_gicv3_put(), which will try to write "
                          "the 0 into the kernel'"),
            checks={"gicd_typer2": _TYPER2_CHECK},
            sequences=("gicv3/qemu-typer2-v1-gicv4.1-to-gicv3-7.1.toml", "gicv3/qemu-typer2-v1-gicv3-to-gicv4.1-7.1.toml",
                       "gicv3/qemu-typer2-v1-reset-gicv4.1-7.1.toml")),
        StreamVersion(
            "typer2-v2", "the GICD_TYPER2 patch v2 (8 Jul 2025)", f"{V2}: the same subsection as v1",
            _gicv3((_SHIFT_BUG, _NMI, _TYPER2), f"{V2}: vmstate_gicv3 with &vmstate_gicv3_gicd_typer2"),
            reset={"gicd_typer2": HOST},
            reset_source=(f"{V2}: kvm_arm_gicv3_reset_hold 'The reset value of the GICD_TYPER2 ID register should "
                          "be whatever the kernel says it is' 'kvm_gicd_access(s, GICD_TYPER2, &reg, false); "
                          "s->gicd_typer2 = reg;'; an incoming migration is loaded after that reset (hw/core/"
                          "machine.c qdev_machine_creation_done: qemu_system_reset)"),
            checks={"gicd_typer2": _TYPER2_CHECK},
            sequences=("gicv3/qemu-typer2-v2-gicv4.1-to-gicv3-7.1.toml", "gicv3/qemu-typer2-v2-gicv3-to-gicv4.1-7.1.toml",
                       "gicv3/qemu-typer2-v2-reset-gicv4.1-7.1.toml")),
    ),
    hosts={"gicv3": {"gicd_typer2": 0}, "gicv4.1": {"gicd_typer2": 0x100}},
    hosts_source=("spec/gicv3.py GicV3Semantics.typer2: GICD_TYPER2 reads nASSGIcap (bit 8) on a GICv4.1 host with "
                  "vSGIs and 0 otherwise (arch/arm64/kvm/vgic/vgic-mmio-v3.c vgic_mmio_read_v3_misc 'if "
                  "(kvm_vgic_global_state.has_gicv4_1 && gic_cpuif_has_vsgi()) value = GICD_TYPER2_nASSGIcap;')"),
    config={"revision": 3, "nmi_support": 0, "num_list_regs": 0},
    config_source={
        "revision": f"{KVM3}: kvm_arm_gicv3_realize 'if (s->revision != 3) error_setg(... \"unsupported GIC revision "
                    "%d for in-kernel GIC\")'",
        "nmi_support": f"{KVM3}: kvm_arm_gicv3_realize 'if (s->nmi_support) error_setg(... \"NMI is not supported "
                       "with the in-kernel GIC\")'",
        "num_list_regs": ("the emulated CPU interface's list registers (a TCG guest with EL2); the in-kernel GIC "
                          "sets none (an assumption: hw/intc/arm_gicv3_cpuif.c, which sets them, was not read)"),
    },
    fixed={"icc_sre_el1": 7},
    fixed_source={"icc_sre_el1": (f"{KVM3}: kvm_arm_gicv3_get reads ICC_SRE_EL1 from the kernel, which keeps "
                                  "'vgic_v3->vgic_sre = (ICC_SRE_EL1_DIB | ICC_SRE_EL1_DFB | ICC_SRE_EL1_SRE)' (7) "
                                  "for a GICv3 guest (arch/arm64/kvm/vgic/vgic-v3.c vgic_v3_enable)")},
)

# ---------------------------------------------------------------------------------------
# GICv2 (arm_gic).

_IRQ_STATE_7 = Description(
    "arm_gic_irq_state", 1, 1,
    tuple(Field(n, m, s) for n, m, s in (("enabled", "VMSTATE_UINT8", 1), ("pending", "VMSTATE_UINT8", 1),
                                        ("active", "VMSTATE_UINT8", 1), ("level", "VMSTATE_UINT8", 1),
                                        ("model", "VMSTATE_BOOL", 1), ("edge_trigger", "VMSTATE_BOOL", 1))),
    source=f"{COMMON2} (003f8dbc8e09): vmstate_gic_irq_state")
_IRQ_STATE_12 = dataclasses.replace(
    _IRQ_STATE_7, fields=_IRQ_STATE_7.fields + (Field("group", "VMSTATE_UINT8", 1, register="GICD_IGROUPR"),),
    source=f"{COMMON2} (45b1f81d9088): vmstate_gic_irq_state")

GICV2_STREAM = Stream(
    name="arm_gic",
    device="gicv2",
    versions=(
        StreamVersion(
            "qemu-003f8dbc8e", "QEMU of 2014 (arm_gic version 7)", f"{COMMON2} at qemu/qemu 003f8dbc8e09",
            Description("arm_gic", 7, 7, (
                Field("enabled", "VMSTATE_BOOL", 1, register="GICD_CTLR"),
                Field("cpu_enabled", "VMSTATE_BOOL_ARRAY", 1, 8, register="GICC_CTLR"),
                Field("irq_state", "VMSTATE_STRUCT_ARRAY", 0, 1020, struct=_IRQ_STATE_7),
                Field("irq_target", "VMSTATE_UINT8_ARRAY", 1, 1020, register="GICD_ITARGETSR"),
                Field("priority1", "VMSTATE_UINT8_2DARRAY", 1, 256, register="GICD_IPRIORITYR"),
                Field("priority2", "VMSTATE_UINT8_ARRAY", 1, 988, register="GICD_IPRIORITYR"),
                Field("last_active", "VMSTATE_UINT16_2DARRAY", 2, 8160, value=QEMU),
                Field("sgi_pending", "VMSTATE_UINT8_2DARRAY", 1, 128, register="GICD_SPENDSGIR"),
                Field("priority_mask", "VMSTATE_UINT16_ARRAY", 2, 8, register="GICC_PMR"),
                Field("running_irq", "VMSTATE_UINT16_ARRAY", 2, 8, value=QEMU),
                Field("running_priority", "VMSTATE_UINT16_ARRAY", 2, 8, value=QEMU),
                Field("current_pending", "VMSTATE_UINT16_ARRAY", 2, 8, value=QEMU),
                Field("bpr", "VMSTATE_UINT8_ARRAY", 1, 8, register="GICC_BPR"),
                Field("abpr", "VMSTATE_UINT8_ARRAY", 1, 8, register="GICC_ABPR"),
                Field("apr", "VMSTATE_UINT32_2DARRAY", 4, 32, register="GICC_APR0"),
            ), source=f"{COMMON2} (003f8dbc8e09): vmstate_gic")),
        StreamVersion(
            "qemu-45b1f81d90", "QEMU of 2024 (arm_gic version 12)", f"{COMMON2} at qemu/qemu 45b1f81d9088",
            Description("arm_gic", 12, 12, (
                Field("ctlr", "VMSTATE_UINT32", 4, register="GICD_CTLR"),
                Field("cpu_ctlr", "VMSTATE_UINT32_SUB_ARRAY", 4, 8, register="GICC_CTLR"),
                Field("irq_state", "VMSTATE_STRUCT_ARRAY", 0, 1020, struct=_IRQ_STATE_12),
                Field("irq_target", "VMSTATE_UINT8_ARRAY", 1, 1020, register="GICD_ITARGETSR"),
                Field("priority1", "VMSTATE_UINT8_2DARRAY", 1, 256, register="GICD_IPRIORITYR"),
                Field("priority2", "VMSTATE_UINT8_ARRAY", 1, 988, register="GICD_IPRIORITYR"),
                Field("sgi_pending", "VMSTATE_UINT8_2DARRAY", 1, 128, register="GICD_SPENDSGIR"),
                Field("priority_mask", "VMSTATE_UINT16_SUB_ARRAY", 2, 8, register="GICC_PMR"),
                Field("running_priority", "VMSTATE_UINT16_SUB_ARRAY", 2, 8, value=QEMU),
                Field("current_pending", "VMSTATE_UINT16_SUB_ARRAY", 2, 8, value=QEMU),
                Field("bpr", "VMSTATE_UINT8_SUB_ARRAY", 1, 8, register="GICC_BPR"),
                Field("abpr", "VMSTATE_UINT8_SUB_ARRAY", 1, 8, register="GICC_ABPR"),
                Field("apr", "VMSTATE_UINT32_2DARRAY", 4, 32, register="GICC_APR0"),
                Field("nsapr", "VMSTATE_UINT32_2DARRAY", 4, 32),
            ), subsections=(
                Description("arm_gic_virt_state", 1, 1, tuple(Field(n, m, s, c, value=QEMU) for n, m, s, c in (
                    ("h_hcr", "VMSTATE_UINT32_ARRAY", 4, 8), ("h_misr", "VMSTATE_UINT32_ARRAY", 4, 8),
                    ("h_lr", "VMSTATE_UINT32_2DARRAY", 4, 32), ("h_apr", "VMSTATE_UINT32_ARRAY", 4, 8),
                    ("cpu_ctlr", "VMSTATE_UINT32_SUB_ARRAY", 4, 8), ("priority_mask", "VMSTATE_UINT16_SUB_ARRAY", 2, 8),
                    ("running_priority", "VMSTATE_UINT16_SUB_ARRAY", 2, 8),
                    ("current_pending", "VMSTATE_UINT16_SUB_ARRAY", 2, 8),
                    ("bpr", "VMSTATE_UINT8_SUB_ARRAY", 1, 8), ("abpr", "VMSTATE_UINT8_SUB_ARRAY", 1, 8))),
                    needed=Needed("gic_virt_state_needed", "virt_extn", "!=", 0,
                                  f"{COMMON2} (45b1f81d9088): 'return s->virt_extn;'"),
                    source=f"{COMMON2} (45b1f81d9088): vmstate_gic_virt_state"),
            ), source=f"{COMMON2} (45b1f81d9088): vmstate_gic"),
            sequences=("gicv2/qemu-current-6.12.toml",)),
    ),
    config={"virt_extn": 0},
    config_source={"virt_extn": "hw/intc/arm_gic_kvm.c kvm_arm_gic_realize 'if (s->virt_extn) error_setg(errp, "
                                "\"the in-kernel VGIC does not implement the virtualization extensions\")'"},
)

STREAMS: dict[str, Stream] = {s.name: s for s in (GICV2_STREAM, GICV3_STREAM)}

FORMAT = "gicproof-streams/1"


def to_json(stream: Stream) -> dict[str, Any]:
    """A stream as plain data (``from_json`` reads it back)."""
    return dataclasses.asdict(stream)


def _description(d: Mapping[str, Any]) -> Description:
    return Description(
        name=d["name"], version_id=d["version_id"], minimum_version_id=d["minimum_version_id"],
        fields=tuple(Field(**{**f, "struct": _description(f["struct"]) if f.get("struct") else None})
                     for f in d["fields"]),
        subsections=tuple(_description(s) for s in d.get("subsections", ())),
        needed=Needed(**d["needed"]) if d.get("needed") else None,
        pre_load=dict(d.get("pre_load", {})), pre_load_source=d.get("pre_load_source", ""),
        source=d.get("source", ""))


def from_json(d: Mapping[str, Any]) -> Stream:
    """The stream ``to_json`` wrote (a dump of another revision's spec/streams.py)."""
    versions = tuple(StreamVersion(
        name=v["name"], title=v["title"], source=v["source"], description=_description(v["description"]),
        reset=dict(v.get("reset", {})), reset_source=v.get("reset_source", ""),
        checks={k: Check(**c) for k, c in v.get("checks", {}).items()},
        sequences=tuple(v.get("sequences", ()))) for v in d["versions"])
    return Stream(name=d["name"], device=d["device"], versions=versions,
                  hosts={h: dict(vals) for h, vals in d.get("hosts", {}).items()},
                  hosts_source=d.get("hosts_source", ""), config=dict(d.get("config", {})),
                  config_source=dict(d.get("config_source", {})), fixed=dict(d.get("fixed", {})),
                  fixed_source=dict(d.get("fixed_source", {})))
