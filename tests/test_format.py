"""The sequence-format keys added for real VMMs (vcpu, cpus/irqs, save-side checks,
assumptions, registers by offset): what they mean, and clean errors (file, the key's
line, what would be valid; exit 2) for bad values."""

from __future__ import annotations

import dataclasses

import pytest
from helpers import DEVICES, GICV2, GICV2_DIR, shipped

from proofs.cli import main, run_sequence
from proofs.roundtrip import COUNTEREXAMPLE, PROVED, REFUSED, UNKNOWN, prove_roundtrip
from spec.device import Assumption
from spec.sequence import SequenceError, load

HEAD = '''name = "t"
device = "gicv2"
kernel = "6.12"
expect = "counterexample"
why = "test"
'''


def write(tmp_path, text, name="t.toml"):
    p = tmp_path / name
    p.write_text(text)
    return p


BAD = [
    ("cpus = 0\n", "cpus", "is not a configuration gicv2 accepts"),
    ("cpus = 9\n", "cpus", "is not a configuration gicv2 accepts"),
    ('cpus = "3..1"\n', "cpus", "is not a configuration"),
    ('cpus = "many"\n', "cpus", "must be a number or a range"),
    ("irqs = 100\n", "irqs", "in steps of 32"),
    ('irqs = "64..2048"\n', "irqs", "is not a configuration"),
    ('assume = ["nope"]\n', "assume", "unknown assumption 'nope'"),
    ('assume = "no-held-lines"\n', "assume", "must be a list"),
]


@pytest.mark.parametrize("line,key,msg", BAD, ids=[b[0].strip() for b in BAD])
def test_bad_top_level_keys(tmp_path, line, key, msg):
    p = write(tmp_path, HEAD + line + '[[restore]]\nwrite = "GICD_CTLR"\n')
    with pytest.raises(SequenceError) as e:
        load(p, DEVICES)
    assert e.value.line == 6 and msg in e.value.message, e.value.message


STEP_BAD = [
    ('write = "GICC_CTLR"\nvcpu = 8\n', 2, "is not a vCPU of gicv2: 0..7"),
    ('write = "GICC_CTLR"\nvcpu = -1\n', 2, "is not a vCPU"),
    ('op = "KVM_DEV_ARM_VGIC_CTRL_INIT"\nvcpu = 0\n', 2, "vcpu applies to a register access"),
    ("write = 0x20000\n", 1, "is not an offset"),
    ('write = 0x100\ngroup = "KVM_DEV_ARM_VGIC_GRP_NOPE"\n', 2, "group must be one of"),
    ('write = "GICD_CTLR"\ngroup = "KVM_DEV_ARM_VGIC_GRP_DIST_REGS"\n', 2, "group applies to a register named by its offset"),
    ('write = 0x104\nindex = "1"\n', 2, "index does not apply"),
]


@pytest.mark.parametrize("step,offset,msg", STEP_BAD, ids=[b[0].replace("\n", " ") for b in STEP_BAD])
def test_bad_step_keys(tmp_path, step, offset, msg):
    p = write(tmp_path, HEAD + "[[restore]]\n" + step)
    with pytest.raises(SequenceError) as e:
        load(p, DEVICES)
    assert e.value.line == 6 + offset and msg in e.value.message, (e.value.line, e.value.message)


@pytest.mark.parametrize("step,msg", [
    ('check = "GICD_IGROUPR"\n', "a save-side check needs the value it expects"),
    ('check = "GICD_IGROUPR"\nvalue = "saved"\n', '"saved" means nothing before the save'),
    # a save-side write (a selector before its data register) takes a given value
    ('write = "GICD_IGROUPR"\n', "a save-side write (a selector set before its data register is read) needs its value"),
    ('write = "GICD_IGROUPR"\nvalue = "saved"\n', '"saved" means nothing before the save'),
])
def test_bad_save_checks(tmp_path, step, msg):
    p = write(tmp_path, HEAD + "[[save]]\n" + step + '[[restore]]\nwrite = "GICD_CTLR"\n')
    with pytest.raises(SequenceError) as e:
        load(p, DEVICES)
    assert msg in e.value.message


def test_bad_key_through_the_cli(tmp_path, capsys):
    p = write(tmp_path, HEAD + "cpus = 9\n[[restore]]\nwrite = \"GICD_CTLR\"\n")
    assert main(["prove", str(p)]) == 2
    err = capsys.readouterr().err
    assert f"{p}:6:" in err and "Traceback" not in err
    assert main(["prove", str(GICV2_DIR / "qemu-current-6.12.toml"), "--assume", "nope"]) == 2
    assert "declares no-held-lines" in capsys.readouterr().err


def test_a_register_named_by_offset_is_that_register(tmp_path):
    """`write = 0x104` is GICD_ISENABLER word 1: the same verdict as naming it."""
    named = write(tmp_path, HEAD + 'cpus = 1\nirqs = 64\n[[restore]]\nwrite = "GICD_ISENABLER"\nindex = "1"\n', "a.toml")
    offset = write(tmp_path, HEAD + 'cpus = 1\nirqs = 64\n[[restore]]\nwrite = 0x104\n', "b.toml")
    a, b = run_sequence(load(named, DEVICES)), run_sequence(load(offset, DEVICES))
    assert a.result.labels == b.result.labels and a.verdict == b.verdict == COUNTEREXAMPLE
    assert load(offset, DEVICES).restore[0].describe() == "write DIST_REGS+0x104 (GICD_ISENABLER) = saved"


def test_an_offset_with_no_register_reads_as_zero_and_ignores_writes(tmp_path):
    """vgic_uaccess_read/write find no region there and succeed (the oracle saw it on
    5.10.223 and 7.2.13): a write to it restores nothing, a check of it compares zero."""
    p = write(tmp_path, HEAD.replace("counterexample", "refused") + 'assume = ["no-held-lines"]\n'
              '[[restore]]\nwrite = 0x0FFC\nvalue = "ones"\n[[restore]]\ncheck = 0x0FFC\nvalue = 1\n')
    seq = load(p, DEVICES)
    assert seq.restore[0].unmapped and seq.restore[0].describe() == "write DIST_REGS+0xffc (no register) = ones"
    rep = run_sequence(seq, cpus=1, irqs=64)
    assert rep.verdict == REFUSED and rep.result.labels == ["refused:DIST_REGS+0xffc (no register)"]
    r = rep.replays[0]
    assert r.confirmed and r.failed_at.action == "check" and "vgic_uaccess_read" in r.rule_source


def test_a_vcpu_the_vm_does_not_have_fails_with_einval(tmp_path):
    p = write(tmp_path, HEAD.replace("counterexample", "refused") + 'cpus = 2\nassume = ["no-held-lines"]\n'
              '[[restore]]\nwrite = "GICC_PMR"\nvcpu = 3\n')
    rep = run_sequence(load(p, DEVICES))
    assert rep.verdict == REFUSED and rep.result.labels == ["refused:GICC_PMR"]
    assert rep.replays[0].errno == "EINVAL" and "vgic_v2_parse_attr" in rep.replays[0].rule_source


def test_vcpu_inside_a_loop_sends_every_cpu_to_one_bank():
    seq = shipped("qemu-with-iidr-6.12.toml")
    loop = seq.restore[-1]
    wrong = dataclasses.replace(loop, steps=tuple(dataclasses.replace(s, vcpu=0) for s in loop.steps))
    bad = dataclasses.replace(seq, restore=seq.restore[:-1] + (wrong,),
                              assume=("no-held-lines", "no-active-sgi-source", "no-mapped-destination"), lost=None)
    r = prove_roundtrip(GICV2, bad, cpus=2)
    assert {"ctlr", "pmr", "apr"} <= set(r.labels)
    assert prove_roundtrip(GICV2, bad, cpus=1).verdict == PROVED  # one CPU: nothing to confuse


def test_the_files_configuration_is_what_the_verdict_covers():
    seq = dataclasses.replace(shipped("qemu-with-iidr-6.12.toml"), cpus=(2, 3), irqs=(128,))
    r = prove_roundtrip(GICV2, seq)
    assert r.covers.startswith("2-3 CPU(s) x 128 interrupts (the file's configuration)")
    # the command line overrides it
    assert prove_roundtrip(GICV2, seq, cpus=1, irqs=64).covers.startswith("1 CPU(s) x 64 interrupts")


def test_assumptions_are_checked_satisfiable():
    """An assumption no state satisfies makes a vacuous proof: UNKNOWN, never PROVED."""
    never = Assumption("never", lambda ops, scope, f: ops.const(0, 1), "test", "test")
    spec = dataclasses.replace(GICV2, assumptions=GICV2.assumptions + (never,))
    seq = dataclasses.replace(shipped("qemu-with-iidr-6.12.toml"), assume=("never",))
    r = prove_roundtrip(spec, seq, cpus=1, irqs=64)
    assert r.verdict == UNKNOWN and "vacuous" in r.unknown_reason


def test_no_held_lines_assumption_from_the_file_and_the_cli(capsys):
    f = str(GICV2_DIR / "qemu-with-iidr-6.12.toml")
    assert main(["prove", f, "--assume", "no-held-lines", "--assume", "no-active-sgi-source",
                 "--assume", "no-mapped-destination",
                 "--cpus", "1", "--irqs", "64"]) == 0
    out = capsys.readouterr().out
    assert "round trip: PROVED" in out and "assumes (checked satisfiable with the invariant): no-held-lines" in out
    assert "expectation: not compared" in out


def test_an_unaligned_offset_is_no_register(tmp_path):
    """The kernel finds no region at 0x101 (vgic_uaccess) and reads zero / ignores the
    write, as at an unknown offset; the oracle saw it (tests/test_conform.py)."""
    p = write(tmp_path, HEAD + 'cpus = 1\nirqs = 64\n[[restore]]\nwrite = 0x101\n')
    step = load(p, DEVICES).restore[0]
    assert step.unmapped and step.describe() == "write DIST_REGS+0x101 (no register) = saved"


def test_host_keys_are_checked(tmp_path):
    p = write(tmp_path, HEAD.replace('kernel = "6.12"', 'kernel = "6.12"\nhost = "gicv4"')
              + '[[restore]]\nwrite = "GICD_CTLR"\n')
    with pytest.raises(SequenceError) as e:
        load(p, DEVICES)
    assert "gicv2, gicv3, gicv3-pri6, gicv3-pri7" in e.value.message


def test_a_write_to_gicd_sgir_is_refused_as_not_modelled(tmp_path):
    """A userspace GICD_SGIR write sends an SGI (the oracle saw it); the table cannot say
    that yet, so such a file is refused rather than given RAZ/WI; a read is fine (RAZ)."""
    p = write(tmp_path, HEAD + '[[restore]]\nwrite = 0xF00\n')
    with pytest.raises(SequenceError) as e:
        load(p, DEVICES)
    assert e.value.line == 7 and "vgic_mmio_write_sgir" in e.value.message
    ok = write(tmp_path, HEAD + '[[save]]\nread = 0xF00\n[[restore]]\nwrite = "GICD_CTLR"\n', "ok.toml")
    assert load(ok, DEVICES).save[0].unmapped


# -- when: steps conditional on a saved or read value (issue 9) ---------------------------

HEAD3 = 'name = "t"\ndevice = "gicv3"\nkernel = "7.1"\nexpect = "counterexample"\nwhy = "test"\n'  # lines 1-5
CBPR_SET = 'when = { saved = "ICC_CTLR_EL1", bits = "0", in = [1] }'


def test_a_conditional_step_describes_its_condition(tmp_path):
    p = write(tmp_path, HEAD3 + '[[restore]]\nwrite = "ICC_PMR_EL1"\n' + CBPR_SET + "\n")
    step = load(p, DEVICES).restore[0]
    assert step.when is not None and (step.when.source, step.when.hi, step.when.lo, step.when.values) == \
        ("saved", 0, 0, (1,))
    assert step.describe() == "write ICC_PMR_EL1 = saved (when saved ICC_CTLR_EL1[0] in {1})"


def _pmr_file(tmp_path, when: str, name: str = "t.toml"):
    return write(tmp_path, HEAD3 + 'cpus = 1\nirqs = 64\ndestination = "any"\n'
                 '[[save]]\neach = "cpu"\nsteps = [ { read = "ICC_CTLR_EL1" }, { read = "ICC_PMR_EL1" } ]\n'
                 f'[[restore]]\neach = "cpu"\nsteps = [ {{ write = "ICC_PMR_EL1", {when} }} ]\n', name)


def test_a_condition_is_decided_per_state_in_the_proof(tmp_path):
    """Writing ICC_PMR_EL1 only when the saved CBPR is 1 loses PMR exactly in the states
    where CBPR is 0 (the witness shows it, and replays); with every value listed the
    step always runs and PMR comes back."""
    rep = run_sequence(load(_pmr_file(tmp_path, CBPR_SET), DEVICES))
    assert "pmr" in rep.result.labels
    pmr = next(r for r in rep.replays if r.witness.label == "pmr")
    assert pmr.confirmed and pmr.source.cpu[0]["cbpr"] == 0
    assert "not run: saved ICC_CTLR_EL1[0] is 0, not one of {1}" in pmr.diverging_note
    always = run_sequence(load(_pmr_file(tmp_path, CBPR_SET.replace("[1]", "[0, 1]"), "b.toml"), DEVICES))
    assert "pmr" not in always.result.labels
    never = run_sequence(load(_pmr_file(tmp_path, 'when = { read = "ICC_CTLR_EL1", bits = "15", in = [0] }',
                                        "c.toml"), DEVICES))
    assert "pmr" in never.result.labels  # A3V reads 1 on every host kind: the step never runs


def test_a_skipped_save_read_keeps_zero_and_a_read_condition_reads_the_machine():
    from models.concrete import CONCRETE
    from models.machine import Config, Machine, make_state, run_save_checked
    from spec.sequence import Condition, Step

    gicv3 = DEVICES["gicv3"]
    sem = gicv3.semantics("7.1")
    m = Machine(gicv3, sem, Config(1, 64), CONCRETE, make_state(gicv3, sem, Config(1, 64), CONCRETE))
    m.state.cpu[0]["pmr"] = 0xA0
    skip = Condition("read", "ICC_CTLR_EL1", 10, 8, (6,))   # PRIbits is 4 on this host
    run = Condition("read", "ICC_CTLR_EL1", 10, 8, (4,))
    res = run_save_checked(m, (Step(0, "read", "ICC_PMR_EL1", when=skip),))
    assert res.saved[("ICC_PMR_EL1", 0, 0)] == 0 and res.outcomes[0].skipped
    res = run_save_checked(m, (Step(0, "read", "ICC_PMR_EL1", when=run),))
    assert res.saved[("ICC_PMR_EL1", 0, 0)] == 0xA0 and not res.outcomes[0].skipped


def test_a_condition_on_a_value_the_save_did_not_read_is_an_error(tmp_path, capsys):
    p = write(tmp_path, HEAD3 + 'cpus = 1\nirqs = 64\n[[save]]\nread = "ICC_PMR_EL1"\n'
              '[[restore]]\nwrite = "ICC_PMR_EL1"\n' + CBPR_SET + "\n")
    assert main(["prove", str(p)]) == 2
    err = capsys.readouterr().err
    assert f"{p}:10:" in err and "condition tests the saved value of ICC_CTLR_EL1" in err
    assert "Traceback" not in err


WHEN_BAD = [
    ("when = 1", "when must be a table like"),
    ('when = { saved = "GICC_CTLR", bits = "0", in = [1], foo = 1 }', "unknown key 'foo' in when"),
    ('when = { saved = "GICC_CTLR", field = "0", in = [1] }', 'the bit range is written bits = "10:8"'),
    ('when = { saved = "GICC_CTLR", read = "GICC_CTLR", bits = "0", in = [1] }', "exactly one of saved"),
    ('when = { bits = "0", in = [1] }', "when needs exactly one of saved"),
    ('when = { saved = 5, bits = "0", in = [1] }', "when.saved must name a register as a string"),
    ('when = { saved = "GICC_CTRL", bits = "0", in = [1] }', "unknown register 'GICC_CTRL' in when.saved"),
    ('when = { read = "GICD_ISENABLER", bits = "0", in = [1] }', "holds one field per interrupt"),
    ('when = { saved = "GICC_CTLR", in = [1] }', 'when needs bits = "HI:LO"'),
    ('when = { saved = "GICC_CTLR", bits = "8:10", in = [1] }', 'write the high bit first, "10:8"'),
    ('when = { saved = "GICC_CTLR", bits = "40:32", in = [1] }', "are beyond GICC_CTLR: it has bits 31:0"),
    ('when = { saved = "GICC_CTLR", bits = "x", in = [1] }', 'bits must be a bit range "HI:LO"'),
    ('when = { saved = "GICC_CTLR", bits = "0" }', "when needs in = [...]"),
    ('when = { saved = "GICC_CTLR", bits = "0", in = [] }', "when.in must be a non-empty list"),
    ('when = { saved = "GICC_CTLR", bits = "2:0", in = [8] }', "does not fit bits 2:0: 0..0x7"),
    ('when = { saved = "GICC_CTLR", bits = "0", in = ["1"] }', "a value in when.in must be an integer"),
]


@pytest.mark.parametrize("when,msg", WHEN_BAD, ids=[b[1] for b in WHEN_BAD])
def test_bad_when_is_a_clear_error_at_its_line(tmp_path, when, msg):
    p = write(tmp_path, HEAD + '[[restore]]\nwrite = "GICC_PMR"\n# comment\n' + when + "\n")
    with pytest.raises(SequenceError) as e:
        load(p, DEVICES)
    assert e.value.line == 9 and msg in e.value.message, (e.value.line, e.value.message)


@pytest.mark.parametrize("step,msg", [
    ('op = "KVM_DEV_ARM_VGIC_CTRL_INIT"\nwhen = { read = "GICD_CTLR", bits = "0", in = [1] }\n',
     "when applies to a register access (write, read, check), not to an op step"),
    ('each = "cpu"\nsteps = [ { write = "GICC_PMR" } ]\nwhen = { read = "GICC_CTLR", bits = "0", in = [1] }\n',
     "put it on the steps inside the block"),
])
def test_when_on_an_op_or_each_block_is_refused(tmp_path, step, msg):
    p = write(tmp_path, HEAD + "[[restore]]\n" + step)
    with pytest.raises(SequenceError) as e:
        load(p, DEVICES)
    assert msg in e.value.message and e.value.line in (8, 9), (e.value.line, e.value.message)


def test_bits_of_a_64_bit_register_stay_in_one_half(tmp_path):
    p = write(tmp_path, HEAD3 + '[[restore]]\nwrite = "ICC_PMR_EL1"\n'
              'when = { read = "GICR_TYPER", bits = "40:20", in = [0] }\n')
    with pytest.raises(SequenceError) as e:
        load(p, DEVICES)
    assert e.value.line == 8 and "span two 32-bit words of GICR_TYPER" in e.value.message
    ok = write(tmp_path, HEAD3 + '[[restore]]\nwrite = "ICC_PMR_EL1"\n'
               'when = { read = "GICR_TYPER", bits = "55:32", in = [0] }\n', "ok.toml")
    assert load(ok, DEVICES).restore[0].when.values == (0,)
