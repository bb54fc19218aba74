"""arm-cpregs: the CPU register list protocol (spec/cpregs.py, models/cpregs.py,
proofs/cpregs.py, ``gicproof cpregs``).

Hypothesis properties of the merge (random sorted lists, random subsets on each side,
random register kinds), the concrete and symbolic interpretations of one step and of each
write rule against each other, the loop invariant (proved, and not proved once the loop is
broken), the golden real-kernel matrix, and bad input. Fast: no test here runs the whole
``cpregs prove``."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import z3
from helpers import GOLDEN
from hypothesis import given
from hypothesis import strategies as st

from models import cpregs as M
from models.concrete import CONCRETE
from models.symbolic import SymbolicListOps, fresh_symbolic
from proofs import cpregs as P
from proofs import solver
from proofs.cli import main
from spec import cpregs as S

# ---------------------------------------------------------------------------------------
# Strategies: a universe of sorted distinct indexes, each side a random subset of it.

INDEX = st.integers(min_value=0, max_value=2**64 - 1)
VALUE = st.integers(min_value=0, max_value=2**64 - 1)


@st.composite
def two_lists(draw, max_size: int = 12):
    universe = sorted(draw(st.sets(st.one_of(st.integers(0, 40), INDEX), max_size=max_size)))
    dest = [x for x in universe if draw(st.booleans())]
    inc = [x for x in universe if draw(st.booleans())]
    dv = [draw(VALUE) for _ in dest]
    sv = [draw(VALUE) for _ in inc]
    return dest, dv, inc, sv


@given(two_lists())
def test_traces_loop_is_the_set_semantics(lists):
    """The v6 loop: it succeeds exactly when every incoming index is known, and then every
    destination entry holds the incoming value of its index, or its own."""
    dest, dv, inc, sv = lists
    res = M.run_merge("traces", dest, dv, inc, sv)
    want, unknown = M.spec_merge(dest, dv, inc, sv)
    assert (res.status == "ok") == (not unknown)
    if res.status == "ok":
        assert list(res.values) == want
    else:
        assert res.first_bad == unknown[0]  # the first unknown is the one named
    assert res.steps <= len(dest) + len(inc) + 1


@given(two_lists())
def test_qemu_loop_drops_only_above_the_last_index(lists):
    """QEMU's loop: it fails exactly when an unknown incoming index lies below the
    destination's last index; otherwise it loads the set semantics' values and drops the
    unknown indexes above it without a word."""
    dest, dv, inc, sv = lists
    res = M.run_merge("qemu", dest, dv, inc, sv)
    want, unknown = M.spec_merge(dest, dv, inc, sv)
    below = [k for k in unknown if dest and inc[k] < dest[-1]]
    assert (res.status == "fail") == bool(below)
    if res.status == "fail":
        assert res.first_bad == below[0]
    else:
        assert list(res.values) == want
        assert [k for k in range(len(inc)) if res.at[k] < 0] == unknown


@given(two_lists(), st.data())
def test_safe_missing_is_the_set_semantics_minus_the_safe(lists, data):
    dest, dv, inc, sv = lists
    safe = {x for x in inc if data.draw(st.booleans())}
    res = M.run_merge("traces", dest, dv, inc, sv, safe)
    want, unknown = M.spec_merge(dest, dv, inc, sv)
    bad = [k for k in unknown if inc[k] not in safe]
    assert (res.status == "ok") == (not bad)
    if res.status == "ok":
        assert list(res.values) == want


KINDS = [S.PLAIN, S.CONSTANT, S.PARTLY_RO, S.FULL_STATE, S.NO_MIGRATE]


@st.composite
def reg_lists(draw):
    dest, dv, inc, sv = draw(two_lists(max_size=8))
    kinds = {x: draw(st.sampled_from(KINDS)) for x in set(dest) | set(inc)}

    def rule(k: str) -> S.RegRule:
        return S.RegRule(k, ro_mask=0x4 if k == S.PARTLY_RO else 0, derived=k == S.PARTLY_RO)

    src = S.RegList("src", (0,), tuple(S.Register(x, f"R{x:x}", rule(kinds[x]), v) for x, v in zip(inc, sv, strict=True)))
    dst = S.RegList("dst", (0,), tuple(S.Register(x, f"R{x:x}", rule(kinds[x]), v) for x, v in zip(dest, dv, strict=True)))
    return src, dst


@given(reg_lists(), st.sampled_from(list(S.VARIANTS)))
def test_protocol_verdicts(lists, variant):
    """The whole protocol on random lists and kinds: the verdict follows from the sets and
    the kinds; a round trip carries every source value; nothing is both carried and lost."""
    src, dst = lists
    v = S.VARIANTS[variant]
    mig = M.migrate(src, dst, v, hidden=[], safe_missing=[])
    s = {r.index: r for r in src.registers if r.rule.kind != S.NO_MIGRATE}
    d = {r.index: r for r in dst.registers if r.rule.kind != S.NO_MIGRATE}
    if len(s) > len(d) + v.extra_capacity:
        assert (mig.verdict, mig.stage) == (M.REFUSED, "length")
        return
    unknown = sorted(s.keys() - d.keys())
    if unknown and (v.loop == "traces" or unknown[0] < max(d)):
        assert (mig.verdict, mig.stage) == (M.REFUSED, "merge")
        return
    const_bad = [x for x in s.keys() & d.keys() if d[x].rule.kind == S.CONSTANT and s[x].value != d[x].value]
    if const_bad:
        assert (mig.verdict, mig.stage) == (M.REFUSED, "write")
        assert {e.index for e in mig.by("write-refused")} == set(const_bad)
        return
    if not unknown and s.keys() == d.keys():
        assert mig.verdict == M.ROUND_TRIP
        assert all(e.final == s[e.index].value or (e.final ^ s[e.index].value) == 0x4 for e in mig.by("carried"))
    else:
        assert mig.verdict == M.SILENT
    fates = [e.index for e in mig.entries]
    assert len(fates) == len(set(fates))


def test_kvm_order_needs_the_sort():
    """KVM's order is not sorted on any shipped kernel (spec/cpregs/README.md); the same
    lists merged unsorted break where the sorted ones do not."""
    lists = {x.label: x for x in M.shipped_lists()}
    ok = M.migrate(lists["6.1"], lists["6.12"], S.VARIANTS["qemu"])
    broken = M.migrate(lists["6.1"], lists["6.12"], S.VARIANTS["qemu"], sort=False)
    assert (ok.stage, [e.name for e in ok.by("write-refused")]) == ("write", ["ID_AA64MMFR1_EL1"])
    assert (broken.stage, [e.name for e in broken.by("refused")]) == ("merge", ["MIDR_EL1"])  # MIDR_EL1 is in both


# ---------------------------------------------------------------------------------------
# One semantics, two interpretations.


@given(two_lists(max_size=6), st.sampled_from(["qemu", "traces"]), st.data())
def test_step_concrete_and_symbolic_agree(lists, loop, data):
    dest, dv, inc, sv = lists
    safe = {x for x in inc if data.draw(st.booleans())} if loop == "traces" else set()
    C = M.CONCRETE_LISTS
    L = SymbolicListOps()
    cin = M.MergeInputs(tuple(dest), len(dest), tuple(inc), tuple(sv), len(inc), safe.__contains__)
    safe_arr = L.word_set_of(sorted(safe))
    sin = M.MergeInputs(L.word_array(dest), L.pos(len(dest)), L.word_array(inc), L.word_array(sv), L.pos(len(inc)),
                        lambda x: L.member(safe_arr, x))
    cst = M.initial(C, tuple(dv), (0,) * len(dest), (-1,) * len(inc))
    sst = M.initial(L, L.word_array(dv), L.const_positions(0), L.const_positions(-1))
    for _ in range(len(dest) + len(inc) + 1):
        cst, sst = M.step(C, loop, cin, cst), M.step(L, loop, sin, sst)
        for f in ("i", "v", "status", "unexpected", "first_bad"):
            assert z3.simplify(getattr(sst, f)).as_long() == getattr(cst, f), f
        for j in range(len(dest)):
            assert z3.simplify(z3.Select(sst.values, j)).as_long() == cst.values[j]
            assert z3.simplify(z3.Select(sst.took, j)).as_long() == cst.took[j]
        for k in range(len(inc)):
            assert z3.simplify(z3.Select(sst.at, k)).as_long() == cst.at[k]


RULES = [S.RegRule(S.PLAIN), S.RegRule(S.CONSTANT), S.RegRule(S.PARTLY_RO, ro_mask=0x4, derived=True),
         S.RegRule(S.FULL_STATE), S.RegRule(S.LEVEL, level_mask=0xF),
         S.RegRule(S.ID_FIELDS, writable=0xF0F, lower_safe=((8, 4), (0, 4)), minimum=((0, 4, 6),)),
         S.RegRule(S.CCSIDR, width=32, min_line=6), S.RegRule(S.CLIDR, ctr_idc=False), S.RegRule(S.UNMODELLED)]


@given(st.sampled_from(RULES), VALUE, VALUE, st.sampled_from(["kvm", "tcg"]))
def test_write_rules_concrete_and_symbolic_agree(rule, cur, val, accel):
    w = rule.width
    cur, val = cur & ((1 << w) - 1), val & ((1 << w) - 1)
    ok_c, after_c = S.write(CONCRETE, rule, cur, val, accel)
    ops = fresh_symbolic()
    ok_s, after_s = S.write(ops, rule, ops.const(cur, w), ops.const(val, w), accel)
    assert z3.simplify(ok_s).as_long() == ok_c
    assert z3.simplify(after_s).as_long() == after_c


# ---------------------------------------------------------------------------------------
# The proofs.


def test_qemu_merge_proved_and_its_witnesses_replay():
    obs = {o.name: o for o in P.merge_obligations(S.VARIANTS["qemu"], solver.Budget())}
    assert obs["merge"].verdict == P.PROVED
    assert all(q.status == "sat" for q in obs["merge"].queries if "satisfiable" in q.name)
    for name in ("identical", "dest-extra", "source-extra-below"):
        assert obs[name].verdict == P.PROVED, name
    tail = obs["source-extra"]
    assert tail.verdict == P.COUNTEREXAMPLE and tail.witness and tail.witness.replayed
    res = M.run_merge("qemu", tail.witness.dest, tail.witness.dest_val, tail.witness.inc, tail.witness.inc_val)
    assert res.status == "ok" and len(tail.witness.inc) <= len(tail.witness.dest)
    unsorted = obs["unsorted"]
    assert unsorted.verdict == P.COUNTEREXAMPLE and unsorted.witness.replayed
    w = unsorted.witness
    assert w.dest != sorted(w.dest) or w.inc != sorted(w.inc)


def test_a_broken_loop_is_not_proved(monkeypatch):
    """Mutation: the v6 loop without its incoming tail (QEMU's end condition) must fail its
    proof: the invariant's claim at OK no longer holds (an unknown index above the last is
    not counted)."""
    real = M.step

    def no_tail(lops, loop, inp, st):
        nxt = real(lops, loop, inp, st)
        stop = lops.and_(lops.peq(st.status, lops.pos(M.RUNNING)), lops.not_(lops.plt(st.i, inp.n)))
        return M.MergeState(nxt.i, nxt.v, nxt.values, nxt.took, nxt.at,
                            lops.ite(stop, lops.ite(lops.peq(st.unexpected, lops.pos(0)), lops.pos(M.OK),
                                                    lops.pos(M.FAIL)), nxt.status),
                            nxt.unexpected, nxt.first_bad)

    monkeypatch.setattr(M, "step", no_tail)
    ob, _ = P.prove_merge(S.VARIANTS["traces"], solver.Budget(rlimit=5_000_000))
    assert ob.verdict != P.PROVED


def test_register_obligations():
    obs = {o.name: o for o in P.register_obligations(solver.Budget())}
    assert all(o.as_expected for o in obs.values()), [(o.name, o.verdict) for o in obs.values()]
    assert obs["full-state-runtime-put"].witness.replayed


# ---------------------------------------------------------------------------------------
# Real lists and the CLI.


def test_real_matrix_golden(request, capsys):
    code = main(["cpregs", "matrix"])
    text = capsys.readouterr().out
    assert code == 1  # a silent change (sid -> 6.12, 6.1 -> sid)
    golden = GOLDEN / "cpregs-matrix.txt"
    if request.config.getoption("--regen-golden") or os.environ.get("GICPROOF_REGEN_GOLDEN"):
        golden.write_text(text)
    assert golden.exists(), "no golden matrix yet: run pytest --regen-golden and review it"
    assert text == golden.read_text()


def test_real_matrix_cells():
    mx = P.real_matrix(M.shipped_lists(), S.VARIANTS["qemu"])
    c = mx.cells
    assert (c[("sid", "6.12")].verdict, [e.name for e in c[("sid", "6.12")].by("dropped")]) == \
        (M.SILENT, ["VENDOR_HYP_BMAP_2"])
    assert mx.blessed[("sid", "6.12")].missing == ["VENDOR_HYP_BMAP_2"]
    assert c[("6.1", "6.12")].stage == "write" and mx.blessed[("6.1", "6.12")].verdict == "passes"
    assert c[("6.12", "sid")].stage == "length"
    assert all(c[(a.label, a.label)].verdict == M.ROUND_TRIP for a in mx.lists)
    v6 = P.real_matrix(M.shipped_lists(), S.VARIANTS["traces"])
    assert v6.cells[("sid", "6.12")].stage == "merge"  # the v6 rework refuses the tail drop


@pytest.mark.parametrize("argv, needle", [
    (["cpregs", "matrix", "--variant", "nope"], "valid: qemu, traces"),
    (["cpregs", "matrix", "--variant", "hidden", "--hidden", "zz"], "not a register index"),
    (["cpregs", "matrix", "--hidden", "0x1"], "has no hidden registers"),
    (["cpregs", "migrate", "6.3", "sid"], "neither a shipped kernel"),
    (["cpregs", "prove", "--variant", "qemu,bad"], "unknown variant 'bad'"),
    (["cpregs", "matrix", "--lists", "/nonexistent.json"], "cannot read it"),
])
def test_bad_input(argv, needle, capsys):
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert needle in err and "Traceback" not in err


@pytest.mark.parametrize("body, needle", [
    ('{\n "format": 3\n}\n', ":1: not a gicproof-cpregs/1"),
    ('{\n "format": "gicproof-cpregs/1",\n', ":3: not JSON"),
    ('{"format": "gicproof-cpregs/1", "kernel": {"label": "x", "version": "6.1.1"}, "registers": [\n'
     ' {"index": "0x603000000013c039", "name": "X", "class": "sysreg", "kind": "weird", "value": "0x0"}\n]}\n',
     ":2: bad register entry: unknown register kind 'weird': valid: core, id"),
    ('{"format": "gicproof-cpregs/1", "kernel": {"label": "x", "version": "6.1.1"}, "registers": [\n'
     ' {"index": "0x1", "name": "X", "class": "sysreg", "kind": "state", "value": "0x0"},\n'
     ' {"index": "0x1", "name": "X", "class": "sysreg", "kind": "state", "value": "0x0"}\n]}\n',
     "listed twice"),
])
def test_bad_list_file(tmp_path: Path, body, needle, capsys):
    f = tmp_path / "list.json"
    f.write_text(body)
    assert main(["cpregs", "migrate", str(f), "sid"]) == 2
    err = capsys.readouterr().err
    assert needle in err and "Traceback" not in err


@pytest.mark.kernel
def test_write_phase_on_the_real_kernel():
    """sid -> 6.12 (the tail drop) replayed on 6.12: every register written as
    kvm_arm_cpu_post_load does and read back agrees with the model (one boot)."""
    import shutil

    from models.kernel import harness
    from proofs import cpregs_kernel
    if not shutil.which(harness.QEMU):
        pytest.skip(f"{harness.QEMU} is not installed (models/kernel/install-parts.sh installs it)")
    lists = {x.label: x for x in M.shipped_lists()}
    mx = P.real_matrix([lists["sid"], lists["6.12"]], S.VARIANTS["qemu"])
    try:
        chk = cpregs_kernel.confirm(mx)
    except harness.KernelOracleError as e:
        pytest.fail(f"kernel oracle: {e}", pytrace=False)
    assert [(a, b) for a, b, _ in chk.checked] == [("sid", "6.12")]
    assert not chk.disagreements, chk.render()
    assert {name.split(" ")[0] for _, _, name, _, _ in chk.evidence} == {"CNTP_CTL_EL0", "CNTV_CTL_EL0"}


def test_readme_cpregs_blocks_are_real_output(capsys):
    """The README's arm-cpregs output blocks are lines of the real commands' output."""
    readme = (Path(__file__).parent.parent / "README.md").read_text()
    for cmd, argv in (("$ gicproof cpregs matrix --brief", ["cpregs", "matrix", "--brief"]),
                      ("$ gicproof cpregs variants", ["cpregs", "variants"])):
        block = readme.split(cmd + "\n")[1].split("```")[0]
        main(argv)
        real = capsys.readouterr().out.splitlines()
        shown = [line for line in block.splitlines() if line.strip() not in ("", "...")]
        assert len(shown) > 5
        assert [line for line in shown if line not in real] == []


# ---------------------------------------------------------------------------------------
# `gicproof check`'s CPU register list section: the real lists' matrix against
# spec/cpregs/matrix.toml.


def test_check_matches_every_cell_of_the_shipped_matrix_and_fails_a_changed_expectation(tmp_path):
    from proofs.check import job_cpregs_matrix
    lists = len(M.shipped_lists())
    out = job_cpregs_matrix()
    assert len(out) == lists * lists and all(not o.bad and o.row[-1] == "ok" for o in out)
    # every cross-kernel cell is stated (and explained) in the file; same-kernel ones round-trip
    assert len(M.load_matrix_expectations()) == lists * (lists - 1)
    text = M.MATRIX_EXPECTATIONS.read_text().replace('cell = "SILENT: 15 at reset"', 'cell = "round trip"')
    (tmp_path / "m.toml").write_text(text)
    bad = [o for o in job_cpregs_matrix(str(tmp_path / "m.toml")) if o.bad]
    assert [o.row[0] for o in bad] == ["arm-cpregs matrix 6.1 -> sid"]
    assert bad[0].row[2:] == ("SILENT: 15 at reset", "round trip", "MISMATCH") and "CNTP_CTL_EL0" in bad[0].detail


@pytest.mark.parametrize("text,line,message", [
    ('format = "gicproof-cpregs-matrix/1"\n[[cell]]\nsource = "6.1"\ndestination = "sid"\ncell = "x"\n', 2,
     "a [[cell]] needs the strings source, destination, cell and why (missing: why)"),
    ('format = "x"\n', 1, '"format" must be "gicproof-cpregs-matrix/1"'),
    ('format = "gicproof-cpregs-matrix/1"\n[[cell]]\nsource = "a"\ndestination = "b"\ncell = "c"\nwhy = "d"\n'
     '[[cell]]\nsource = "a"\ndestination = "b"\ncell = "c"\nwhy = "d"\n', 7,
     "a -> b is listed twice (first at line 2)"),
])
def test_bad_matrix_expectations_are_bad_input_with_their_line(tmp_path, text, line, message):
    """check reports them as bad input (file, line, what is valid), as it does a sequence file."""
    from proofs.check import job_cpregs_matrix
    path = tmp_path / "m.toml"
    path.write_text(text)
    with pytest.raises(M.ListError) as e:
        M.load_matrix_expectations(path)
    assert str(e.value) == f"{path}:{line}: {message}"
    [o] = job_cpregs_matrix(str(path))
    assert o.error == (str(path), line, message)
