"""Differential fuzzing of the GICv3 with its ITS (device gicv3-its), as for GICv2
(tests/test_stateful.py): two identical models run the same random guest actions (the
redistributors' LPI registers, the ITS registers, the ITS command queue, LPIs taken, the
LPI configuration table written, the VM paused so its tables are flushed); at random points
one is migrated through a shipped sequence into a fresh model, and from then on both must
agree on the ITS, LPI and redistributor state. The device invariant must hold in every
state the guest reaches (a fuzzed check of what the proofs assume)."""

from __future__ import annotations

import pytest
from helpers import DEVICES, Lockstep, concrete_machine, deep, lost_field_names, migrate_through
from hypothesis import Phase, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    initialize,
    invariant,
    rule,
    run_state_machine_as_test,
)

from models import guest
from models.machine import (
    Machine,
)
from spec.devices import SEQUENCES_DIR

ITS = DEVICES["gicv3-its"]
CPUS, IRQS = 2, 64
DIR = SEQUENCES_DIR / "gicv3-its"
RAM = 0x40000000
VALID = 1 << 63
OBSERVED_GLOBAL = ["its_enabled", "its_cbaser", "its_creadr", "its_cwriter", "its_baser_device", "its_baser_coll",
                   "dte_valid", "ite_valid", "cte_valid", "cte_target", "lpi_pending", "lpi_prop", "propbaser"]
OBSERVED_CPU = ["enable_lpis", "pendbaser"]


def fresh_machine(kernel: str) -> Machine:
    return concrete_machine("gicv3-its", kernel, CPUS, IRQS)


def migrate(m: Machine, seq) -> Machine:
    return migrate_through(m, seq)


def lost_fields(name: str) -> set[str]:
    return lost_field_names(DIR / name)


def observe(m: Machine, ignored: set[str]) -> tuple:
    g = tuple(int(m.state.glob[f]) for f in OBSERVED_GLOBAL if f not in ignored)
    c = tuple(int(cpu[f]) for cpu in m.state.cpu for f in OBSERVED_CPU if f not in ignored)
    return g, c


class ItsComparison(Lockstep):
    sequence_name = "kernel-documented-order-7.1.toml"
    ignored: set[str] = set()

    def sequence_path(self):
        return DIR / self.sequence_name

    def fresh(self, kernel):
        return fresh_machine(kernel)

    def write(self, reg: str, value: int, cpu: int = 0):
        r = ITS.register(reg)
        words = [0, 1] if r.words == 2 else [0]
        for w in words:
            part = (value >> (32 * w)) & 0xFFFFFFFF if r.words == 2 else value
            self.both(lambda m, w=w, part=part: m.write_word(r, w, cpu, part, user=False))

    @initialize(boot=st.sampled_from([True, True, True, False]))
    def guest_boots(self, boot):
        """Mostly, the guest first does what Linux's GICv3 and ITS drivers do at boot: the
        LPI tables' bases and EnableLPIs on every CPU, the command queue and the device and
        collection tables, then the ITS enabled (its_cpu_init_lpis, its_setup_baser,
        its_enable_quirks...)."""
        if not boot:
            return
        self.write("GICR_PROPBASER", (RAM + 0x10000) | (1 << 10) | (3 << 7) | 15)
        for cpu in range(CPUS):
            self.write("GICR_PENDBASER", (RAM + 0x20000 + 0x10000 * cpu) | (1 << 10) | (3 << 7), cpu)
            self.write("GICR_CTLR", 1, cpu)
        for reg, addr in (("GITS_CBASER", 0x60000), ("GITS_BASER0", 0x40000), ("GITS_BASER1", 0x50000)):
            self.write(reg, VALID | (3 << 59) | (RAM + addr) | (1 << 10))
        self.write("GITS_CTLR", 1)

    @rule(cpu=st.integers(0, CPUS - 1), base=st.sampled_from([RAM + 0x20000, RAM + 0x30000]))
    def write_pendbaser(self, cpu, base):
        # a well-behaved guest's pending tables are in RAM (the model's stated choice)
        self.write("GICR_PENDBASER", base | (1 << 10) | (3 << 7), cpu)

    @rule(base=st.sampled_from([0, RAM + 0x10000]))
    def write_propbaser(self, base):
        self.write("GICR_PROPBASER", base | (1 << 10) | (3 << 7) | 15)

    @rule(cpu=st.integers(0, CPUS - 1), enable=st.integers(0, 1))
    def write_gicr_ctlr(self, cpu, enable):
        # a well-behaved guest (Linux's its_cpu_init_lpis) enables LPIs once GICR_PENDBASER
        # points at its pending table: the model's stated choice (spec/gicv3_its.py
        # cross_invariant)
        if enable and not self.a.state.cpu[cpu]["pendbaser"] & 0xFFFFFFFFF000:
            return
        self.write("GICR_CTLR", enable, cpu)

    @rule(reg=st.sampled_from(["GITS_CBASER", "GITS_BASER0", "GITS_BASER1"]), valid=st.booleans(),
          size=st.integers(0, 1))
    def write_its_base(self, reg, valid, size):
        if reg == "GITS_BASER1" and not valid and self.a.state.glob["ite_valid"]:
            # freeing the collections of a mapped event: the state the model leaves out (and
            # KVM_DEV_ARM_ITS_SAVE_TABLES oopses on 5.10.223 and 6.1.176 from it: see
            # tests/test_kernel_oracle.py)
            return
        addr = {"GITS_CBASER": RAM + 0x60000, "GITS_BASER0": RAM + 0x40000, "GITS_BASER1": RAM + 0x50000}[reg]
        self.write(reg, (VALID if valid else 0) | (3 << 59) | addr | (1 << 10) | size)

    @rule(enable=st.integers(0, 1))
    def write_its_ctlr(self, enable):
        self.write("GITS_CTLR", enable)

    @rule(command=st.sampled_from(["MAPD", "MAPC", "MAPC V=0", "MAPTI", "INT", "DISCARD", "SYNC",
                                   "LPI acknowledge"]),
          param=st.integers(0, 2))
    def its_command(self, command, param):
        value = {"MAPD": param % 2, "MAPC": param}.get(command)
        self.both(lambda m: guest.its_command(m, command, value))

    @rule(cpu=st.integers(0, CPUS - 1), trigger=st.booleans())
    def map_event(self, cpu, trigger):
        """What a driver does to use an MSI: MAPD, MAPC, MAPTI (and a device raising it: INT)."""
        def go(m):
            guest.its_command(m, "MAPD", 1)
            guest.its_command(m, "MAPC", cpu)
            guest.its_command(m, "MAPTI")
            if trigger:
                guest.its_command(m, "INT")
        self.both(go)

    @rule(byte=st.sampled_from([0, 0xA1, 0x41]))
    def configure_lpi(self, byte):
        self.both(lambda m: guest.its_command(m, "LPI configuration write", byte))

    @rule()
    def pause(self):
        """The VM stops (a pause, a snapshot): QEMU's stop handlers flush the tables."""
        def go(m):
            for op in ("KVM_DEV_ARM_VGIC_SAVE_PENDING_TABLES", "KVM_DEV_ARM_ITS_SAVE_TABLES"):
                m.operation(op)
        self.both(go)

    @rule()
    def migrate_b(self):
        self.b = migrate(self.b, self.seq)
        self.migrations += 1

    @invariant()
    def reachable_states_satisfy_the_invariant(self):
        assert self.a.invariant() == 1, "the guest reached a state the device invariant excludes"

    @invariant()
    def observations_agree(self):
        assert observe(self.a, self.ignored) == observe(self.b, self.ignored), \
            f"diverged after {self.migrations} migration(s)"


def run(cls, **overrides):
    s = settings(settings(), **overrides) if overrides else settings()
    run_state_machine_as_test(cls, settings=s)


@pytest.mark.parametrize("name", ["kernel-documented-order-7.1.toml", "qemu-current-7.1-fresh.toml"])
def test_sound_its_sequence_agrees(name):
    """The files whose ITS part round-trips (their losses are in GICv3 fields this test does
    not observe) agree with the unmigrated model under random guest actions."""

    class Sound(ItsComparison):
        sequence_name = name
        ignored = lost_fields(name)

    # failures are reported as found (a shrink over whole migrations takes minutes)
    run(Sound, max_examples=None if deep() else 15, phases=[Phase.explicit, Phase.reuse, Phase.generate])


@pytest.mark.parametrize("name", ["memory-after-its-tables-7.1.toml", "no-pending-flush-7.1.toml",
                                  "its-ctlr-first-7.1.toml", "redistributors-after-its-tables-7.1.toml"])
# (qemu-current-5.10-fresh.toml's loss needs a pause, then an unmap, then a migration: too
# rare for this budget; its round trip and tests/test_its.py show it)
def test_lossy_its_sequences_are_found(name):
    """Each file whose round trip loses ITS or LPI state beyond the documented order's: the
    fuzzer reaches such a loss too."""

    class Lossy(ItsComparison):
        sequence_name = name
        ignored = lost_fields("kernel-documented-order-7.1.toml")

    with pytest.raises(AssertionError, match="diverged|refused"):
        run(Lossy, max_examples=200, stateful_step_count=25,
            phases=[Phase.explicit, Phase.reuse, Phase.generate])
