"""``gicproof matrix``: one sequence file migrated across kernels and host kinds, a verdict
per cell, each cell what ``prove`` computes for the file with its sides replaced.

What the shipped GICv3 files give (computed by the tool, then explained from the files'
``why`` and the README's GICv3 table):

* QEMU's current put/get (``qemu-current-7.1.toml``) is a silent change in *every* cell,
  the same-host ones included: QEMU walks GICD_IROUTER with a 4-byte stride, so at 64
  interrupts no SPI's route is saved (``mpidr@spi``), and the rest of the file's ``lost``
  list (BPR1 under CBPR, an edge SPI's line level, PROPBASER/PENDBASER, and on the reset
  path the clears written with zeros) does not depend on the host. Across GICv4.1 ->
  GICv3 the cell also loses ``nassgireq:1->0`` (the GICv3 destination drops
  GICD_CTLR.nASSGIreq and nothing checks the host: what seed 002's patch is for); no
  other pair of these two host kinds does.
* With the TYPER2 patch (``qemu-typer2-v1-gicv4.1-to-gicv3-7.1.toml``) every cell across
  the two host kinds is refused at the GICD_TYPER2 write, with the destination kernel's
  errno: EINVAL before 6.17 (a userspace TYPER2 write must equal the value), EBUSY from
  6.17 (c652887a9288: a different value after INIT). Same-host cells are what is left of
  current QEMU (the stride and the rest), never a nASSGIreq loss.

Sizes are kept small (the file's 1-2 CPUs, or 1, at 64 interrupts) so each test takes
seconds.
"""

from __future__ import annotations

import contextlib
import io
import json
import re
import subprocess
import sys

import pytest
from helpers import GICV2_DIR

from proofs import check, matrix
from proofs.cli import main
from proofs.matrix import NOT_RUN, REFUSED_CELL, ROUND_TRIP, SILENT, UNKNOWN_CELL, Side
from proofs.solver import DEFAULT_BUDGET
from spec.devices import DEVICES, SEQUENCES_DIR
from spec.sequence import load

GICV3_DIR = SEQUENCES_DIR / "gicv3"
QEMU_CURRENT = str(GICV3_DIR / "qemu-current-7.1.toml")
TYPER2 = str(GICV3_DIR / "qemu-typer2-v1-gicv4.1-to-gicv3-7.1.toml")
SMALL = ["--kernels", "7.1", "--hosts", "gicv3,gicv4.1", "--irqs", "64"]


def run(*args: str) -> tuple[int, str, str]:
    """``gicproof matrix ARGS`` in this process (what the console script runs)."""
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = main(["matrix", *args])
    assert "Traceback" not in err.getvalue() and "Traceback" not in out.getvalue()
    return code, out.getvalue(), err.getvalue()


def cells(doc: dict) -> dict[tuple[str, str], dict]:
    """The cells of a ``--json`` document by (source host, destination host) (one kernel)."""
    (result,) = doc["results"]
    return {(c["source"]["host"], c["destination"]["host"]): c for c in result["cells"]}


@pytest.fixture(scope="module")
def current() -> tuple[int, str, int, dict]:
    """QEMU's current put at 7.1 between a GICv3 and a GICv4.1 host, as text (in this
    process) and as JSON (two worker processes): the same four cells either way."""
    code_text, text, _ = run(QEMU_CURRENT, *SMALL, "--jobs", "1")
    code_json, out, _ = run(QEMU_CURRENT, *SMALL, "--jobs", "2", "--json")
    return code_text, text, code_json, json.loads(out)


def test_qemu_current_loses_nassgireq_only_from_gicv41_to_gicv3(current):
    code, _, code_json, doc = current
    assert code == code_json == 1  # a silent change
    by = cells(doc)
    assert set(by) == {(s, d) for s in ("gicv3", "gicv4.1") for d in ("gicv3", "gicv4.1")}
    assert all(c["verdict"] == SILENT for c in by.values())
    down = by[("gicv4.1", "gicv3")]
    assert "nassgireq:1->0" in down["lost"] and down["code"] == "SILENT nassgireq"
    for pair in (("gicv3", "gicv3"), ("gicv4.1", "gicv4.1"), ("gicv3", "gicv4.1")):
        assert not any(x.startswith("nassgireq") for x in by[pair]["lost"]), pair
        assert by[pair]["code"] == "SILENT"
    # gicv3 -> gicv3 is no round trip: the IROUTER stride reaches no SPI at 64 interrupts
    same = by[("gicv3", "gicv3")]
    assert "mpidr@spi" in same["lost"]
    # every cell shows only replayed counterexamples, each confirmed
    for c in by.values():
        assert c["result"]["counterexamples"] and all(x["confirmed"] for x in c["result"]["counterexamples"])
        assert sorted(c["lost"]) == sorted(x["label"] for x in c["result"]["counterexamples"]
                                           if not x["label"].startswith("refused:"))


def test_a_cell_is_what_prove_computes(current, capsys):
    """The gicv3 -> gicv3 cell at 7.1 is the file itself: its labels are prove's."""
    *_, doc = current
    assert main(["prove", QEMU_CURRENT, "--irqs", "64", "--json"]) == 0  # as the file expects
    proved = json.loads(capsys.readouterr().out)["results"][0]
    cell = cells(doc)[("gicv3", "gicv3")]["result"]
    assert cell["labels"] == proved["labels"] and cell["verdict"] == proved["verdict"] == "COUNTEREXAMPLE"
    assert cell["covers"] == proved["covers"]
    # a source on another host is the file with source_host set: the shipped GICv4.1 ->
    # GICv3 file (the same steps, an incoming migration) loses a subset of what this cell
    # loses on the reset path
    fresh = load(GICV3_DIR / "qemu-current-gicv4.1-to-gicv3-7.1.toml", DEVICES)
    assert fresh.lost and set(fresh.lost) <= set(cells(doc)[("gicv4.1", "gicv3")]["result"]["labels"])


def test_json_agrees_with_the_text(current):
    code, text, code_json, doc = current
    (result,) = doc["results"]
    assert doc["command"] == "matrix" and doc["exit"] == code_json == code
    assert [(s["kernel"], s["host"]) for s in result["sources"]] == [("7.1", "gicv3"), ("7.1", "gicv4.1")]
    # the tables: one per destination host, sources down, the destination kernel across
    tables = re.findall(r"destination host (\S+):\n  source \\ destination +(.+)\n((?:  \S.*\n)+)", text)
    assert [t[0] for t in tables] == ["gicv3", "gicv4.1"]
    shown = {}
    for host, header, body in tables:
        assert header.split() == ["7.1"]
        for line in body.splitlines():
            source, code_shown = re.split(r" {2,}", line.strip(), maxsplit=1)
            shown[(source.split("/")[1], host)] = code_shown
    assert shown == {k: c["code"] for k, c in cells(doc).items()}
    # the legend gives each code's full verdict, and the detail lists every cell
    for c in result["cells"]:
        unwrapped = text.split("\nlegend:\n")[1].split("\ncells")[0].replace("\n" + " " * (matrix.CODE_WIDTH + 3), " ")
        legend = re.search(rf"^  {re.escape(c['code'].ljust(matrix.CODE_WIDTH))} (.+?) \(\d+ cells?\)$", unwrapped, re.M)
        assert legend and legend.group(1) == c["text"], c["code"]
        assert f"{c['source']['kernel']}/{c['source']['host']} -> {c['destination']['kernel']}/" \
               f"{c['destination']['host']}" in text
        for label in c["lost"]:
            assert f"    {label}: " in text
    assert f"summary: 4 cells: {result['counts'][SILENT]} silent" in text


def test_typer2_patch_is_refused_across_host_kinds_with_the_kernels_errno():
    code, out, _ = run(TYPER2, "--kernels", "6.12,7.1", "--hosts", "gicv3,gicv4.1", "--cpus", "1", "--irqs", "64",
                       "--jobs", "2", "--json")
    (result,) = json.loads(out)["results"]
    line = next(s.line for s in load(TYPER2, DEVICES).restore if s.target == "GICD_TYPER2")
    assert len(result["cells"]) == 16
    for c in result["cells"]:
        src, dst = c["source"], c["destination"]
        if src["host"] != dst["host"]:
            errno = "EBUSY" if dst["kernel"] == "7.1" else "EINVAL"
            assert c["verdict"] == REFUSED_CELL, c
            assert [(r["line"], r["target"], r["errno"]) for r in c["refusals"]] == [(line, "GICD_TYPER2", errno)]
            assert c["code"] == f"REFUSED {errno} @{line}"
            assert c["text"] == f"refused at line {line}: {errno} (write GICD_TYPER2 = saved)"
        else:
            assert c["verdict"] == SILENT and "mpidr@spi" in c["lost"], c
            assert not any(x.startswith("nassgireq") for x in c["lost"])
    assert code == 1  # the same-host cells are silent (current QEMU's losses)


def test_round_trips_and_clean_refusals_exit_zero(tmp_path):
    """QEMU's put with the IIDR write-back is proved under the three GICv2 assumptions
    (README); 4.19.70 accepts only its own IIDR (revision 2), so 6.12 -> 4.19.70 is
    refused at the IIDR write, and 4.19.70 carries 82e40f558de5, so its SGIs survive."""
    text = (GICV2_DIR / "qemu-with-iidr-6.12.toml").read_text()
    assumed = text.replace('destination = "any"\n', 'destination = "any"\nassume = ["no-held-lines", '
                           '"no-active-sgi-source", "no-mapped-destination"]\n', 1)
    assert assumed != text
    p = tmp_path / "iidr-assumed.toml"
    p.write_text(assumed)
    code, out, _ = run(str(p), "--kernels", "6.12,4.19.70", "--hosts", "gicv2", "--cpus", "1", "--jobs", "1")
    assert code == 0, out
    assert re.search(r"^  6\.12/gicv2 +ok +REFUSED EINVAL @\d+$", out, re.M), out
    assert re.search(r"^  4\.19\.70/gicv2 +ok +ok$", out, re.M), out
    assert "3 round trip, 1 refused" in out


def test_unknown_cells_exit_3():
    code, out, _ = run(QEMU_CURRENT, "--kernels", "7.1", "--hosts", "gicv3", "--cpus", "1", "--irqs", "64",
                       "--rlimit", "1", "--jobs", "1", "--json")
    (cell,) = json.loads(out)["results"][0]["cells"]
    assert code == 3 and cell["verdict"] == UNKNOWN_CELL and cell["code"] == "UNKNOWN" and cell["reason"]


def test_a_witness_that_does_not_replay_is_never_shown(monkeypatch):
    real = check.replay  # run_sequence replays every witness through it; --jobs 1 runs here

    def broken(*args, **kwargs):
        r = real(*args, **kwargs)
        r.confirmed = False
        return r

    monkeypatch.setattr(check, "replay", broken)
    code, out, _ = run(QEMU_CURRENT, "--kernels", "7.1", "--hosts", "gicv3", "--cpus", "1", "--irqs", "64",
                       "--jobs", "1", "--json")
    (cell,) = json.loads(out)["results"][0]["cells"]
    assert code == 3 and cell["verdict"] == UNKNOWN_CELL and "TOOL BUG" in cell["reason"]
    assert cell["lost"] == [] and cell["result"]["counterexamples"] == []


def test_default_sides_are_every_revision_on_every_host_kind():
    v3 = DEVICES["gicv3"]
    sides = matrix.sides(v3, None, None)
    assert sides == [Side(k, h) for k in v3.versions for h in v3.hosts]
    assert len(sides) == len(v3.versions) * 3 and "7.1" in v3.versions and "5.10" in v3.versions
    v2 = DEVICES["gicv2"]
    assert matrix.sides(v2, ["6.12"], None) == [Side("6.12", h) for h in v2.hosts]


def test_a_cell_the_device_cannot_model_is_not_run():
    c = matrix.job_cell(QEMU_CURRENT, Side("7.1", "gicv3"), Side("7.1", "gicv9"), 1, 64, DEFAULT_BUDGET)
    assert c.kind == NOT_RUN and "gicv9" in c.reason and c.error is None
    m = matrix.Matrix(QEMU_CURRENT, "gicv3", "t", "any", [Side("7.1", "gicv3")], [Side("7.1", "gicv9")], [c])
    assert m.exit_code() == 0 and matrix.codes(m) == ["NOT RUN"]
    assert "not run: destination 7.1/gicv9" in matrix.render(m)
    assert {ROUND_TRIP, REFUSED_CELL, SILENT, UNKNOWN_CELL, NOT_RUN} == set(matrix.KINDS)


BAD = [
    (["--kernels", "7.1,9.9"], "--kernels: kernel 9.9 is newer"),
    (["--kernels", "7.1,9.9"], f"the default: {','.join(DEVICES['gicv3'].versions)}"),
    (["--kernels", "7.1,"], "give a comma-separated list"),
    (["--kernels", "4.19"], "--kernels: kernel 4.19 is older"),
    (["--hosts", "gicv3,gicv5"], "--hosts: host 'gicv5' is not modelled for gicv3: valid: gicv3, gicv4.1, gicv3-pri7"),
    (["--cpus", "513"], "--cpus 513: gicv3 supports 1 to 512 CPUs"),
    (["--irqs", "100"], "--irqs 100"),
    (["--jobs", "0"], "at least 1 job"),
]


@pytest.mark.parametrize("args,needle", BAD, ids=[" ".join(a) for a, _ in BAD])
def test_bad_options_exit_2_with_a_clear_message(args, needle):
    code, out, err = run(QEMU_CURRENT, *args)
    assert code == 2 and needle in err and out == "", err


def test_bad_files_exit_2_with_file_and_line(tmp_path):
    code, _, err = run(str(tmp_path / "nope.toml"))
    assert code == 2 and "nope.toml" in err and "cannot read the file" in err
    bad = tmp_path / "bad.toml"
    bad.write_text('name = "t"\ndevice = "gicv3"\n[[restore]]\nwrite = "GICD_ISENABLR"\n')
    code, _, err = run(str(bad))
    assert code == 2 and "bad.toml:4:" in err and "did you mean GICD_ISENABLER" in err
    # the console script too: one line on stderr, no traceback
    r = subprocess.run([sys.executable, "-m", "proofs.cli", "matrix", str(tmp_path / "nope.toml"), "--kernels", "7.1"],
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 2 and "cannot read the file" in r.stderr and "Traceback" not in r.stderr
