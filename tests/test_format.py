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
    ('write = "GICD_IGROUPR"\n', "a save step reads registers"),
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
