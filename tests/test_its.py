"""The GICv3 with its ITS (device gicv3-its): the ITS registers, the operations that move
state between the kernel and guest memory, the memory steps and the format's new keys, each
against the kernel rule it models (spec/gicv3_its.py cites them)."""

from __future__ import annotations

from pathlib import Path

import pytest

from models.concrete import CONCRETE
from models.machine import Config, Machine, MissingSaved, make_state, run_restore, run_save
from spec.devices import DEVICES
from spec.gicv3_its import BASER_TYPE_COLLECTION, BASER_TYPE_DEVICE, baser_fixed
from spec.sequence import SequenceError, load

ITS = DEVICES["gicv3-its"]
VALID = 1 << 63
CBASER = VALID | 0x40060000 | 1           # two 4K pages of queue
BASER_DT = VALID | 0x40040000 | (3 << 59) | (1 << 10) | (2 << 8)
BASER_CT = VALID | 0x40050000 | (3 << 59) | (1 << 10) | (2 << 8)


def machine(kernel: str = "7.1", cpus: int = 2) -> Machine:
    sem = ITS.semantics(kernel)
    cfg = Config(cpus, 64)
    return Machine(ITS, sem, cfg, CONCRETE, make_state(ITS, sem, cfg, CONCRETE))


def write(m: Machine, reg: str, value: int, vcpu: int = 0, word: int = 0) -> str:
    err, errno = m.write_word(ITS.register(reg), word, vcpu, value)
    return errno if err else "ok"


def read(m: Machine, reg: str, vcpu: int = 0, word: int = 0) -> int:
    return m.read_word(ITS.register(reg), word, vcpu)


def op(m: Machine, name: str) -> str:
    err, errno = m.operation(name)
    return errno if err else "ok"


def test_the_composed_table_has_both_devices_rows_and_checks_itself():
    names = {r.name for r in ITS.registers}
    assert {"GICD_CTLR", "GICR_PROPBASER", "ICC_PMR_EL1", "GITS_CTLR", "GITS_CBASER", "GITS_BASER7"} <= names
    # the row an ITS changes replaces the GICv3's
    assert ITS.register("GICR_CTLR").views == ("enable_lpis",)
    assert DEVICES["gicv3"].register("GICR_CTLR").views == ()


def test_reset_values_are_the_kernels():
    m = machine()
    # vgic_its_create: INITIAL_BASER_VALUE | type; vgic_its_set_abi: entry size 8
    assert read(m, "GITS_BASER0") == (3 << 59) | (1 << 10) | (2 << 8) | baser_fixed(BASER_TYPE_DEVICE)
    assert read(m, "GITS_BASER1") == (3 << 59) | (1 << 10) | (2 << 8) | baser_fixed(BASER_TYPE_COLLECTION)
    assert read(m, "GITS_CTLR") == 1 << 31          # disabled, quiescent
    assert read(m, "GICR_PROPBASER") == 0x580       # INITIAL_PROPBASER_VALUE


def test_cbaser_resets_the_queue_and_creadr_checks_its_size():
    m = machine()
    assert write(m, "GITS_CBASER", CBASER) == "ok"
    assert write(m, "GITS_CWRITER", 0x1020) == "ok"
    assert write(m, "GITS_CREADR", 0x1000) == "ok"
    assert write(m, "GITS_CREADR", 0x2000) == "EINVAL"            # beyond two pages
    assert write(m, "GITS_CWRITER", 0x2000) == "ok"               # ignored, no error
    assert read(m, "GITS_CWRITER") == 0x1020
    assert write(m, "GITS_CBASER", CBASER) == "ok"                # 'its->creadr = 0' and CWRITER
    assert (read(m, "GITS_CREADR"), read(m, "GITS_CWRITER")) == (0, 0)


def test_enabling_needs_valid_tables_and_then_freezes_the_bases():
    m = machine()
    assert write(m, "GITS_CTLR", 1) == "ok"
    assert read(m, "GITS_CTLR") & 1 == 0                          # ignored: tables invalid
    for reg, v in (("GITS_CBASER", CBASER), ("GITS_BASER0", BASER_DT), ("GITS_BASER1", BASER_CT)):
        write(m, reg, v)
    assert write(m, "GITS_CTLR", 1) == "ok" and read(m, "GITS_CTLR") & 1 == 1
    assert write(m, "GITS_CREADR", 0) == "EBUSY"                  # while enabled (checked first)
    assert write(m, "GITS_CREADR", 0x4000) == "EBUSY"             # beyond the queue too: EBUSY first
    before = read(m, "GITS_BASER0")
    write(m, "GITS_BASER0", 0)
    assert read(m, "GITS_BASER0") == before                       # ignored while enabled


def mapped(m: Machine, target: int = 1, pending: int = 1) -> None:
    """A device, its event and LPI, the collection on vCPU ``target`` (as commands would)."""
    g = m.state.glob
    for reg, v in (("GITS_CBASER", CBASER), ("GITS_BASER0", BASER_DT), ("GITS_BASER1", BASER_CT)):
        write(m, reg, v)
    write(m, "GICR_PENDBASER", 0x40020000, vcpu=target)
    write(m, "GICR_CTLR", 1, vcpu=target)
    g.update(dte_valid=1, ite_valid=1, cte_valid=1, cte_target=target, lpi_pending=pending)
    assert m.invariant() == 1


def test_save_tables_and_pending_tables_then_restore_on_another_vm():
    src = machine()
    mapped(src)
    assert op(src, "KVM_DEV_ARM_VGIC_SAVE_PENDING_TABLES") == "ok"
    assert op(src, "KVM_DEV_ARM_ITS_SAVE_TABLES") == "ok"
    g = src.state.glob
    assert (g["mem_dte"], g["mem_ite"], g["mem_cte"], g["mem_cte_target"], g["mem_pending"]) == (1, 1, 1, 1, 1)
    dst = machine()
    dst.load_memory(src.memory())
    for reg, v in (("GITS_CBASER", CBASER), ("GITS_BASER0", BASER_DT), ("GITS_BASER1", BASER_CT)):
        write(dst, reg, v)
    # the target's PENDBASER not restored yet: the pending bit is read at address 0 (0)
    probe = machine()
    probe.load_memory(src.memory())
    for reg, v in (("GITS_CBASER", CBASER), ("GITS_BASER0", BASER_DT), ("GITS_BASER1", BASER_CT)):
        write(probe, reg, v)
    assert op(probe, "KVM_DEV_ARM_ITS_RESTORE_TABLES") == "ok"
    assert probe.state.glob["lpi_pending"] == 0
    write(dst, "GICR_PENDBASER", 0x40020000, vcpu=1)
    assert op(dst, "KVM_DEV_ARM_ITS_RESTORE_TABLES") == "ok"
    d = dst.state.glob
    assert (d["dte_valid"], d["ite_valid"], d["cte_valid"], d["cte_target"], d["lpi_pending"]) == (1, 1, 1, 1, 1)
    assert d["mem_pending"] == 0                                  # 'clear consumed data'
    # a second restore finds the collection already there: -EEXIST
    assert op(dst, "KVM_DEV_ARM_ITS_RESTORE_TABLES") == "EINVAL or EEXIST"


def test_a_baser_write_that_clears_valid_frees_the_mappings():
    m = machine()
    mapped(m)
    write(m, "GITS_BASER1", 0)
    assert (m.state.glob["cte_valid"], m.state.glob["dte_valid"]) == (0, 1)
    write(m, "GITS_BASER0", 0)
    assert (m.state.glob["dte_valid"], m.state.glob["ite_valid"]) == (0, 0)


def test_lpi_tables_bases_are_ignored_once_lpis_are_enabled():
    m = machine()
    write(m, "GICR_PENDBASER", 0x40020000, vcpu=0)
    write(m, "GICR_CTLR", 1, vcpu=0)
    write(m, "GICR_PENDBASER", 0x40030000, vcpu=0)
    assert read(m, "GICR_PENDBASER", vcpu=0) & 0xFFFFF000 == 0x40020000


@pytest.mark.parametrize("kernel, unmapped_clears", [("5.10", False), ("6.1.176", True), ("7.1", True)])
def test_the_unmap_clearing_boundary(kernel, unmapped_clears):
    assert ITS.semantics(kernel).its_clears_unmapped is unmapped_clears


def test_memory_steps_need_a_saved_image(tmp_path: Path):
    f = tmp_path / "no-image.toml"
    f.write_text('name = "x"\ndevice = "gicv3-its"\nreference = "test"\n'
                 '[[save]]\nread = "GITS_CTLR"\n[[restore]]\nop = "restore_memory"\n')
    seq = load(f, DEVICES)
    m = machine()
    saved = run_save(m, seq.save)
    with pytest.raises(MissingSaved, match="save_memory"):
        run_restore(machine(), seq.restore, saved)


@pytest.mark.parametrize("step, message", [
    ('op = "KVM_DEV_ARM_ITS_SAVE_TABLES"\non_error = "ignore"', "on_error must be"),
    ('write = "GITS_CTLR"\non_error = "continue"', "does not apply"),
    ('op = "save_memroy"', "unknown operation 'save_memroy'"),
])
def test_bad_new_keys_are_reported_with_the_line(tmp_path: Path, step: str, message: str):
    f = tmp_path / "bad.toml"
    f.write_text(f'name = "x"\ndevice = "gicv3-its"\nreference = "test"\n[[restore]]\n{step}\n')
    with pytest.raises(SequenceError, match=message) as e:
        load(f, DEVICES)
    assert e.value.line >= 5


def enabled_its(kernel: str = "7.1") -> Machine:
    m = machine(kernel)
    for reg, v in (("GITS_CBASER", CBASER), ("GITS_BASER0", BASER_DT), ("GITS_BASER1", BASER_CT)):
        write(m, reg, v)
    write(m, "GICR_PENDBASER", 0x40020000, vcpu=1)
    write(m, "GICR_CTLR", 1, vcpu=1)
    write(m, "GITS_CTLR", 1)
    assert read(m, "GITS_CTLR") & 1
    return m


@pytest.mark.parametrize("kernel, clears", [("5.10", False), ("7.1", True)])
def test_the_command_queue_maps_triggers_and_unmaps(kernel, clears):
    from models import guest

    m = enabled_its(kernel)
    g = m.state.glob
    guest.its_command(m, "INT")                       # nothing mapped: E_ITS_INT_UNMAPPED_INTERRUPT
    assert g["lpi_pending"] == 0
    guest.its_command(m, "MAPD", 1)
    guest.its_command(m, "MAPC", 5)                   # no vCPU 5: E_ITS_MAPC_PROCNUM_OOR
    assert g["cte_valid"] == 0
    guest.its_command(m, "MAPC", 1)
    guest.its_command(m, "MAPTI")
    guest.its_command(m, "INT")
    assert (g["dte_valid"], g["ite_valid"], g["cte_valid"], g["cte_target"], g["lpi_pending"]) == (1, 1, 1, 1, 1)
    assert m.invariant() == 1
    m.operation("KVM_DEV_ARM_ITS_SAVE_TABLES")
    assert (g["mem_dte"], g["mem_ite"]) == (1, 1)
    guest.its_command(m, "DISCARD")
    assert (g["ite_valid"], g["lpi_pending"], g["mem_ite"]) == (0, 0, 0 if clears else 1)
    guest.its_command(m, "MAPD", 0)
    assert (g["dte_valid"], g["mem_dte"]) == (0, 0 if clears else 1)
    assert m.invariant() == 1


def test_commands_wait_while_the_its_is_disabled():
    from models import guest

    m = enabled_its()
    write(m, "GITS_CTLR", 0)
    guest.its_command(m, "MAPD", 1)
    assert m.state.glob["dte_valid"] == 0
