"""The command line: bad input is reported with file, line and what would be valid, exit
status 2, no traceback; verdicts map to exit codes; JSON has the documented shape."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
from helpers import GICV2_DIR

from proofs.cli import main

QEMU = str(GICV2_DIR / "qemu-current-6.12.toml")


def run_cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "proofs.cli", *args], capture_output=True, text=True, timeout=300)


def bad(tmp_path, capsys, text: str) -> tuple[int, str]:
    """``gicproof prove`` on a bad file, in this process (``main`` is what the console
    script runs; test_missing_file_is_bad_input and test_malformed.py go through a real
    subprocess): about half a second less per case than starting Python and Z3 again."""
    p = tmp_path / "bad.toml"
    p.write_text(text)
    code = main(["prove", str(p)])
    out, err = capsys.readouterr()
    assert "Traceback" not in err and "Traceback" not in out
    return code, err


GOOD_HEAD = 'name = "t"\ndevice = "gicv2"\nkernel = "6.12"\nexpect = "proved"\n'

CASES = [
    ("malformed", 'name = "t"\ndevice = "gicv2\n', 2, "not valid TOML"),
    ("unknown register", GOOD_HEAD + '[[restore]]\nwrite = "GICD_ISENABLR"\n', 6, "did you mean GICD_ISENABLER"),
    ("unknown operation", GOOD_HEAD + '[[restore]]\nop = "KVM_DEV_ARM_VGIC_CTRL_INITT"\n', 6, "did you mean KVM_DEV_ARM_VGIC_CTRL_INIT"),
    ("unknown step key", GOOD_HEAD + '[[restore]]\nwrite = "GICD_CTLR"\nvalu = "ones"\n', 7, "unknown step key 'valu'"),
    ("unknown top key", GOOD_HEAD + 'destinaton = "any"\n[[restore]]\nwrite = "GICD_CTLR"\n', 5, "did you mean destination"),
    ("wrong device", 'name = "t"\ndevice = "gicv9"\n[[restore]]\nwrite = "GICD_CTLR"\n', 2, "valid: gicv2"),
    ("unknown kernel", 'name = "t"\ndevice = "gicv2"\nkernel = "3.1"\n[[restore]]\nwrite = "GICD_CTLR"\n', 3, "the oldest modelled release is 3.18"),
    ("bad index", GOOD_HEAD + '[[restore]]\nwrite = "GICD_ISENABLER"\nindex = "3..x"\n', 7, 'use word numbers like "0", "1..31"'),
    ("index out of range", GOOD_HEAD + '[[restore]]\nwrite = "GICD_ISENABLER"\nindex = "40"\n', 7, "words 0..31"),
    ("bad value", GOOD_HEAD + '[[restore]]\nwrite = "GICD_ISENABLER"\nvalue = "all"\n', 7, "saved, ones, zeros, reset"),
    ("shift on an array", GOOD_HEAD + '[[restore]]\nwrite = "GICD_ISENABLER"\nshift = 1\n', 7, "scalar registers only"),
    ("why missing", 'name = "t"\ndevice = "gicv2"\nexpect = "counterexample"\n[[restore]]\nwrite = "GICD_CTLR"\n', 3, "'why' is required"),
    ("nested step", GOOD_HEAD + '[[restore]]\neach = "cpu"\nsteps = [\n  { write = "GICC_CTLR" },\n  { write = "GICC_PMX" },\n]\n', 9, "did you mean GICC_PMR"),
    ("bad selector", GOOD_HEAD + '[[restore]]\neach = "vcpu"\nsteps = [ { write = "GICC_CTLR" } ]\n', 6, "valid: cpu"),
    ("read in restore", GOOD_HEAD + '[[restore]]\nread = "GICD_CTLR"\n', 6, "use write, check, op or each"),
    ("restore needs saved", GOOD_HEAD + '[[save]]\nread = "GICD_CTLR"\n[[restore]]\nwrite = "GICD_ISENABLER"\n', 8, "does not read it"),
]


@pytest.mark.parametrize("what,text,line,needle", CASES, ids=[c[0] for c in CASES])
def test_bad_input_names_file_line_and_what_is_valid(tmp_path, capsys, what, text, line, needle):
    code, err = bad(tmp_path, capsys, text)
    assert code == 2, err
    assert f"bad.toml:{line}:" in err, err
    assert needle in err, err


def test_missing_file_is_bad_input(tmp_path):
    r = run_cli("prove", str(tmp_path / "nope.toml"))
    assert r.returncode == 2 and "cannot read the file" in r.stderr and "Traceback" not in r.stderr


def test_bad_options_are_bad_input():
    assert run_cli("prove", QEMU, "--cpus", "9").returncode == 2
    assert run_cli("prove", QEMU, "--irqs", "100").returncode == 2
    assert run_cli("prove", QEMU, "--kernel", "2.6").returncode == 2
    assert run_cli("frobnicate").returncode == 2


def test_help_documents_every_command():
    r = run_cli("--help")
    for word in ("check", "prove", "describe", "Exit status"):
        assert word in r.stdout
    for cmd in ("check", "prove", "describe"):
        assert run_cli(cmd, "--help").returncode == 0


def test_prove_exit_codes(capsys):
    # as expected (a counterexample the file expects) -> 0
    assert main(["prove", QEMU]) == 0
    # expectation not compared when the kernel is overridden: a counterexample -> 1
    assert main(["prove", QEMU, "--kernel", "4.7"]) == 1
    out = capsys.readouterr().out
    assert "expectation: not compared" in out


def test_prove_json_shape(capsys):
    assert main(["prove", QEMU, "--json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["gicproof"] == 1 and doc["command"] == "prove" and doc["exit"] == 0
    (res,) = doc["results"]
    for key in ("obligation", "file", "device", "kernel", "source_kernel", "destination", "expect",
                "expected_lost", "verdict", "matches", "covers", "labels", "counterexamples"):
        assert key in res
    assert res["verdict"] == "COUNTEREXAMPLE" and res["matches"] is True
    cex = res["counterexamples"][0]
    for key in ("label", "confirmed", "config", "where", "field", "source", "destination_before",
                "destination_after", "diverging_step", "rule", "rule_source"):
        assert key in cex
    assert cex["confirmed"] is True


def test_check_runs_everything_and_exits_zero(capsys):
    """The whole shipped suite, every obligation (with as many jobs as cores). This is also
    where every shipped file's round trip and every revision's invariant are checked with
    the assertions of test_roundtrip.py::test_shipped_sequence_matches_its_expectation and
    test_invariant.py::test_gicv2_invariant_is_inductive, which by default take
    representatives. By default the GICv2 part (the GICv3 files, graphs and proofs take as long
    again; CI's `gicproof check` runs them, test_check_gicv3_headline runs its main file, and
    GICPROOF_HYPOTHESIS=deep runs everything here)."""
    from tests.helpers import deep

    assert main(["check", "--json"] + ([] if deep() else ["--only", "gicv2"])) == 0
    doc = json.loads(capsys.readouterr().out)
    s = doc["summary"]
    assert s["not_as_expected"] == 0 and s["unknown"] == 0 and s["total"] == s["as_expected"]
    obligations = {r["obligation"] for r in doc["results"]}
    assert obligations == {"invariant", "round-trip", "clear-then-set", "ordering-graph-check"} | (
        {"cpregs", "cpregs-matrix"} if deep() else set())
    from spec.devices import DEVICES, shipped_sequences

    rts = [r for r in doc["results"] if r["obligation"] == "round-trip"]
    devices = list(DEVICES) if deep() else ["gicv2"]
    assert [r["file"] for r in rts] == [str(f) for f in shipped_sequences() if f.parent.name in devices]
    for r in rts:
        # GICv3 files other than the main one name a configuration (their strided walk is
        # proved per interrupt count)
        assert r["matches"] is True, r["file"]
        assert r["covers"].startswith("all configurations") or "(the file's configuration)" in r["covers"], r["file"]
        assert all(c["confirmed"] for c in r["counterexamples"]), r["file"]
    invs = [r for r in doc["results"] if r["obligation"] == "invariant"]
    assert [r["kernel"] for r in invs] == [k for d in devices if "invariant" in DEVICES[d].obligations
                                           for k in DEVICES[d].versions]
    for r in invs:
        assert r["verdict"] == "PROVED" and not r["breaks"] and not r["reset_failures"], r["kernel"]
        assert r["actions"] > 1000  # every register, both accessors, every bank, every event


def test_check_gicv3_headline(capsys):
    """QEMU's current GICv3 put/get, incoming migration: the routes of the SPIs above
    num_irq/2 are lost to the 4-byte IROUTER stride, among the rest the file explains. By
    default at 2 CPUs x 128 interrupts (10 s); with GICPROOF_HYPOTHESIS=deep the file's
    every size and its ordering graph through check (a minute; CI's check runs it too)."""
    from tests.helpers import deep

    path = "spec/sequences/gicv3/qemu-current-7.1-fresh.toml"
    if deep():
        assert main(["check", "--json", "--only", "gicv3/qemu-current-7.1-fresh"]) == 0
        doc = json.loads(capsys.readouterr().out)
        rts = [r for r in doc["results"] if r["obligation"] == "round-trip"]
        assert len(rts) == 1 and rts[0]["covers"].startswith("all configurations")
    else:
        main(["prove", path, "--json", "--cpus", "2", "--irqs", "128"])
        rts = json.loads(capsys.readouterr().out)["results"]
    assert rts[0]["matches"] and "mpidr@spi" in rts[0]["labels"]
    assert all(c["confirmed"] for c in rts[0]["counterexamples"])


def test_describe_prints_the_table(capsys):
    assert main(["describe", "gicv2"]) == 0
    out = capsys.readouterr().out
    assert "GICD_ISPENDR" in out and "uaccess_write_v2_group" in out and "running_priority" in out
    assert main(["describe", "gicv5"]) == 2


def _untimed(results: list[dict]) -> list[dict]:
    """The JSON results without their timings (the only part that may differ between runs)."""
    def strip(v):
        if isinstance(v, dict):
            return {k: strip(x) for k, x in v.items() if k != "seconds"}
        if isinstance(v, list):
            return [strip(x) for x in v]
        return v
    return strip(results)


def test_check_jobs_1_and_2_give_the_same_results(capsys):
    """One end-to-end run each way on a subset (the hidden --only): everything labelled
    3.18, i.e. the 3.18 sequence's round trip and ordering graph and revision 3.18's
    invariant and four clear-then-set obligations, one job of each kind. --jobs 2 runs
    them in worker processes (so the outcomes cross a process boundary), --jobs 1 in this
    process; the JSON results must be equal, in the same order, apart from the times.
    Every obligation is run by test_check_runs_everything_and_exits_zero, and
    bench/check_jobs.py compares the whole suite's results at both job counts."""
    docs = []
    for jobs in ("1", "2"):
        assert main(["check", "--json", "--jobs", jobs, "--only", "3.18"]) == 0
        docs.append(json.loads(capsys.readouterr().out))
    one, two = docs
    assert one["results"] and _untimed(one["results"]) == _untimed(two["results"])
    kinds = [r["obligation"] for r in one["results"]]
    # the JSON's order: invariants, round trips, clear-then-set, ordering-graph checks
    assert kinds == ["invariant", "round-trip"] + ["clear-then-set"] * 4 + ["ordering-graph-check"], kinds
    assert {k: v for k, v in one["summary"].items() if k != "seconds"} == \
        {k: v for k, v in two["summary"].items() if k != "seconds"} == \
        {"total": 7, "as_expected": 7, "not_as_expected": 0, "unknown": 0}
    # the tables show the same verdicts (in this process the graph is cached: a cheap run)
    assert main(["check", "--jobs", "1", "--only", "3.18"]) == 0
    text = capsys.readouterr().out
    rt = one["results"][1]
    assert any(line.startswith("gicv2/" + rt["file"].rsplit("/", 1)[1]) and rt["verdict"] in line
               and line.endswith("ok") for line in text.splitlines()), text
    assert "summary: 7 checked, 7 as expected, 0 not as expected, 0 unknown" in text


def test_check_jobs_bad_values_exit_2(capsys):
    for bad_value, needle in (("0", "at least 1 job"), ("-2", "at least 1 job"), ("x", "whole number"),
                              ("", "whole number"), ("1.5", "whole number")):
        assert main(["check", "--jobs", bad_value]) == 2
        err = capsys.readouterr().err
        assert "--jobs" in err and needle in err and "Traceback" not in err, err


def test_serial_executor_keeps_job_exceptions_in_the_future():
    from proofs.executor import SerialExecutor, make_executor

    ex = make_executor(1)
    assert isinstance(ex, SerialExecutor)
    ok = ex.submit(divmod, 7, 2)
    assert ok.done() and ok.result() == (3, 1)
    failed = ex.submit(divmod, 1, 0)
    assert failed.done() and isinstance(failed.exception(), ZeroDivisionError)
    with pytest.raises(ValueError):
        make_executor(0)


def test_a_job_sends_bad_input_back_as_data(tmp_path):
    """SequenceError does not survive pickling: a job returns its fields, and run() raises
    it again in the parent (exit 2 with file and line, as without jobs)."""
    import pickle

    from proofs.check import job_round_trip
    from proofs.solver import DEFAULT_BUDGET

    o = pickle.loads(pickle.dumps(job_round_trip(str(tmp_path / "nope.toml"), DEFAULT_BUDGET)))
    assert o.error is not None and o.error[0].endswith("nope.toml") and "cannot read" in o.error[2]

