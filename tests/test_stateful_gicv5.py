"""Differential fuzzing of the GICv5 IRS (device gicv5-irs, spec/gicv5_irs.py), as for the
GICv3 ITS (tests/test_stateful_its.py): two identical models of a running VM run the same
random guest actions (the guest programs the LPI IST's configuration and base, enables the
IRS, configures SPIs through IRS_SPI_SELR/IRS_SPI_CFGR and selects PEs through IRS_PE_SELR,
enables, pends, acknowledges and deactivates SPIs and the LPI with the CPU interface's
instructions, and devices drive SPI lines); at random points one is migrated through a
shipped sequence file into a fresh model, and from then on both must agree on the state the
migration must keep (the device's architectural fields). The device invariant, and the
premises of the file's proof (the device's ``running`` and the file's ``assume``), must
hold in every state the guest reaches: a fuzzed check of what the proofs assume.

A source-only model: nothing here runs a GICv5 (spec/gicv5_irs.py's docstring)."""

from __future__ import annotations

import pytest
from helpers import DEVICES, Lockstep, concrete_machine, deep, lost_field_names, migrate_through
from hypothesis import Phase, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    initialize,
    invariant,
    precondition,
    rule,
    run_state_machine_as_test,
)

from models import guest
from models.machine import (
    SPI_BANK,
    Machine,
)
from proofs.invariant import prove_invariant
from spec.device import ARCHITECTURAL
from spec.devices import SEQUENCES_DIR
from spec.gicv5_irs import BASER_MASK, ID_BITS, MIN_LPI_ID_BITS
from spec.sequence import load

IRS = DEVICES["gicv5-irs"]
CPUS, SPIS = 2, 32
DIR = SEQUENCES_DIR / "gicv5-irs"
# a running VM: QEMU's lifecycle before the guest runs, the restore's first steps in every
# shipped file (seed 003 L137-L141: 'a) Create VCPUs b) Create GIC, supply GIC base
# address c) Init GIC'; models/machine.py Machine.operation)
SETUP = ("create_vcpus", "create_device", "set_address", "KVM_DEV_ARM_VGIC_CTRL_INIT")
# What the migration must keep: the architectural fields (spec/device.py: 'must survive
# migration'); the environment (the lifecycle flags) and the derived fields (whether KVM
# has allocated the host LPI IST, the LPI's copy in guest memory) are not state to compare.
OBSERVED = {scope: [f.name for f in IRS.fields if f.classification == ARCHITECTURAL and f.scope == scope]
            for scope in ("global", "cpu", "irq")}
# the SPIs the guest acts on (every SPI's ISTE is compared): the first, two others, and the
# last, which the proposed restore's per-SPI loop leaves selected (seed 003 L183-L185)
GUEST_SPIS = [0, 1, 17, SPIS - 1]
# out-of-range selector values: the first ID past the VM's SPIs / vCPUs, and the reset -1
# (spec/gicv5_irs.py reset: 'selectors -1')
BAD_SPI_IDS = [SPIS, (1 << 24) - 1]
BAD_PE_IDS = [CPUS, (1 << 16) - 1]
RAM = 0x40000000
IST_ADDRS = [RAM + 0x100000, RAM + 0x200000]  # 64-byte aligned: IRS_IST_BASER.ADDR[55:6]
# IRS_IST_CFGR: STRUCTURE[16], ISTSZ[8:7], L2SZ[6:5], LPI_ID_BITS[4:0]; a linear IST of 4-byte
# entries with LPI_ID_BITS in [MIN_LPI_ID_BITS, ID_BITS] is the one KVM accepts
# (spec/gicv5_irs.py cfgr_valid, FACTS §2.6 vgic_v5_ist_cfgr_valid)
VALID_CFGRS = [bits for bits in range(MIN_LPI_ID_BITS, ID_BITS + 1)]
INVALID_CFGRS = [MIN_LPI_ID_BITS - 1, ID_BITS + 1, (1 << 16) | ID_BITS, (1 << 7) | ID_BITS]
SPI_EVENTS = ["GIC CDEN", "GIC CDDIS", "GIC CDPEND", "GICR CDIA", "GIC CDDI", "GIC CDAFF IRM"]
LPI_EVENTS = ["GIC CDEN LPI", "GIC CDDIS LPI", "GIC CDPEND LPI", "GICR CDIA LPI"]


def fresh_machine(kernel: str) -> Machine:
    return concrete_machine("gicv5-irs", kernel, CPUS, SPIS)


def migrate(m: Machine, seq) -> Machine:
    # a fresh destination (every file's destination = "fresh"): an incoming QEMU process
    # whose restore creates the vCPUs and the VGICv5 itself
    return migrate_through(m, seq)


def lost_fields(name: str) -> set[str]:
    return lost_field_names(DIR / name)


def observe(m: Machine, ignored: set[str]) -> tuple:
    st_ = m.state
    g = tuple((f, int(st_.glob[f])) for f in OBSERVED["global"] if f not in ignored)
    c = tuple((cpu, f, int(fields[f])) for cpu, fields in st_.cpu.items() for f in OBSERVED["cpu"] if f not in ignored)
    i = tuple((intid, f, int(fields[f])) for (bank, intid), fields in st_.irq.items() if bank == SPI_BANK
              for f in OBSERVED["irq"] if f not in ignored)
    return g, c, i


def unmet(m: Machine, names) -> list[str]:
    """The assumptions of ``names`` (spec/device.py Assumption: a condition on each scope's
    fields) that some scope of ``m`` does not meet."""
    scopes = [("global", m.state.glob)] + [("cpu", f) for f in m.state.cpu] + \
             [("irq", f) for f in m.state.irq.values()]
    return [name for name in names
            if not all(int(IRS.assumption(name).fn(m.ops, scope, f)) for scope, f in scopes)]


class IrsComparison(Lockstep):
    sequence_name = "simplified-qemu.toml"
    ignored: set[str] = set()
    # a guest that has not opted out of 1-of-N selection: IRS_PE_CR0.DPS = 0 on some PE
    # (seed 003 L204-L206) and SPIs routed 1-of-N (ISTE.IRM = 1); off for the files that
    # assume "no-one-of-n" (the simplification's premise, L206-L209)
    one_of_n = False

    def sequence_path(self):
        return DIR / self.sequence_name

    def fresh(self, kernel):
        return fresh_machine(kernel)

    def write(self, reg: str, value: int, cpu: int = 0):
        """A guest write (the table's guest accessor): one access of the register's width
        (spec/gicv5_irs.py _row: IRS_IST_BASER is one 64-bit access)."""
        r = IRS.register(reg)
        self.both(lambda m: m.write_word(r, 0, cpu, value, user=False))

    def event(self, name: str, intid: int = -1, param: int | None = None):
        self.both(lambda m: guest.irs_event(m, name, intid, param))

    def dps(self, want: int) -> int:
        """The DPS a guest writes: Linux opts every PE out of 1-of-N (gicv5_irs_register_cpu:
        'cr0 = FIELD_PREP(GICV5_IRS_PE_CR0_DPS, 0x1)'); a 1-of-N guest may write 0."""
        return want if self.one_of_n else 1

    @initialize(boot=st.sampled_from([True, True, True, False]), cr1=st.integers(0, 0xFFFF),
                lpi_id_bits=st.sampled_from(VALID_CFGRS), last_pe=st.integers(0, CPUS - 1),
                dps=st.lists(st.integers(0, 1), min_size=CPUS, max_size=CPUS),
                levels=st.lists(st.integers(0, 1), min_size=len(GUEST_SPIS), max_size=len(GUEST_SPIS)))
    def vm_runs(self, boot, cr1, lpi_id_bits, last_pe, dps, levels):
        """The VM is set up and runs (the device's premise 'running'). Mostly, the guest
        first does what Linux's GICv5 IRS driver does at boot (drivers/irqchip/irq-gic-v5-irs.c):
        gicv5_irs_init_bases writes IRS_CR1 and IRS_CR0.IRSEN, gicv5_irs_init_ist_linear
        IRS_IST_CFGR then IRS_IST_BASER (VALID), and each CPU's gicv5_irs_register_cpu writes
        IRS_PE_SELR with its IAFFID then IRS_PE_CR0 (the last CPU up stays selected). Linux's
        IPIs are LPIs (gicv5_ipi_send_single pends its LPI with GIC CDPEND), requested and so
        enabled at boot: the representative LPI is one, enabled with GIC CDEN. Device drivers
        request their SPIs: gicv5_spi_irq_set_type (IRS_SPI_SELR, IRS_SPI_CFGR.TM), then
        the unmask, GIC CDEN (gicv5_iri_irq_unmask)."""
        def setup(m):
            for op in SETUP:
                err, errno = m.operation(op)
                assert not err, f"{op}: {errno}"
        self.both(setup)
        if not boot:
            return
        self.write("IRS_CR1", cr1)
        self.write("IRS_CR0", 1)
        self.write("IRS_IST_CFGR", lpi_id_bits)
        self.write("IRS_IST_BASER", IST_ADDRS[0] | 1)
        for pe in [p for p in range(CPUS) if p != last_pe] + [last_pe]:
            self.write("IRS_PE_SELR", pe)
            self.write("IRS_PE_CR0", self.dps(dps[pe]))
        self.event("GIC CDEN LPI")
        for spi, level in zip(GUEST_SPIS, levels, strict=True):
            self.configure_spi(spi, level)
            self.event("GIC CDEN", spi)

    # --- the guest's IRS register writes ------------------------------------------------

    @rule(cfgr=st.sampled_from(VALID_CFGRS + INVALID_CFGRS))
    def write_ist_cfgr(self, cfgr):
        # ignored while IRS_IST_BASER is valid (FACTS §2.6); an invalid one makes a later
        # VALID 0->1 write of IRS_IST_BASER be dropped
        self.write("IRS_IST_CFGR", cfgr)

    @rule(valid=st.booleans(), addr=st.sampled_from(IST_ADDRS))
    def write_ist_baser(self, valid, addr):
        # VALID 0->1 allocates the host LPI IST under a valid IRS_IST_CFGR, 1->0 frees it,
        # 1->1 is ignored (FACTS §2.6)
        self.write("IRS_IST_BASER", (addr | int(valid)) & BASER_MASK)

    @rule(irsen=st.integers(0, 1))
    def write_cr0(self, irsen):
        self.write("IRS_CR0", irsen)

    @rule(value=st.integers(0, 0xFFFF))
    def write_cr1(self, value):
        self.write("IRS_CR1", value)

    @rule(spi=st.sampled_from(GUEST_SPIS), level=st.integers(0, 1))
    def configure_spi(self, spi, level):
        """What Linux's gicv5_spi_irq_set_type does: IRS_SPI_SELR, then IRS_SPI_CFGR.TM
        (1 level, 0 edge). The handling mode changes only so: the IRS_SPI_CFGR write sets
        KVM's record and the ISTE's HM together (spec/gicv5_irs.py _spi_cfgr_wr)."""
        self.write("IRS_SPI_SELR", spi)
        self.write("IRS_SPI_CFGR", level)

    @rule(spi=st.sampled_from(GUEST_SPIS + BAD_SPI_IDS))
    def select_spi(self, spi):
        self.write("IRS_SPI_SELR", spi)

    @rule(level=st.integers(0, 1))
    def write_spi_cfgr(self, level):
        # acts on the SPI IRS_SPI_SELR selects (none: ignored, FACTS §2.6)
        self.write("IRS_SPI_CFGR", level)

    @rule(pe=st.sampled_from(list(range(CPUS)) + BAD_PE_IDS))
    def select_pe(self, pe):
        self.write("IRS_PE_SELR", pe)

    @rule(dps=st.integers(0, 1))
    def write_pe_cr0(self, dps):
        # acts on the PE IRS_PE_SELR selects (none: ignored); WI in the merged revision
        self.write("IRS_PE_CR0", self.dps(dps))

    # --- SPIs: the CPU interface's instructions, and devices' lines ---------------------

    @rule(name=st.sampled_from(SPI_EVENTS), spi=st.sampled_from(GUEST_SPIS), bit=st.integers(0, 1))
    def spi_instruction(self, name, spi, bit):
        if name == "GIC CDAFF IRM" and not self.one_of_n:
            bit = 0  # targeted routing only (no-one-of-n: ISTE.IRM = 0)
        self.event(name, spi, bit)

    @rule(spi=st.sampled_from(GUEST_SPIS), level=st.integers(0, 1))
    def spi_line(self, spi, level):
        """A device raises or lowers the SPI's line (KVM_IRQ_LINE: models/guest.py gicv5_line)."""
        self.event("line", spi, level)

    @rule(spi=st.sampled_from(GUEST_SPIS))
    def spi_interrupt(self, spi):
        """A device raises the SPI's line and the guest takes it (GICR CDIA in Linux's
        gicv5_handle_irq): the SPI is active while its handler runs (the VM may stop there)."""
        self.event("line", spi, 1)
        self.event("GICR CDIA", spi)

    @rule(spi=st.sampled_from(GUEST_SPIS))
    def spi_handled(self, spi):
        """The handler has served the device, which lowers its line, and ends the SPI: GIC
        CDDI (the SPI's irq_eoi, gicv5_hwirq_eoi)."""
        self.event("line", spi, 0)
        self.event("GIC CDDI", spi)

    # --- the LPI (only while its host LPI IST exists: no LPI state without one) ---------

    @precondition(lambda self: self.a.state.glob["lpi_ist"] == 1)
    @rule(name=st.sampled_from(LPI_EVENTS), bit=st.integers(0, 1))
    def lpi_instruction(self, name, bit):
        self.event(name, param=bit)

    @precondition(lambda self: self.a.state.glob["lpi_ist"] == 1)
    @rule()
    def ipi(self):
        """Another CPU sends the IPI (Linux gicv5_ipi_send_single: GIC CDPEND with PENDING on
        its LPI, gicv5_lpi_irq_write_pending_state)."""
        self.event("GIC CDPEND LPI", param=1)

    # --- migration ----------------------------------------------------------------------

    @rule()
    def migrate_b(self):
        self.b = migrate(self.b, self.seq)
        self.migrations += 1

    @invariant()
    def reachable_states_satisfy_the_invariant(self):
        assert self.a.invariant() == 1, "the guest reached a state the device invariant excludes"
        assert self.b.invariant() == 1, "a migrated VM is in a state the device invariant excludes"

    @invariant()
    def reachable_states_meet_the_premises(self):
        # what every proof of this file assumes of the source: the device's premises and
        # the file's own assumptions (a guest that breaks them is not what it proves)
        names = list(IRS.premises) + list(self.seq.assume)
        assert unmet(self.a, names) == [], f"the guest left the proof's premises: {unmet(self.a, names)}"
        assert unmet(self.b, names) == [], f"a migrated VM left the proof's premises: {unmet(self.b, names)}"

    @invariant()
    def observations_agree(self):
        oa, ob = observe(self.a, self.ignored), observe(self.b, self.ignored)
        if oa != ob:
            diff = [x for part in (0, 1, 2) for x, y in zip(oa[part], ob[part], strict=True) if x != y]
            raise AssertionError(f"diverged after {self.migrations} migration(s): unmigrated {diff}")


def run(cls, **overrides):
    s = settings(settings(), **overrides) if overrides else settings()
    run_state_machine_as_test(cls, settings=s)


SOUND = ["simplified-qemu.toml", "simplified-save-mmio-first.toml", "merged-qemu.toml",
         "merged-save-memory-first.toml"]


@pytest.mark.parametrize("name", SOUND)
def test_sound_irs_sequence_agrees(name):
    """The files proved sound (expect = "proved") agree with the unmigrated model under
    random guest actions. The guest is as general as a file's assume allows: under
    "no-one-of-n" (the simplified files) it opts every PE out of 1-of-N and routes no SPI
    1-of-N, which the premises check confirms on every state; the merged files assume
    nothing, so their guest writes DPS = 0 (IRS_PE_CR0 is WI there) and routes SPIs 1-of-N."""
    seq = load(DIR / name, DEVICES)
    assert seq.expect == "proved"

    class Sound(IrsComparison):
        sequence_name = name
        ignored = lost_fields(name)
        one_of_n = "no-one-of-n" not in seq.assume

    # failures are reported as found (a shrink over whole migrations takes minutes)
    run(Sound, max_examples=None if deep() else 30, phases=[Phase.explicit, Phase.reuse, Phase.generate])


LOSSY = ["simplified-save-memory-first.toml", "simplified-qemu-one-of-n.toml", "proposed-verbatim.toml",
         "proposed-qemu-lifecycle.toml"]


@pytest.mark.parametrize("name", LOSSY)
def test_lossy_irs_sequences_are_found(name):
    """Each file whose round trip loses state (expect = "counterexample": the LPI's ISTE
    saved from guest memory before the IST save wrote it; a 1-of-N opt-out of a PE not
    selected at the save; the guest's selectors overwritten by the per-PE and per-SPI
    loops): the fuzzer reaches such a loss too. It compares what the sound
    simplified-qemu.toml keeps, so the file's loss is not ignored. The guest is as general
    as the file's assume allows (simplified-qemu-one-of-n.toml's loss needs a 1-of-N guest)."""
    seq = load(DIR / name, DEVICES)
    assert seq.expect == "counterexample" and seq.lost

    class Lossy(IrsComparison):
        sequence_name = name
        ignored = lost_fields("simplified-qemu.toml")
        one_of_n = "no-one-of-n" not in seq.assume

    with pytest.raises(AssertionError, match="diverged|refused") as found:
        run(Lossy, max_examples=200, stateful_step_count=20,
            phases=[Phase.explicit, Phase.reuse, Phase.generate])
    # the loss found is the file's (its divergence names a field of its lost key)
    assert any(f"'{f}'" in str(found.value) for f in lost_fields(name)), str(found.value)


@pytest.mark.parametrize("kernel", list(IRS.versions))
def test_the_guest_events_keep_the_invariant(kernel):
    """The GICv5 guest and device events (models/guest.py GICV5_EVENTS) keep every conjunct
    of the device invariant from any state satisfying it (proofs/invariant.py's step, on
    Z3 terms): the fuzzer's events cannot make it reach an excluded state. (The invariant
    as a whole is not this device's obligation, spec/gicv5_irs.py obligations = ("graph",):
    a guest write before CTRL_INIT breaks "nothing before CTRL_INIT", and a userspace
    IRS_SPI_CFGR write (proposed: also VGIC_SPI_IST) "KVM's level/edge record is the ISTE's
    HM"; those actions are register writes, not events.)"""
    events = [e.name for e in guest.events_for(IRS.name)]
    assert events == [e.name for e in guest.GICV5_EVENTS]
    r = prove_invariant(IRS, kernel)
    assert r.actions > 0 and not r.unknown_reason
    by_events = [b for b in r.breaks if not b.action.startswith(("guest write", "userspace"))]
    assert by_events == [], [(b.action, b.conjunct) for b in by_events]
