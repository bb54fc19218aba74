"""``gicproof regress`` (issue 10): what a change of the specifications does to migration.

The end-to-end tests build a git repository in a temporary folder (this tree's spec/,
models/, proofs/ and pyproject.toml, with one shipped GICv2 file so that proving is
quick), commit it, change the GICv2 table, and run ``regress --base HEAD~1`` there: the
base is extracted from git and described by its own code, the working tree by its own.
The table-level classification and the stream model are also tested directly, without a
repository. ``pytest --regen-golden`` rewrites tests/golden/regress-*.txt.
"""

from __future__ import annotations

import copy
import dataclasses
import json
import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest
from helpers import GOLDEN

from proofs import regress, regress_dump
from proofs import streams as sm
from proofs.cli import main
from spec import streams as ss
from spec.devices import DEVICES

ROOT = Path(__file__).parent.parent
KEEP = "qemu-with-iidr-6.12.toml"  # the one shipped file the temporary repositories keep
GIT_ENV = {"GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@example.org", "GIT_COMMITTER_NAME": "t",
           "GIT_COMMITTER_EMAIL": "t@example.org", "GIT_AUTHOR_DATE": "2025-07-08T12:00:00+00:00",
           "GIT_COMMITTER_DATE": "2025-07-08T12:00:00+00:00"}

pytestmark = pytest.mark.skipif(shutil.which("git") is None, reason="regress reads revisions with git")


def git(repo: Path, *args: str) -> str:
    out = subprocess.run(["git", "-C", str(repo), *args], capture_output=True, text=True, check=True,
                         env={**os.environ, **GIT_ENV})
    return out.stdout


def make_repo(path: Path) -> Path:
    path.mkdir(parents=True, exist_ok=True)
    for d in ("spec", "models", "proofs"):
        shutil.copytree(ROOT / d, path / d, ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    shutil.copy(ROOT / "pyproject.toml", path / "pyproject.toml")
    seqs = path / "spec" / "sequences"
    for p in seqs.glob("*/*.toml"):
        if not (p.parent.name == "gicv2" and p.name == KEEP):
            p.unlink()
    git(path, "init", "-q")
    git(path, "add", "-A")
    git(path, "commit", "-qm", "base")
    return path


def edit(path: Path, *pairs: tuple[str, str]) -> None:
    text = path.read_text()
    for old, new in pairs:
        assert old in text, f"{path.name} no longer has {old!r}: update tests/test_regress.py"
        text = text.replace(old, new, 1)
    path.write_text(text)


ROW_AFTER_IIDR = '    _irq_row("GICD_IGROUPR", 0x080,'


def add_state_register(repo: Path) -> None:
    """A new state-bearing GICv2 register: GICD_SCRATCH at 0x00C, 8 bits of guest state."""
    edit(repo / "spec" / "gicv2.py",
         ('    StateField("implementation_rev", 4, "global", HOST,',
          '    StateField("dist_scratch", 8, "global", ARCHITECTURAL, "a test register (tests/test_regress.py)"),\n'
          '    StateField("implementation_rev", 4, "global", HOST,'),
         ('        return {"dist_enabled": c(0, 1), "groups_user_writable": c(0, 1),',
          '        return {"dist_enabled": c(0, 1), "groups_user_writable": c(0, 1), "dist_scratch": c(0, 8),'),
         (ROW_AFTER_IIDR,
          '    Register("GICD_SCRATCH", DIST, 0x00C, 1, "global", ("dist_scratch",),\n'
          '             read_field("read_scratch", "dist_scratch", "tests/test_regress.py"),\n'
          '             write_field("write_scratch", "dist_scratch", write_read_write, 8, "tests/test_regress.py"),\n'
          '             read_field("read_scratch", "dist_scratch", "tests/test_regress.py"),\n'
          '             write_field("write_scratch", "dist_scratch", write_read_write, 8, "tests/test_regress.py"),\n'
          '             width=8),\n' + ROW_AFTER_IIDR),
         ("    write_one_to_set,\n    write_wi,\n", "    write_one_to_set,\n    write_read_write,\n    write_wi,\n"))


def add_raz_wi_register(repo: Path) -> None:
    """A new GICv2 register with no state: read-as-zero, writes ignored."""
    edit(repo / "spec" / "gicv2.py",
         (ROW_AFTER_IIDR,
          '    Register("GICD_RAZWI", DIST, 0x00C, 1, "global", (), read_raz(32, "tests/test_regress.py"),\n'
          '             write_wi("tests/test_regress.py"), read_raz(32, "tests/test_regress.py"),\n'
          '             write_wi("tests/test_regress.py")),\n' + ROW_AFTER_IIDR),
         ("    read_field,\n", "    read_field,\n    read_raz,\n"))


def run_cli(repo: Path, monkeypatch, capsys, *args: str) -> tuple[int, str, str]:
    monkeypatch.chdir(repo)
    code = main(["regress", *args])
    out = capsys.readouterr()
    return code, out.out, out.err


def golden(name: str, text: str, request) -> None:
    text = re.sub(r"\b[0-9a-f]{12}\b", "<commit>", text) + "\n"
    path = GOLDEN / f"{name}.txt"
    if request.config.getoption("--regen-golden") or os.environ.get("GICPROOF_REGEN_GOLDEN"):
        path.write_text(text)
    assert path.exists(), f"no golden output yet: run pytest --regen-golden and review {path}"
    assert text == path.read_text()


# ---------------------------------------------------------------------------------------
# End to end, in temporary repositories.


def test_an_added_state_register_is_silent_new_to_old_and_every_shipped_file_now_loses_it(tmp_path, request,
                                                                                          monkeypatch):
    repo = make_repo(tmp_path / "repo")
    add_state_register(repo)
    git(repo, "commit", "-qam", "gicv2: GICD_SCRATCH")
    monkeypatch.chdir(repo)
    rep = regress.run(repo, "HEAD~1", jobs=2)
    d = rep.devices["gicv2"]
    assert d["status"] == "changed"
    assert d["registers"]["added"] == ["GICD_SCRATCH"] and d["fields"]["added"] == ["dist_scratch"]
    assert rep.devices["gicv3"]["status"] == "unchanged"
    [m] = rep.migrations
    assert (m.register, m.change) == ("GICD_SCRATCH", "added")
    # old -> new: the old source has no such state; the destination starts it at reset
    assert m.old_to_new.verdict == regress.ROUND_TRIP and "is new" in m.old_to_new.why
    # new -> old: the old kernel has no register at 0x00C and ignores the write (vgic_uaccess_write)
    assert m.new_to_old.verdict == regress.SILENT and "vgic_uaccess_write" in m.new_to_old.why
    [v] = rep.verdicts
    assert v.file == f"spec/sequences/gicv2/{KEEP}" and v.newly_failing
    assert v.lost_now_only == ["dist_scratch"] and not v.lost_before_only
    assert rep.exit_code() == 1
    assert json.loads(json.dumps(rep.json()))["summary"]["silent"] == 1
    golden("regress-state-register", regress.render(rep, timing=False), request)


def test_an_added_raz_wi_register_round_trips_both_ways_and_changes_no_verdict(tmp_path, monkeypatch, capsys):
    repo = make_repo(tmp_path / "repo")
    add_raz_wi_register(repo)  # uncommitted: the default base is HEAD
    code, out, err = run_cli(repo, monkeypatch, capsys, "--json", "--jobs", "2")
    assert code == 0, err
    doc = json.loads(out)
    assert doc["command"] == "regress" and doc["exit"] == 0
    r = doc["results"][0]
    assert r["devices"]["gicv2"]["registers"]["added"] == ["GICD_RAZWI"]
    [m] = r["migration"]
    assert m["old_to_new"]["verdict"] == m["new_to_old"]["verdict"] == regress.ROUND_TRIP
    assert "no guest state" in m["new_to_old"]["why"]
    [v] = r["verdicts"]
    assert v["change"] == "same" and not v["newly_failing"]
    assert r["summary"] == {**r["summary"], "silent": 0, "newly_failing": 0, "files_rerun": 1}


def test_an_unchanged_tree_proves_nothing_and_exits_zero(tmp_path, monkeypatch, capsys):
    repo = make_repo(tmp_path / "repo")
    code, out, err = run_cli(repo, monkeypatch, capsys)
    assert code == 0, err
    assert "directories that differ: none" in out
    assert "0 files proved on both sides" in out


def test_bad_revision_is_bad_input(tmp_path, monkeypatch, capsys):
    repo = make_repo(tmp_path / "repo")
    code, out, err = run_cli(repo, monkeypatch, capsys, "--base", "no-such-revision")
    assert code == 2 and not out
    assert "--base no-such-revision: not a revision" in err and "Traceback" not in err


def test_not_a_git_repository_is_bad_input(tmp_path, monkeypatch, capsys):
    (tmp_path / "plain").mkdir()
    code, out, err = run_cli(tmp_path / "plain", monkeypatch, capsys)
    assert code == 2 and "is not in a git repository" in err and "Traceback" not in err


def test_a_repository_without_specs_is_bad_input(tmp_path, monkeypatch, capsys):
    repo = tmp_path / "other"
    repo.mkdir()
    git(repo, "init", "-q")
    code, out, err = run_cli(repo, monkeypatch, capsys)
    assert code == 2 and "not a gicproof tree" in err


def test_a_base_whose_specs_do_not_load_is_bad_input(tmp_path, monkeypatch, capsys):
    repo = make_repo(tmp_path / "repo")
    good = (repo / "spec" / "gicv2.py").read_text()
    edit(repo / "spec" / "gicv2.py", ("NR_SGIS = 16\n", "NR_SGIS = = 16\n"))
    git(repo, "commit", "-qam", "broken")
    (repo / "spec" / "gicv2.py").write_text(good)
    git(repo, "commit", "-qam", "fixed")
    code, out, err = run_cli(repo, monkeypatch, capsys, "--base", "HEAD~1", "--rerun", "none")
    assert code == 2 and not out
    assert "the specifications at HEAD~1" in err and "do not load" in err
    assert "spec/gicv2.py:" in err and "SyntaxError" in err and "Traceback" not in err


def test_bad_options(tmp_path, monkeypatch, capsys):
    repo = make_repo(tmp_path / "repo")
    code, _, err = run_cli(repo, monkeypatch, capsys, "--devices", "gicv9", "--rerun", "none")
    assert code == 2 and "unknown device gicv9" in err
    code, _, err = run_cli(repo, monkeypatch, capsys, "--jobs", "0")
    assert code == 2


# ---------------------------------------------------------------------------------------
# The table-level classification, on this tree's tables (no repository).


@pytest.fixture(scope="module")
def tables():
    return {name: regress_dump.device(spec, probes=False) for name, spec in DEVICES.items()}


def _migrations(tables, device, change):
    base = tables[device]
    new = copy.deepcopy(base)
    change(new)
    diff = regress.diff_device(base, new)
    return regress.classify(device, base, new, diff, lambda r: [])


def test_a_removed_cpu_sysreg_is_refused_cleanly_old_to_new(tables):
    [m] = _migrations(tables, "gicv3", lambda t: t["registers"].pop("ICC_IGRPEN0_EL1"))
    assert m.change == "removed"
    # KVM_DEV_ARM_VGIC_GRP_CPU_SYSREGS: an unknown encoding is ENOENT (ENXIO before 6.1);
    # QEMU aborts the destination (error_abort)
    assert (m.old_to_new.verdict, m.old_to_new.errno, m.old_to_new.step) == (regress.REFUSED, "ENOENT",
                                                                              "write ICC_IGRPEN0_EL1")
    assert "error_abort" in m.old_to_new.why
    # new -> old: the new source cannot save igrpen0 at all; the old destination keeps its own
    assert m.new_to_old.verdict == regress.SILENT


def test_a_removed_view_of_a_set_clear_pair_comes_back_through_the_other(tables):
    [m] = _migrations(tables, "gicv2", lambda t: t["registers"].pop("GICD_ICENABLER"))
    assert m.old_to_new.verdict == regress.ROUND_TRIP and "GICD_ISENABLER" in m.old_to_new.why


def test_a_removed_distributor_register_with_state_is_silently_dropped(tables):
    [m] = _migrations(tables, "gicv2", lambda t: t["registers"].pop("GICD_CTLR"))
    assert m.old_to_new.verdict == regress.SILENT and "dist_enabled" in m.old_to_new.why


def test_a_moved_register_is_written_where_the_source_had_it(tables):
    def move(t):
        t["registers"]["GICD_CTLR"]["offset"] = 0x00C
    [m] = _migrations(tables, "gicv2", move)
    assert m.change == "changed" and "offset 0x0 -> 0xc" in m.summary
    assert m.old_to_new.verdict == regress.SILENT and "moved" in m.old_to_new.why


def test_a_renamed_register_round_trips(tables):
    def rename(t):
        t["registers"]["GICD_CTLRX"] = t["registers"].pop("GICD_CTLR")
    [m] = _migrations(tables, "gicv2", rename)
    assert (m.change, m.register) == ("renamed", "GICD_CTLR -> GICD_CTLRX")
    assert m.old_to_new.verdict == m.new_to_old.verdict == regress.ROUND_TRIP


def test_a_changed_accessor_is_left_to_the_proofs(tables):
    def change(t):
        t["registers"]["GICD_IGROUPR"]["accessors"]["user_write"]["code"] = "0" * 12
    [m] = _migrations(tables, "gicv2", change)
    assert m.old_to_new.verdict == regress.SEE_PROOFS and "its code changed" in m.summary


def test_a_narrower_field_loses_its_high_bits_old_to_new(tables):
    def narrow(t):
        t["fields"]["priority"]["width"] = 5
    migs = _migrations(tables, "gicv2", narrow)
    assert migs and migs[0].change == "field changed"
    assert migs[0].old_to_new.verdict == regress.SILENT and migs[0].new_to_old.verdict == regress.ROUND_TRIP


# ---------------------------------------------------------------------------------------
# QEMU streams.


def _cell(stream, src, dst, hs="", hd=""):
    return sm.decide(stream, stream.version(src), stream.version(dst), hs, hd)


def test_typer2_subsection_from_a_gicv41_host_fails_on_an_old_destination():
    c = _cell(ss.GICV3_STREAM, "typer2-v1", "qemu-ece408818d", "gicv4.1", "gicv3")
    assert (c.verdict, c.errno, c.where) == (sm.REFUSED, "ENOENT", "load of subsection arm_gicv3/gicd_typer2")
    assert c.checker_code == "caught"


def test_typer2_is_not_sent_from_a_gicv3_host_and_the_static_checker_raises_a_false_alarm():
    c = _cell(ss.GICV3_STREAM, "typer2-v1", "qemu-ece408818d", "gicv3", "gicv3")
    assert c.verdict == sm.ROUND_TRIP
    assert c.checker_code == "false alarm" and "Subsection \"arm_gicv3/gicd_typer2\" not found" in c.checker


def test_typer2_across_host_kinds_is_refused_at_the_put_which_the_static_checker_cannot_see():
    c = _cell(ss.GICV3_STREAM, "typer2-v1", "typer2-v1", "gicv4.1", "gicv3")
    assert c.verdict == sm.REFUSED and c.where.startswith("post_load") and c.errno == "EINVAL/EBUSY"
    assert c.checker_code == "missed"


def test_typer2_v2_from_gicv3_to_gicv41_is_accepted_with_the_host_value_changed():
    """The subsection is not sent for a zero TYPER2, and v2's reset gives the destination the
    kernel's own value, which its put writes back and the kernel accepts: nothing checks."""
    c = _cell(ss.GICV3_STREAM, "typer2-v2", "typer2-v2", "gicv3", "gicv4.1")
    assert c.verdict == sm.SILENT and c.changed == ["gicd_typer2: 0x0 -> 0x100"]
    # v1's reset (0) is refused by the GICv4.1 kernel instead
    c1 = _cell(ss.GICV3_STREAM, "typer2-v1", "typer2-v1", "gicv3", "gicv4.1")
    assert c1.verdict == sm.REFUSED and "0x0" in c1.where


def test_a_pre_load_default_makes_an_optional_subsection_round_trip():
    """icc_sre_el1 is sent only when not 7, and the destination's pre_load sets 7: taken as
    guest state of any value, every value round-trips; without the pre_load, 7 does not."""
    def with_sre_state(stream, pre_load):
        cpu = stream.versions[0].description.fields[-1].struct
        assert cpu is not None and cpu.name == "arm_gicv3_cpu"
        subs = tuple(dataclasses.replace(s, fields=tuple(dataclasses.replace(f, value=ss.STATE) for f in s.fields))
                     if s.name == "arm_gicv3_cpu/sre_el1" else s for s in cpu.subsections)
        cpu = dataclasses.replace(cpu, subsections=subs, pre_load=pre_load)
        top = stream.versions[0].description
        top = dataclasses.replace(top, fields=top.fields[:-1] + (dataclasses.replace(top.fields[-1], struct=cpu),))
        return dataclasses.replace(stream, versions=(dataclasses.replace(stream.versions[0], description=top),))
    s = with_sre_state(ss.GICV3_STREAM, {"icc_sre_el1": 7})
    assert _cell(s, "qemu-ece408818d", "qemu-ece408818d", "gicv3", "gicv3").verdict == sm.ROUND_TRIP
    s = with_sre_state(ss.GICV3_STREAM, {})
    c = _cell(s, "qemu-ece408818d", "qemu-ece408818d", "gicv3", "gicv3")
    assert c.verdict == sm.SILENT and "icc_sre_el1: 0x7 -> 0x0" in c.changed


def test_arm_gic_version_7_and_12_refuse_each_other_and_the_checker_catches_it():
    old, new = "qemu-003f8dbc8e", "qemu-45b1f81d90"
    c = _cell(ss.GICV2_STREAM, old, new)
    assert (c.verdict, c.errno) == (sm.REFUSED, "EINVAL") and "too old" in c.notes[0]
    assert "minimum version error: 7 < 12" in c.checker and c.checker_code == "caught"
    c = _cell(ss.GICV2_STREAM, new, old)
    assert "too new" in c.notes[0] and "version error: 12 > 7" in c.checker


def test_the_static_checker_does_not_compare_array_lengths():
    v = ss.GICV2_STREAM.version("qemu-45b1f81d90")
    fields = tuple(dataclasses.replace(f, count=f.count + 1) if f.name == "irq_target" else f
                   for f in v.description.fields)
    longer = dataclasses.replace(v, name="longer", description=dataclasses.replace(v.description, fields=fields))
    assert sm.static_check(v.description, longer.description) == []
    c = sm.decide(ss.GICV2_STREAM, v, longer)
    assert c.verdict == sm.UNKNOWN and c.checker_code == "missed"


def test_stream_fields_name_rows_of_their_device():
    def walk(d):
        for f in d.fields:
            yield f
            if f.struct is not None:
                yield from walk(f.struct)
        for s in d.subsections:
            yield from walk(s)
    for stream in ss.STREAMS.values():
        names = {r.name for r in DEVICES[stream.device].registers}
        for v in stream.versions:
            bad = [f.register for f in walk(v.description) if f.register and f.register not in names]
            assert not bad, (stream.name, v.name, bad)
        assert ss.from_json(json.loads(json.dumps(ss.to_json(stream)))) == stream


def test_readme_regress_example_is_the_golden_output():
    """Every line the README shows of the test repository's output is in the golden file
    (lines cut short with '...' are compared up to the cut)."""
    readme = (ROOT / "README.md").read_text()
    block = readme.split("prints, with `--base HEAD~1`:\n\n```\n")[1].split("```")[0]
    real = (GOLDEN / "regress-state-register.txt").read_text()
    for line in block.splitlines():
        shown = line.split("...")[0].rstrip() if "..." in line else line
        assert shown in real, line


def test_streams_new_in_the_working_tree_are_compared_pairwise_for_the_devices_asked():
    new = regress_dump.streams()
    out = regress._stream_report(None, new, ["gicv2"])
    assert [c["stream"] for c in out["changed"]] == ["arm_gic"]
    assert {(c["source"], c["destination"]) for c in out["cells"]} == {("qemu-003f8dbc8e", "qemu-45b1f81d90"),
                                                                       ("qemu-45b1f81d90", "qemu-003f8dbc8e")}
    out = regress._stream_report(new, new, ["gicv2", "gicv3"])
    assert out["changed"] == [] and out["cells"] == []


def test_a_register_removed_from_a_kernel_list_is_refused_old_to_new_and_kept_at_reset_new_to_old(
        tmp_path, monkeypatch):
    """A kernel's register list loses TPIDR_EL0 in a second commit (as if KVM stopped
    exposing it): a vCPU from the base's kernel then names an index the destination does
    not have; QEMU refuses it before the merge, at the stream's length field (the incoming
    list is one longer than the destination's arrays: VMSTATE_INT32_POSITIVE_LE of
    cpreg_vmstate_array_len, the "failed to load cpu:cpreg_vmstate_array_len" users meet);
    the other way the destination's TPIDR_EL0 is not in the stream and keeps its reset
    value, a silent change (seed 004; cpu_post_load)."""
    repo = make_repo(tmp_path / "repo")
    path = repo / "spec" / "cpregs" / "linux-7.2.13.json"
    data = json.loads(path.read_text())
    data["registers"] = [r for r in data["registers"] if r["name"] != "TPIDR_EL0"]
    path.write_text(json.dumps(data, indent=1) + "\n")
    git(repo, "commit", "-qam", "cpregs: 7.2.13 without TPIDR_EL0")
    monkeypatch.chdir(repo)
    rep = regress.run(repo, "HEAD~1", jobs=1, rerun="none")
    c = rep.cpregs["changed"]["linux-7.2.13.json"]
    assert c["added"] == [] and [r.split(" ")[0] for r in c["removed"]] == ["TPIDR_EL0"]
    assert c["old_to_new"]["verdict"] == "refused" and c["old_to_new"]["stage"] == "length"
    assert c["new_to_old"]["verdict"] == "silent change"
    assert c["new_to_old"]["registers"]["kept-reset"] == ["TPIDR_EL0"]
    assert rep.silent == 1 and rep.exit_code() == 1
    text = regress.render(rep, timing=False)
    sent, room = map(int, re.search(r"old -> new: refused: length (\d+) > (\d+)", text).groups())
    assert sent == room + 1 and "new -> old: SILENT: 1 at reset" in text


def test_a_list_recaptured_on_a_newer_kernel_gives_the_real_kernels_migrations(tmp_path, monkeypatch):
    """regress across the real kernels' lists: the 6.12.117 capture replaced by the sid
    (7.2.13) one, as a recapture on a newer kernel would. Old -> new is 6.12 -> sid,
    refused at the length check (6.12 still lists TCR2_EL1, PIRE0_EL1, PIR_EL1, which 7.x
    hides); new -> old is sid -> 6.12, which loads without an error although 6.12 has no
    VENDOR_HYP_BMAP_2 (the highest index: cpu_post_load's merge ends before it), the
    matrix's silent cell (spec/cpregs/matrix.toml)."""
    repo = make_repo(tmp_path / "repo")
    lists = repo / "spec" / "cpregs"
    (lists / "linux-6.12.117.json").write_text((lists / "linux-7.2.13.json").read_text())
    git(repo, "commit", "-qam", "cpregs: recapture the 6.12 list on 7.2.13")
    monkeypatch.chdir(repo)
    rep = regress.run(repo, "HEAD~1", jobs=1, rerun="none")
    c = rep.cpregs["changed"]["linux-6.12.117.json"]
    assert c["old_to_new"]["cell"] == "refused: length 184 > 182"
    assert c["new_to_old"]["cell"] == "SILENT: dropped VENDOR_HYP_BMAP_2; 3 at reset"
    assert c["new_to_old"]["registers"]["dropped"] == ["VENDOR_HYP_BMAP_2"]
    assert rep.silent == 1 and rep.exit_code() == 1
