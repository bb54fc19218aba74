"""Verdicts never rest on a query that did not answer: with a starved solver budget every
obligation is either exactly its full-budget verdict or UNKNOWN, and `gicproof check`
counts it unknown (exit 3), never as a finding or as a match."""

from __future__ import annotations

import json

import pytest
from helpers import GICV2, GICV2_DIR, shipped

from proofs import roundtrip, solver
from proofs.clearset import pairs, prove_clear_then_set
from proofs.cli import main, run_sequence
from proofs.invariant import prove_invariant
from proofs.roundtrip import UNKNOWN

SMALL = {"cpus": 1, "irqs": 64}


def test_budget_is_a_real_limit():
    with pytest.raises(ValueError):
        solver.Budget(rlimit=0)
    with pytest.raises(ValueError):
        solver.Budget(timeout_ms=0)  # Z3 would read 0 as "no limit"


@pytest.mark.parametrize("name", ["qemu-current-6.12.toml", "qemu-current-4.19.toml",
                                  "qemu-with-iidr-6.12-to-4.19.toml"])
def test_starved_round_trip_is_exact_or_unknown(name):
    seq = shipped(name)
    full = run_sequence(seq, **SMALL)
    assert full.verdict != UNKNOWN
    seen = set()
    for rlimit in (1, 30, 300, 1_000, 3_000, 10_000, 30_000):
        r = run_sequence(seq, budget=solver.Budget(rlimit=rlimit), **SMALL)
        seen.add(r.verdict)
        if r.verdict == UNKNOWN:
            assert r.exit_code() == 3
            assert r.unknown_reason
            # what was found before the budget ran out is still replayed, and is a
            # subset of the full answer
            assert all(rp.confirmed for rp in r.replays)
            assert set(r.result.labels) <= set(full.result.labels)
        else:
            assert (r.verdict, r.result.labels) == (full.verdict, full.result.labels), rlimit
    assert UNKNOWN in seen  # the sweep did starve the solver


def test_a_label_search_that_does_not_answer_makes_the_verdict_unknown(monkeypatch):
    """The main query answers (a loss exists), a later search does not: the exact set of
    losses is then unknown, so the verdict is too (it used to be COUNTEREXAMPLE)."""
    real = solver.check
    calls = {"n": 0}

    def flaky(assumptions, query, budget=solver.DEFAULT_BUDGET):
        calls["n"] += 1
        if calls["n"] == 4:
            return solver.Answer("unknown", reason="max. resource limit exceeded")
        return real(assumptions, query, budget)

    monkeypatch.setattr(roundtrip.solver, "check", flaky)
    r = run_sequence(shipped("qemu-current-6.12.toml"), **SMALL)
    assert r.verdict == UNKNOWN and r.exit_code() == 3
    assert "resource limit" in r.unknown_reason
    assert r.replays and all(rp.confirmed for rp in r.replays)


def test_starved_invariant_and_clear_then_set_are_unknown():
    tiny = solver.Budget(rlimit=1)
    assert prove_invariant(GICV2, "6.12", tiny, cpu_counts=[1]).verdict == UNKNOWN
    s, c = pairs(GICV2)[0]
    assert prove_clear_then_set(GICV2, "6.12", s, c, tiny).verdict == UNKNOWN


def test_check_counts_starved_obligations_as_unknown(capsys):
    code = main(["check", "--json", "--rlimit", "2000"])
    doc = json.loads(capsys.readouterr().out)
    s = doc["summary"]
    assert code == 3
    assert s["unknown"] > 0 and s["not_as_expected"] == 0
    assert s["as_expected"] + s["unknown"] == s["total"]
    for r in doc["results"]:
        if r.get("verdict") == "UNKNOWN":
            assert r["matches"] is not True


def test_prove_with_a_tiny_wall_clock_limit_is_unknown_or_exact(capsys):
    f = str(GICV2_DIR / "qemu-current-6.12.toml")
    code = main(["prove", f, "--cpus", "1", "--irqs", "64", "--timeout", "0.001", "--json"])
    doc = json.loads(capsys.readouterr().out)
    r = doc["results"][0]
    assert code in (1, 3)
    if code == 3:
        assert r["verdict"] == "UNKNOWN" and r["unknown_reason"]
    else:
        assert r["verdict"] == "COUNTEREXAMPLE"
