"""The device table checks itself; accessors respect the per-interrupt locality the
class-based proofs rely on (proofs/classes.py, point 1)."""

from __future__ import annotations

import dataclasses

import pytest

from models.concrete import CONCRETE
from models.machine import Config, make_state
from spec.device import AccessContext, SpecError
from spec.gicv2 import GICV2, VERSIONS


def test_the_shipped_table_validates():
    assert GICV2.validate() is GICV2


def _with_registers(regs):
    return dataclasses.replace(GICV2, registers=tuple(regs))


def test_unsorted_offsets_are_rejected():
    regs = list(GICV2.registers)
    regs[3], regs[4] = regs[4], regs[3]
    with pytest.raises(SpecError, match="not sorted"):
        _with_registers(regs).validate()


def test_overlapping_registers_are_rejected():
    regs = list(GICV2.registers)
    i = next(n for n, r in enumerate(regs) if r.name == "GICD_ISENABLER")
    regs[i] = dataclasses.replace(regs[i], offset=0x0FC)  # runs into GICD_ICENABLER at 0x180
    with pytest.raises(SpecError, match="overlaps"):
        _with_registers(regs).validate()


def test_duplicate_names_are_rejected():
    regs = list(GICV2.registers)
    regs.append(dataclasses.replace(regs[-1], name=regs[0].name, offset=0x100))
    with pytest.raises(SpecError, match="duplicate register"):
        _with_registers(regs).validate()


def test_an_architectural_field_no_register_views_is_rejected():
    regs = [r for r in GICV2.registers if r.name != "GICD_IPRIORITYR"]
    with pytest.raises(SpecError, match="priority is viewed by no register"):
        _with_registers(regs).validate()


def test_asymmetric_pair_is_rejected():
    regs = list(GICV2.registers)
    i = next(n for n, r in enumerate(regs) if r.name == "GICD_ICACTIVER")
    regs[i] = dataclasses.replace(regs[i], pair="GICD_ISENABLER")
    with pytest.raises(SpecError, match="pair"):
        _with_registers(regs).validate()


class Recorder(dict):
    """A field map that records which fields an accessor looks at."""

    def __init__(self, data):
        super().__init__(data)
        self.seen = set()

    def __getitem__(self, k):
        self.seen.add(k)
        return super().__getitem__(k)


@pytest.mark.parametrize("kernel", list(VERSIONS))
def test_per_interrupt_accessors_only_touch_their_own_interrupt(kernel):
    """Every irq-scope accessor reads and writes only the fields of the interrupt it is
    given (plus the global fields through the context), for every kind."""
    sem = VERSIONS[kernel]
    cfg = Config(2, 64)
    state = make_state(GICV2, sem, cfg, CONCRETE)
    own = {}
    for reg in GICV2.registers:
        if reg.scope != "irq":
            continue
        for intid in (0, 16, 32):
            if not reg.first_irq <= intid < reg.first_irq + reg.irqs:
                continue
            key = (1 if intid < 32 else -1, intid)
            fields = Recorder(state.irq[key])
            ctx = AccessContext(sem, 2, 64, 1, intid, GICV2.interrupt_kind(intid), state.glob)
            for acc in (reg.guest_read, reg.user_read):
                acc.fn(CONCRETE, ctx, fields)
            for acc in (reg.guest_write, reg.user_write):
                eff = acc.fn(CONCRETE, ctx, fields, (1 << reg.bits_per_irq) - 1)
                assert set(eff.updates) <= set(state.irq[key]), (reg.name, eff.updates)
            assert fields.seen <= set(state.irq[key]), (reg.name, fields.seen)
            own[reg.name] = True
    assert "GICD_ISPENDR" in own and "GICD_SPENDSGIR" in own


def test_reset_state_satisfies_the_invariant_for_every_version():
    for sem in VERSIONS.values():
        for cpus in (1, 8):
            cfg = Config(cpus, 64)
            from models.machine import Machine

            m = Machine(GICV2, sem, cfg, CONCRETE, make_state(GICV2, sem, cfg, CONCRETE))
            assert m.invariant() == 1
