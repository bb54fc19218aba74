"""Golden counterexample reports (CrossHair style): known-bad sequences with their
expected report checked in. ``pytest --regen-golden`` (or GICPROOF_REGEN_GOLDEN=1)
rewrites the .txt files; review the diff before committing it."""

from __future__ import annotations

import dataclasses
import os

import pytest
from helpers import DEVICES, GOLDEN

from proofs.cli import run_sequence
from proofs.report import render_sequence
from spec.sequence import load

CASES = sorted(p.stem for p in GOLDEN.glob("*.toml"))


@pytest.mark.parametrize("name", CASES)
def test_golden_report(name, request):
    seq = load(GOLDEN / f"{name}.toml", DEVICES)
    seq = dataclasses.replace(seq, path=f"tests/golden/{name}.toml")  # stable across checkouts
    rep = run_sequence(seq)
    assert rep.matches, rep.result.labels
    text = render_sequence(rep, timing=False) + "\n"
    expected = GOLDEN / f"{name}.txt"
    if request.config.getoption("--regen-golden") or os.environ.get("GICPROOF_REGEN_GOLDEN"):
        expected.write_text(text)
    assert expected.exists(), f"no golden report yet: run pytest --regen-golden and review {expected}"
    assert text == expected.read_text()


def test_there_are_golden_examples():
    assert {"missing-clear", "icfgr-after-pending-4.7"} <= set(CASES)


def test_readme_worked_example_is_real_output():
    """Every line the README shows of the worked example occurs in the real report."""
    from pathlib import Path

    readme = (Path(__file__).parent.parent / "README.md").read_text()
    cmd = "$ gicproof prove spec/sequences/gicv2/qemu-current-4.19.toml"
    block = readme.split(cmd)[1].split("```")[0]
    seq = load(Path(__file__).parent.parent / "spec/sequences/gicv2/qemu-current-4.19.toml", DEVICES)
    seq = dataclasses.replace(seq, path="spec/sequences/gicv2/qemu-current-4.19.toml")
    real = render_sequence(run_sequence(seq)).splitlines()
    shown = [line for line in block.splitlines() if line.strip() not in ("", "...")]
    assert len(shown) > 15
    missing = [line for line in shown if line not in real]
    assert not missing, missing
