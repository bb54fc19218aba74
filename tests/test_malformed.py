"""Malformed input never crashes gicproof (issue 6, part 4).

A rejected file exits 2 with one line ``gicproof: error: FILE:LINE: ...`` where LINE is a
line of the file and, for an error about a key or table, the line that holds it; a valid
file loads and proves (0, 1 or 3); nothing prints a traceback; an unexpected exception
exits 4, never 1 (a counterexample to CI). Hypothesis mutates the shipped sequences at the
text level and builds random valid files from the device table (tests/malformed_gen.py);
plain tests pin each case the audit found, with its exact line.
"""

from __future__ import annotations

import contextlib
import io
import random
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import malformed_gen as g
import pytest
from helpers import deep
from hypothesis import given, settings
from hypothesis import strategies as st

from proofs import cli, options
from proofs.cli import main

QEMU = str(g.SHIPPED[0])
HEAD = 'name = "t"\ndevice = "gicv2"\nkernel = "6.12"\nexpect = "proved"\n'  # lines 1-4
RESTORE = '[[restore]]\nwrite = "GICD_CTLR"\n'


def run(*args: str) -> tuple[int, str, str]:
    """The CLI in-process: exit status, stdout, stderr."""
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = main(list(args))
    return code, out.getvalue(), err.getvalue()


def run_subprocess(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "proofs.cli", *args], capture_output=True, text=True,
                          timeout=300)


def prove_bytes(data: bytes, must_accept: bool = False) -> tuple[int, str]:
    with tempfile.TemporaryDirectory() as d:
        p = g.write(Path(d), data)
        code, out, err = run("prove", str(p), *g.CHEAP)
        problem = g.judge(str(p), data, code, out, err, must_accept)
    assert not problem, problem + "\n--- file ---\n" + data.decode("utf-8", "replace")[:3000]
    return code, err


# -- Hypothesis ------------------------------------------------------------------------------

# Malformed files are mostly rejected in milliseconds: take three times the profile's
# examples. A valid file is proved (about a second at 1 CPU x 64 interrupts): a quarter.
_N = settings.default.max_examples


@settings(max_examples=3 * _N)
@given(rnd=st.randoms(use_true_random=False))
def test_malformed_files_are_rejected_cleanly(rnd: random.Random) -> None:
    prove_bytes(g.malformed(rnd))


@settings(max_examples=_N // 4 if deep() else 8)
@given(rnd=st.randoms(use_true_random=False))
def test_random_valid_files_load_and_prove(rnd: random.Random) -> None:
    """Default: 8 generated files (each proved, about a second); deep: a quarter of the deep
    profile's examples (500)."""
    code, _ = prove_bytes(g.valid(rnd).encode(), must_accept=True)
    assert code in (0, 1)


def test_malformed_files_through_a_subprocess(tmp_path):
    """The same oracle on a real process: no traceback reaches the terminal, exit 2."""
    rnd = random.Random(6)
    samples = [b"\xff\xfe" + HEAD.encode(), (HEAD + "x = " + "[" * 3000 + "]" * 3000 + "\n").encode(),
               (HEAD + RESTORE + "value = " + "7" * 6000 + "\n").encode()]
    samples += [g.malformed(rnd) for _ in range(3)]
    for i, data in enumerate(samples):
        p = g.write(tmp_path, data, f"s{i}.toml")
        r = run_subprocess("prove", str(p), *g.CHEAP)
        assert not g.judge(str(p), data, r.returncode, r.stdout, r.stderr), r.stderr
    assert r.returncode in (0, 1, 2, 3)


# -- the audit's cases, each with its exact line ----------------------------------------------

def rejected(tmp_path, text: str | bytes, line: int, needle: str) -> str:
    data = text.encode() if isinstance(text, str) else text
    p = g.write(tmp_path, data, "bad.toml")
    code, out, err = run("prove", str(p), *g.CHEAP)
    assert "Traceback" not in err
    assert code == 2, err
    assert err.startswith(f"gicproof: error: {p}:{line}: "), err
    assert needle in err, err
    assert not g.judge(str(p), data, code, out, err), g.judge(str(p), data, code, out, err)
    return err


def test_invalid_utf8_names_the_line_of_the_byte(tmp_path):
    rejected(tmp_path, HEAD.encode() + b'[[restore]]\nwrite = "GICD_\xffCTLR"\n', 6, "not UTF-8 text: byte 0xff at column 15")


def test_invalid_utf8_on_line_one(tmp_path):
    rejected(tmp_path, b"\xc3(name = 1\n", 1, "not UTF-8")


def test_integer_of_thousands_of_digits(tmp_path):
    rejected(tmp_path, HEAD + RESTORE + "value = " + "9" * 5000 + "\n", 7, "too many digits")


def test_integer_of_thousands_of_digits_inside_an_array(tmp_path):
    rejected(tmp_path, HEAD + 'lost = [\n  "a",\n  ' + "1" * 4301 + ",\n]\n" + RESTORE, 7, "too many digits")


def test_index_bound_of_thousands_of_digits(tmp_path):
    rejected(tmp_path, HEAD + '[[restore]]\nwrite = "GICD_ISENABLER"\nindex = "0..' + "9" * 5000 + '"\n', 7,
             "is out of range for GICD_ISENABLER: it has words 0..31")


def test_huge_index_range_is_refused_before_it_is_expanded(tmp_path):
    for bound in ("99999999999", "20000000"):
        t0 = time.perf_counter()
        rejected(tmp_path, HEAD + f'[[restore]]\nwrite = "GICD_ISENABLER"\nindex = "0..{bound}"\n', 7,
                 f"index {bound} is out of range for GICD_ISENABLER: it has words 0..31")
        assert time.perf_counter() - t0 < 5


def test_index_below_the_bound_still_loads(tmp_path):
    p = g.write(tmp_path, (HEAD + '[[restore]]\nwrite = "GICD_ISENABLER"\nindex = "0..31"\n').encode())
    from spec.devices import DEVICES
    from spec.sequence import load
    assert load(p, DEVICES).restore[0].index == tuple(range(32))


@pytest.mark.parametrize("opener,closer", [("[", "]"), ("{ a = ", " }")])
def test_deep_nesting(tmp_path, opener, closer):
    rejected(tmp_path, HEAD + "# padding\n" + "x = " + opener * 500 + "1" * (opener == "{ a = ") + closer * 500
             + "\n" + RESTORE, 6, "nested too deeply")


@pytest.mark.parametrize("text,line,needle", [
    (HEAD + RESTORE + "[[restor]]\nwrite = \"GICD_CTLR\"\n", 7, "unknown table 'restor': did you mean restore?"),
    (HEAD + "viola.tes = 1\n" + RESTORE, 5, "unknown key 'viola': did you mean violates?"),
    (HEAD + RESTORE + "\n[foo]\nx = 1\n", 8, "unknown table 'foo'"),
    (HEAD + RESTORE + "[foo.bar]\n", 7, "unknown table 'foo'"),
    (HEAD + RESTORE + '[ "foo" ]\n', 7, "unknown table 'foo'"),
    (HEAD + '"qu ote" = 1\n' + RESTORE, 5, "unknown key 'qu ote'"),
    (HEAD + "\n\n[restore]\nwrite = 1\n", 7, "[restore] must be written [[restore]]"),
    (HEAD + 'why = """\n[foo]\nbar = 1\n"""\nfoo = 2\n' + RESTORE, 9, "unknown key 'foo'"),
])
def test_unknown_tables_and_keys_cite_their_own_line(tmp_path, text, line, needle):
    rejected(tmp_path, text, line, needle)


def test_step_errors_cite_the_key(tmp_path):
    rejected(tmp_path, HEAD + '[[restore]]\nwrite = "GICD_CTLR"\n# x\nshift = 99\n', 8, "shift 0x63 is out of range")
    rejected(tmp_path, HEAD + '[[restore]]\nwrite = "GICD_CTLR"\nand = -1\n', 7, "does not fit a register")
    rejected(tmp_path, HEAD + '[[restore]]\neach = "cpu"\nsteps = [\n  { write = "GICC_CTLR" },\n'
             '  { write = "GICC_PMR", valu = 1 },\n]\n', 9, "unknown step key 'valu'")
    rejected(tmp_path, HEAD + 'restore = [\n  { write = "GICD_CTLR" },\n  { write = "GICD_CTRL" },\n]\n', 7,
             "unknown register 'GICD_CTRL'")


def test_lines_are_counted_as_toml_counts_them(tmp_path):
    """U+0085, U+2028 and U+2029 are not line breaks in TOML (str.splitlines says they are)."""
    rejected(tmp_path, HEAD + "# a\x85b\u2028c\u2029d\nreference = \"\u2028\"\n" + RESTORE + "valu = 1\n", 9,
             "unknown step key 'valu'")


def test_messages_stay_on_one_line_and_escape_control_characters(tmp_path):
    err = rejected(tmp_path, HEAD + '[[restore]]\nwrite = "\u2028GICD_CTLR\u0085"\n', 6,
                   "unknown register '\\u2028GICD_CTLR\\x85'")
    assert err.count("\n") == 1
    p = g.write(tmp_path, (HEAD + '[[restore]]\nwrite = "GICD_\\u001b[2JCTLR"\n').encode())  # a TOML escape
    code, _, err = run("prove", str(p))
    assert code == 2 and "\x1b" not in err and "unknown register 'GICD_\\x1b[2JCTLR'" in err, err


def test_errors_at_the_end_of_the_file_cite_its_last_line(tmp_path):
    rejected(tmp_path, HEAD + "x = [\n", 5, "not valid TOML")
    rejected(tmp_path, HEAD + "x = [", 5, "not valid TOML")
    rejected(tmp_path, "", 1, "missing required key 'name'")


# -- paths and options ------------------------------------------------------------------------

def test_empty_path_is_no_file_given():
    for args in (["prove", ""], ["graph", "gicv2", "--sequence", ""]):
        code, _, err = run(*args)
        assert code == 2 and err == "gicproof: error: no sequence file given: the path is an empty string\n", err


def test_unreadable_paths(tmp_path):
    code, _, err = run("prove", str(tmp_path))
    assert code == 2 and "is a directory" in err and ":0:" not in err
    code, _, err = run("prove", str(tmp_path / "nope.toml"))
    assert code == 2 and err == f"gicproof: error: {tmp_path / 'nope.toml'}: cannot read the file: No such file or directory\n"
    code, _, err = run("prove", "a\0b")
    assert code == 2 and "cannot read the file" in err


@pytest.mark.parametrize("value,needle", [
    ("nan", "finite"), ("inf", "finite"), ("-inf", "finite"), ("1e308", "at most 86400"),
    ("86401", "at most 86400"), ("0.0001", "at least 0.001"), ("0", "at least 0.001"),
    ("-1", "at least 0.001"), ("soon", "expected seconds"), ("", "expected seconds"),
])
def test_timeout_must_be_finite_and_in_range(value, needle):
    code, _, err = run("prove", QEMU, f"--timeout={value}")
    assert code == 2 and needle in err and "Traceback" not in err, err


def test_timeout_bounds_are_accepted():
    assert options.seconds("0.001") == 0.001 and options.seconds("86400") == 86400.0 and options.seconds("1e1") == 10.0


def test_timeout_help_states_the_range():
    code, out, _ = run("prove", "--help")
    assert code == 0 and "0.001 to 86400" in " ".join(out.split())


@pytest.mark.parametrize("output,needle", [
    ("/nonexistent/dir/x.dot", "does not exist"), ("", "empty"), ("/", "is a directory"),
])
def test_graph_output_is_checked_before_the_proofs(output, needle):
    t0 = time.perf_counter()
    code, _, err = run("graph", "gicv2", "--format", "dot", "-o", output)
    assert code == 2 and needle in err and err.startswith("gicproof: error: -o "), err
    assert time.perf_counter() - t0 < 2  # no graph was derived first


def test_usage_errors_return_instead_of_raising():
    assert run("frobnicate")[0] == 2
    assert run("prove")[0] == 2
    assert run("--help")[0] == 0


# -- an unexpected exception is a bug: exit 4 and one line ------------------------------------

def _boom(args):
    raise ZeroDivisionError("the model divided by zero")


def test_unexpected_exception_exits_4_with_one_line(monkeypatch):
    monkeypatch.setattr(cli, "cmd_describe", _boom)
    monkeypatch.delenv("GICPROOF_DEBUG", raising=False)
    code, out, err = run("describe", "gicv2")
    assert code == 4
    assert err.count("\n") == 1 and "Traceback" not in err, err
    assert err.startswith("gicproof: internal error (a bug in gicproof): ZeroDivisionError: the model divided by zero;")
    assert "GICPROOF_DEBUG=1" in err


def test_gicproof_debug_shows_the_traceback(monkeypatch):
    monkeypatch.setattr(cli, "cmd_describe", _boom)
    monkeypatch.setenv("GICPROOF_DEBUG", "1")
    code, _, err = run("describe", "gicv2")
    assert code == 4 and "Traceback" in err and "ZeroDivisionError" in err


def test_exit_4_is_documented():
    code, out, _ = run("--help")
    assert code == 0 and "4 a bug in gicproof" in " ".join(out.split())
    readme = (Path(__file__).parent.parent / "README.md").read_text()
    assert "**4** a bug in\ngicproof" in readme


# -- when (issue 9): every error names the file, the line of the key, what is valid ----------

def test_when_errors_cite_the_when_line(tmp_path):
    rejected(tmp_path, HEAD + '[[restore]]\nwrite = "GICC_PMR"\n# x\nwhen = { saved = "GICC_CTLR", bits = "0", '
             'in = [1], feild = 2 }\n', 8, "unknown key 'feild' in when")
    rejected(tmp_path, HEAD + '[[restore]]\neach = "cpu"\nsteps = [\n  { write = "GICC_CTLR" },\n'
             '  { write = "GICC_PMR", when = { read = "GICC_CTLR", bits = "9:2", in = [999] } },\n]\n', 9,
             "does not fit bits 9:2: 0..0xff")
    rejected(tmp_path, HEAD + 'restore = [\n  { write = "GICD_CTLR" },\n'
             '  { write = "GICD_CTLR", when = { saved = "GICD_CTRL", bits = "0", in = [1] } },\n]\n', 7,
             "unknown register 'GICD_CTRL' in when.saved for gicv2: did you mean GICD_CTLR")
    rejected(tmp_path, HEAD + '[[restore]]\nop = "KVM_DEV_ARM_VGIC_CTRL_INIT"\n\nwhen.read = "GICD_CTLR"\n', 8,
             "when applies to a register access")


def test_a_condition_on_an_unsaved_value_is_exit_2_at_its_line(tmp_path):
    """Found when the proof runs the step (as a restore of an unsaved value): the step's line."""
    rejected(tmp_path, HEAD + '[[save]]\nread = "GICD_CTLR"\n[[restore]]\nwrite = "GICD_CTLR"\n'
             'when = { saved = "GICD_IIDR", bits = "0", in = [1] }\n', 7,
             "the step's condition tests the saved value of GICD_IIDR")
