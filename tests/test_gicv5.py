"""The GICv5 IRS (device gicv5-irs, spec/gicv5_irs.py): the shipped files' computed verdicts,
the selector registers, the lifecycle's errnos, the three revisions' IST rules, and the
sequence keys the device brought (value = "index", save-side writes, each = "spi").

A source-only model: nothing here runs a GICv5 IRS (see the module's docstring)."""

from __future__ import annotations

from pathlib import Path

import pytest

from models.concrete import CONCRETE
from models.machine import Config, Machine, expand, make_state, run_restore, run_save
from proofs.check import run_sequence
from proofs.roundtrip import COUNTEREXAMPLE, PROVED
from spec.devices import DEVICES, SEQUENCES_DIR
from spec.sequence import SequenceError, load

IRS = DEVICES["gicv5-irs"]
FILES = sorted((SEQUENCES_DIR / "gicv5-irs").glob("*.toml"))


def machine(kernel: str = "simplified", cpus: int = 2, irqs: int = 32, running: bool = True) -> Machine:
    sem = IRS.semantics(kernel)
    cfg = Config(cpus, irqs)
    m = Machine(IRS, sem, cfg, CONCRETE, make_state(IRS, sem, cfg, CONCRETE))
    if running:
        for name in ("create_vcpus", "create_device", "set_address", "KVM_DEV_ARM_VGIC_CTRL_INIT"):
            assert op(m, name) == "ok"
    return m


def write(m: Machine, reg: str, value: int, user: bool = True) -> str:
    err, errno = m.write_word(IRS.register(reg), 0, 0, value, user)
    return errno if err else "ok"


def read(m: Machine, reg: str) -> int:
    return m.read_word(IRS.register(reg), 0, 0)


def op(m: Machine, name: str) -> str:
    err, errno = m.operation(name)
    return errno if err else "ok"


# --- the shipped files ------------------------------------------------------------------

def test_eight_files_ship():
    assert [f.name for f in FILES] == [
        "merged-qemu.toml", "merged-save-memory-first.toml", "proposed-qemu-lifecycle.toml", "proposed-verbatim.toml", "simplified-qemu-one-of-n.toml",
        "simplified-qemu.toml", "simplified-save-memory-first.toml", "simplified-save-mmio-first.toml"]


@pytest.mark.parametrize("path", FILES, ids=[f.stem for f in FILES])
def test_each_file_gets_the_verdict_it_states(path: Path):
    seq = load(path, DEVICES)
    r = run_sequence(seq)
    assert r.matches, (r.verdict, r.result.labels)
    want = {"merged-qemu": (PROVED, []), "merged-save-memory-first": (PROVED, []),
            "proposed-qemu-lifecycle": (COUNTEREXAMPLE, ["pe_selr", "spi_selr"]),
            "proposed-verbatim": (COUNTEREXAMPLE, ["pe_selr", "spi_selr"]),
            "simplified-qemu-one-of-n": (COUNTEREXAMPLE, ["pe_dps:0->1"]),
            "simplified-qemu": (PROVED, []),
            "simplified-save-memory-first": (COUNTEREXAMPLE, ["lpi_enable:0->1", "lpi_enable:1->0",
                                                              "lpi_pending:0->1", "lpi_pending:1->0"]),
            "simplified-save-mmio-first": (PROVED, [])}[path.stem]
    assert (r.verdict, r.result.labels) == want
    # every counterexample is confirmed on the concrete backend
    assert all(rep.confirmed for rep in r.replays)


# --- selectors ------------------------------------------------------------------------------

def test_pe_cr0_acts_on_the_selected_pe_only():
    m = machine()
    assert write(m, "IRS_PE_SELR", 1) == "ok"
    assert write(m, "IRS_PE_CR0", 0) == "ok"
    assert [c["pe_dps"] for c in m.state.cpu] == [1, 0]
    assert read(m, "IRS_PE_CR0") == 0
    assert write(m, "IRS_PE_SELR", 0) == "ok"
    assert read(m, "IRS_PE_CR0") == 1
    # a selector naming no PE: reads 0, writes ignored
    assert write(m, "IRS_PE_SELR", 7) == "ok"
    assert read(m, "IRS_PE_CR0") == 0
    assert write(m, "IRS_PE_CR0", 0) == "ok"
    assert [c["pe_dps"] for c in m.state.cpu] == [1, 0]


def test_spi_cfgr_acts_on_the_selected_spi_only():
    m = machine()
    assert write(m, "IRS_SPI_SELR", 5) == "ok"
    assert write(m, "IRS_SPI_CFGR", 1, user=False) == "ok"      # the guest sets SPI 5 level
    assert m.state.irq[(-1, 5)]["spi_config"] == 1 and m.state.irq[(-1, 5)]["spi_hm"] == 1
    assert all(f["spi_config"] == 0 for k, f in m.state.irq.items() if k != (-1, 5))
    assert read(m, "IRS_SPI_CFGR") == 1
    assert write(m, "IRS_SPI_SELR", 6) == "ok"
    assert read(m, "IRS_SPI_CFGR") == 0


def test_a_bulk_save_captures_the_selected_pe_only():
    """Read IRS_PE_CR0 once (the bulk save) and write it back: only the PE IRS_PE_SELR
    selects gets its value; a per-PE loop (value = "index") saves every PE's."""
    src = machine()
    src.state.cpu[0]["pe_dps"] = 0
    src.state.cpu[1]["pe_dps"] = 0
    src.state.glob["pe_selr"] = 1
    bulk = load_text('[[save]]\nread = "IRS_PE_SELR"\n[[save]]\nread = "IRS_PE_CR0"\n'
                     '[[restore]]\nwrite = "IRS_PE_SELR"\n[[restore]]\nwrite = "IRS_PE_CR0"\n')
    dst = _migrate(src, bulk)
    assert [c["pe_dps"] for c in dst.state.cpu] == [1, 0]
    loop = load_text('[[save]]\nread = "IRS_PE_SELR"\n[[save]]\neach = "pe"\n'
                     'steps = [ { write = "IRS_PE_SELR", value = "index" }, { read = "IRS_PE_CR0" } ]\n'
                     '[[restore]]\neach = "pe"\n'
                     'steps = [ { write = "IRS_PE_SELR", value = "index" }, { write = "IRS_PE_CR0" } ]\n'
                     '[[restore]]\nwrite = "IRS_PE_SELR"\n')
    dst = _migrate(machine(), loop, src_state=src)
    assert [c["pe_dps"] for c in dst.state.cpu] == [0, 0] and dst.state.glob["pe_selr"] == 1


def test_an_spi_loop_visits_every_spi_in_order():
    seq = load_text('[[restore]]\neach = "spi"\nsteps = [ { write = "IRS_SPI_SELR", value = "index" } ]\n')
    accesses = expand(IRS, seq.restore, Config(1, 32))
    assert [a.index for a in accesses] == list(range(32))
    assert {a.vcpu for a in accesses} == {0}


# --- lifecycle ---------------------------------------------------------------------------

def test_lifecycle_errnos():
    m = machine(running=False)
    assert write(m, "IRS_CR0", 1) == "EBUSY"                       # no register before CTRL_INIT
    assert op(m, "set_address") == "ENXIO"                         # no device
    assert op(m, "create_device") == "ok"
    assert op(m, "create_device") == "EEXIST"
    assert op(m, "KVM_DEV_ARM_VGIC_CTRL_INIT") == "ENXIO"          # no IRS address
    assert op(m, "set_address") == "ok"
    assert op(m, "set_address") == "EEXIST"
    assert op(m, "KVM_DEV_ARM_VGIC_CTRL_INIT") == "ENODEV"         # no vCPU
    assert op(m, "create_vcpus") == "ok"
    assert op(m, "KVM_DEV_ARM_VGIC_CTRL_INIT") == "ok"
    assert op(m, "create_vcpus") == "EBUSY"                        # after INIT
    assert write(m, "IRS_CR0", 1) == "ok"


def test_id_registers_are_checked_on_write():
    m = machine()
    assert write(m, "IRS_IDR5", read(m, "IRS_IDR5")) == "ok"
    assert write(m, "IRS_IDR5", 64) == "EINVAL"                    # 32 SPIs here
    # PE_CNT is ignored
    assert write(m, "IRS_IDR1", read(m, "IRS_IDR1") + 1) == "ok"


def test_statusr_registers_ignore_userspace_writes():
    m = machine()
    before = dict(m.state.glob)
    for reg in ("IRS_SYNC_STATUSR", "IRS_SPI_STATUSR", "IRS_PE_STATUSR", "IRS_IST_STATUSR"):
        assert write(m, reg, 0xFFFFFFFF) == "ok"
    assert m.state.glob == before


# --- the revisions -------------------------------------------------------------------------

CFGR = 14  # LPI_ID_BITS 14, linear, 4-byte entries: valid
BASER = 0x4000_0000 | 1


def test_proposed_the_ist_baser_write_creates_the_lpi_ist_and_needs_the_cfgr_first():
    m = machine("proposed")
    assert write(m, "IRS_IST_BASER", BASER) == "EINVAL"            # CFGR still 0
    assert write(m, "IRS_IST_CFGR", CFGR) == "ok"
    assert write(m, "IRS_IST_BASER", BASER) == "ok"
    assert m.state.glob["lpi_ist"] == 1


def test_simplified_the_ist_restore_allocates_and_sets_the_spi_level():
    m = machine("simplified")
    assert write(m, "IRS_IST_BASER", BASER) == "ok"                # no CFGR needed yet
    assert m.state.glob["lpi_ist"] == 0
    assert op(m, "KVM_DEV_ARM_VGIC_GRP_IST_SET") == "EINVAL"       # ... but by the IST restore
    assert write(m, "IRS_IST_CFGR", CFGR) == "ok"
    m.state.glob["mem_lpi_pending"] = 1
    assert op(m, "KVM_DEV_ARM_VGIC_GRP_IST_SET") == "ok"
    assert m.state.glob["lpi_ist"] == 1 and m.state.glob["lpi_pending"] == 1
    assert op(m, "KVM_DEV_ARM_VGIC_GRP_IST_SET") == "EBUSY"        # an LPI IST already exists
    # the SPI buffer carries HM, which sets KVM's level/edge record (simplified only)
    err, _ = m.write_word(IRS.register("VGIC_SPI_IST"), 0, 0, 0b100)
    assert not err and m.state.irq[(-1, 0)]["spi_config"] == 1
    p = machine("proposed")
    p.write_word(IRS.register("VGIC_SPI_IST"), 0, 0, 0b100)
    assert p.state.irq[(-1, 0)]["spi_hm"] == 1 and p.state.irq[(-1, 0)]["spi_config"] == 0


def test_merged_the_lpi_ist_travels_in_a_buffer_and_pe_cr0_is_wi():
    m = machine("merged")
    assert write(m, "IRS_IST_CFGR", CFGR) == "ok" and write(m, "IRS_IST_BASER", BASER) == "ok"
    assert write(m, "VGIC_LPI_IST", 0b1001) == "EINVAL"            # no LPI IST yet: a non-zero buffer
    assert op(m, "KVM_DEV_ARM_VGIC_GRP_IST_SET") == "ok"            # allocates
    assert write(m, "VGIC_LPI_IST", 0b1001) == "ok"
    assert (m.state.glob["lpi_pending"], m.state.glob["lpi_enable"]) == (1, 1)
    assert op(m, "KVM_DEV_ARM_VGIC_GRP_IST_GET") == "ok"
    assert m.state.glob["mem_lpi_pending"] == 0                    # guest memory is not updated
    assert read(m, "VGIC_LPI_IST") == 0b1001
    assert write(m, "IRS_PE_SELR", 0) == "ok" and write(m, "IRS_PE_CR0", 0) == "ok"
    assert m.state.cpu[0]["pe_dps"] == 1                           # WI
    assert write(m, "VGIC_LPI_IST", 0, ) == "ok"
    assert write(machine("simplified"), "VGIC_LPI_IST", 0) == "ENXIO"   # no LPI buffer before


# --- the sequence keys ----------------------------------------------------------------------

HEAD = 'name = "t"\ndevice = "gicv5-irs"\nreference = "test"\nexpect = "proved"\ndestination = "fresh"\n'


def load_text(body: str, tmp: Path | None = None):
    import tempfile
    d = Path(tempfile.mkdtemp())
    p = d / "t.toml"
    p.write_text(HEAD + body)
    return load(p, DEVICES)


def _migrate(src: Machine, seq, src_state: Machine | None = None) -> Machine:
    source = src_state or src
    saved = run_save(Machine(IRS, source.semantics, source.config, CONCRETE, source.state.copy()), seq.save)
    dst = machine()
    r = run_restore(dst, seq.restore, saved)
    assert r.stopped_at is None
    return dst


@pytest.mark.parametrize("body,msg", [
    ('[[restore]]\nwrite = "IRS_PE_SELR"\nvalue = "index"\n', 'applies only to a step inside an each block'),
    ('[[save]]\nwrite = "IRS_PE_SELR"\n[[restore]]\nwrite = "IRS_CR0"\n', "a save-side write"),
    ('[[save]]\nwrite = "IRS_PE_SELR"\nvalue = "saved"\n[[restore]]\nwrite = "IRS_CR0"\n',
     '"saved" means nothing before the save'),
    ('[[restore]]\neach = "cpu"\nsteps = [ { write = "IRS_CR0" } ]\n', "unknown selector 'cpu' for gicv5-irs: valid: pe, spi"),
    ('[[restore]]\nop = "KVM_DEV_ARM_VGIC_GRP_IST"\n', "unknown operation"),
    ('kernel = "6.12"\n[[restore]]\nwrite = "IRS_CR0"\n', "is not modelled for gicv5-irs: valid: proposed, simplified"),
])
def test_bad_input_is_reported_with_its_line(body, msg):
    with pytest.raises(SequenceError) as e:
        load_text(body)
    assert msg in e.value.message, e.value.message
    assert e.value.line > 0


def test_the_lifecycle_table_and_the_device_operations_agree():
    """spec/lifecycle.py GICV5 is the one source of the lifecycle's rules: the device's
    operations (as_effect over its fields) give, on every assignment of the four flags,
    the errno and the flags that running the table gives."""
    import itertools

    from spec import lifecycle
    from spec.device import errno_of

    keys = list(lifecycle.GICV5.state)
    for name in ("create_vcpus", "create_device", "set_address", "KVM_DEV_ARM_VGIC_CTRL_INIT", "irs_regs"):
        for bits in itertools.product((0, 1), repeat=len(keys)):
            st = {k: bool(b) for k, b in zip(keys, bits, strict=True)}
            want = lifecycle.run(lifecycle.GICV5, st, name, {}, "0.0", {"register": lambda s, a: None})
            eff = lifecycle.as_effect(lifecycle.GICV5, name, CONCRETE, dict(zip(keys, bits, strict=True)))
            got = errno_of(eff) if eff.error else "ok"
            assert got == want, (name, bits)
            if want == "ok":
                assert {k: bool(eff.updates.get(k, b)) for k, b in zip(keys, bits, strict=True)} == st


# --- the invariant obligation ---------------------------------------------------------------

@pytest.mark.parametrize("kernel,breaks", [
    ("proposed", {"userspace write IRS_SPI_CFGR / KVM's level/edge record is the ISTE's HM",
                  "userspace write VGIC_SPI_IST[0] / KVM's level/edge record is the ISTE's HM"}),
    ("simplified", {"userspace write IRS_SPI_CFGR / KVM's level/edge record is the ISTE's HM"}),
    ("merged", set()),
])
def test_the_invariant_breaks_only_where_the_device_documents_it(kernel, breaks):
    """Guest actions (the IRS registers through the guest accessors, the GICv5 events) keep
    the invariant in a running VM; the userspace writes that set one of KVM's two copies of
    an SPI's handling mode (proposed, simplified) are the only breaks, each replayed, and
    the merged ABI has none."""
    import dataclasses

    from proofs.invariant import prove_invariant
    r = prove_invariant(IRS, kernel)
    assert set(r.found) == breaks and all(b.replayed for b in r.breaks)
    assert r.matches and not r.reset_failures
    # an expectation that leaves one out is a mismatch: the obligation can fail
    if breaks:
        fewer = dataclasses.replace(IRS, invariant_breaks={kernel: dict.fromkeys(sorted(breaks)[1:], "")})
        assert not prove_invariant(fewer, kernel).matches


def test_guest_actions_are_taken_in_a_running_vm_only():
    """Without the device's premise a guest write before CTRL_INIT would break "nothing
    before CTRL_INIT": a guest cannot run then, so the obligation does not count it."""
    import dataclasses

    from proofs.invariant import prove_invariant
    r = prove_invariant(dataclasses.replace(IRS, premises=()), "merged")
    assert any(b.conjunct == "nothing before CTRL_INIT" and b.action.startswith("guest write") for b in r.breaks)
    assert prove_invariant(IRS, "merged").breaks == []
