"""The shape of a device specification: canonical state fields, register rows, lifecycle
operations and kernel-version semantics. A device module (``spec.gicv2``) fills these in;
the engine in ``models`` interprets them without knowing which device it runs.

A table checks itself when it is built (``DeviceSpec.validate``): offsets sorted, no two
registers overlapping in one KVM attribute group, unique names, every accessor named and
cited, every architectural field viewed by some register.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from spec.algebra import Value

# Field classifications (DESIGN.md "Canonical state").
ARCHITECTURAL = "architectural"  # must survive migration
DERIVED = "derived"  # recomputable from other state; excluded, with a reason
HOST = "host"  # ID/capability values of the host: checked, not restored
ENVIRONMENT = "environment"  # outside the device: lines, memory, vCPUs, lifecycle

CLASSIFICATIONS = (ARCHITECTURAL, DERIVED, HOST, ENVIRONMENT)
SCOPES = ("global", "cpu", "irq")


class SpecError(Exception):
    """A device table that does not check itself (a bug in spec/, not in user input)."""


@dataclass(frozen=True)
class StateField:
    """One field of the canonical device state.

    ``scope`` says how many copies exist: one (``global``), one per CPU interface (``cpu``),
    or one per interrupt (``irq``; private interrupts have one per CPU). ``kinds`` limits an
    irq field to some interrupt kinds (e.g. SGI source bits exist only for SGIs).
    """

    name: str
    width: int
    scope: str
    classification: str
    source: str
    reason: str = ""  # required for derived fields: why it is not state
    kinds: tuple[str, ...] = ()
    # an environment field the destination takes from the source (an interrupt line, which
    # its source drives on both sides); False: the destination has its own (a mapping to
    # hardware, made when the destination's vCPUs first run)
    carried: bool = True
    # held in guest RAM (a table the guest or KVM keeps there: the LPI configuration and
    # pending tables, the ITS tables): no register views it; the VMM moves it with the
    # memory steps (``save_memory`` / ``restore_memory``), and operations read or write it
    memory: bool = False


@dataclass(frozen=True)
class NotState:
    """A value some implementation keeps that is *not* device state, with the reason
    (e.g. QEMU's ``running_priority``, derived from the active priorities)."""

    name: str
    classification: str
    reason: str
    source: str


@dataclass(frozen=True)
class Assumption:
    """A named assumption a sequence file (``assume = [...]``) or the command line
    (``--assume``) may make about the *source* state (or, with ``side = "destination"``,
    about the destination's state before the restore), with its reason and source:
    ``fn(ops, scope, fields) -> cond`` for each scope of that state."""

    name: str
    fn: Callable[..., Any]
    reason: str
    source: str
    side: str = "source"  # "source" | "destination"


@dataclass(frozen=True)
class Effect:
    """The result of a write accessor on one scope (an interrupt, a CPU, the device).

    ``updates`` maps field names to new values. ``error`` is a 1-bit condition (or None for
    a write that cannot fail); when it holds, the kernel returns ``errno`` and changes
    nothing (the engine guards ``updates`` by it).
    """

    updates: Mapping[str, Value]
    error: Value | None = None
    errno: str = ""
    # updates the kernel makes before the check that fails, so a failing write keeps them
    # (set_gic_ctlr stores a lower PRIbits before checking IDbits, SEIS and A3V); each is
    # the field's value whether or not the write then fails
    kept: Mapping[str, Value] = field(default_factory=dict)
    # the kernel's checks in its order, (condition, errno), when a write can fail with more
    # than one errno (GITS_CREADR: -EBUSY while the ITS is enabled, then -EINVAL beyond the
    # queue): ``error`` is their disjunction and ``errno`` names them all (what a symbolic
    # report shows); on concrete values the first that holds is the errno (``errno_of``)
    errnos: tuple[tuple[Value, str], ...] = ()


def errno_of(eff: Effect) -> str:
    """The errno of a failing write on concrete values: the first of ``eff.errnos`` whose
    condition holds, else ``eff.errno``."""
    for cond, errno in eff.errnos:
        if isinstance(cond, int) and cond:
            return errno
    return eff.errno


@dataclass(frozen=True)
class Accessor:
    """A named register behaviour, in the architecture's words (``write_senable``,
    ``read_raz``, ``uaccess_write_spending``), with the rule's source.

    Read accessors: ``fn(ops, ctx, fields) -> value``.
    Write accessors: ``fn(ops, ctx, fields, data) -> Effect``.
    ``fields`` is the mapping of the scope's state fields; ``ctx`` is an ``AccessContext``.

    A read the kernel may refuse has ``error(ops, ctx, fields) -> cond`` (1 bit) and
    ``errno``: when the condition holds the access fails and returns nothing (the value
    ``fn`` gives then is never seen). A write says its failure in its ``Effect``.
    """

    name: str
    kind: str  # "read" | "write"
    fn: Callable[..., Any]
    source: str
    rule: str = ""  # the sentence or behaviour, quoted or paraphrased, shown in reports
    error: Callable[..., Any] | None = None  # read accessors: when the read fails
    errno: str = ""
    # whether ``error`` means the register does not exist there (an ICC_AP1R<n>_EL1 beyond
    # the vCPU's priority bits: the ideal save and the graph's interface steps access it only
    # where it does), or that the access is refused for now (-EBUSY before CTRL_INIT)
    absent: bool = True


@dataclass(frozen=True)
class AccessContext:
    """What a behaviour may depend on besides its own scope's fields."""

    semantics: Any  # the device's semantics object for the kernel version
    cpus: int  # number of vCPUs / CPU interfaces
    irqs: int  # number of interrupts (SGIs + PPIs + SPIs)
    vcpu: int  # the CPU whose bank (or interface) the access goes to
    intid: int = -1  # the interrupt, for irq-scope accesses
    kind: str = ""  # the interrupt kind ("sgi", "ppi", "spi"), for irq-scope accesses
    device: Mapping[str, Value] = field(default_factory=dict)  # global fields, read-only
    host: Any = None  # the host description (device-defined)
    user: bool = True  # userspace (KVM device attribute) or guest access
    # which 32-bit word of a 64-bit register the access reaches (0: bits 31:0, 1: bits
    # 63:32): KVM's GICv3 DIST/REDIST attributes are 32 bits wide, so a 64-bit register
    # (GICD_IROUTER, GICR_PROPBASER) is accessed in halves ('offset & 4' in the kernel's
    # accessors, update_64bit_reg / extract_bytes in vgic-mmio-v3.c)
    half: int = 0
    # the vCPUs the machine holds (all of range(cpus), or one per vCPU class), in the order
    # of the CPU field list an operation or a cross-scope invariant is given
    vcpus: tuple[int, ...] = ()


@dataclass(frozen=True)
class Register:
    """One row of a device table (one register or register array), like a REGISTER_DESC
    row of the kernel's vgic-mmio tables: offset, size, how it maps onto state, and the
    guest and userspace accessors side by side."""

    name: str
    group: str  # the KVM attribute group (e.g. "KVM_DEV_ARM_VGIC_GRP_DIST_REGS")
    offset: int
    words: int  # number of 32-bit words (a 64-bit register: 2, accessed in halves)
    scope: str  # "global" | "cpu" | "irq"
    views: tuple[str, ...]  # the canonical fields this register reads or changes
    guest_read: Accessor
    guest_write: Accessor
    user_read: Accessor
    user_write: Accessor
    bits_per_irq: int = 0  # irq-scope registers: bits per interrupt
    first_irq: int = 0  # irq-scope registers: the interrupt of bit 0 of word 0
    irqs: int = 0  # irq-scope registers: how many interrupts the array can cover
    width: int = 32  # scalar registers: value width
    sized: bool = False  # its value depends on the VM's interrupt count (GICD_TYPER)
    pair: str = ""  # set/clear pair partner (the other view of the same field)
    pair_role: str = ""  # "set" | "clear"
    doc: str = ""
    # attribute offset units per word: 4 for a register frame (byte offsets), 1 for the
    # GICv3 CPU system registers (the attribute is the sysreg encoding, one per register),
    # 32 for KVM_DEV_ARM_VGIC_GRP_LEVEL_INFO (the attribute is the first INTID of the word)
    unit: int = 4
    # a selector-indexed data register (GICv5's IRS_PE_CR0, IRS_SPI_CFGR): a scalar row
    # (scope "global": one value in a frame, saved and restored as one word) whose accessors
    # act on the fields of the one instance of scope ``selects`` ("cpu" | "irq") whose number
    # equals the global field ``selected_by`` (IRS_PE_SELR.IAFFID, IRS_SPI_SELR.ID); none
    # selected: reads 0, writes ignored. ``views`` are fields of the selected scope.
    selects: str = ""
    selected_by: str = ""

    @property
    def size(self) -> int:
        return self.unit * self.words

    @property
    def irqs_per_word(self) -> int:
        """Interrupts per 32-bit word (0 for a 64-bit-per-interrupt register, GICD_IROUTER,
        where one interrupt takes two words)."""
        return 32 // self.bits_per_irq if 0 < self.bits_per_irq <= 32 else 0

    @property
    def slice_bits(self) -> int:
        """The bits of one interrupt in one word: ``bits_per_irq``, or 32 (one half) for a
        64-bit-per-interrupt register."""
        return min(self.bits_per_irq, 32)

    def word_half(self, word: int) -> int:
        """Which half of its 64-bit register a word is (0 for a 32-bit register)."""
        if self.bits_per_irq == 64 or (self.scope != "irq" and self.words == 2):
            return word % 2
        return 0

    def word_irqs(self, word: int) -> range:
        """The interrupts covered by ``word`` of an irq-scope register."""
        if self.bits_per_irq == 64:
            return range(self.first_irq + word // 2, self.first_irq + word // 2 + 1)
        per = self.irqs_per_word
        return range(self.first_irq + word * per, self.first_irq + (word + 1) * per)

    def word_of(self, intid: int) -> int:
        """The (first) word holding ``intid``."""
        if self.bits_per_irq == 64:
            return 2 * (intid - self.first_irq)
        return (intid - self.first_irq) // self.irqs_per_word

    def slice_shift(self, intid: int) -> int:
        if self.bits_per_irq == 64:
            return 0
        return ((intid - self.first_irq) % self.irqs_per_word) * self.bits_per_irq


# The engine's own operations, for every device with fields held in guest memory
# (``StateField.memory``): the VMM reads the guest's RAM into the migration stream, and
# writes the stream's RAM into the destination's (QEMU's RAM migration, whose last pass
# runs after the VM has stopped and the devices' flushes have written their tables).
SAVE_MEMORY = "save_memory"
RESTORE_MEMORY = "restore_memory"


@dataclass(frozen=True)
class Operation:
    """A lifecycle step or ioctl (``KVM_DEV_ARM_VGIC_CTRL_INIT``,
    ``KVM_DEV_ARM_ITS_RESTORE_TABLES``...): ``fn(ops, ctx, device_fields) -> Effect`` on
    the global fields, or, with ``cpus``, ``fn(ops, ctx, device_fields, cpu_fields)``
    where ``cpu_fields`` is the list of every CPU's field map (read-only: an operation
    that reads each redistributor's GICR_PENDBASER). ``views``: the fields it moves (an
    architectural field no register views must be moved by some operation, as the ITS
    tables are by SAVE_TABLES and RESTORE_TABLES)."""

    name: str
    fn: Callable[..., Any]
    source: str
    rule: str = ""
    views: tuple[str, ...] = ()
    cpus: bool = False
    # "device": fn acts on the device; SAVE_MEMORY / RESTORE_MEMORY: the engine's memory
    # steps (fn unused)
    kind: str = "device"
    # which side of a migration it belongs to: "restore" (a step of the restore interface,
    # a node of the ordering graph), "setup" (a lifecycle step of the destination's VM set-up:
    # a node too, placed before the registers in the graph's first reference order), "save"
    # (a flush before memory is saved), "reset"
    side: str = "restore"


@dataclass(frozen=True)
class DeviceSpec:
    """A device: its fields, table, operations, versions, reset and invariants.

    Device-defined callables:
    ``interrupt_kind(intid) -> str``; ``reset(ops, ctx, scope) -> dict`` the fields of one
    scope after creation/initialisation; ``invariant(ops, ctx, scope, fields) -> cond`` the
    states the device can reach, the conjunction of ``invariant_conjuncts(ops, ctx, scope,
    fields) -> [(name, cond)]`` (named, so that a conjunct an action breaks can be
    reported: ``proofs.invariant`` proves them inductive); ``host_values(config) -> dict``
    host field values.
    """

    name: str
    title: str
    fields: tuple[StateField, ...]
    registers: tuple[Register, ...]
    operations: tuple[Operation, ...]
    versions: Mapping[str, Any]  # kernel version -> semantics object
    default_kernel: str
    interrupt_kind: Callable[[int], str]
    reset: Callable[..., dict[str, Value]]
    invariant: Callable[..., Value]
    max_cpus: int
    irq_counts: tuple[int, ...]  # the interrupt counts KVM accepts
    private_irqs: int  # interrupts below this are banked per CPU
    not_state: tuple[NotState, ...] = ()
    # whether the vCPUs other than vCPU 0, the last one and those a file names are
    # interchangeable (proofs/classes.py, "vCPU classes"): then a proof holds one of them
    # for all, and covers every vCPU count up to max_cpus
    vcpu_classes: bool = False
    invariant_conjuncts: Callable[..., list[tuple[str, Value]]] | None = None
    assumptions: tuple[Assumption, ...] = ()
    # assumptions every proof of this device makes of its source (the device's premise of
    # migration, e.g. "the source VM is set up and initialised" where the lifecycle is
    # state): names of ``assumptions``; reports list them with a file's own
    premises: tuple[str, ...] = ()
    # any kernel release -> its semantics (ValueError with the reason when not modelled)
    resolve: Callable[[str], Any] | None = None
    # the changes of userspace semantics across releases (each with what/commit/evidence
    # and releases()), listed by ``gicproof describe``
    boundaries: tuple[Any, ...] = ()
    # (semantics, set register, interrupt kind) -> the reason clear-then-set cannot restore
    # that kind on that kernel ("" where it must): a known gap of the ABI, cited
    clear_set_gap: Callable[[Any, str, str], str] | None = None
    # host kinds: name -> one-line description; ``with_host(semantics, host)`` gives the
    # semantics of a kernel on that host kind
    hosts: Mapping[str, Any] = field(default_factory=dict)
    default_host: str = ""
    with_host: Callable[[Any, str], Any] | None = None
    # (group, offset) -> why a userspace write there is not modelled: a region of the
    # kernel's table that is no row of ours because its write does more than a row can say
    # (a sequence writing it is refused as input rather than given a wrong semantics)
    unmodelled_writes: Mapping[tuple[str, int], str] = field(default_factory=dict)
    # (ops, scope, fields) -> cond on the prior state of the clear-then-set obligation, with
    # the reason: states on which userspace writes are not expected to work at all (an
    # interrupt mapped to hardware), which the round trip reports instead
    clear_set_assumption: Callable[..., Value] | None = None
    clear_set_assumption_reason: str = ""
    # (semantics, interrupt kind, field) -> whether that kernel records a carried environment
    # field for that kind (default: always)
    records_environment: Callable[[Any, str, str], bool] | None = None
    # destination ("fresh" | "any") -> what a verdict covers of the environment that is
    # not carried from the source (e.g. interrupts mapped to hardware), for reports
    environment_coverage: Callable[[str], str] | None = None
    selectors: tuple[str, ...] = ("cpu",)
    # what reports call the global and the per-CPU scope (GICv2/v3's distributor and CPU
    # interfaces; GICv5's IRS and PEs)
    scope_names: Mapping[str, str] = field(
        default_factory=lambda: {"global": "distributor", "cpu": "CPU interface"})
    # what an ``each`` loop of a selector runs over: "cpu" (every vCPU held: the default) or
    # "irq" (every shared interrupt held, in order); inside a loop ``value = "index"`` is
    # the loop's vCPU or interrupt number
    selector_domains: Mapping[str, str] = field(default_factory=dict)
    # States on which orders are compared when deriving the ordering graph:
    # (ops, scope, fields) -> cond on the *source*, with the reason. It excludes losses no
    # order can avoid, which would otherwise make every order look as bad as any other.
    # the ordering graph's first reference order, by node name (a documented restore order;
    # nodes it does not name follow in table order): a starting point only, every edge is
    # still derived and confirmed. Table order can be a poor start where a register's
    # offset comes before one it depends on (GICv5's IRS_IST_BASER at 0x180, IRS_IST_CFGR
    # at 0x190): the pairs compared in an order that fails anyway tell little.
    interface_order: tuple[str, ...] = ()
    order_assumption: Callable[..., Value] | None = None
    order_assumption_reason: str = ""
    doc: str = ""
    # conjuncts that relate scopes (an LPI and the redistributor it targets):
    # ``(ops, ctx, global_fields, cpu_fields_list) -> [(name, cond)]``, part of the invariant
    cross_invariant: Callable[..., list[tuple[str, Value]]] | None = None
    # the device-wide obligations ``gicproof check`` runs for it (its files' round trips
    # always run): "invariant", "clear-then-set", "graph"
    obligations: tuple[str, ...] = ("invariant", "clear-then-set", "graph")
    # the invariant obligation's expected breaks, by kernel: "ACTION / CONJUNCT" -> why (a
    # userspace write that can leave the states the proofs assume: a finding the device
    # documents, and which its verdicts do not cover); any other break is a mismatch
    invariant_breaks: Mapping[str, Mapping[str, str]] = field(default_factory=dict)
    # the device's ideal save when a file has no [[save]] (default: read every register):
    # a device with tables in guest memory flushes them and saves the memory first
    ideal_save: tuple[Any, ...] | None = None

    def selector_domain(self, name: str) -> str:
        return self.selector_domains.get(name, "cpu")

    # -- lookups ---------------------------------------------------------------------
    @functools.cached_property
    def _by_name(self) -> dict[str, Register]:
        return {r.name: r for r in reversed(self.registers)}  # the first of a name wins

    def register(self, name: str) -> Register:
        return self._by_name[name]

    @functools.cached_property
    def _at(self) -> dict[tuple[str, int], tuple[Register, int] | None]:
        return {}  # register_at's answers: strided walks ask for the same offsets at every count

    def register_at(self, group: str, offset: int) -> tuple[Register, int] | None:
        """The register and word at a byte offset of an attribute group, or None where
        there is none (the kernel then reads zero and ignores writes: vgic_uaccess_read /
        vgic_uaccess_write; an unaligned offset finds no region either, check_region)."""
        key = (group, offset)
        if key not in self._at:
            self._at[key] = self._find_at(group, offset)
        return self._at[key]

    def _find_at(self, group: str, offset: int) -> tuple[Register, int] | None:
        for reg in self.registers:
            if reg.group == group and reg.offset <= offset < reg.offset + reg.size:
                if (offset - reg.offset) % reg.unit:
                    return None
                return reg, (offset - reg.offset) // reg.unit
        return None

    def strided_words(self, reg: Register, stride: int, irqs: int) -> list[tuple[Register, int]]:
        """The register words a VMM reaches when it walks the 64-bit-per-interrupt ``reg``
        with ``stride`` bytes per interrupt for interrupts ``reg.first_irq .. irqs - 1``:
        interrupt i's two words at (offset of interrupt 0) + stride * i and + 4, in order.
        Offsets where the group has no register are left out (the kernel reads zero and
        ignores the write there: vgic_uaccess_read/_write find no region)."""
        base = reg.offset - reg.first_irq * (reg.bits_per_irq // 8)
        out = []
        for i in range(reg.first_irq, irqs):
            for k in range(reg.bits_per_irq // 32):
                found = self.register_at(reg.group, base + stride * i + 4 * k)
                if found is not None:
                    out.append(found)
        return out

    def operation(self, name: str) -> Operation:
        for o in self.operations:
            if o.name == name:
                return o
        raise KeyError(name)

    def field_spec(self, name: str) -> StateField:
        for f in self.fields:
            if f.name == name:
                return f
        raise KeyError(name)

    def assumption(self, name: str) -> Assumption:
        for a in self.assumptions:
            if a.name == name:
                return a
        raise KeyError(name)

    def semantics(self, kernel: str, host: str = "") -> Any:
        """The semantics of a kernel release: a named revision (``versions``), or any
        release ``resolve`` maps to one (stable point releases included), on a host kind
        (default: ``default_host``)."""
        if kernel in self.versions:
            sem = self.versions[kernel]
        elif self.resolve is None:
            raise ValueError(f"kernel '{kernel}' is not modelled for {self.name}: valid: {', '.join(self.versions)}")
        else:
            sem = self.resolve(kernel)
        if host and host != self.default_host:
            if host not in self.hosts or self.with_host is None:
                valid = ", ".join(self.hosts) or self.default_host or "none"
                raise ValueError(f"host '{host}' is not modelled for {self.name}: valid: {valid}")
            sem = self.with_host(sem, host)
        return sem

    def kernel_error(self, kernel: str) -> str:
        """Why ``kernel`` is not a release this device models ("" when it is)."""
        try:
            self.semantics(kernel)
        except ValueError as e:
            return str(e)
        return ""

    # -- the self-check ----------------------------------------------------------------
    def scope_label(self, scope: str, key: Any = None) -> str:
        """A global or per-CPU scope in reports' words: "distributor", "CPU interface 1"."""
        name = self.scope_names.get(scope, scope)
        return name if key is None or scope == "global" else f"{name} {key}"

    def validate(self) -> DeviceSpec:
        names = [f.name for f in self.fields]
        if len(set(names)) != len(names):
            raise SpecError(f"{self.name}: duplicate field names")
        for f in self.fields:
            if f.classification not in CLASSIFICATIONS:
                raise SpecError(f"{self.name}: field {f.name}: bad classification")
            if f.scope not in SCOPES:
                raise SpecError(f"{self.name}: field {f.name}: bad scope")
            if f.classification == DERIVED and not f.reason:
                raise SpecError(f"{self.name}: derived field {f.name} needs a reason")
            if not f.source:
                raise SpecError(f"{self.name}: field {f.name} cites no source")
        regs = [r.name for r in self.registers]
        if len(set(regs)) != len(regs):
            raise SpecError(f"{self.name}: duplicate register names")
        by_group: dict[str, list[Register]] = {}
        for r in self.registers:
            by_group.setdefault(r.group, []).append(r)
            for acc, kind in (
                (r.guest_read, "read"),
                (r.user_read, "read"),
                (r.guest_write, "write"),
                (r.user_write, "write"),
            ):
                if acc.kind != kind:
                    raise SpecError(f"{r.name}: accessor {acc.name} is not a {kind} accessor")
                if not acc.source:
                    raise SpecError(f"{r.name}: accessor {acc.name} cites no source")
                if acc.error is not None and (kind != "read" or not acc.errno):
                    raise SpecError(f"{r.name}: accessor {acc.name}: only a read accessor says when it "
                                    "fails (with its errno); a write says it in its Effect")
            if r.selects:
                if r.scope != "global" or r.selects not in ("cpu", "irq"):
                    raise SpecError(f"{r.name}: a selected register is a global row selecting a cpu or irq")
                if r.selected_by not in names or self.field_spec(r.selected_by).scope != "global":
                    raise SpecError(f"{r.name}: selector field {r.selected_by!r} is no global field")
            for v in r.views:
                if v not in names:
                    raise SpecError(f"{r.name} views unknown field {v}")
                vs = self.field_spec(v).scope
                if r.selects:
                    if vs != r.selects:
                        raise SpecError(f"{r.name} selects a {r.selects} but views {v} of scope {vs}")
                    continue
                # a per-CPU register may view a device-wide field: KVM keeps one
                # GICR_PROPBASER for every redistributor (dist->propbaser)
                if vs != r.scope and not (r.scope == "cpu" and vs == "global"):
                    raise SpecError(f"{r.name} ({r.scope}) views {v} of another scope")
            if r.scope == "irq":
                if r.bits_per_irq not in (1, 2, 8, 64):
                    raise SpecError(f"{r.name}: bits per interrupt must be 1, 2, 8 or 64")
                if r.bits_per_irq == 64 and r.words != 2 * r.irqs:
                    raise SpecError(f"{r.name}: {r.words} words do not cover {r.irqs} 64-bit interrupts")
                if r.bits_per_irq != 64 and r.irqs != r.words * r.irqs_per_word:
                    raise SpecError(f"{r.name}: {r.words} words do not cover {r.irqs} interrupts")
            if r.pair:
                other = self.register(r.pair)
                if other.pair != r.name or {r.pair_role, other.pair_role} != {"set", "clear"}:
                    raise SpecError(f"{r.name}: set/clear pair with {r.pair} is not symmetric")
                if other.views != r.views:
                    raise SpecError(f"{r.name}: set/clear pair views differ from {r.pair}")
                if other.user_read.fn is not r.user_read.fn:
                    raise SpecError(f"{r.name}: set/clear pair is read differently from {r.pair}")
        for group, rows in by_group.items():
            offsets = [r.offset for r in rows]
            if offsets != sorted(offsets):
                raise SpecError(f"{self.name}: {group} rows are not sorted by offset")
            for a, b in zip(rows, rows[1:], strict=False):
                if a.offset + a.size > b.offset:
                    raise SpecError(f"{self.name}: {a.name} overlaps {b.name}")
        viewed = {v for r in self.registers for v in r.views} | {v for o in self.operations for v in o.views}
        for o in self.operations:
            for v in o.views:
                if v not in names:
                    raise SpecError(f"{self.name}: operation {o.name} moves unknown field {v}")
            if o.kind not in ("device", SAVE_MEMORY, RESTORE_MEMORY):
                raise SpecError(f"{self.name}: operation {o.name}: bad kind {o.kind}")
            if o.side not in ("setup", "restore", "save", "reset"):
                raise SpecError(f"{self.name}: operation {o.name}: bad side {o.side}")
        memory = [f for f in self.fields if f.memory]
        for f in self.fields:
            if f.classification == ARCHITECTURAL and f.name not in viewed and not f.memory:
                raise SpecError(f"{self.name}: architectural field {f.name} is viewed by no register "
                                "and moved by no operation")
        if memory and {SAVE_MEMORY, RESTORE_MEMORY} - {o.kind for o in self.operations}:
            raise SpecError(f"{self.name}: fields in guest memory need the memory steps "
                            "(spec.device.memory_operations)")
        for premise in self.premises:
            if premise not in {x.name for x in self.assumptions}:
                raise SpecError(f"{self.name}: premise {premise} is not a declared assumption")
        for sel in self.selector_domains:
            if sel not in self.selectors or self.selector_domains[sel] not in ("cpu", "irq"):
                raise SpecError(f"{self.name}: selector {sel}: unknown, or a domain other than cpu/irq")
        if self.default_kernel not in self.versions:
            raise SpecError(f"{self.name}: default kernel {self.default_kernel} not modelled")
        return self



def memory_operations(source: str) -> tuple[Operation, Operation]:
    """The memory steps, for a device with fields in guest memory (``source``: where the
    VMM's RAM migration is described)."""

    def none(ops: Any, ctx: Any, f: Any) -> Effect:
        return Effect({})

    return (Operation(SAVE_MEMORY, none, source, "the VMM reads the guest's RAM into the migration "
                      "stream (every field held in guest memory, as it is at this step)", kind=SAVE_MEMORY,
                      side="save"),
            Operation(RESTORE_MEMORY, none, source, "the VMM writes the stream's RAM into the "
                      "destination's guest memory", kind=RESTORE_MEMORY))


def compose(base: DeviceSpec, *, name: str, title: str, fields: tuple[StateField, ...] = (),
            registers: tuple[Register, ...] = (), replace_registers: tuple[Register, ...] = (),
            operations: tuple[Operation, ...] = (), doc: str = "", **changes: Any) -> DeviceSpec:
    """A device made of ``base`` and another device's table (a GICv3 and its ITS): the
    fields, rows and operations of both, with ``replace_registers`` taking the place of
    ``base``'s rows of the same names (a row whose behaviour the second device changes:
    GICR_CTLR.EnableLPIs exists only with an ITS). The composed table checks itself like
    any other. ``changes``: any other DeviceSpec attribute (reset, invariant, ...)."""
    import dataclasses

    replaced = {r.name: r for r in replace_registers}
    unknown = set(replaced) - {r.name for r in base.registers}
    if unknown:
        raise SpecError(f"{name}: replaces rows {sorted(unknown)} that {base.name} does not have")
    rows = tuple(replaced.get(r.name, r) for r in base.registers) + tuple(registers)
    return dataclasses.replace(base, name=name, title=title, fields=base.fields + tuple(fields),
                               registers=rows, operations=base.operations + tuple(operations),
                               doc=doc or base.doc, **changes).validate()
