"""GICv3: the model's reset values agree with what the real kernels print (the oracle's
GICv3 probe battery, models/kernel/probes_v3.py, on Debian 5.10.223, 6.1.176, 6.12.117 and
7.2.13), the version boundaries, and the format's GICv3 keys."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

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


# -- ICC_AP<g>R<n>_EL1 follow the vCPU's priority bits, not the host's ---------------------
# vgic.h vgic_v3_max_apr_idx() switches on cpu_if->num_pri_bits, which set_gic_ctlr lowers;
# get/set_gic_ap0r/ap1r (6.1-7.1) and access_gic_aprn (5.10) refuse a higher index: EINVAL.


def apr(m: Machine, g: int, n: int, value: int | None = None, vcpu: int = 0) -> str:
    """The kernel model's answer to a userspace access: '0x..', 'ok' or the errno."""
    from models.kernel.model import user_access

    return user_access(m, GICV3.register(f"ICC_AP{g}R{n}_EL1"), 0, vcpu, value)


def lower_pri_bits(m: Machine, pri_bits: int, vcpu: int = 0) -> None:
    ctlr = GICV3.register("ICC_CTLR_EL1")
    value = (read(m, "ICC_CTLR_EL1", 0, vcpu) & ~(7 << 8)) | pri_bits << 8
    err, _ = m.write_word(ctlr, 0, vcpu, value)
    assert int(err) == 0 and (read(m, "ICC_CTLR_EL1", 0, vcpu) >> 8) & 7 == pri_bits


@pytest.mark.parametrize("kernel", ["5.10", "6.1", "6.12", "7.1"])
def test_aprs_follow_the_vcpus_priority_bits_not_the_hosts(kernel):
    m = machine(kernel, host="gicv3-pri7")
    for g in (0, 1):
        for n in range(4):
            assert apr(m, g, n, 0x10 + n) == "ok" and apr(m, g, n) == f"0x{0x10 + n:x}"
    lower_pri_bits(m, 5)                  # 6 bits: vgic_v3_max_apr_idx() = 1
    for g in (0, 1):
        assert apr(m, g, 0) == "0x10" and apr(m, g, 1) == "0x11"
        for n in (2, 3):
            assert apr(m, g, n) == "EINVAL" and apr(m, g, n, 0) == "EINVAL"
    lower_pri_bits(m, 4)                  # 5 bits: index 0 only
    for g in (0, 1):
        assert apr(m, g, 0, 0x20) == "ok" and apr(m, g, 0) == "0x20"
        for n in (1, 2, 3):
            assert apr(m, g, n) == "EINVAL" and apr(m, g, n, 0) == "EINVAL"
    # the kernel keeps the hidden values (set_gic_ctlr changes num_pri_bits only), and
    # PRIbits cannot be raised again to reach them
    assert [m.state.cpu[0][f"ap0r{n}"] for n in range(4)] == [0x20, 0x11, 0x12, 0x13]
    err, errno = m.write_word(GICV3.register("ICC_CTLR_EL1"), 0, 0, 0x8E00)
    assert int(err) == 1 and errno == "EINVAL" and apr(m, 0, 1) == "EINVAL"
    # the other vCPU is untouched
    assert apr(m, 0, 3, vcpu=1) == "0x0"


def test_a_five_bit_host_refuses_ap_r1_to_r3_whatever_pri_bits_says():
    m = machine("7.1")
    for pri_bits in (4, 2, 0):
        lower_pri_bits(m, pri_bits)
        for g in (0, 1):
            assert apr(m, g, 0, 7) == "ok" and apr(m, g, 0) == "0x7"
            assert all(apr(m, g, n) == "EINVAL" and apr(m, g, n, 1) == "EINVAL" for n in (1, 2, 3))


def test_a_refused_apr_read_fails_the_save_and_the_ideal_save_skips_it():
    """A save that reads ICC_AP0R1_EL1 on a vCPU without it stops there (EINVAL, as QEMU's
    error_abort); the ideal save reads it only where the kernel has it."""
    from models.machine import ideal_save_steps, run_save_checked
    from spec.sequence import Step

    m = machine("7.1", host="gicv3-pri7")
    lower_pri_bits(m, 4)
    res = run_save_checked(m, (Step(0, "read", "ICC_CTLR_EL1"), Step(0, "read", "ICC_AP0R1_EL1")))
    assert res.stopped_at is not None and res.stopped_at.name == "ICC_AP0R1_EL1"
    assert res.outcomes[-1].errno == "EINVAL"
    ideal = run_save_checked(machine("7.1", host="gicv3-pri7"), ideal_save_steps(GICV3))
    assert ideal.stopped_at is None
    m = machine("7.1", host="gicv3-pri7")
    lower_pri_bits(m, 4)
    assert run_save_checked(m, ideal_save_steps(GICV3)).stopped_at is None


@given(host=st.sampled_from(["gicv3", "gicv4.1", "gicv3-pri7"]), pri_bits=st.integers(0, 7),
       aps=st.lists(st.integers(0, 0xFFFFFFFF), min_size=8, max_size=8), data=st.integers(0, 2**64 - 1),
       reg=st.sampled_from([r for r in GICV3.registers if r.group == "KVM_DEV_ARM_VGIC_GRP_CPU_SYSREGS"]))
def test_cpu_sysreg_accessors_agree_on_both_backends(host, pri_bits, aps, data, reg):
    """One semantics, two interpretations (DESIGN.md), for the CPU interface registers and
    their read errors."""
    import z3

    from models.symbolic import SYMBOLIC
    from spec.device import AccessContext

    sem = GICV3.semantics("7.1", host)
    ctx = AccessContext(sem, 2, 64, 0, -1, "", {}, None, True)
    base = make_state(GICV3, sem, Config(1, 64), CONCRETE).cpu[0]
    fields = dict(base, pri_bits=pri_bits)
    for i, name in enumerate(f"ap{g}r{n}" for g in (0, 1) for n in range(4)):
        if name in fields:
            fields[name] = aps[i]
    sym = {k: SYMBOLIC.const(v, GICV3.field_spec(k).width) for k, v in fields.items()}

    def val(t):
        return z3.simplify(t).as_long()

    acc = reg.user_read
    assert val(acc.fn(SYMBOLIC, ctx, sym)) == acc.fn(CONCRETE, ctx, dict(fields))
    if acc.error is not None:
        assert val(acc.error(SYMBOLIC, ctx, sym)) == acc.error(CONCRETE, ctx, dict(fields))
    ce = reg.user_write.fn(CONCRETE, ctx, dict(fields), data)
    se = reg.user_write.fn(SYMBOLIC, ctx, sym, SYMBOLIC.const(data, 64))
    assert {k: val(v) for k, v in se.updates.items()} == dict(ce.updates)
    assert (se.error is None) == (ce.error is None)
    if ce.error is not None:
        assert val(se.error) == ce.error


# -- QEMU's 'switch (num_pri_bits)' in the shipped files ---------------------------------


def _pri7_file(drop_conditional: bool = False):
    """qemu-current-7.1-fresh.toml on a 7-bit host; ``drop_conditional``: as the files were
    before issue 9 (ICC_AP0R0/AP1R0 only, the switch's 'default' case)."""
    import dataclasses

    from spec.devices import SEQUENCES_DIR

    seq = load(SEQUENCES_DIR / "gicv3" / "qemu-current-7.1-fresh.toml", DEVICES)
    seq = dataclasses.replace(seq, host="gicv3-pri7", lost=None)
    if drop_conditional:
        def strip(steps):
            return tuple(dataclasses.replace(s, steps=tuple(i for i in s.steps if i.when is None))
                         if s.action == "each" else s for s in steps)
        seq = dataclasses.replace(seq, save=strip(seq.save), restore=strip(seq.restore))
    return seq


def _prove_assuming(seq, cond):
    import dataclasses

    from proofs.roundtrip import prove_roundtrip
    from spec.device import Assumption

    a = Assumption("t", lambda ops, scope, f: cond(ops, f) if scope == "cpu" else ops.const(1, 1), "test", "test")
    spec = dataclasses.replace(GICV3, assumptions=GICV3.assumptions + (a,))
    return prove_roundtrip(spec, dataclasses.replace(seq, assume=("t",)), cpus=2, irqs=64)


APS = [f"ap{g}r{n}" for g in (0, 1) for n in (1, 2, 3)]


def test_qemus_apr_switch_takes_every_apr_the_vcpus_priority_bits_allow():
    """kvm_arm_gicv3_get/put: 'switch (num_pri_bits) { case 7: ... case 6: ... default: ... }'
    on the saved ICC_CTLR_EL1. From a 7-bit source with 7 bits (PRIbits 6), or with 6 bits
    and AP<g>R2-3 clear, every active priority comes back; the files' old AP<g>R0-only
    steps lost AP<g>R1-3 there."""
    def full(ops, f):
        return ops.eq(f["pri_bits"], ops.const(6, 3))

    def six(ops, f):
        zero = ops.const(0, 32)
        conds = [ops.eq(f["pri_bits"], ops.const(5, 3))] + [ops.eq(f[n], zero) for n in APS if n[-1] in "23"]
        out = conds[0]
        for c in conds[1:]:
            out = ops.and_(out, c)
        return out

    for cond in (full, six):
        assert not set(_prove_assuming(_pri7_file(), cond).labels) & set(APS)
    assert set(APS) <= set(_prove_assuming(_pri7_file(drop_conditional=True), full).labels)


def test_on_a_7_bit_host_only_apr_hidden_by_lowered_priority_bits_are_lost():
    """Without an assumption, AP<g>R<n> is lost only from a source whose ICC_CTLR_EL1.PRIbits
    was lowered below what index n needs: the kernel keeps vgic_ap<g>r[n] but refuses
    userspace the register (vgic_v3_max_apr_idx), so no VMM can save it."""
    from proofs.check import run_sequence

    rep = run_sequence(_pri7_file(), cpus=1, irqs=64)
    hit = [r for r in rep.replays if r.witness.field in APS]
    assert {r.witness.field for r in hit} == set(APS)
    for r in hit:
        n = int(r.witness.field[-1])
        assert r.confirmed and r.source.cpu[0]["pri_bits"] < (5 if n == 1 else 6)
        assert "not run: saved ICC_CTLR_EL1[10:8] is" in r.diverging_note
