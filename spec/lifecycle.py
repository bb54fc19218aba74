"""The VM lifecycle of a KVM interrupt controller, as data: operations, their
preconditions (each with the errno the kernel returns when it fails), their effects on the
lifecycle state, and where each rule comes from.

Engine (device-independent): a ``Lifecycle`` is a state (named fields with defaults) and
a table of ``Operation``s. An operation is a list of steps run in the kernel's order:

* ``Check``: a precondition. When ``fails(state, args)`` is true the operation stops with
  ``errno`` (or with ``IGNORED``: it succeeds and does nothing). A check may apply to a
  range of kernel releases only (``since``/``until``), so one table covers every release
  whose check order differs.
* ``Effect``: changes the lifecycle state.
* ``Invoke``: runs another operation of the table (lazy initialisation: a register access
  runs ``KVM_DEV_ARM_VGIC_CTRL_INIT`` first); its failure is this operation's failure.
* ``Hook``: the point where the device's register model acts (a register access, a line
  level, a value read). The interpreter of the device supplies it; the table says when.

``run(lifecycle, state, name, args, release, hooks)`` interprets one operation and
returns the runner's result text: ``ok``, ``0xHEX`` or an errno name. The ITS and GICv5
lifecycles are meant to be further sections of this file over the same engine.

Section GICV2: the vgic-v2 (KVM_DEV_TYPE_ARM_VGIC_V2) on a GICv2 host, as the kernel's
userspace interface exposes it (arm-vgic.rst; arch/arm64/kvm/arm.c, vgic/vgic-init.c,
vgic/vgic-kvm-device.c, vgic/vgic-mmio-v2.c, vgic/vgic.c; virt/kvm/kvm_main.c), checked
against Debian 5.10.223, 6.1.176, 6.12.107 and 7.2.13 by ``gicproof conform``.

Section GICV3: the vgic-v3 (KVM_DEV_TYPE_ARM_VGIC_V3) without an ITS on a GICv3 host, over
the same engine (no extension was needed: a KVM_RUN's immediate -EINTR is the table's last
Check), checked by ``gicproof conform gicv3``. Imports nothing outside ``spec``.

Section GICV5: the proposed VGICv5 IRS (spec/gicv5_irs.py), source-only (no runner reaches
it); ``as_effect`` turns an operation of a table whose state is flags into a device
``Effect`` over the device's fields, so the device's lifecycle operations are this table.
"""

from __future__ import annotations

import copy
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

IGNORED = "ignored"  # a Check whose failure makes the operation a successful no-op

State = dict[str, Any]
Args = Mapping[str, Any]


def release_key(text: str) -> tuple[int, int, int]:
    """'6.12.107' -> (6, 12, 107); '5.16' -> (5, 16, 0)."""
    m = re.match(r"(\d+)\.(\d+)(?:\.(\d+))?", text)
    if not m:
        raise ValueError(f"not a kernel release: {text!r}")
    return int(m.group(1)), int(m.group(2)), int(m.group(3) or 0)


@dataclass(frozen=True)
class Check:
    """A precondition: when ``fails(state, args)``, the operation stops with ``errno``."""

    errno: str  # "EINVAL", "EBUSY", ... or IGNORED
    fails: Callable[[State, Args], bool]
    rule: str  # what the kernel checks, in one line
    source: str  # the kernel function (file) that checks it
    doc: str = ""  # the documentation sentence that states it, quoted, if any
    since: str | None = None  # first release where this check (at this position) applies
    until: str | None = None  # first release where it no longer does
    reachable: bool = True  # False: documented, but no runner program reaches it on this host

    def applies(self, release: str) -> bool:
        r = release_key(release)
        return ((self.since is None or r >= release_key(self.since))
                and (self.until is None or r < release_key(self.until)))


@dataclass(frozen=True)
class Effect:
    """A change of the lifecycle state."""

    what: str
    apply: Callable[[State, Args], None]
    source: str


@dataclass(frozen=True)
class Invoke:
    """Run another operation of the table here; its failure is this operation's."""

    op: str
    source: str


@dataclass(frozen=True)
class Hook:
    """The device model acts here (``hooks[name](state, args)`` returns the result text,
    or None to go on). ``run`` fails loudly when the interpreter did not supply it."""

    name: str
    source: str


Step = Check | Effect | Invoke | Hook


@dataclass(frozen=True)
class Operation:
    name: str
    summary: str
    steps: tuple[Step, ...]
    value: Callable[[State, Args], int] | None = None  # the value a successful read returns

    def checks(self) -> tuple[Check, ...]:
        return tuple(s for s in self.steps if isinstance(s, Check))


@dataclass(frozen=True)
class Lifecycle:
    device: str
    state: Mapping[str, Any]  # the fields and their values in a fresh VM
    operations: Mapping[str, Operation]
    notes: tuple[str, ...] = field(default=())  # what is not a rule, with its source

    def fresh(self) -> State:
        """The state of a fresh VM (a deep copy: the table's defaults are never changed)."""
        return copy.deepcopy(dict(self.state))

    def rules(self) -> list[tuple[str, Check]]:
        return [(op.name, c) for op in self.operations.values() for c in op.checks()]


class MissingHook(Exception):
    """The interpreter of a device did not supply a hook its lifecycle table names."""


def run(lc: Lifecycle, state: State, name: str, args: Args, release: str,
        hooks: Mapping[str, Callable[[State, Args], str | None]] | None = None) -> str:
    """Run operation ``name`` on ``state`` (changed in place); the runner's result text."""
    op = lc.operations[name]
    for step in op.steps:
        if isinstance(step, Check):
            if step.applies(release) and step.fails(state, args):
                return "ok" if step.errno == IGNORED else step.errno
        elif isinstance(step, Effect):
            step.apply(state, args)
        elif isinstance(step, Invoke):
            r = run(lc, state, step.op, args, release, hooks)
            if r != "ok":
                return r
        else:
            fn = (hooks or {}).get(step.name)
            if fn is None:
                raise MissingHook(f"{lc.device} lifecycle: operation {name} needs hook {step.name!r}")
            hooked = fn(state, args)
            if hooked is not None:
                return hooked
    if op.value is not None:
        return f"0x{op.value(state, args):x}"
    return "ok"


# =======================================================================================
# GICv2 (KVM_DEV_TYPE_ARM_VGIC_V2 on a GICv2 host)

DOC = "Documentation/virt/kvm/devices/arm-vgic.rst"
DEVICE_C = "arch/arm64/kvm/vgic/vgic-kvm-device.c"
INIT_C = "arch/arm64/kvm/vgic/vgic-init.c"
ARM_C = "arch/arm64/kvm/arm.c"

V2_MAX_CPUS = 8  # VGIC_V2_MAX_CPUS; kvm_arm_default_max_vcpus() on a GICv2 host
NR_PRIVATE = 32  # VGIC_NR_PRIVATE_IRQS
NR_IRQS_LEGACY = 256  # VGIC_NR_IRQS_LEGACY: vgic_init's default
MAX_RESERVED = 1023  # VGIC_MAX_RESERVED
ADDR_UNDEF = 0xFFFFFFFFFFFFFFFF  # VGIC_ADDR_UNDEF ((-1) as u64): what an unset address reads
IPA_BITS = 40  # KVM_CREATE_VM type 0: the default 40-bit IPA space (kvm_phys_size)
ADDR_DIST, ADDR_CPU = 0, 1  # KVM_VGIC_V2_ADDR_TYPE_DIST / _CPU
ADDR_SIZE = {ADDR_DIST: 0x1000, ADDR_CPU: 0x2000}  # KVM_VGIC_V2_DIST_SIZE / _CPU_SIZE
ADDR_ALIGN = 0x1000  # SZ_4K
HOST_DEVICES = ("v2",)  # the device kinds a GICv2 host registers (kvm_register_vgic_device)

# The check order of vgic_check_ioaddr (5.10) and vgic_check_iorange (6.1 on) differ; the
# oracle sees the first on 5.10.223 and the second on 6.1.176, 6.12.107 and 7.2.13. The
# helper came with Ricardo Koller's series "[PATCH v4 01/11] kvm: arm64: vgic: Introduce
# vgic_check_iorange" (Oct 2021, for 5.16); the order of the released function (EEXIST
# first, then alignment, wrap-around, IPA size) is the one read in vgic-kvm-device.c now.
# The boundary is taken as 5.16; releases 5.11-5.19 were not booted, so it is not pinned.
IORANGE = "5.16"
# Where KVM_CREATE_VCPU checks the vCPU limit: kvm_arch_vcpu_precreate after its EBUSY
# check (5.10.223: a 9th vCPU after INIT is EBUSY), or the generic kvm_vm_ioctl_create_vcpu
# before it ('created_vcpus >= kvm->max_vcpus', from Sean Christopherson's "KVM: Add
# max_vcpus field in common 'struct kvm'"; 6.1.176 on: EINVAL). Boundary taken as 5.15,
# not pinned (no release between 5.10 and 6.1 was booted, the merge commit was not read).
GENERIC_MAX_VCPUS = "5.15"
# KVM_IRQ_LINE initialises a GICv2 lazily before it checks the INTID from 7.2: the merge
# "KVM/arm64 updates for 7.2" (751d041a13bd: 'Fixes for the so-called "lazy vgic init",
# which resulted in sleeping operations in non-preemptible sections'). Seen on 7.2.13
# (gicproof conform: 'irq SPI 0 0 2' is EINVAL there and on 5.10-6.12, but only 7.2.13
# answers EBUSY to a vCPU created after it); the exact commit inside the merge was not read.
LAZY_INIT_FIRST = "7.2"


def _nr_irqs(s: State) -> int:
    return s["nr_spis"] + NR_PRIVATE


def _addr_end(s: State, a: Args) -> int:
    return a["addr"] + ADDR_SIZE.get(a["type"], 0)


def _vgic_init(s: State, a: Args) -> None:
    if not s["nr_spis"]:
        s["nr_spis"] = NR_IRQS_LEGACY - NR_PRIVATE
    s["initialized"] = True


_EXIST = Check("EEXIST", lambda s, a: s["device"], "a vGIC already exists in this VM",
               f"{INIT_C}: kvm_vgic_create ('if (irqchip_in_kernel(kvm)) return -EEXIST')",
               doc="Only one VGIC instance may be instantiated through either this API or the "
                   "legacy KVM_CREATE_IRQCHIP API.")
_NODEV = Check("ENODEV", lambda s, a: a["kind"] not in HOST_DEVICES,
               "the host registers no device of this type (a GICv2 host: vgic-v2 only)",
               "virt/kvm/kvm_main.c: kvm_ioctl_create_device (no ops: -ENODEV); "
               "vgic-kvm-device.c: kvm_register_vgic_device")
_NO_IRQCHIP = Check("ENXIO", lambda s, a: not s["device"], "no in-kernel irqchip yet",
                    f"{ARM_C}: kvm_vm_ioctl_irq_line ('if (!irqchip_in_kernel(kvm)) return -ENXIO')")
_BAD_VCPU = Check("EINVAL", lambda s, a: a["vcpu"] >= s["vcpus"],
                  "the attribute's vcpu_index names no vCPU",
                  f"{DEVICE_C}: vgic_v2_parse_attr",
                  doc="-EINVAL  Invalid vcpu_index supplied")
_ADDR_TYPE = Check("ENXIO", lambda s, a: a["type"] not in ADDR_SIZE,
                   "not a GICv2 address type (the GICv3 and ITS types included)",
                   f"{DEVICE_C}: kvm_vgic_addr (-ENODEV: vgic_check_type or default), which "
                   "vgic_set_common_attr/vgic_get_common_attr turn into -ENXIO",
                   doc="-ENXIO   The group or attribute is unknown/unsupported for this device "
                       "or hardware support is missing.")


def _v2_operations() -> dict[str, Operation]:
    ops = [
        Operation("create_vcpu", "KVM_CREATE_VCPU (one vCPU, the next index)", (
            Check("EINVAL", lambda s, a: s["vcpus"] >= s["max_vcpus"],
                  "the VM already has its maximum number of vCPUs (8 with a GICv2 host or device)",
                  "virt/kvm/kvm_main.c: kvm_vm_ioctl_create_vcpu ('created_vcpus >= kvm->max_vcpus'), "
                  "kvm->max_vcpus set by kvm_arch_init_vm (arm.c) and kvm_vgic_create",
                  since=GENERIC_MAX_VCPUS),
            Check("EBUSY", lambda s, a: s["device"] and s["initialized"],
                  "the vGIC is initialised: its vCPU count is frozen",
                  f"{ARM_C}: kvm_arch_vcpu_precreate ('irqchip_in_kernel(kvm) && vgic_initialized(kvm)')"),
            Check("EINVAL", lambda s, a: s["vcpus"] >= s["max_vcpus"],
                  "the vCPU index is beyond the VM's maximum (8 with a GICv2 host or device)",
                  f"{ARM_C}: kvm_arch_vcpu_precreate ('id >= kvm->arch.max_vcpus')",
                  until=GENERIC_MAX_VCPUS),
            Effect("one more vCPU", lambda s, a: s.__setitem__("vcpus", s["vcpus"] + 1),
                   "virt/kvm/kvm_main.c: kvm_vm_ioctl_create_vcpu"),
        )),
        Operation("vcpu_init", "KVM_ARM_PREFERRED_TARGET and KVM_ARM_VCPU_INIT on every vCPU: "
                  "no vGIC precondition, in any order with the vGIC's lifecycle", ()),
        Operation("create_device", "KVM_CREATE_DEVICE", (
            _NODEV, _EXIST,
            Check("E2BIG", lambda s, a: s["vcpus"] > V2_MAX_CPUS,
                  "more vCPUs than a GICv2 supports",
                  f"{INIT_C}: kvm_vgic_create ('online_vcpus > kvm->max_vcpus')",
                  reachable=False),  # a GICv2 host caps every VM at 8 vCPUs already
            Effect("the vGIC exists; max_vcpus = 8", lambda s, a: s.update(device=True, max_vcpus=V2_MAX_CPUS),
                   f"{INIT_C}: kvm_vgic_create"),
        )),
        Operation("test_device", "KVM_CREATE_DEVICE with KVM_CREATE_DEVICE_TEST: only whether the "
                  "type exists", (_NODEV,)),
        Operation("set_nr_irqs", "KVM_SET_DEVICE_ATTR KVM_DEV_ARM_VGIC_GRP_NR_IRQS", (
            Check("EINVAL", lambda s, a: a["value"] < NR_PRIVATE + 32 or a["value"] > MAX_RESERVED
                  or a["value"] & 31,
                  "fewer than 64, more than 1023 (so 1024 is refused, although the documentation "
                  "says 'ranging from 64 to 1024'), or not a multiple of 32",
                  f"{DEVICE_C}: vgic_set_common_attr ('val < (VGIC_NR_PRIVATE_IRQS + 32) || "
                  "val > VGIC_MAX_RESERVED || (val & 31)')",
                  doc="-EINVAL  Value set is out of the expected range"),
            Check("EBUSY", lambda s, a: s["initialized"] or s["nr_spis"] != 0,
                  "already set, or the vGIC was initialised (explicitly or lazily) with a count",
                  f"{DEVICE_C}: vgic_set_common_attr ('vgic_ready(dev->kvm) || "
                  "dev->kvm->arch.vgic.nr_spis'; vgic_init sets nr_spis)",
                  doc="-EBUSY   Value has already be set, or GIC has already been initialized "
                      "with default values."),
            Effect("nr_spis = value - 32", lambda s, a: s.__setitem__("nr_spis", a["value"] - NR_PRIVATE),
                   f"{DEVICE_C}: vgic_set_common_attr"),
        )),
        Operation("get_nr_irqs", "KVM_GET_DEVICE_ATTR KVM_DEV_ARM_VGIC_GRP_NR_IRQS: nr_spis + 32 "
                  "(32 before it is set or the vGIC is initialised)", (),
                  value=lambda s, a: _nr_irqs(s)),
        Operation("set_address", "KVM_SET_DEVICE_ATTR KVM_DEV_ARM_VGIC_GRP_ADDR (no overlap check: "
                  "vgic_v2_map_resources checks the regions at the first KVM_RUN, which the "
                  "oracle never does; INIT does not need the addresses)", (
            _ADDR_TYPE,
            # 5.10: vgic_check_ioaddr
            Check("E2BIG", lambda s, a: a["addr"] >> s["ipa_bits"] != 0,
                  "the base is outside the IPA space", f"{DEVICE_C}: vgic_check_ioaddr "
                  "('addr & ~kvm_phys_mask(kvm)')", doc="-E2BIG   Address outside of addressable IPA range",
                  until=IORANGE),
            Check("EINVAL", lambda s, a: a["addr"] % ADDR_ALIGN != 0, "the base is not 4K aligned",
                  f"{DEVICE_C}: vgic_check_ioaddr ('!IS_ALIGNED(addr, alignment)')",
                  doc="-EINVAL  Incorrectly aligned address", until=IORANGE),
            Check("EEXIST", lambda s, a: s["addr"][a["type"]] is not None, "the address is already set",
                  f"{DEVICE_C}: vgic_check_ioaddr ('!IS_VGIC_ADDR_UNDEF(*ioaddr)')",
                  doc="-EEXIST  Address already configured", until=IORANGE),
            # 5.16 on: vgic_check_iorange
            Check("EEXIST", lambda s, a: s["addr"][a["type"]] is not None, "the address is already set",
                  f"{DEVICE_C}: vgic_check_iorange ('!IS_VGIC_ADDR_UNDEF(ioaddr)')",
                  doc="-EEXIST  Address already configured", since=IORANGE),
            Check("EINVAL", lambda s, a: a["addr"] % ADDR_ALIGN != 0, "the base is not 4K aligned",
                  f"{DEVICE_C}: vgic_check_iorange ('!IS_ALIGNED(addr, alignment)')",
                  doc="-EINVAL  Incorrectly aligned address", since=IORANGE),
            Check("EINVAL", lambda s, a: _addr_end(s, a) > 0xFFFFFFFFFFFFFFFF, "the region wraps around",
                  f"{DEVICE_C}: vgic_check_iorange ('addr + size < addr')", since=IORANGE),
            Check("E2BIG", lambda s, a: a["addr"] >> s["ipa_bits"] != 0 or _addr_end(s, a) > 1 << s["ipa_bits"],
                  "the region (base + 4K or 8K) does not fit in the IPA space",
                  f"{DEVICE_C}: vgic_check_iorange ('(addr + size) > kvm_phys_size(...)')",
                  doc="-E2BIG   Address outside of addressable IPA range", since=IORANGE),
            Effect("the address is set", lambda s, a: s["addr"].__setitem__(a["type"], a["addr"]),
                   f"{DEVICE_C}: kvm_vgic_addr"),
        )),
        Operation("get_address", "KVM_GET_DEVICE_ATTR KVM_DEV_ARM_VGIC_GRP_ADDR: the base, or "
                  "VGIC_ADDR_UNDEF (all ones) when unset", (_ADDR_TYPE,),
                  value=lambda s, a: ADDR_UNDEF if s["addr"][a["type"]] is None else s["addr"][a["type"]]),
        Operation("KVM_DEV_ARM_VGIC_CTRL_INIT", "vgic_init: freeze the interrupt count (256 unless "
                  "set) and the vCPUs; a no-op once initialised. Needs no address, no vCPU (the "
                  "documentation's '-ENODEV no online VCPU' is not what vgic_init does) and no "
                  "KVM_ARM_VCPU_INIT", (
            Check(IGNORED, lambda s, a: s["initialized"], "already initialised: succeeds again",
                  f"{INIT_C}: vgic_init ('if (vgic_initialized(kvm)) return 0')"),
            Check("EBUSY", lambda s, a: False, "a vCPU is being created concurrently",
                  f"{INIT_C}: vgic_init ('kvm->created_vcpus != atomic_read(&kvm->online_vcpus)')",
                  reachable=False),
            Effect("initialised; nr_spis defaults to 224", _vgic_init,
                   f"{INIT_C}: vgic_init ('if (!dist->nr_spis) dist->nr_spis = VGIC_NR_IRQS_LEGACY - "
                   "VGIC_NR_PRIVATE_IRQS')"),
            Hook("init", f"{INIT_C}: kvm_vgic_dist_init, kvm_vgic_vcpu_init (the register state's reset)"),
        )),
        Operation("ctrl_other", "KVM_DEV_ARM_VGIC_GRP_CTRL with another attribute (the GICv3 and "
                  "ITS ones included)", (
            Check("ENXIO", lambda s, a: True, "not a GICv2 control attribute",
                  f"{DEVICE_C}: vgic_set_common_attr (falls through to 'return -ENXIO')",
                  doc="-ENXIO   The group or attribute is unknown/unsupported for this device"),
        )),
        Operation("attr_other", "KVM_{GET,SET}_DEVICE_ATTR on a group the vgic-v2 does not have, or a "
                  "get of KVM_DEV_ARM_VGIC_GRP_CTRL", (
            Check("ENXIO", lambda s, a: True, "not a GICv2 attribute group",
                  f"{DEVICE_C}: vgic_set_common_attr / vgic_get_common_attr (-ENXIO)",
                  doc="-ENXIO   The group or attribute is unknown/unsupported for this device"),
        )),
        Operation("register_access", "KVM_{GET,SET}_DEVICE_ATTR on KVM_DEV_ARM_VGIC_GRP_DIST_REGS / "
                  "_CPU_REGS: initialises the vGIC first (lazily, with the count set so far or 256)", (
            _BAD_VCPU,
            Check("EBUSY", lambda s, a: False, "a vCPU is running (lock_all_vcpus fails)",
                  f"{DEVICE_C}: vgic_v2_attr_regs_access", doc="-EBUSY   One or more VCPUs are running",
                  reachable=False),  # the runner never runs a vCPU
            Invoke("KVM_DEV_ARM_VGIC_CTRL_INIT", f"{DEVICE_C}: vgic_v2_attr_regs_access ('ret = vgic_init(dev->kvm)')"),
            Hook("register", "vgic-mmio-v2.c: vgic_v2_dist_uaccess / vgic_v2_cpuif_uaccess"),
        )),
        Operation("irq_line", "KVM_IRQ_LINE for an SPI: initialises the vGIC first (lazily)", (
            _NO_IRQCHIP,
            Check("EINVAL", lambda s, a: a["intid"] < NR_PRIVATE, "not an SPI INTID (checked before "
                  "the lazy INIT, which kvm_vgic_inject_irq does)",
                  f"{ARM_C}: kvm_vm_ioctl_irq_line ('if (irq_num < VGIC_NR_PRIVATE_IRQS) return -EINVAL')",
                  until=LAZY_INIT_FIRST),
            Invoke("KVM_DEV_ARM_VGIC_CTRL_INIT", "vgic.c: kvm_vgic_inject_irq -> vgic_lazy_init "
                   "(vgic-init.c: only a GICv2 initialises lazily); from 7.2 before the INTID checks"),
            Check("EINVAL", lambda s, a: a["intid"] < NR_PRIVATE, "not an SPI INTID (checked after "
                  "the lazy INIT: a private INTID initialises the vGIC and fails)",
                  f"{ARM_C}: kvm_vm_ioctl_irq_line, after the 7.2 rework of the lazy vGIC init",
                  since=LAZY_INIT_FIRST),
            Check("EINVAL", lambda s, a: a["intid"] >= _nr_irqs(s), "the VM has no such SPI",
                  "vgic.c: kvm_vgic_inject_irq (vgic_get_irq returns NULL: -EINVAL)"),
            Hook("line", "vgic.c: kvm_vgic_inject_irq (the line level; models/guest.py: event_line)"),
        )),
        Operation("has_attr", "KVM_HAS_DEVICE_ATTR: never initialises; a per-interrupt register "
                  "word exists only below the interrupt count set so far (32 before NR_IRQS or INIT)", (
            Check("ENXIO", lambda s, a: a["group"] == "ADDR" and a["attr"] not in ADDR_SIZE,
                  "not a GICv2 address type", f"{DEVICE_C}: vgic_v2_has_attr"),
            Check("ENXIO", lambda s, a: a["group"] == "CTRL" and a["attr"] != 0,
                  "not KVM_DEV_ARM_VGIC_CTRL_INIT", f"{DEVICE_C}: vgic_v2_has_attr"),
            Check("ENXIO", lambda s, a: a["group"] not in ("ADDR", "CTRL", "NR_IRQS", "DIST_REGS", "CPU_REGS"),
                  "not a GICv2 attribute group", f"{DEVICE_C}: vgic_v2_has_attr"),
            Check("EINVAL", lambda s, a: a["group"] in ("DIST_REGS", "CPU_REGS") and a["vcpu"] >= s["vcpus"],
                  "the attribute's vcpu_index names no vCPU", "vgic-mmio-v2.c: vgic_v2_has_attr_regs -> "
                  "vgic_v2_parse_attr"),
            Hook("has_register", "vgic-mmio-v2.c: vgic_v2_has_attr_regs ('addr & 3', "
                 "vgic_get_mmio_region -> check_region with nr_spis + 32: -ENXIO)"),
        )),
    ]
    return {op.name: op for op in ops}


GICV2 = Lifecycle(
    device="gicv2",
    state={"device": False, "vcpus": 0, "max_vcpus": V2_MAX_CPUS, "nr_spis": 0, "initialized": False,
           "addr": {ADDR_DIST: None, ADDR_CPU: None}, "ipa_bits": IPA_BITS},
    operations=_v2_operations(),
    notes=(
        "A fresh VM on a GICv2 host already allows at most 8 vCPUs: kvm_arch_init_vm sets "
        "kvm->max_vcpus = kvm_arm_default_max_vcpus(), kvm_vgic_global_state.max_gic_vcpus "
        "(VGIC_V2_MAX_CPUS), so the 9th KVM_CREATE_VCPU fails with EINVAL even before the device.",
        "KVM_ARM_VCPU_INIT is independent of the vGIC: before or after INIT, with or without a "
        "device (observed on all four kernels).",
        "Addresses are needed at the first KVM_RUN only (kvm_vgic_map_resources -> "
        "vgic_v2_map_resources: 'Need to set vgic cpu and dist addresses first' -ENXIO), which "
        "is the arm-vgic.rst INIT error '-ENXIO VGIC not properly configured as required prior "
        "to calling this attribute' for a GICv3, not for a GICv2's INIT.",
    ),
)



# =======================================================================================
# GICv3 (KVM_DEV_TYPE_ARM_VGIC_V3 on a GICv3 host, no ITS)
#
# The vgic-v3 on QEMU's emulated GICv3 (gic-version=3), as the kernel's userspace
# interface exposes it (arm-vgic-v3.rst; arch/arm64/kvm/arm.c, vgic/vgic-init.c,
# vgic/vgic-kvm-device.c, vgic/vgic-mmio-v3.c, vgic/vgic-v3.c; virt/kvm/kvm_main.c), read in
# the Debian sources of 5.10.223, 6.1.176, 6.12.107 and 7.1.8 and checked against Debian
# 5.10.223, 6.1.176, 6.12.117 and 7.2.13 by ``gicproof conform gicv3``. What differs from
# the GICv2 section: nothing initialises a GICv3 lazily (vgic_lazy_init: 'Lazy init is
# only allowed if the GIC exposed to the guest is a GICv2'), so a register access or an
# SPI line before KVM_DEV_ARM_VGIC_CTRL_INIT fails with EBUSY; a vCPU is named by its MPIDR,
# which KVM_ARM_VCPU_INIT sets; the redistributors are one legacy region
# (KVM_VGIC_V3_ADDR_TYPE_REDIST) sized by the vCPUs; KVM_RUN maps the resources, which
# needs both addresses and INIT. Scope (the generator keeps to it; README says why):
# no ITS device is created, no KVM_VGIC_V3_ADDR_TYPE_REDIST_REGION is written (it is read),
# KVM_DEV_ARM_VGIC_GRP_MAINT_IRQ (group 9, nested virtualisation) is not used, addresses
# are chosen so that the distributor and the redistributor region never overlap (an
# overlap is only found at vCPU creation or KVM_RUN, vgic_v3_check_base), and KVM_RUN is
# a program's last operation (a failed first run destroys the vGIC on 5.10,
# __kvm_vgic_destroy, and kills the VM from 6.1, kvm_vm_dead).

MMIO3_C = "arch/arm64/kvm/vgic/vgic-mmio-v3.c"
V3_C = "arch/arm64/kvm/vgic/vgic-v3.c"
V3_MAX_CPUS = 512  # VGIC_V3_MAX_CPUS, kvm_arm_default_max_vcpus() on a GICv3 host
ADDR_V3_DIST, ADDR_V3_REDIST, ADDR_V3_REDIST_REGION = 2, 3, 5
V3_DIST_SIZE = 0x10000  # KVM_VGIC_V3_DIST_SIZE
V3_REDIST_SIZE = 0x20000  # KVM_VGIC_V3_REDIST_SIZE: RD and SGI frames, 64K each
V3_ALIGN = 0x10000  # SZ_64K
V3_HOST_DEVICES = ("v3", "its")  # kvm_register_vgic_device(KVM_DEV_TYPE_ARM_VGIC_V3) registers the ITS too
# reg_allowed_pre_init (vgic-kvm-device.c): GICD_IIDR and GICD_TYPER2 before INIT, from
# f26e6af75782 'KVM: arm64: vgic-v3: Allow access to GICD_IIDR prior to initialization'
# (v6.17, spec/gicv3.py BOUNDARIES typer2_nassgicap); 7.2.13 allows them, 6.12.117 does not.
PRE_INIT_REGS = "6.17"
GICD_IIDR_OFFSET, GICD_TYPER2_OFFSET = 0x008, 0x00C
# vgic_v3_save_pending_tables: 'if (unlikely(!vgic_initialized(kvm))) return -ENXIO;' is in
# 6.1.176, 6.12.107 and 7.1.8, not in 5.10.223 (which walks an empty LPI list and
# succeeds). The commit was not read; the boundary is taken as 6.1 (not pinned: no
# release between 5.10 and 6.1 was booted).
SAVE_PENDING_NEEDS_INIT = "6.1"


def _v3_redist_size(s: State) -> int:
    """The legacy redistributor region's size: one 128K redistributor per online vCPU
    (vgic_v3_rd_region_size: 'if (!rdreg->count) return atomic_read(&kvm->online_vcpus) *
    KVM_VGIC_V3_REDIST_SIZE'); 5.10's vgic_v3_insert_redist_region checks it with
    'count * KVM_VGIC_V3_REDIST_SIZE' = 0."""
    return s["vcpus"] * V3_REDIST_SIZE


def _v3_end(a: Args, size: int) -> int:
    return a["addr"] + size


def _beyond_ipa(s: State, addr: int, size: int) -> bool:
    return addr >> s["ipa_bits"] != 0 or addr + size > 1 << s["ipa_bits"]


def _v3_vgic_init(s: State, a: Args) -> None:
    _vgic_init(s, a)


def _redist_unset(s: State, a: Args) -> bool:
    return s["redist"] is None


def _v3_operations() -> dict[str, Operation]:
    is_dist = lambda a: a["type"] == ADDR_V3_DIST  # noqa: E731
    is_redist = lambda a: a["type"] == ADDR_V3_REDIST  # noqa: E731
    ops = [
        Operation("create_vcpu", "KVM_CREATE_VCPU (one vCPU, the next index); with the "
                  "redistributor region set, its redistributor is registered now", (
            Check("EINVAL", lambda s, a: s["vcpus"] >= s["max_vcpus"],
                  "the VM already has its maximum number of vCPUs (512 on a GICv3 host)",
                  "virt/kvm/kvm_main.c: kvm_vm_ioctl_create_vcpu ('created_vcpus >= kvm->max_vcpus')",
                  reachable=False),  # the generator creates at most 9
            Check("EBUSY", lambda s, a: s["device"] and s["initialized"],
                  "the vGIC is initialised: its vCPU count is frozen",
                  f"{ARM_C}: kvm_arch_vcpu_precreate ('irqchip_in_kernel(kvm) && vgic_initialized(kvm)')"),
            Check("EINVAL", lambda s, a: s["device"] and s["redist"] is not None
                  and _beyond_ipa(s, s["redist"], _v3_redist_size(s)),
                  "the redistributor region, grown by the vCPUs already online, no longer fits in "
                  "the IPA space: registering the new vCPU's redistributor fails",
                  f"{INIT_C}: kvm_vgic_vcpu_init -> {MMIO3_C}: vgic_register_redist_iodev "
                  "('if (!vgic_v3_check_base(kvm)) return -EINVAL'); from 5.16 vgic_v3_check_base "
                  "(vgic-v3.c) checks each region with vgic_check_iorange (E2BIG there), 5.10 only "
                  "that it does not wrap", since=IORANGE),
            Effect("one more vCPU", lambda s, a: s.__setitem__("vcpus", s["vcpus"] + 1),
                   "virt/kvm/kvm_main.c: kvm_vm_ioctl_create_vcpu"),
        )),
        Operation("vcpu_init", "KVM_ARM_PREFERRED_TARGET and KVM_ARM_VCPU_INIT on every vCPU created "
                  "so far: resets their system registers, which gives each its MPIDR_EL1", (
            Effect("the vCPUs so far have their MPIDR", lambda s, a: s.__setitem__("inited", s["vcpus"]),
                   "arch/arm64/kvm/sys_regs.c: reset_mpidr (via kvm_reset_vcpu at KVM_ARM_VCPU_INIT)"),
        )),
        Operation("create_device", "KVM_CREATE_DEVICE", (
            Check("ENODEV", lambda s, a: a["kind"] not in V3_HOST_DEVICES,
                  "the host registers no device of this type (QEMU's GICv3 has no GICv2 "
                  "compatibility: no vgic-v2)",
                  "virt/kvm/kvm_main.c: kvm_ioctl_create_device (no ops: -ENODEV); "
                  "vgic-kvm-device.c: kvm_register_vgic_device"),
            _EXIST,
            Check("EBUSY", lambda s, a: False, "a vCPU has already run",
                  f"{INIT_C}: kvm_vgic_create ('vcpu->arch.has_run_once')", reachable=False),
            Effect("the vGIC exists; max_vcpus = 512",
                   lambda s, a: s.update(device=True, max_vcpus=V3_MAX_CPUS),
                   f"{INIT_C}: kvm_vgic_create ('kvm->max_vcpus = VGIC_V3_MAX_CPUS')"),
        )),
        Operation("test_device", "KVM_CREATE_DEVICE with KVM_CREATE_DEVICE_TEST", (
            Check("ENODEV", lambda s, a: a["kind"] not in V3_HOST_DEVICES,
                  "the host registers no device of this type",
                  "virt/kvm/kvm_main.c: kvm_ioctl_create_device"),
        )),
        Operation("set_nr_irqs", "KVM_SET_DEVICE_ATTR KVM_DEV_ARM_VGIC_GRP_NR_IRQS", (
            Check("EINVAL", lambda s, a: a["value"] < NR_PRIVATE + 32 or a["value"] > MAX_RESERVED
                  or a["value"] & 31,
                  "fewer than 64, more than 1023 or not a multiple of 32",
                  f"{DEVICE_C}: vgic_set_common_attr ('val < (VGIC_NR_PRIVATE_IRQS + 32) || "
                  "val > VGIC_MAX_RESERVED || (val & 31)')"),
            Check("EBUSY", lambda s, a: s["nr_spis"] != 0, "already set, or INIT set the default",
                  f"{DEVICE_C}: vgic_set_common_attr (5.10 'vgic_ready(dev->kvm) || "
                  "dev->kvm->arch.vgic.nr_spis', 7.1 'if (dev->kvm->arch.vgic.nr_spis)'; vgic_ready "
                  "needs a KVM_RUN, always a program's last operation)"),
            Effect("nr_spis = value - 32", lambda s, a: s.__setitem__("nr_spis", a["value"] - NR_PRIVATE),
                   f"{DEVICE_C}: vgic_set_common_attr"),
        )),
        Operation("get_nr_irqs", "KVM_GET_DEVICE_ATTR KVM_DEV_ARM_VGIC_GRP_NR_IRQS: nr_spis + 32", (),
                  value=lambda s, a: _nr_irqs(s)),
        Operation("set_address", "KVM_SET_DEVICE_ATTR KVM_DEV_ARM_VGIC_GRP_ADDR: the distributor "
                  "(64K) or the legacy redistributor region (128K per online vCPU)", (
            Check("ENXIO", lambda s, a: a["type"] not in (ADDR_V3_DIST, ADDR_V3_REDIST),
                  "not a GICv3 address type this model writes (GICv2 and ITS types: ENXIO; "
                  "KVM_VGIC_V3_ADDR_TYPE_REDIST_REGION is not written by the generator)",
                  f"{DEVICE_C}: kvm_vgic_addr (vgic_check_type or default: -ENODEV, turned into "
                  "-ENXIO by vgic_set_common_attr)"),
            # the distributor, 5.10: vgic_check_ioaddr
            Check("E2BIG", lambda s, a: is_dist(a) and a["addr"] >> s["ipa_bits"] != 0,
                  "the base is outside the IPA space", f"{DEVICE_C}: vgic_check_ioaddr "
                  "('addr & ~kvm_phys_mask(kvm)')", until=IORANGE),
            Check("EINVAL", lambda s, a: is_dist(a) and a["addr"] % V3_ALIGN != 0, "not 64K aligned",
                  f"{DEVICE_C}: vgic_check_ioaddr ('!IS_ALIGNED(addr, alignment)', SZ_64K)", until=IORANGE),
            Check("EEXIST", lambda s, a: is_dist(a) and s["addr"][ADDR_V3_DIST] is not None,
                  "the distributor address is already set", f"{DEVICE_C}: vgic_check_ioaddr", until=IORANGE),
            # the distributor, 5.16 on: vgic_check_iorange
            Check("EEXIST", lambda s, a: is_dist(a) and s["addr"][ADDR_V3_DIST] is not None,
                  "the distributor address is already set", f"{DEVICE_C}: vgic_check_iorange", since=IORANGE),
            Check("EINVAL", lambda s, a: is_dist(a) and a["addr"] % V3_ALIGN != 0, "not 64K aligned",
                  f"{DEVICE_C}: vgic_check_iorange ('!IS_ALIGNED(addr, alignment)')", since=IORANGE),
            Check("EINVAL", lambda s, a: is_dist(a) and _v3_end(a, V3_DIST_SIZE) > 0xFFFFFFFFFFFFFFFF,
                  "the region wraps around", f"{DEVICE_C}: vgic_check_iorange ('addr + size < addr')",
                  since=IORANGE),
            Check("E2BIG", lambda s, a: is_dist(a) and _beyond_ipa(s, a["addr"], V3_DIST_SIZE),
                  "the 64K region does not fit in the IPA space",
                  f"{DEVICE_C}: vgic_check_iorange ('(addr + size) > kvm_phys_size(...)')", since=IORANGE),
            # the redistributor region, 5.10: vgic_v3_insert_redist_region (size count * 128K = 0)
            Check("EINVAL", lambda s, a: is_redist(a) and s["redist"] is not None,
                  "a redistributor region is already set ('single rdist region already set ?')",
                  f"{MMIO3_C}: vgic_v3_insert_redist_region ('if (!count && !list_empty(rd_regions)) "
                  "return -EINVAL')", until=IORANGE),
            Check("E2BIG", lambda s, a: is_redist(a) and a["addr"] >> s["ipa_bits"] != 0,
                  "the base is outside the IPA space",
                  f"{MMIO3_C}: vgic_v3_insert_redist_region -> vgic_check_ioaddr", until=IORANGE),
            Check("EINVAL", lambda s, a: is_redist(a) and a["addr"] % V3_ALIGN != 0, "not 64K aligned",
                  f"{MMIO3_C}: vgic_v3_insert_redist_region -> vgic_check_ioaddr", until=IORANGE),
            # the redistributor region, 5.16 on: vgic_v3_alloc_redist_region (size from the vCPUs)
            Check("EINVAL", lambda s, a: is_redist(a) and _v3_end(a, _v3_redist_size(s)) > 0xFFFFFFFFFFFFFFFF,
                  "the region (128K per online vCPU) wraps around",
                  f"{MMIO3_C}: vgic_v3_alloc_redist_region ('if (base + size < base) return -EINVAL')",
                  since=IORANGE),
            Check("EEXIST", lambda s, a: is_redist(a) and s["redist"] is not None,
                  "a legacy redistributor region is already set",
                  f"{MMIO3_C}: vgic_v3_alloc_redist_region ('if (!count) return -EEXIST')", since=IORANGE),
            Check("EINVAL", lambda s, a: is_redist(a) and a["addr"] % V3_ALIGN != 0, "not 64K aligned",
                  f"{MMIO3_C}: vgic_v3_alloc_redist_region -> vgic_check_iorange", since=IORANGE),
            Check("E2BIG", lambda s, a: is_redist(a) and _beyond_ipa(s, a["addr"], _v3_redist_size(s)),
                  "the region (128K per online vCPU) does not fit in the IPA space",
                  f"{MMIO3_C}: vgic_v3_alloc_redist_region -> vgic_check_iorange", since=IORANGE),
            Check("EINVAL", lambda s, a: False, "the distributor and the redistributor region overlap",
                  f"{MMIO3_C}: vgic_v3_alloc_redist_region (vgic_dist_overlap), vgic_register_redist_iodev "
                  "(vgic_v3_check_base)", reachable=False),  # the generator's addresses never overlap
            Effect("the address is set",
                   lambda s, a: s["addr"].__setitem__(ADDR_V3_DIST, a["addr"]) if is_dist(a)
                   else s.__setitem__("redist", a["addr"]),
                   f"{DEVICE_C}: kvm_vgic_addr; {MMIO3_C}: vgic_v3_set_redist_base"),
        )),
        Operation("get_address", "KVM_GET_DEVICE_ATTR KVM_DEV_ARM_VGIC_GRP_ADDR: the base or "
                  "VGIC_ADDR_UNDEF; REDIST_REGION reads the region whose index the buffer holds "
                  "(the runner's: 0): base | count << 52 | index, count 0 for the legacy region", (
            Check("ENXIO", lambda s, a: a["type"] not in (ADDR_V3_DIST, ADDR_V3_REDIST, ADDR_V3_REDIST_REGION),
                  "not a GICv3 address type", f"{DEVICE_C}: kvm_vgic_addr (-ENODEV -> -ENXIO)"),
            Check("ENOENT", lambda s, a: a["type"] == ADDR_V3_REDIST_REGION and s["redist"] is None,
                  "no redistributor region with index 0",
                  f"{DEVICE_C}: kvm_vgic_addr ('rdreg = vgic_v3_rdist_region_from_index(kvm, index); "
                  "if (!rdreg) { r = -ENOENT;')"),
        ), value=lambda s, a: (s["addr"][ADDR_V3_DIST] if a["type"] == ADDR_V3_DIST else s["redist"])
            if (s["addr"][ADDR_V3_DIST] if a["type"] == ADDR_V3_DIST else s["redist"]) is not None
            else ADDR_UNDEF),
        Operation("KVM_DEV_ARM_VGIC_CTRL_INIT", "vgic_init: freeze the interrupt count (256 unless "
                  "set) and the vCPUs; a no-op once initialised. Needs no address and no vCPU "
                  "(the addresses are checked at the first KVM_RUN)", (
            Check(IGNORED, lambda s, a: s["initialized"], "already initialised: succeeds again",
                  f"{INIT_C}: vgic_init ('if (vgic_initialized(kvm)) return 0')"),
            Check("EBUSY", lambda s, a: False, "a vCPU is being created concurrently",
                  f"{INIT_C}: vgic_init", reachable=False),
            Effect("initialised; nr_spis defaults to 224", _v3_vgic_init, f"{INIT_C}: vgic_init"),
            Hook("init", f"{INIT_C}: kvm_vgic_dist_init, kvm_vgic_vcpu_enable (the register state's reset)"),
        )),
        Operation("save_pending_tables", "KVM_DEV_ARM_VGIC_SAVE_PENDING_TABLES (no ITS: no LPI to save)", (
            Check("EBUSY", lambda s, a: False, "a vCPU is running", f"{DEVICE_C}: lock_all_vcpus",
                  reachable=False),
            Check("ENXIO", lambda s, a: not s["initialized"], "the vGIC is not initialised",
                  f"{V3_C}: vgic_v3_save_pending_tables ('if (unlikely(!vgic_initialized(kvm))) "
                  "return -ENXIO')", since=SAVE_PENDING_NEEDS_INIT),
        )),
        Operation("ctrl_other", "KVM_DEV_ARM_VGIC_GRP_CTRL with an ITS or unknown attribute", (
            Check("ENXIO", lambda s, a: True, "not a GICv3 control attribute",
                  f"{DEVICE_C}: vgic_set_common_attr / vgic_v3_set_attr (-ENXIO)"),
        )),
        Operation("attr_other", "KVM_{GET,SET}_DEVICE_ATTR on a group the vgic-v3 does not have "
                  "(KVM_DEV_ARM_VGIC_GRP_CPU_REGS, _ITS_REGS), or a get of _CTRL", (
            Check("ENXIO", lambda s, a: True, "not a GICv3 attribute group",
                  f"{DEVICE_C}: vgic_v3_set_attr / vgic_v3_get_attr -> vgic_{{set,get}}_common_attr (-ENXIO)"),
        )),
        Operation("register_access", "KVM_{GET,SET}_DEVICE_ATTR on DIST_REGS, REDIST_REGS, "
                  "CPU_SYSREGS, LEVEL_INFO: the vCPU named by the attribute (vCPU 0 for the "
                  "distributor), then INIT needed (no lazy initialisation)", (
            Check("EINVAL", lambda s, a: a["vcpu"] is None,
                  "no vCPU has the attribute's MPIDR (for the distributor: there is no vCPU 0)",
                  f"{DEVICE_C}: vgic_v3_parse_attr ('if (!reg_attr->vcpu) return -EINVAL'; "
                  f"{ARM_C}: kvm_mpidr_to_vcpu)", doc="-EINVAL: Invalid mpidr or register value supplied"),
            Check("EBUSY", lambda s, a: False, "a vCPU is running (lock_all_vcpus fails)",
                  f"{DEVICE_C}: vgic_v3_attr_regs_access", reachable=False),
            Check("EBUSY", lambda s, a: not s["initialized"], "the vGIC is not initialised",
                  f"{DEVICE_C}: vgic_v3_attr_regs_access ('if (unlikely(!vgic_initialized(dev->kvm))) "
                  "{ ret = -EBUSY;')", doc="-EBUSY: One or more VCPUs are running", until=PRE_INIT_REGS),
            Check("EBUSY", lambda s, a: not s["initialized"] and not (
                  a["group"] == "DIST_REGS" and a["offset"] in (GICD_IIDR_OFFSET, GICD_TYPER2_OFFSET)),
                  "the vGIC is not initialised, and the register is not GICD_IIDR or GICD_TYPER2",
                  f"{DEVICE_C}: vgic_v3_attr_regs_access ('if (!(vgic_initialized(dev->kvm) || "
                  "reg_allowed_pre_init(attr)))'), f26e6af75782 / c652887a9288", since=PRE_INIT_REGS),
            Hook("register", f"{MMIO3_C}: vgic_v3_dist_uaccess / vgic_v3_redist_uaccess, "
                 "vgic-sys-reg-v3.c: vgic_v3_cpu_sysregs_uaccess, vgic_v3_line_level_info_uaccess"),
        )),
        Operation("irq_line", "KVM_IRQ_LINE for an SPI: a GICv3 must be initialised first", (
            _NO_IRQCHIP,
            Check("EINVAL", lambda s, a: a["intid"] < NR_PRIVATE, "not an SPI INTID",
                  f"{ARM_C}: kvm_vm_ioctl_irq_line ('if (irq_num < VGIC_NR_PRIVATE_IRQS) return -EINVAL')",
                  until=LAZY_INIT_FIRST),
            Check("EBUSY", lambda s, a: not s["initialized"], "a GICv3 is never initialised lazily",
                  f"{INIT_C}: vgic_lazy_init ('if (kvm->arch.vgic.vgic_model != KVM_DEV_TYPE_ARM_VGIC_V2) "
                  "return -EBUSY'), called by vgic.c: kvm_vgic_inject_irq"),
            Check("EINVAL", lambda s, a: a["intid"] < NR_PRIVATE, "not an SPI INTID (after the lazy-init "
                  "check from 7.2)", f"{ARM_C}: kvm_vm_ioctl_irq_line, 7.2", since=LAZY_INIT_FIRST),
            Check("EINVAL", lambda s, a: a["intid"] >= _nr_irqs(s), "the VM has no such SPI",
                  "vgic.c: kvm_vgic_inject_irq (vgic_get_irq returns NULL: -EINVAL)"),
            Hook("line", "vgic.c: kvm_vgic_inject_irq (models/guest.py: event_line)"),
        )),
        Operation("has_attr", "KVM_HAS_DEVICE_ATTR: never initialises", (
            Check("ENXIO", lambda s, a: a["group"] == "ADDR" and a["attr"] not in
                  (ADDR_V3_DIST, ADDR_V3_REDIST, ADDR_V3_REDIST_REGION),
                  "not a GICv3 address type", f"{DEVICE_C}: vgic_v3_has_attr"),
            Check("ENXIO", lambda s, a: a["group"] == "CTRL" and a["attr"] not in (0, 3),
                  "not CTRL_INIT or SAVE_PENDING_TABLES", f"{DEVICE_C}: vgic_v3_has_attr"),
            Check("ENXIO", lambda s, a: a["group"] == "LEVEL_INFO" and (a["attr"] >> 10) & 0x3FFFFF != 0,
                  "not VGIC_LEVEL_INFO_LINE_LEVEL", f"{DEVICE_C}: vgic_v3_has_attr"),
            Check("ENXIO", lambda s, a: a["group"] not in ("ADDR", "CTRL", "NR_IRQS", "LEVEL_INFO",
                                                         "DIST_REGS", "REDIST_REGS", "CPU_SYSREGS"),
                  "not a GICv3 attribute group (CPU_REGS, ITS_REGS...)", f"{DEVICE_C}: vgic_v3_has_attr"),
            Check("EINVAL", lambda s, a: a["group"] in ("DIST_REGS", "REDIST_REGS", "CPU_SYSREGS")
                  and a["vcpu"] is None, "no vCPU has the attribute's MPIDR (no vCPU 0 for DIST_REGS)",
                  f"{MMIO3_C}: vgic_v3_has_attr_regs -> vgic_v3_parse_attr"),
            Hook("has_register", f"{MMIO3_C}: vgic_v3_has_attr_regs ('addr & 3', vgic_get_mmio_region "
                 "-> check_region with nr_spis + 32: -ENXIO); vgic-sys-reg-v3.c: "
                 "vgic_v3_has_cpu_sysregs_attr"),
        )),
        Operation("run", "KVM_RUN on vCPU 0 with kvm_run.immediate_exit: the first-run "
                  "initialisation (the vGIC's resources mapped), then -EINTR", (
            Check("ENOEXEC", lambda s, a: s["inited"] < 1, "KVM_ARM_VCPU_INIT has not run on the vCPU",
                  f"{ARM_C}: kvm_arch_vcpu_ioctl_run ('if (unlikely(!kvm_vcpu_initialized(vcpu))) "
                  "return -ENOEXEC')"),
            Check("ENXIO", lambda s, a: s["device"] and s["redist"] is None,
                  "a vCPU has no redistributor (the region is not set)",
                  f"{V3_C}: vgic_v3_map_resources ('redistributor base not set': -ENXIO), from "
                  f"{ARM_C}: kvm_vcpu_first_run_init -> {INIT_C}: kvm_vgic_map_resources"),
            Check("ENXIO", lambda s, a: s["device"] and s["addr"][ADDR_V3_DIST] is None,
                  "the distributor address is not set",
                  f"{V3_C}: vgic_v3_map_resources ('Need to set vgic distributor addresses first')"),
            Check("EINVAL", lambda s, a: s["device"] and _beyond_ipa(s, s["redist"], _v3_redist_size(s)),
                  "the redistributor region, 128K per vCPU now online, no longer fits in the IPA "
                  "space (each vCPU's creation checked it with the vCPUs online before it)",
                  f"{V3_C}: vgic_v3_map_resources ('if (!vgic_v3_check_base(kvm)) ... -EINVAL'); from "
                  "5.16 vgic_v3_check_base checks each region with vgic_check_iorange. Found by a "
                  "targeted program on 7.2.13 (5 vCPUs, region at 2^40 - 512K: EINVAL, not EINTR)",
                  since=IORANGE),
            Check("EINVAL", lambda s, a: False, "the distributor and the redistributor region overlap",
                  f"{V3_C}: vgic_v3_map_resources (vgic_v3_check_base: vgic_v3_rdist_overlap)",
                  reachable=False),  # the generator's addresses never overlap
            Check("EBUSY", lambda s, a: s["device"] and not s["initialized"],
                  "the vGIC is not initialised ('For a VGICv3 we require the userland to explicitly "
                  "initialize the VGIC before we need to use it')",
                  f"{V3_C}: vgic_v3_map_resources ('if (!vgic_initialized(kvm)) return -EBUSY')"),
            Check("EINTR", lambda s, a: True, "immediate_exit: back to userspace before entering the guest",
                  f"{ARM_C}: kvm_arch_vcpu_ioctl_run ('if (run->immediate_exit) return -EINTR')"),
        )),
    ]
    return {op.name: op for op in ops}


GICV3 = Lifecycle(
    device="gicv3",
    state={"device": False, "vcpus": 0, "inited": 0, "max_vcpus": V3_MAX_CPUS, "nr_spis": 0,
           "initialized": False, "addr": {ADDR_V3_DIST: None}, "redist": None, "ipa_bits": IPA_BITS},
    operations=_v3_operations(),
    notes=(
        "A vCPU's MPIDR_EL1 is set by KVM_ARM_VCPU_INIT (reset_mpidr, through kvm_reset_vcpu); "
        "before it the vCPU's MPIDR reads 0, so an attribute naming MPIDR 0 finds the first vCPU "
        "(kvm_mpidr_to_vcpu walks the vCPUs in order) and one naming vCPU N > 0 finds none.",
        "GICR_TYPER.Last is set for the last redistributor of the region "
        "(vgic_mmio_vcpu_rdist_is_last: 'if (!rdreg) return false'): with no region set, none.",
        "Unknown CPU_SYSREGS encodings: -ENXIO on 5.10 (vgic_v3_cpu_sysregs_uaccess: find_reg_by_id), "
        "-ENOENT from 6.1 (kvm_sys_reg_get_user / kvm_sys_reg_set_user); ICC_AP{0,1}R1-3 beyond "
        "vgic_v3_max_apr_idx() (5 priority bits: only APR0) are -EINVAL (get_gic_ap0r, access_gic_aprn).",
    ),
)


# =======================================================================================
# GICv3 with ITSes (KVM_DEV_TYPE_ARM_VGIC_V3 and any number of KVM_DEV_TYPE_ARM_VGIC_ITS)
#
# The GICv3 section above with the ITS devices a VM may create beside its vgic-v3, before
# or after it (vgic_its_create checks nothing about the vgic-v3: an ITS may even exist
# without one), as the kernel's userspace interface exposes them (arm-vgic-its.rst;
# arch/arm64/kvm/vgic/vgic-its.c, read in the Debian sources of 5.10.223, 6.1.176, 6.12.107
# and 7.1.8), checked by ``gicproof conform gicv3-its``. Each ITS is one entry of the state's
# ``its`` list, in creation order (its base address); its registers and its tables are the
# device model's (the hooks ``its_register``, ``its_has_register``, ``its_tables``). Scope
# (the generator keeps to it): no KVM_RUN (a first run maps the vGIC's resources, the
# ITS's included, which the register model does not follow), and the vgic-v3's registers
# are not accessed once an ITS exists (GICD_TYPER, GICR_TYPER and GICR_CTLR change with an
# ITS: the GICv3 rows spec/gicv3_its.py composes, not the conformance model's yet).

ITS_C = "arch/arm64/kvm/vgic/vgic-its.c"
ITS_DOC = "Documentation/virt/kvm/devices/arm-vgic-its.rst"
ADDR_ITS = 4  # KVM_VGIC_ITS_ADDR_TYPE
ITS_SIZE = 0x20000  # KVM_VGIC_V3_ITS_SIZE: the ITS's two 64K frames
ITS_ALIGN = 0x10000  # SZ_64K
ITS_CTRL_RESET, ITS_SAVE_TABLES, ITS_RESTORE_TABLES = 4, 1, 2
GITS_TYPER_OFFSET, GITS_PIDR4_OFFSET = 0x8, 0xFFD0
# vgic_its_ctrl: an unknown KVM_DEV_ARM_VGIC_GRP_CTRL attribute leaves 'int ret = 0' in
# 5.10.223, 6.1.176 and 6.12.107 (the switch has no default: the ioctl succeeds), and is
# -ENXIO in 7.1.8 ('default: ret = -ENXIO;'; also in the kvmarm trees of Oliver Upton and
# Marc Zyngier stored by the library, both after 6.16). The commit was not found; the
# boundary is taken as 7.1, the first release read with it (not pinned: 6.13-7.0 were
# neither read nor booted). Seen on the oracle: 6.12.117 answers ok, 7.2.13 ENXIO.
ITS_CTRL_ENXIO = "7.1"


def _its(s: State, a: Args) -> dict[str, Any]:
    return s["its"][a["its"]]


def _its_align(offset: int) -> int:
    """vgic_its_attr_regs_access / vgic_its_has_attr_regs: 'if ((offset < GITS_TYPER) ||
    (offset >= GITS_PIDR4)) align = 0x3; else align = 0x7;' (32-bit GITS_CTLR, GITS_IIDR
    and ID registers, 64-bit accesses to every other register)."""
    return 0x3 if offset < GITS_TYPER_OFFSET or offset >= GITS_PIDR4_OFFSET else 0x7


def _create_device(s: State, a: Args) -> None:
    if a["kind"] == "v3":
        s.update(device=True, max_vcpus=V3_MAX_CPUS)
    else:
        s["its"].append({"addr": None})
        s["has_its"] = True


def _its_operations() -> dict[str, Operation]:
    ops = dict(_v3_operations())
    is_v3 = lambda a: a["kind"] == "v3"  # noqa: E731
    ops["create_device"] = Operation(
        "create_device", "KVM_CREATE_DEVICE: the vgic-v3 (one per VM) or an ITS (any number, before "
        "or after the vgic-v3, with or without one)", (
            Check("ENODEV", lambda s, a: a["kind"] not in V3_HOST_DEVICES,
                  "the host registers no device of this type (QEMU's GICv3 has no GICv2 compatibility)",
                  "virt/kvm/kvm_main.c: kvm_ioctl_create_device (no ops: -ENODEV); vgic-kvm-device.c: "
                  "kvm_register_vgic_device (the vgic-v3 registers the ITS's ops too: "
                  "kvm_vgic_register_its_device)"),
            Check("EEXIST", lambda s, a: is_v3(a) and s["device"], "a vGIC already exists in this VM",
                  f"{INIT_C}: kvm_vgic_create ('if (irqchip_in_kernel(kvm)) return -EEXIST'); an ITS is "
                  f"another device: {ITS_C}: vgic_its_create checks only its type"),
            Check("EBUSY", lambda s, a: False, "a vCPU has already run",
                  f"{INIT_C}: kvm_vgic_create ('vcpu->arch.has_run_once')", reachable=False),
            Effect("the vGIC exists (max_vcpus = 512), or one more ITS (has_its; its base address "
                   "VGIC_ADDR_UNDEF, dist->propbaser = INITIAL_PROPBASER_VALUE)", _create_device,
                   f"{INIT_C}: kvm_vgic_create; {ITS_C}: vgic_its_create"),
        ))
    ops["its_set_address"] = Operation(
        "its_set_address", "KVM_SET_DEVICE_ATTR KVM_DEV_ARM_VGIC_GRP_ADDR on an ITS: its 64K-aligned base "
        "(two 64K frames); needs no vgic-v3", (
            Check("ENODEV", lambda s, a: a["type"] != ADDR_ITS, "not KVM_VGIC_ITS_ADDR_TYPE",
                  f"{ITS_C}: vgic_its_set_attr ('if (type != KVM_VGIC_ITS_ADDR_TYPE) return -ENODEV;')",
                  doc="KVM_VGIC_ITS_ADDR_TYPE (rw, 64-bit) Base address in the guest physical address "
                      "space of the GICv3 ITS control register frame."),
            # 5.10: vgic_check_ioaddr(kvm, &its->vgic_its_base, addr, SZ_64K)
            Check("E2BIG", lambda s, a: a["addr"] >> s["ipa_bits"] != 0, "the base is outside the IPA space",
                  f"{DEVICE_C}: vgic_check_ioaddr ('addr & ~kvm_phys_mask(kvm)')", until=IORANGE),
            Check("EINVAL", lambda s, a: a["addr"] % ITS_ALIGN != 0, "not 64K aligned",
                  f"{DEVICE_C}: vgic_check_ioaddr ('!IS_ALIGNED(addr, alignment)')", until=IORANGE),
            Check("EEXIST", lambda s, a: _its(s, a)["addr"] is not None, "the ITS's base is already set",
                  f"{DEVICE_C}: vgic_check_ioaddr ('!IS_VGIC_ADDR_UNDEF(*ioaddr)')",
                  doc="-EEXIST  Address already configured", until=IORANGE),
            # 5.16 on: vgic_check_iorange(kvm, its->vgic_its_base, addr, SZ_64K, KVM_VGIC_V3_ITS_SIZE)
            Check("EEXIST", lambda s, a: _its(s, a)["addr"] is not None, "the ITS's base is already set",
                  f"{DEVICE_C}: vgic_check_iorange ('!IS_VGIC_ADDR_UNDEF(ioaddr)')",
                  doc="-EEXIST  Address already configured", since=IORANGE),
            Check("EINVAL", lambda s, a: a["addr"] % ITS_ALIGN != 0, "not 64K aligned",
                  f"{DEVICE_C}: vgic_check_iorange ('!IS_ALIGNED(addr, alignment)')",
                  doc="-EINVAL  Incorrectly aligned address", since=IORANGE),
            Check("EINVAL", lambda s, a: a["addr"] + ITS_SIZE > 0xFFFFFFFFFFFFFFFF, "the 128K region wraps around",
                  f"{DEVICE_C}: vgic_check_iorange ('addr + size < addr')", since=IORANGE),
            Check("E2BIG", lambda s, a: _beyond_ipa(s, a["addr"], ITS_SIZE),
                  "the 128K region does not fit in the IPA space",
                  f"{DEVICE_C}: vgic_check_iorange ('(addr + size) > kvm_phys_size(...)'); {ITS_C}: "
                  "vgic_its_set_attr passes KVM_VGIC_V3_ITS_SIZE from 5.16 (the series that introduced "
                  "vgic_check_iorange: 'KVM: arm64: vgic-v3: Check ITS region is not above the VM IPA size')",
                  doc="-E2BIG   Address outside of addressable IPA range", since=IORANGE),
            Check("EBUSY", lambda s, a: False, "the base is already set (a race with another setter)",
                  f"{ITS_C}: vgic_register_its_iodev ('if (!IS_VGIC_ADDR_UNDEF(its->vgic_its_base))')",
                  reachable=False),  # the EEXIST check above sees it first
            Effect("the ITS's base is set and its MMIO frame registered",
                   lambda s, a: _its(s, a).__setitem__("addr", a["addr"]),
                   f"{ITS_C}: vgic_register_its_iodev (kvm_io_bus_register_dev; 7.x: vgic_its_debug_init)"),
        ))
    ops["its_get_address"] = Operation(
        "its_get_address", "KVM_GET_DEVICE_ATTR KVM_DEV_ARM_VGIC_GRP_ADDR on an ITS: the base, or "
        "VGIC_ADDR_UNDEF (all ones) when unset", (
            Check("ENODEV", lambda s, a: a["type"] != ADDR_ITS, "not KVM_VGIC_ITS_ADDR_TYPE",
                  f"{ITS_C}: vgic_its_get_attr ('if (type != KVM_VGIC_ITS_ADDR_TYPE) return -ENODEV;')"),
        ), value=lambda s, a: ADDR_UNDEF if _its(s, a)["addr"] is None else _its(s, a)["addr"])
    ops["its_ctrl"] = Operation(
        "its_ctrl", "KVM_SET_DEVICE_ATTR KVM_DEV_ARM_VGIC_GRP_CTRL on an ITS: CTRL_INIT does nothing; "
        "CTRL_RESET, SAVE_TABLES and RESTORE_TABLES need no base address, no vgic-v3 and no INIT", (
            Check(IGNORED, lambda s, a: a["attr"] == 0, "KVM_DEV_ARM_VGIC_CTRL_INIT: nothing to do",
                  f"{ITS_C}: vgic_its_ctrl ('if (attr == KVM_DEV_ARM_VGIC_CTRL_INIT) /* Nothing to do */ "
                  "return 0;')"),
            Check("EBUSY", lambda s, a: False, "a vCPU is running", f"{ITS_C}: vgic_its_ctrl (lock_all_vcpus; "
                  "7.x kvm_trylock_all_vcpus)", doc="-EBUSY   One or more VCPUS are running", reachable=False),
            Check(IGNORED, lambda s, a: a["attr"] not in (ITS_CTRL_RESET, ITS_SAVE_TABLES, ITS_RESTORE_TABLES),
                  "another attribute (KVM_DEV_ARM_VGIC_SAVE_PENDING_TABLES included): the switch has no "
                  "default, 'ret = 0'", f"{ITS_C}: vgic_its_ctrl", until=ITS_CTRL_ENXIO),
            Check("ENXIO", lambda s, a: a["attr"] not in (ITS_CTRL_RESET, ITS_SAVE_TABLES, ITS_RESTORE_TABLES),
                  "another attribute (KVM_DEV_ARM_VGIC_SAVE_PENDING_TABLES included)",
                  f"{ITS_C}: vgic_its_ctrl ('default: ret = -ENXIO;')", since=ITS_CTRL_ENXIO),
            Hook("its_tables", f"{ITS_C}: vgic_its_reset, vgic_its_save_tables_v0, vgic_its_restore_tables_v0"),
        ))
    ops["its_register_access"] = Operation(
        "its_register_access", "KVM_{GET,SET}_DEVICE_ATTR KVM_DEV_ARM_VGIC_GRP_ITS_REGS: a 64-bit value "
        "whatever the register's width; needs the base address, not the vgic-v3's INIT", (
            Check("EINVAL", lambda s, a: a["offset"] & _its_align(a["offset"]) != 0,
                  "not 64-bit aligned (32-bit aligned for GITS_CTLR, GITS_IIDR and the ID registers)",
                  f"{ITS_C}: vgic_its_attr_regs_access ('if (offset & align) return -EINVAL;')",
                  doc="-EINVAL  Offset is not 64-bit aligned"),
            Check("EBUSY", lambda s, a: False, "a vCPU is running (5.10: checked after the region)",
                  f"{ITS_C}: vgic_its_attr_regs_access", doc="-EBUSY   one or more VCPUS are running",
                  reachable=False),
            Check("ENXIO", lambda s, a: _its(s, a)["addr"] is None, "the ITS's base address is not set",
                  f"{ITS_C}: vgic_its_attr_regs_access ('if (IS_VGIC_ADDR_UNDEF(its->vgic_its_base)) "
                  "{ ret = -ENXIO;')"),
            Hook("its_register", f"{ITS_C}: vgic_its_attr_regs_access (vgic_find_mmio_region over "
                 "its_registers[]: no region -ENXIO; its_read, or uaccess_its_write / its_write)"),
        ))
    ops["its_has_attr"] = Operation(
        "its_has_attr", "KVM_HAS_DEVICE_ATTR on an ITS", (
            Check("ENXIO", lambda s, a: a["group"] == "ADDR" and a["attr"] != ADDR_ITS,
                  "not KVM_VGIC_ITS_ADDR_TYPE", f"{ITS_C}: vgic_its_has_attr"),
            Check("ENXIO", lambda s, a: a["group"] == "CTRL" and a["attr"] not in
                  (0, ITS_CTRL_RESET, ITS_SAVE_TABLES, ITS_RESTORE_TABLES),
                  "not CTRL_INIT, CTRL_RESET, SAVE_TABLES or RESTORE_TABLES", f"{ITS_C}: vgic_its_has_attr"),
            Check("ENXIO", lambda s, a: a["group"] not in ("ADDR", "CTRL", "ITS_REGS"),
                  "not an ITS attribute group", f"{ITS_C}: vgic_its_has_attr"),
            Check("EINVAL", lambda s, a: a["group"] == "ITS_REGS" and a["attr"] & _its_align(a["attr"]) != 0,
                  "an unaligned register offset", f"{ITS_C}: vgic_its_has_attr_regs ('if (offset & align) "
                  "return -EINVAL;')"),
            Hook("its_has_register", f"{ITS_C}: vgic_its_has_attr_regs (vgic_find_mmio_region: -ENXIO)"),
        ))
    ops["its_attr_other"] = Operation(
        "its_attr_other", "KVM_{GET,SET}_DEVICE_ATTR on an ITS with another group, or a get of "
        "KVM_DEV_ARM_VGIC_GRP_CTRL", (
            Check("ENXIO", lambda s, a: True, "not an ITS attribute group",
                  f"{ITS_C}: vgic_its_set_attr / vgic_its_get_attr ('return -ENXIO')",
                  doc="-ENXIO  The group or attribute is unknown/unsupported for this device"),
        ))
    save = ops["save_pending_tables"]
    ops["save_pending_tables"] = Operation(
        save.name, "KVM_DEV_ARM_VGIC_SAVE_PENDING_TABLES: each LPI's pending state into its vCPU's "
        "pending table", save.steps + (
            Hook("pending_tables", f"{V3_C}: vgic_v3_save_pending_tables (every LPI with a target vCPU: "
                 "its byte at GICR_PENDBASER + intid / 8 read, and rewritten where the bit differs)"),))
    return ops


GICV3_ITS = Lifecycle(
    device="gicv3-its",
    state={**GICV3.state, "its": [], "has_its": False},
    operations=_its_operations(),
    notes=GICV3.notes + (
        "An ITS's registers need its base address, not the vgic-v3's CTRL_INIT nor the ITS's "
        "(vgic_its_attr_regs_access checks neither; the ITS's CTRL_INIT does nothing).",
        "The LPIs are the VM's (5.10.223, 6.1.176: dist->lpi_list_head; 6.12.107, 7.1.8: "
        "dist->lpi_xa): two ITSes mapping one "
        "INTID share it, and vgic_add_lpi reads its configuration and pending bit only when it is "
        "created.",
    ),
)

# =======================================================================================
# GICv5 IRS (the proposed KVM series: seed 003; /work/notes/gicv5-facts.md §4). Source-only:
# no kernel runs it, no runner program reaches it (every Check is reachable=False). The
# device model (spec/gicv5_irs.py) takes its lifecycle operations from this table through
# ``as_effect``: the lifecycle state is four flags, which the device keeps as fields.

V5_SEED = "seed 003"
V5_FACTS = "gicv5-facts.md §4 (final series: vgic-kvm-device.c, arm-vgic-v5.rst)"


def _set(key: str) -> Callable[[State, Args], None]:
    return lambda s, a: s.__setitem__(key, True)


def _v5_operations() -> dict[str, Operation]:
    not_init = Check("EBUSY", lambda s, a: not s["initialised"], "the VGIC is not initialised",
                     f"{V5_FACTS}: GRP_IRS_REGS / GRP_IST before CTRL_INIT: -EBUSY ('VGIC is not initialized'; "
                     "v5_reg_allowed_pre_init() allows no register)", reachable=False)
    ops = [
        Operation("create_vcpus", "KVM_CREATE_VCPU, every vCPU of the VM", (
            Check("EBUSY", lambda s, a: s["initialised"], "the VGIC is initialised: its vCPUs are fixed",
                  f"model choice: as arch/arm64/kvm/arm.c kvm_arch_vcpu_precreate on GICv2/v3 (above); {V5_FACTS}: "
                  "CTRL_INIT 'Must be called after all VCPUs have been created'", reachable=False),
            Effect("the vCPUs exist", _set("vcpus_created"), f"{V5_SEED} L116, L139"),
        )),
        Operation("create_device", "KVM_CREATE_DEVICE (the VGICv5)", (
            Check("EEXIST", lambda s, a: s["device_created"], "a vGIC already exists in this VM",
                  "model choice: as kvm_vgic_create on GICv2/v3 (above)", reachable=False),
            Effect("the VGICv5 exists", _set("device_created"), f"{V5_SEED} L140"),
        )),
        Operation("set_address", "KVM_SET_DEVICE_ATTR KVM_DEV_ARM_VGIC_GRP_ADDR, KVM_VGIC_V5_ADDR_TYPE_IRS", (
            Check("ENXIO", lambda s, a: not s["device_created"], "no device to take the attribute",
                  "model choice: there is no device fd before KVM_CREATE_DEVICE", reachable=False),
            Check("EEXIST", lambda s, a: s["addr_set"], "the IRS address is already set",
                  f"{V5_FACTS}: kvm_vgic_addr 'already set -> -EEXIST'", reachable=False),
            Effect("the IRS base address is set", _set("addr_set"), f"{V5_SEED} L117-L118"),
        )),
        Operation("KVM_DEV_ARM_VGIC_CTRL_INIT", "KVM_SET_DEVICE_ATTR KVM_DEV_ARM_VGIC_GRP_CTRL "
                  "KVM_DEV_ARM_VGIC_CTRL_INIT: default state, creates the SPI IST", (
            Check(IGNORED, lambda s, a: s["initialised"], "already initialised: nothing to do",
                  "model choice: as vgic_init on GICv2/v3 ('if (vgic_initialized(kvm)) return 0')",
                  reachable=False),
            Check("ENXIO", lambda s, a: not (s["device_created"] and s["addr_set"]),
                  "not configured: no IRS address", f"model choice for {V5_FACTS}: CTRL_INIT '-ENXIO (not configured)'",
                  reachable=False),
            Check("ENODEV", lambda s, a: not s["vcpus_created"], "no online vCPU",
                  f"{V5_FACTS}: CTRL_INIT '-ENODEV (no online VCPU)'", reachable=False),
            Effect("initialised: the IRS's initial state, the SPI IST", _set("initialised"), f"{V5_SEED} L119-L121"),
        )),
        Operation("irs_regs", "KVM_{GET,SET}_DEVICE_ATTR KVM_DEV_ARM_VGIC_GRP_IRS_REGS", (
            not_init, Hook("register", "spec/gicv5_irs.py: the register's accessor"))),
        Operation("ist", "KVM_{GET,SET}_DEVICE_ATTR KVM_DEV_ARM_VGIC_GRP_IST", (
            not_init, Hook("ist", "spec/gicv5_irs.py: the IST operations and VGIC_SPI_IST"))),
    ]
    return {o.name: o for o in ops}


GICV5 = Lifecycle(
    device="gicv5-irs",
    state={"vcpus_created": False, "device_created": False, "addr_set": False, "initialised": False},
    operations=_v5_operations(),
    notes=("No runner reaches it: no kernel here has the IRS series and no emulator offers a GICv5 to KVM "
           "(gicv5-facts.md §6).",),
)


class _Reads(dict):
    """A state that records which flags a run reads."""

    def __init__(self, *args: Any):
        super().__init__(*args)
        self.read: set[str] = set()

    def __getitem__(self, k: str) -> Any:
        self.read.add(k)
        return super().__getitem__(k)


_NO_HOOKS = {h: (lambda s, a: None) for h in ("register", "ist")}


_TABLES: dict[tuple[int, str, str], tuple[list[str], list[tuple[tuple[bool, ...], str, tuple[str, ...]]]]] = {}


def _table(lc: Lifecycle, name: str, release: str) -> tuple[list[str], list[tuple[tuple[bool, ...], str, tuple[str, ...]]]]:
    """Operation ``name`` run on every assignment of the flags it reads: (the flags read,
    [(their values, the result, the flags it sets)]). It depends on the table only, not on
    the backend, so it is computed once per (lifecycle, operation, release): devices build
    their operations' effects on every step of every proof."""
    import itertools

    key = (id(lc), name, release)
    got = _TABLES.get(key)
    if got is not None:
        return got
    keys = list(lc.state)
    read: set[str] = set()
    for bits in itertools.product((False, True), repeat=len(keys)):
        probe = _Reads(zip(keys, bits, strict=True))
        run(lc, probe, name, {}, release, _NO_HOOKS)
        read |= probe.read
    used = [k for k in keys if k in read]
    rows = []
    for bits in itertools.product((False, True), repeat=len(used)):
        st = dict.fromkeys(keys, False)
        st.update(zip(used, bits, strict=True))
        before = dict(st)
        res = run(lc, st, name, {}, release, _NO_HOOKS)
        # the effects set flags (a flag an effect clears: none yet); a failing operation
        # changes nothing
        sets = tuple(k for k in keys if st[k] != before[k]) if res == "ok" else ()
        rows.append((tuple(bits), res, sets))
    _TABLES[key] = (used, rows)
    return used, rows


def as_effect(lc: Lifecycle, name: str, ops: Any, fields: Mapping[str, Any], release: str = "0.0") -> Any:
    """Operation ``name`` of a lifecycle whose state is boolean flags, as a device
    ``Effect`` over ``fields`` (flag -> a 1-bit value of the ops backend): every assignment
    of the flags the operation reads is run through the table, and each errno's condition,
    and each flag's new value, is the disjunction of the assignments that give it. Hooks are
    not run (the device model acts there); the checks before them are what it takes."""
    from spec.device import Effect as DeviceEffect

    used, rows = _table(lc, name, release)
    # The same flags (the very same values) give the same effect: a device asks for its
    # "-EBUSY before CTRL_INIT" condition at every register access of a run, and the
    # flags change only at the lifecycle's few steps. The entry keeps the values (and the
    # backend) alive, so their ids are not reused while it stands.
    memo_key = (id(lc), name, release, id(ops), tuple(id(fields[k]) for k in used))
    hit = _EFFECTS.get(memo_key)
    if hit is not None:
        return hit[0]
    one, zero = ops.const(1, 1), ops.const(0, 1)
    fails: dict[str, Any] = {}
    order: list[str] = []
    after = dict(fields)
    written: dict[str, Any] = {}
    for bits, res, sets in rows:
        cond = one
        for k, b in zip(used, bits, strict=True):
            cond = ops.and_(cond, ops.eq(fields[k], one if b else zero))
        if res != "ok":
            if res not in fails:
                fails[res] = zero
                order.append(res)
            fails[res] = ops.or_(fails[res], cond)
            continue
        for k in sets:
            written[k] = ops.or_(written.get(k, zero), cond)
    for k, when in written.items():
        after[k] = ops.ite(when, one, fields[k])
    error = zero
    for e in order:
        error = ops.or_(error, fails[e])
    effect = DeviceEffect({k: after[k] for k in written}, error=error if order else None,
                          errno=" or ".join(order), errnos=tuple((fails[e], e) for e in order))
    if len(_EFFECTS) > 4096:
        _EFFECTS.clear()
    _EFFECTS[memo_key] = (effect, ops, tuple(fields[k] for k in used))
    return effect


_EFFECTS: dict[tuple, tuple[Any, Any, tuple]] = {}


__all__ = ["GICV2", "GICV3", "GICV3_ITS", "GICV5", "IGNORED", "as_effect", "Check", "Effect", "Hook", "Invoke", "Lifecycle", "MissingHook",
           "Operation", "release_key", "run"]
