"""GICv3: the model's reset values agree with what the real kernels print (the oracle's
GICv3 probe battery, models/kernel/probes_v3.py, on Debian 5.10.223, 6.1.176, 6.12.117 and
7.2.13), the version boundaries, and the format's GICv3 keys."""

from __future__ import annotations

import pytest

from models.concrete import CONCRETE
from models.machine import Config, Machine, make_state
from spec.devices import DEVICES
from spec.sequence import SequenceError, load

GICV3 = DEVICES["gicv3"]


def machine(kernel: str, cpus: int = 2, irqs: int = 64, host: str = "") -> Machine:
    sem = GICV3.semantics(kernel, host)
    cfg = Config(cpus, irqs)
    return Machine(GICV3, sem, cfg, CONCRETE, make_state(GICV3, sem, cfg, CONCRETE))


def read(m: Machine, reg: str, word: int = 0, vcpu: int = 0) -> int:
    return m.read_word(GICV3.register(reg), word, vcpu)


@pytest.mark.parametrize("kernel, iidr, gicr_ctlr, last_typer", [
    ("5.10.223", 0x4B00243B, 0x0, 0x100),   # oracle: rev 2, no IR/CES, no Last for userspace
    ("6.1.176", 0x4B00343B, 0x6, 0x110),
    ("6.12.117", 0x4B00343B, 0x6, 0x110),
    ("7.2.13", 0x4B00343B, 0x6, 0x110),
])
def test_reset_reads_match_the_real_kernels(kernel, iidr, gicr_ctlr, last_typer):
    m = machine(kernel)
    assert read(m, "GICD_IIDR") == iidr
    assert read(m, "GICR_CTLR") == gicr_ctlr
    assert read(m, "GICR_TYPER", 0, 1) == last_typer
    assert read(m, "GICD_CTLR") == 0x50          # ARE_NS | DS
    assert read(m, "ICC_CTLR_EL1") == 0x8C00     # PRIbits 4, IDbits 1, A3V
    assert read(m, "GICD_TYPER2") == 0


def test_typer2_write_errno_follows_the_release():
    """Oracle: a different GICD_TYPER2 after INIT is EINVAL on 5.10-6.12 and EBUSY on 7.2."""
    for kernel, errno in (("6.12", "EINVAL"), ("7.2.13", "EBUSY")):
        m = machine(kernel)
        err, got = m.write_word(GICV3.register("GICD_TYPER2"), 0, 0, 1 << 8)
        assert int(err) == 1 and got == errno
    m = machine("7.1", host="gicv4.1")
    err, _ = m.write_word(GICV3.register("GICD_TYPER2"), 0, 0, 1 << 8)
    assert int(err) == 0 and read(m, "GICD_TYPER2") == 1 << 8


def test_userspace_pending_is_a_full_write_of_the_latch_and_icpendr_is_ignored():
    """Oracle probes e1-e14: the same on all four kernels."""
    m = machine("6.12")
    spend, cpend = GICV3.register("GICD_ISPENDR"), GICV3.register("GICD_ICPENDR")
    m.write_word(spend, 0, 0, 0x100)
    assert read(m, "GICD_ISPENDR") == 0x100
    m.write_word(cpend, 0, 0, 0x100)
    assert read(m, "GICD_ISPENDR") == 0x100      # ICPENDR ignored from userspace
    m.write_word(spend, 0, 0, 0)
    assert read(m, "GICD_ISPENDR") == 0          # a 0 bit clears the latch


def test_icc_ctlr_priority_bits_only_decrease_and_a_failed_write_keeps_the_lower_value():
    m = machine("7.1")
    ctlr = GICV3.register("ICC_CTLR_EL1")
    err, errno = m.write_word(ctlr, 0, 0, 0x8D00)   # PRIbits 5: more than the host's
    assert int(err) == 1 and errno == "EINVAL"
    err, _ = m.write_word(ctlr, 0, 0, 0x0B00)       # PRIbits 3, but A3V flipped: fails late
    assert int(err) == 1 and (read(m, "ICC_CTLR_EL1") >> 8) & 7 == 3


def test_strided_walk_reaches_the_lower_half_of_the_routes():
    reg = GICV3.register("GICD_IROUTER")
    # 64 interrupts: QEMU's offsets 0x6080..0x6100 reach only SPI 32's low word (the rest
    # is the RAZ/WI private block); 128 interrupts: SPIs 32..64 (the last '+ 4' reaches SPI
    # 64's low word), each word twice but the last
    assert GICV3.strided_words(reg, 4, 64) == [(reg, 0)]
    words = GICV3.strided_words(reg, 4, 128)
    assert sorted({i for r, w in words for i in r.word_irqs(w)}) == list(range(32, 65))
    assert len(words) == 129


@pytest.mark.parametrize("step, message", [
    ('write = "GICD_ISENABLER"\nstride = 4', "stride applies to a 64-bit-per-interrupt register"),
    ('write = "GICD_IROUTER"\nstride = 6', "is not a multiple of 4"),
    ('write = "GICD_IROUTER"\nstride = 4\nindex = "0"', "stride and index do not go together"),
    ('write = "GICD_IROUTER"\nstride = 0', "is not a stride"),
])
def test_bad_stride_is_a_clear_error(tmp_path, step, message):
    f = tmp_path / "bad.toml"
    f.write_text(f'name = "x"\ndevice = "gicv3"\nreference = "r"\n\n[[restore]]\n{step}\n')
    with pytest.raises(SequenceError) as e:
        load(f, DEVICES)
    assert message in str(e.value) and e.value.line == 7
