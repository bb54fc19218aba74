"""Counterexamples are replayed faithfully: at the size the solver found them, with every
interrupt of a class holding its representative's values, and a refusal confirmed only
where the restore really stops."""

from __future__ import annotations

import dataclasses
import json

from helpers import DEVICES, deep, representatives, write_variant

from proofs import check
from proofs.cli import main, run_sequence
from proofs.roundtrip import COUNTEREXAMPLE, REFUSED
from spec.sequence import load

IIDR_FILE = "qemu-with-iidr-6.12.toml"
TYPER_CHECK = 'check = "GICD_TYPER"                      # num_irq / num_cpu sanity check, abort() on mismatch\n'
ENABLE_CLEAR = '[[restore]]\nwrite = "GICD_ICENABLER"                  # translate_clear: all ones\nvalue = "ones"\n'


def test_a_loss_that_exists_only_at_a_large_size_replays_there(tmp_path):
    """The TYPER check passes only at 992 interrupts on 1 CPU (ITLinesNumber 30), so the
    missing ICENABLER clear loses state only there: the replay must run at 992."""
    path = write_variant(tmp_path, IIDR_FILE, lambda t: t.replace(
        TYPER_CHECK, TYPER_CHECK + "value = 0x1e\n").replace(ENABLE_CLEAR, ""))
    rep = run_sequence(load(path, DEVICES), cpus=1)
    assert rep.verdict == COUNTEREXAMPLE, rep.unknown_reason
    silent = [r for r in rep.replays if not r.witness.label.startswith("refused:")]
    assert silent and all(r.confirmed for r in rep.replays)
    assert {r.config.irqs for r in silent} == {992}
    assert any(r.witness.label == "refused:GICD_TYPER" and r.config.irqs == 64 for r in rep.replays)


def test_a_check_on_a_whole_word_replays(tmp_path):
    """The audit's file: a check of GICD_CPENDSGIR compares whole words, so the other
    interrupts of a class must hold the representative's values in the replay (with
    reset values 33 witnesses did not replay)."""
    path = tmp_path / "t.toml"
    path.write_text('''name = "t"
device = "gicv2"
kernel = "4.19"
expect = "proved"
[[restore]]
write = "GICD_ICACTIVER"
[[restore]]
check = "GICD_CPENDSGIR"
or = 3
[[restore]]
write = "GICD_CTLR"
[[restore]]
write = "GICD_ISPENDR"
or = 0
[[restore]]
each = "cpu"
steps = [ { write = "GICC_BPR" } ]
''')
    rep = run_sequence(load(path, DEVICES))
    assert rep.verdict == COUNTEREXAMPLE
    assert len(rep.replays) >= 30
    assert all(r.confirmed for r in rep.replays), [r.witness.label for r in rep.replays if not r.confirmed]


def test_a_refusal_is_confirmed_at_the_step_where_the_restore_stops(tmp_path):
    """6.12 -> 4.19 fails at GICD_IIDR first: a TYPER check that could also fail is never
    the step the restore stops at, so it is not a label.

    Default: at 1 and at 2 CPUs, every interrupt count (the masked TYPER bit is
    ITLinesNumber's lowest, which the interrupt count sets; 2 CPUs adds banked state), about
    3 s; deep: one proof over every configuration, 1-8 CPUs (about 20 s)."""
    path = write_variant(tmp_path, "qemu-with-iidr-6.12-to-4.19.toml",
                         lambda t: t.replace('check = "GICD_TYPER"', 'check = "GICD_TYPER"\nand = 0xfffffffe', 1))
    for cpus in [None] if deep() else [1, 2]:
        rep = run_sequence(load(path, DEVICES), cpus=cpus)
        assert rep.verdict == REFUSED, cpus
        assert rep.result.labels == ["refused:GICD_IIDR"], cpus
        assert rep.replays, cpus
        for r in rep.replays:
            assert r.confirmed and r.failed_at is not None and r.failed_at.register.name == "GICD_IIDR"


def test_a_witness_that_does_not_replay_says_so_in_json(monkeypatch, capsys):
    real = check.replay  # run_sequence (proofs.check) replays every witness through it

    def broken(*args, **kwargs):
        r = real(*args, **kwargs)
        r.confirmed = False
        return r

    monkeypatch.setattr(check, "replay", broken)
    from helpers import GICV2_DIR
    code = main(["prove", str(GICV2_DIR / "qemu-current-6.12.toml"), "--cpus", "1", "--irqs", "64", "--json"])
    doc = json.loads(capsys.readouterr().out)
    r = doc["results"][0]
    assert code == 3 and r["verdict"] == "UNKNOWN"
    assert "TOOL BUG" in r["unknown_reason"]


def test_the_size_argument_agrees_with_per_size_proofs(tmp_path):
    """Value modifiers on a size-dependent register (GICD_TYPER) make a step depend on the
    interrupt count: the all-sizes verdict must be the union of the per-size ones (the
    audit's file was PROVED for all sizes though it refuses at 64 interrupts).

    Deep: equal to the union over all 30 interrupt counts. Default: the counts where the
    modifiers' outcome flips (ITLinesNumber odd and even at both ends: 64, 96, 128, 960,
    992), whose labels must all be in the all-sizes verdict, and every label of that
    verdict is a counterexample replayed concretely at its own size."""
    variants = {
        "and": lambda t: t.replace(TYPER_CHECK, TYPER_CHECK + "and = 0xfffffffe\n"),
        "or": lambda t: t.replace(TYPER_CHECK, TYPER_CHECK + "or = 0x1\n"),
        "shift": lambda t: t.replace(TYPER_CHECK, TYPER_CHECK + "shift = 1\n"),
    }
    for name, edit in variants.items():
        seq = load(write_variant(tmp_path, IIDR_FILE, edit, f"{name}.toml"), DEVICES)
        seq = dataclasses.replace(seq, assume=("no-held-lines",))
        rep = run_sequence(seq, cpus=1)
        whole = set(rep.result.labels)
        assert rep.replays and all(r.confirmed for r in rep.replays), name
        assert {r.witness.label for r in rep.replays} == whole, name
        per_size: set[str] = set()
        for irqs in representatives(list(DEVICES["gicv2"].irq_counts), [64, 96, 128, 960, 992]):
            per_size |= set(run_sequence(seq, cpus=1, irqs=irqs).result.labels)
        assert whole == per_size if deep() else per_size <= whole, (name, whole ^ per_size)
        assert "refused:GICD_TYPER" in whole, name


def test_a_word_never_saved_is_diagnosed_as_such(tmp_path):
    """A word range skipped at save: the report says the state is never saved instead of
    blaming the last restore step that touched the field."""
    def edit(t):
        t = t.replace('[[save]]\nread = "GICD_ISPENDR"\n', '[[save]]\nread = "GICD_ISPENDR"\nindex = "1..31"\n')
        return t.replace('[[restore]]\nwrite = "GICD_ISPENDR"                    # pending | (level-triggered && level)\n',
                         '[[restore]]\nwrite = "GICD_ISPENDR"\nindex = "1..31"\n')
    rep = run_sequence(load(write_variant(tmp_path, IIDR_FILE, edit), DEVICES), cpus=1, irqs=64)
    ppi = next(r for r in rep.replays if r.witness.label == "pending_latch:1->0@ppi")
    assert ppi.confirmed and ppi.diverging is None
    assert ppi.diverging_note.startswith("GICD_ISPENDR word 0 (cpu0) is never saved")
    # a loss the restore causes is still marked at its step
    spi = next(r for r in rep.replays if r.witness.label == "pending_latch:0->1@spi")
    assert spi.diverging is not None and spi.diverging.register.name == "GICD_ISPENDR"
