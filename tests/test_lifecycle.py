"""The lifecycle table (spec/lifecycle.py) without a kernel: each errno rule of the GICv2
section on a program that reaches it, through the model of the kernel (which interprets
the table), per release where the kernel's order differs; every reachable check is hit
by some scenario here; and the engine's own behaviour (release ranges, hooks)."""

from __future__ import annotations

import dataclasses

import pytest

from models.kernel.harness import Op, v2_attr
from models.kernel.model import KernelModel
from spec import lifecycle
from spec.lifecycle import GICV2, IGNORED, Check, Hook, Lifecycle, MissingHook, Operation

D, C = "DIST_REGS", "CPU_REGS"
VM = [Op.vm()]
V2 = Op.device("v2")


def addr(t, a):
    return Op.set(0, "ADDR", t, a, 64)


# (name, release, program, the expected answer of the last operation, the rule's source)
# Every expectation is the kernel's documented or coded answer, and was seen on the real
# kernels (gicproof conform; tests/test_conform.py boots them).
SCENARIOS = [
    ("NR_IRQS below 64", "6.12.107", VM + [V2, Op.set(0, "NR_IRQS", 0, 32)], "EINVAL"),
    ("NR_IRQS not a multiple of 32", "6.12.107", VM + [V2, Op.set(0, "NR_IRQS", 0, 100)], "EINVAL"),
    ("NR_IRQS 1024 (the documentation's upper bound)", "5.10.223", VM + [V2, Op.set(0, "NR_IRQS", 0, 1024)],
     "EINVAL"),
    ("NR_IRQS twice", "6.1.176", VM + [V2, Op.set(0, "NR_IRQS", 0, 992), Op.set(0, "NR_IRQS", 0, 64)], "EBUSY"),
    ("NR_IRQS after a register access (lazy INIT with 256)", "7.2.13",
     VM + [Op.vcpus(1), V2, Op.get(0, D, 0x4), Op.set(0, "NR_IRQS", 0, 64)], "EBUSY"),
    ("NR_IRQS after an SPI line (lazy INIT)", "7.2.13",
     VM + [V2, Op.irq("SPI", 0, 40, 1), Op.set(0, "NR_IRQS", 0, 64)], "EBUSY"),
    ("NR_IRQS after INIT", "6.12.107", VM + [V2, Op.ctrl(0, "INIT"), Op.set(0, "NR_IRQS", 0, 64)], "EBUSY"),
    ("NR_IRQS read before it is set", "6.12.107", VM + [V2, Op.get(0, "NR_IRQS", 0)], "0x20"),
    ("NR_IRQS read after a lazy INIT", "6.12.107",
     VM + [Op.vcpus(2), V2, Op.get(0, D, 0x0), Op.get(0, "NR_IRQS", 0)], "0x100"),
    ("the interrupt count lazy INIT freezes", "6.12.107", VM + [Op.vcpus(1), V2, Op.get(0, D, 0x4)], "0x7"),
    ("a second vGIC", "6.12.107", VM + [V2, V2], "EEXIST"),
    ("a GICv3 on a GICv2 host", "6.12.107", VM + [Op.device("v3")], "ENODEV"),
    ("a GICv3 on a GICv2 host, after the vGIC", "6.12.107", VM + [V2, Op.device("v3")], "ENODEV"),
    ("test_device v2 after the device", "6.12.107", VM + [V2, Op.test_device("v2")], "ok"),
    ("test_device its", "5.10.223", VM + [Op.test_device("its")], "ENODEV"),
    ("a ninth vCPU", "6.12.107", VM + [Op.vcpus(9)], "EINVAL"),
    ("a ninth vCPU, 5.10", "5.10.223", VM + [Op.vcpus(8), Op.vcpus(1)], "EINVAL"),
    ("a vCPU after INIT", "6.12.107", VM + [Op.vcpus(1), V2, Op.ctrl(0, "INIT"), Op.vcpus(1)], "EBUSY"),
    ("a vCPU after INIT with none", "5.10.223", VM + [V2, Op.ctrl(0, "INIT"), Op.vcpus(1)], "EBUSY"),
    ("a vCPU after a lazy INIT", "6.1.176", VM + [Op.vcpus(1), V2, Op.set(0, D, 0x100, 1), Op.vcpus(1)],
     "EBUSY"),
    ("a ninth vCPU after INIT, 5.10 (kvm_arch_vcpu_precreate: EBUSY first)", "5.10.223",
     VM + [Op.vcpus(8), V2, Op.ctrl(0, "INIT"), Op.vcpus(1)], "EBUSY"),
    ("a ninth vCPU after INIT, later (kvm_vm_ioctl_create_vcpu: EINVAL first)", "6.1.176",
     VM + [Op.vcpus(8), V2, Op.ctrl(0, "INIT"), Op.vcpus(1)], "EINVAL"),
    ("INIT twice", "6.12.107", VM + [Op.vcpus(1), V2, Op.ctrl(0, "INIT"), Op.ctrl(0, "INIT")], "ok"),
    ("INIT without vCPUs (not the documented -ENODEV)", "7.2.13", VM + [V2, Op.ctrl(0, "INIT")], "ok"),
    ("INIT before NR_IRQS and addresses", "6.1.176", VM + [Op.vcpus(2), V2, Op.ctrl(0, "INIT")], "ok"),
    ("INIT through set32 on the CTRL group", "6.1.176", VM + [V2, Op.set(0, "CTRL", 0, 0)], "ok"),
    ("another control attribute", "6.12.107", VM + [V2, Op.ctrl(0, "SAVE_PENDING_TABLES")], "ENXIO"),
    ("a get on the CTRL group", "6.12.107", VM + [V2, Op.get(0, "CTRL", 0)], "ENXIO"),
    ("a group the vgic-v2 has not", "6.12.107", VM + [V2, Op.get(0, "LEVEL_INFO", 0)], "ENXIO"),
    ("an address twice", "6.12.107", VM + [V2, addr(0, 0x8000000), addr(0, 0x9000000)], "EEXIST"),
    ("an address twice, 5.10", "5.10.223", VM + [V2, addr(1, 0x8010000), addr(1, 0x8020000)], "EEXIST"),
    ("an unaligned address", "6.12.107", VM + [V2, addr(0, 0x8000800)], "EINVAL"),
    ("an address beyond the IPA space", "5.10.223", VM + [V2, addr(0, 1 << 40)], "E2BIG"),
    ("a region crossing the top of the IPA space (vgic_check_iorange)", "6.1.176",
     VM + [V2, addr(1, (1 << 40) - 0x1000)], "E2BIG"),
    ("a region crossing the top of the IPA space, 5.10 (vgic_check_ioaddr: base only)", "5.10.223",
     VM + [V2, addr(1, (1 << 40) - 0x1000)], "ok"),
    ("a region that wraps around", "6.12.107", VM + [V2, addr(1, 0xFFFFFFFFFFFFF000)], "EINVAL"),
    ("set twice, unaligned the second time: EEXIST first (vgic_check_iorange)", "6.1.176",
     VM + [V2, addr(0, 0x8000000), addr(0, 0x8000800)], "EEXIST"),
    ("set twice, unaligned the second time: alignment first, 5.10 (vgic_check_ioaddr)", "5.10.223",
     VM + [V2, addr(0, 0x8000000), addr(0, 0x8000800)], "EINVAL"),
    ("a GICv3 address type", "6.12.107", VM + [V2, addr(2, 0x8000000)], "ENXIO"),
    ("an unset address reads as VGIC_ADDR_UNDEF", "6.12.107", VM + [V2, Op.get(0, "ADDR", 1, 64)],
     "0xffffffffffffffff"),
    ("overlapping regions are not checked before KVM_RUN", "6.12.107",
     VM + [V2, addr(0, 0x8000000), addr(1, 0x8000000)], "ok"),
    ("a GICv3 address type, read", "5.10.223", VM + [V2, Op.get(0, "ADDR", 3, 64)], "ENXIO"),
    ("an address after INIT", "5.10.223", VM + [V2, Op.ctrl(0, "INIT"), addr(0, 0x8000000)], "ok"),
    ("an SPI line before the device", "6.12.107", VM + [Op.vcpus(1), Op.irq("SPI", 0, 40, 1)], "ENXIO"),
    ("an SPI line with a private INTID", "6.12.107", VM + [V2, Op.irq("SPI", 0, 31, 1)], "EINVAL"),
    ("an SPI line with a private INTID, 7.2", "7.2.13", VM + [V2, Op.irq("SPI", 0, 0, 1)], "EINVAL"),
    ("a private INTID does not initialise before 7.2", "6.12.107",
     VM + [V2, Op.irq("SPI", 0, 0, 2), Op.vcpus(1)], "ok"),
    ("a private INTID initialises lazily from 7.2 (found by gicproof conform)", "7.2.13",
     VM + [V2, Op.irq("SPI", 0, 0, 2), Op.vcpus(1)], "EBUSY"),
    ("an SPI line beyond the count frozen by its own lazy INIT", "6.12.107",
     VM + [V2, Op.set(0, "NR_IRQS", 0, 64), Op.irq("SPI", 0, 64, 1)], "EINVAL"),
    ("an SPI line before INIT initialises", "6.12.107",
     VM + [Op.vcpus(1), V2, Op.irq("SPI", 0, 200, 1), Op.vcpus(1)], "EBUSY"),
    ("a register access naming no vCPU", "6.12.107", VM + [Op.vcpus(2), V2, Op.get(0, D, v2_attr(2, 0x800))],
     "EINVAL"),
    ("a register access without vCPUs", "6.12.107", VM + [V2, Op.get(0, D, 0x4)], "EINVAL"),
    ("a register access before KVM_ARM_VCPU_INIT", "6.12.107", VM + [Op.vcpus(2), V2, Op.get(0, D, 0x4)],
     "0x27"),
    ("has: INIT", "6.12.107", VM + [V2, Op.has(0, "CTRL", "INIT")], "ok"),
    ("has: another control attribute", "6.12.107", VM + [V2, Op.has(0, "CTRL", 1)], "ENXIO"),
    ("has: a GICv3 address type", "6.12.107", VM + [V2, Op.has(0, "ADDR", 2)], "ENXIO"),
    ("has: NR_IRQS, any attribute", "6.12.107", VM + [V2, Op.has(0, "NR_IRQS", 3)], "ok"),
    ("has: another group", "6.12.107", VM + [V2, Op.has(0, "REDIST_REGS", 0)], "ENXIO"),
    ("has: a vCPU the VM has not", "6.12.107", VM + [Op.vcpus(1), V2, Op.has(0, D, v2_attr(1, 0))], "EINVAL"),
    ("has: no register there", "6.12.107", VM + [Op.vcpus(1), V2, Op.has(0, D, 0xFFC)], "ENXIO"),
    ("has: unaligned", "6.12.107", VM + [Op.vcpus(1), V2, Op.has(0, C, 0x6)], "ENXIO"),
    ("has: an SPI word before any count (nr_spis 0)", "6.12.107",
     VM + [Op.vcpus(1), V2, Op.has(0, D, 0x104)], "ENXIO"),
    ("has: an SPI word after NR_IRQS", "6.12.107",
     VM + [Op.vcpus(1), V2, Op.set(0, "NR_IRQS", 0, 64), Op.has(0, D, 0x104)], "ok"),
    ("has: GICD_SGIR, a region the table has no row for", "6.12.107",
     VM + [Op.vcpus(1), V2, Op.has(0, D, 0xF00)], "ok"),
    ("KVM_ARM_VCPU_INIT after INIT", "6.1.176", VM + [Op.vcpus(1), V2, Op.ctrl(0, "INIT"), Op.vcpu_init()],
     "ok"),
    ("the runner's own error for a device it did not create", "6.12.107", VM + [Op.get(0, D, 0)],
     "!no device '0x0'"),
]


@pytest.mark.parametrize("name, release, program, want", SCENARIOS, ids=[s[0] for s in SCENARIOS])
def test_lifecycle_scenario(name, release, program, want):
    got = KernelModel(release).run(program)
    assert got[-1] == want, list(zip([op.line() for op in program], got, strict=True))


def _instrumented(fired: set[tuple[str, int]]) -> Lifecycle:
    """GICV2 with every check recording (operation, step index) when it fires."""
    def wrap(name, i, check):
        def fails(s, a):
            hit = check.fails(s, a)
            if hit:
                fired.add((name, i))
            return hit
        return dataclasses.replace(check, fails=fails)
    ops = {name: dataclasses.replace(op, steps=tuple(wrap(name, i, st) if isinstance(st, Check) else st
                                                     for i, st in enumerate(op.steps)))
           for name, op in GICV2.operations.items()}
    return dataclasses.replace(GICV2, operations=ops)


def test_every_reachable_rule_is_exercised():
    """Each check of the table that a runner program can reach fires in some scenario
    (for a release it applies to), so no rule of the table is left untested."""
    fired: set[tuple[str, int]] = set()
    lc = _instrumented(fired)
    for _, release, program, _ in SCENARIOS:
        KernelModel(release, lifecycle=lc).run(program)
    missing = [f"{op.name}: {st.errno} {st.rule} ({st.since or ''}..{st.until or ''})"
               for op in GICV2.operations.values() for i, st in enumerate(op.steps)
               if isinstance(st, Check) and st.reachable and (op.name, i) not in fired]
    assert not missing, missing
    unreachable = [c for _, c in GICV2.rules() if not c.reachable]
    assert unreachable and all(not any((op, i) in fired for op, o in GICV2.operations.items()
                                       for i, st in enumerate(o.steps) if st is c) for c in unreachable)


def test_every_rule_cites_its_source():
    for op_name, check in GICV2.rules():
        assert check.source and check.rule, op_name
        assert any(f in check.source for f in (".c", "kvm_main")), (op_name, check.source)
        if check.doc:  # a quoted documentation sentence names its errno, or states the rule
            assert check.errno in check.doc or check.errno == IGNORED or "VGIC instance" in check.doc, check.doc


def test_release_ranges_and_hooks():
    ops = {"x": Operation("x", "test", (
        Check("EBUSY", lambda s, a: True, "old", "f.c", until="5.16"),
        Check("EINVAL", lambda s, a: s["n"] > 1, "new", "f.c", since="5.16"),
        Hook("h", "f.c"),
    ), value=lambda s, a: s["n"])}
    lc = Lifecycle("toy", {"n": 1}, ops)
    assert lifecycle.run(lc, lc.fresh(), "x", {}, "5.15.9", {"h": lambda s, a: None}) == "EBUSY"
    assert lifecycle.run(lc, lc.fresh(), "x", {}, "5.16", {"h": lambda s, a: None}) == "0x1"
    assert lifecycle.run(lc, {"n": 2}, "x", {}, "6.1.176", {"h": lambda s, a: None}) == "EINVAL"
    assert lifecycle.run(lc, lc.fresh(), "x", {}, "6.1", {"h": lambda s, a: "ENXIO"}) == "ENXIO"
    with pytest.raises(MissingHook, match="needs hook 'h'"):
        lifecycle.run(lc, lc.fresh(), "x", {}, "6.1")
    s = GICV2.fresh()
    s["addr"][0] = 1
    assert GICV2.fresh()["addr"][0] is None  # fresh() never shares the table's defaults
