"""``gicproof prove --on-kernel``: counterexamples run on a real kernel.

Without a boot: a state the builder's userspace writes cannot reach is classified "not
buildable" (and never booted), with the reason; the model standing in for the kernel
confirms or classifies every shipped counterexample and never disagrees with itself; the
command line's bad inputs are refused with exit 2 (and a failed boot with exit 3), one
line, no traceback.

With a boot (marked ``kernel``, skipped when qemu-system-aarch64 is missing or no kernel is
cached): shipped counterexamples are confirmed on a real kernel, and a planted wrong model
prediction (a model whose userspace GICD_IGROUPR write ignores the IIDR gate) is reported
as a disagreement with the first differing read. The two share their boots (the planted
model asks for the same programs), and the JSON of the command line takes two more.
"""

from __future__ import annotations

import dataclasses
import json
import shutil
from pathlib import Path

import pytest
from helpers import representatives

from models.kernel import harness
from models.kernel.harness import BatchResult, KernelInfo, Op, Result
from proofs import cli, on_kernel
from proofs.cli import run_sequence
from proofs.on_kernel import (
    CONFIRMED,
    DISAGREED,
    NOT_BUILDABLE,
    OracleModel,
    build_ops,
    confirm,
    state_differences,
)
from spec.device import Accessor, Effect
from spec.devices import DEVICES, SEQUENCES_DIR
from spec.gicv2 import GICV2
from spec.sequence import load

SEQS = SEQUENCES_DIR / "gicv2"
RELEASE = "6.12.107"


def _report(name: str, release: str = RELEASE):
    seq = load(SEQS / name, DEVICES)
    return run_sequence(dataclasses.replace(seq, kernel=release, source_kernel=""))


def _model_kernel(release: str, boots: list[int]):
    """The model of ``release`` standing in for the kernel."""
    truth = OracleModel(release)
    info = KernelInfo("model", "none", "linux-image-model", f"{release}-1", f"{release}-model",
                      harness.cache_dir())

    def run(progs: list[list[Op]]) -> BatchResult:
        boots.append(len(progs))
        results = []
        for i, p in enumerate(progs):
            m = truth.fresh(int(p[1].args[0]), int(p[6].args[3]))
            texts = ["ok"] * 8 + [truth.step_on(m, op) for op in p[8:]]
            results.append([Result(i, j + 1, t) for j, t in enumerate(texts)])
        return BatchResult(kernel=info, gic=2, programs=results, uname_r=info.uname_r, constants={},
                           dmesg=[], boot_seconds=0.0, total_seconds=0.0, ioctls=0, ioctl_ns=0)

    return info, run


# ---------------------------------------------------------------------------------------
# Without a boot.


def test_an_active_sgi_from_another_vcpu_is_not_buildable_and_not_booted():
    rep = _report("qemu-current-6.12.toml")
    only = [r for r in rep.replays if r.witness.label == "active_source@sgi"]
    assert len(only) == 1 and only[0].source.irq[(0, 0)]["active_source"] != 0
    rep = dataclasses.replace(rep, replays=only)
    info, _ = _model_kernel(RELEASE, [])

    def no_boot(progs):
        raise AssertionError("a state userspace cannot build must not be booted")

    out = confirm([rep], info, run=no_boot)
    (o,) = out.outcomes
    assert o.status == NOT_BUILDABLE and out.boots == 0
    src = only[0].source.irq[(0, 0)]["active_source"]
    assert f"active_source={src:#x} (built 0x0)" in o.detail
    assert "vgic_mmio_change_active" in o.detail  # the reason cites the kernel


def test_the_builder_reaches_a_buildable_source_exactly():
    """Building QEMU's held-line witness on the model gives its source state, field for
    field (the trigger set to level around the line, the latch cleared after it)."""
    rep = _report("qemu-with-iidr-6.12.toml")
    r = next(x for x in rep.replays if x.witness.label == "pending_latch:0->1@spi")
    model = OracleModel(RELEASE)
    m = model.fresh(r.config.cpus, r.config.irqs)
    ops = build_ops(GICV2, model.semantics, r.source, r.config)
    assert any(op.name == "irq" for op, _ in ops)
    assert [model.step_on(m, op) for op, _ in ops] == ["ok"] * len(ops)
    assert state_differences(GICV2, r.source, m.state) == []


def _without_lines(steps):
    return None if steps is None else tuple(dataclasses.replace(s, line=0, steps=_without_lines(s.steps))
                                            for s in steps)


def _distinct_programs() -> list[str]:
    """One shipped file per distinct save/restore program (_report runs every file at the
    test's release, so files that differ only in their kernel, comments or line numbers,
    e.g. the five qemu-current-*.toml, prove and build exactly the same programs): 5 of 15."""
    out: list[tuple[tuple, str]] = []
    for f in sorted(SEQS.glob("*.toml")):
        s = load(f, DEVICES)
        key = (_without_lines(s.save), _without_lines(s.restore), s.host, s.source_host, s.destination,
               s.cpus, s.irqs, s.assume)
        if all(k != key for k, _ in out):
            out.append((key, f.name))
    return [name for _, name in out]


@pytest.mark.parametrize("release", ["5.10.223", RELEASE])
def test_the_model_as_kernel_never_disagrees(release):
    """With the model standing in for the kernel, every shipped counterexample is confirmed
    or classified, and nothing disagrees: the programs and the judging agree with the
    engine the proofs use. By default one file per distinct program (every program the
    shipped files make, at both releases); GICPROOF_HYPOTHESIS=deep runs all 15 files."""
    names = sorted(f.name for f in SEQS.glob("*.toml"))
    reports = [_report(name, release) for name in representatives(names, _distinct_programs())]
    boots: list[int] = []
    info, run = _model_kernel(release, boots)
    out = confirm(reports, info, run=run)
    counts = out.counts()
    assert counts[DISAGREED] == 0, out.render()
    assert counts[CONFIRMED] > 0 and len(boots) == 2
    assert sum(counts.values()) == sum(len(r.replays) for r in reports)


def _cli(capsys, *argv):
    code = cli.main(list(argv))
    cap = capsys.readouterr()
    return code, cap.out, cap.err


FILE = str(SEQS / "qemu-with-iidr-6.12.toml")


def test_cli_unknown_kernel_is_bad_input(capsys, monkeypatch):
    monkeypatch.setattr(harness, "missing_host_tools", lambda: [])
    code, out, err = _cli(capsys, "prove", FILE, "--on-kernel", "3.1")
    assert code == 2 and out == ""
    assert "--on-kernel 3.1: not a cached kernel" in err and "install-parts.sh" in err
    assert "Traceback" not in err and len(err.strip().splitlines()) == 1


def test_cli_without_qemu_says_what_to_install(capsys, monkeypatch):
    monkeypatch.setattr(harness, "missing_host_tools", lambda: ["qemu-system-arm"])
    code, out, err = _cli(capsys, "prove", FILE, "--on-kernel", "6.12")
    assert code == 2 and out == ""
    assert "qemu-system-arm" in err and "models/kernel/install-parts.sh" in err
    assert "Traceback" not in err


def _one_cached_kernel(monkeypatch, tmp: Path) -> KernelInfo:
    """A cache holding one 6.12.107 kernel (and busybox), the host tools present."""
    k = KernelInfo("6.12", "trixie", "linux-image-x", "6.12.107-1", "6.12.107+x", tmp / "Image")
    (tmp / "busybox").mkdir()
    (tmp / "busybox" / "busybox").write_bytes(b"")
    monkeypatch.setattr(harness, "missing_host_tools", lambda: [])
    monkeypatch.setattr(harness, "list_kernels", lambda: [k])
    monkeypatch.setattr(harness, "cache_dir", lambda: tmp)
    return k


def test_cli_refuses_a_kernel_with_other_semantics(capsys, monkeypatch, tmp_path):
    _one_cached_kernel(monkeypatch, tmp_path)
    code, _, err = _cli(capsys, "prove", FILE, "--on-kernel", "6.12", "--kernel", "4.19")
    assert code == 2
    assert "--kernel 4.19 (revision 4.19)" in err and "(6.12.107, revision 7.1)" in err
    code, _, err = _cli(capsys, "prove", str(SEQS / "qemu-with-iidr-4.7-to-6.12.toml"), "--on-kernel", "6.12")
    assert code == 2 and "migrates from kernel 4.7" in err and "for both sides" in err


def test_cli_boot_failure_is_exit_3_without_traceback(capsys, monkeypatch, tmp_path):
    _one_cached_kernel(monkeypatch, tmp_path)

    def timeout(*a, **k):
        raise harness.KernelOracleError("timeout: kernel 6.12.107+x with gic-version=2 did not finish within 180 s")

    monkeypatch.setattr(on_kernel, "confirm", timeout)
    code, out, err = _cli(capsys, "prove", FILE, "--on-kernel", "6.12")
    assert code == 3 and out == ""
    assert "could not be booted: timeout" in err and "Traceback" not in err


# ---------------------------------------------------------------------------------------
# Real kernels.

CACHED = [k.label for k in harness.list_kernels()]
LABEL = "6.12" if "6.12" in CACHED else (CACHED[0] if CACHED else "")


def _need_kernel():
    if not shutil.which(harness.QEMU):
        pytest.skip(f"{harness.QEMU} is not installed (models/kernel/install-parts.sh installs it)")
    if not LABEL:
        pytest.skip("no cached kernel")


@pytest.fixture(scope="module")
def booted():
    """A runner that boots the kernel once per batch and remembers the answers, so a second
    judge asking for the same programs needs no boot."""
    _need_kernel()
    k = harness.find_kernel(LABEL)
    memo: dict[tuple, list[Result]] = {}
    boots: list[int] = []

    def run(progs):
        todo = [p for p in progs if tuple(p) not in memo]
        if todo:
            boots.append(len(todo))
            res = harness.run_batch(k.label, 2, todo)
            for p, r in zip(todo, res.programs, strict=True):
                memo[tuple(p)] = r
            last["res"] = res
        base = last["res"]
        return dataclasses.replace(base, programs=[memo[tuple(p)] for p in progs])

    last: dict[str, BatchResult] = {}
    from models.kernel.model import release_of
    release = release_of(k)
    reports = [_report(n, release) for n in ("qemu-current-6.12.toml", "qemu-rfc-v2-2013-6.12.toml")]
    return k, run, boots, reports


@pytest.mark.kernel
def test_shipped_counterexamples_are_confirmed_on_a_real_kernel(booted):
    k, run, boots, reports = booted
    out = confirm(reports, k, run=run)
    status = {(o.file.split("/")[-1], o.label): o for o in out.outcomes}
    held = status[("qemu-current-6.12.toml", "pending_latch:0->1@spi")]
    assert held.status == CONFIRMED, out.render()
    assert "GICD_ISPENDR" in held.evidence and "after lowering the held lines" in held.evidence
    refusal = status[("qemu-rfc-v2-2013-6.12.toml", "refused:save:GICD_IGROUPR")]
    assert refusal.status == CONFIRMED, out.render()
    assert out.counts()[DISAGREED] == 0, out.render()
    assert out.boots == 2 and len(boots) == 2


def _gate_ignored_spec():
    """GICV2 with a planted wrong prediction: userspace GICD_IGROUPR writes ignore the IIDR
    gate (the kernel ignores them until GICD_IIDR is written)."""
    def always(ops, ctx, f, d):
        return Effect({"group": d})
    regs = []
    for r in GICV2.registers:
        if r.name == "GICD_IGROUPR":
            r = dataclasses.replace(r, user_write=Accessor("planted", "write", always, "planted", "planted bug"))
        regs.append(r)
    return dataclasses.replace(GICV2, registers=tuple(regs))


@pytest.mark.kernel
def test_a_planted_wrong_prediction_is_a_disagreement(booted):
    k, run, boots, reports = booted
    from models.kernel.model import release_of
    buggy = OracleModel(release_of(k), _gate_ignored_spec())
    current = [r for r in reports if "qemu-current" in r.seq.path]  # writes IGROUPR, not IIDR
    out = confirm(current, k, run=run, model=buggy)
    bad = [o for o in out.outcomes if o.status == DISAGREED]
    assert bad, out.render()
    group = [o for o in bad if o.label == "group:1->0@spi"]
    assert group, out.render()
    d = group[0].difference
    assert d is not None and "final read-back" in d.note and "GICD_IGROUPR" in d.note
    assert d.model != d.kernel
    assert out.disagreed
    assert len(boots) == 2  # the same programs as the first test: no boot of their own


@pytest.mark.kernel
def test_cli_json_carries_the_kernel_results(capsys):
    _need_kernel()
    code, out, err = _cli(capsys, "prove", FILE, "--on-kernel", LABEL, "--json")
    assert code == 1, err  # counterexamples, no disagreement (5 would be one)
    res = json.loads(out)["results"][0]["on_kernel"]
    assert res["boots"] == 2 and res["counts"][DISAGREED] == 0
    assert sum(res["counts"].values()) == len(res["counterexamples"]) == len(json.loads(out)["results"][0]["labels"])
    assert res["counts"][CONFIRMED] >= 1


def test_cli_refuses_a_gicv3_host_kind(capsys, monkeypatch):
    """QEMU gives a GICv2 guest only a GICv2 host: a file with a GICv3 host kind cannot be
    confirmed on the oracle, and says so (exit 2) instead of running on the wrong host."""
    monkeypatch.setattr(harness, "missing_host_tools", lambda: [])
    code, out, err = _cli(capsys, "prove", str(SEQS / "qemu-with-iidr-gicv3-pri7-to-gicv3.toml"),
                          "--on-kernel", "6.12")
    assert code == 2 and "no GICv2 compatibility" in err and "Traceback" not in err
