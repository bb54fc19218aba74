"""``gicproof conform gicv3-its``: the ITS model of the kernel (models/kernel/its_model.py,
KernelModelIts, over the GICV3_ITS section of spec/lifecycle.py and the GITS rows of
spec/gicv3_its.py), its generator and shrinker without a boot; then one boot of one cached
kernel with a small batch, which must give no disagreement.

``FOUND`` replays each disagreement conform gicv3-its found (shrunk), with what the
kernels printed: the model now gives the kernel's answer on every release. ``SCENARIOS``
are targeted programs, each with what the oracle printed (Debian 5.10.223, 6.1.176,
6.12.117 and 7.2.13 under QEMU gic-version=3), run without a boot against the model and,
by the kernel test, against a kernel.
"""

from __future__ import annotations

import dataclasses
import os
import re
import shutil

import pytest

from models.kernel import harness
from models.kernel.harness import BatchResult, KernelInfo, Op, Result, v3_setup
from models.kernel.its_model import Hazard, KernelModelIts
from proofs import cli
from proofs.conform import (
    Program,
    _model_runs,
    candidates,
    conform,
    generate_batch,
    is_lifecycle_op,
)
from spec import gicv3
from spec import lifecycle as lifecycle_table

RESULT = re.compile(r"^(ok|0x[0-9a-f]+|E[A-Z0-9]+|!no mem word at 0x[0-9a-f]+|!no device '0x[0-9a-f]+')$")
RELEASES = ("5.10.223", "6.1.176", "6.12.117", "7.2.13")
IT = "ITS_REGS"
SETUP = v3_setup(vcpus=1, nr_irqs=64, its=True)
MEM = [Op.mem(0x0, 0x10000), Op.mem(0x40000000, 0x100000)]
CT, DT, ITT, L2, L2B = 0x40050000, 0x40040000, 0x40070000, 0x40080000, 0x40090000
V = 1 << 63
B0, B0_INDIRECT, B1 = 0x9800000040040400, 0xD800000040040401, 0x9800000040050400
CBASER = V | 0x50000000 | 0x400
RESTORE, SAVE = Op.ctrl(1, "ITS_RESTORE_TABLES"), Op.ctrl(1, "ITS_SAVE_TABLES")


def _w(off: int, value: int) -> Op:
    return Op.set(1, IT, off, value, 64)


def _r(off: int) -> Op:
    return Op.get(1, IT, off, 64)


def _dte(itt: int, bits: int = 2, nxt: int = 0) -> int:
    return V | nxt << 49 | (itt >> 8) << 5 | (bits - 1)


# A collection on vCPU 0 (ICID 0), device 0 with one event (EventID 0 -> LPI 8200), restored.
TABLES = MEM + [Op.poke(CT, V), Op.poke(DT, _dte(ITT)), Op.poke(ITT, 8200 << 16), _w(0x100, B0), _w(0x108, B1),
                RESTORE]

# (what, program after SETUP, the last results: one list for every release, or a dict from
# the first release of a range to its answer)
FOUND = [
    ("GITS_CBASER keeps every bit but 15:12 and the sanitised fields (vgic_sanitise_its_cbaser): the "
     "whole Size field and the RES0 bits; the model kept Size 1:0 and address bits 47:16 (seed 1, 6.12.117)",
     [Op.set(1, IT, 0x80, 0x61791FEF), Op.get(1, IT, 0x80, 64)], ["ok", "0x1800000061790fef"]),
    ("a GITS_BASER1 write that changes the value (a second page here) frees the collections on 6.12.117 "
     "and 7.2.13, so a second RESTORE_TABLES finds no collection to clash with; 5.10.223 and 6.1.176 "
     "keep them: -EEXIST (seed 0, program 240)",
     [Op.mem(0x40000000, 0x100000), Op.poke(CT, 0x8000FFFFFFFF0000), _w(0x108, B1), RESTORE, _w(0x108, B1 | 1),
      RESTORE], {"5.10": ["ok", "ok", "ok", "ok", "ok", "EEXIST"], "6.12.117": ["ok"] * 6}),
    ("SAVE_TABLES with a device the two-level table no longer reaches (its level-1 entry cleared): "
     "-EINVAL on 5.10.223 and 6.1.176 (vgic_its_save_device_tables), skipped on 6.12.117 and 7.2.13 "
     "(seed 0, program 83)",
     [Op.mem(0x40000000, 0x100000), Op.poke(DT, V | L2), Op.poke(L2 + 0x38, 0x800000000800E202),
      _w(0x100, B0_INDIRECT), RESTORE, Op.poke(DT, 0), SAVE],
     {"5.10": ["ok"] * 6 + ["EINVAL"], "6.12.117": ["ok"] * 7}),
]

SCENARIOS = [
    ("every ITS register at reset: GITS_CTLR quiescent, IIDR revision 0, TYPER a constant, the BASERs' "
     "INITIAL_BASER_VALUE with their type and entry size, CBASER 0, PIDR2 0x3b",
     [_r(0x0), _r(0x4), _r(0x8), _r(0x80), _r(0x100), _r(0x108), _r(0x110), _r(0xFFE8)],
     ["0x80000000", "0x4b00043b", "0x1ef71", "0x0", "0x1907000000000600", "0x1c07000000000600", "0x0", "0x3b"]),
    ("ITS_REGS alignment and regions: GITS_TYPER's high word and a 32-bit-aligned CBASER are EINVAL, an "
     "offset with no region ENXIO; KVM_HAS_DEVICE_ATTR the same",
     [_r(0xC), _r(0x84), _r(0x10), _r(0x10000), Op.has(1, IT, 0xC), Op.has(1, IT, 0x98), Op.has(1, IT, 0xFFFC)],
     ["EINVAL", "EINVAL", "ENXIO", "ENXIO", "EINVAL", "ENXIO", "ok"]),
    ("GITS_IIDR: only ABI revision 0 is accepted; GITS_TYPER and the ID registers ignore writes",
     [_w(0x4, 0x4B00143B), _w(0x4, 0x4B00043B), _w(0x8, 0), _r(0x8), _w(0xFFE8, 0), _r(0xFFE8)],
     ["EINVAL", "ok", "ok", "0x1ef71", "ok", "0x3b"]),
    ("GITS_CREADR: EINVAL beyond the queue (one 4K page), EBUSY while enabled; GITS_CWRITER beyond the "
     "queue is ignored; enabling runs the queue (unbacked: skipped) to CWRITER; the BASERs are frozen "
     "while enabled",
     MEM + [_w(0x80, CBASER), _w(0x90, 0x1000), _w(0x90, 0x40), _w(0x88, 0x2000), _r(0x88), _w(0x100, B0),
            _w(0x108, B1), Op.set(1, IT, 0x0, 1), _r(0x0), _r(0x90), _w(0x90, 0x20), _w(0x108, 0), _r(0x108)],
     ["ok", "ok", "ok", "EINVAL", "ok", "ok", "0x0", "ok", "ok", "ok", "0x80000001", "0x0", "EBUSY", "ok",
      "0x9c07000040050600"]),
    ("an unknown ITS CTRL attribute (and SAVE_PENDING_TABLES on the ITS) succeeds until 7.1 and is ENXIO "
     "from 7.1 (vgic_its_ctrl 'default: ret = -ENXIO')",
     [Op.ctrl(1, 99), Op.ctrl(1, 3), Op.has(1, "CTRL", 3), Op.has(1, "CTRL", 4)],
     {"5.10": ["ok", "ok", "ENXIO", "ok"], "7.2": ["ENXIO", "ENXIO", "ENXIO", "ok"]}),
    ("RESTORE_TABLES reads the LPI's pending bit (its vCPU's PENDBASER, address 0) and clears it in "
     "memory; SAVE_TABLES and SAVE_PENDING_TABLES write the entries and the bit back",
     MEM + [Op.poke(0x400, 1 << 8)] + TABLES[2:] +
     [Op.peek(0x400), Op.poke(CT, 0), Op.poke(DT, 0), Op.poke(ITT, 0), SAVE, Op.ctrl(0, "SAVE_PENDING_TABLES"),
      Op.peek(CT), Op.peek(CT + 8), Op.peek(DT), Op.peek(ITT), Op.peek(0x400)],
     ["ok"] * 9 + ["0x0", "ok", "ok", "ok", "ok", "ok", "0x8000000000000000", "0x0", "0x800000000800e001",
                   "0x20080000", "0x100"]),
    ("RESTORE_TABLES without the LPI tables' memory: EFAULT; the collection is freed again from 5.19",
     [Op.mem(0x40000000, 0x100000)] + TABLES[2:] + [SAVE, Op.peek(CT)],
     {"5.10": ["ok"] * 6 + ["EFAULT", "ok", "0x8000000000000000"], "6.1": ["ok"] * 6 + ["EFAULT", "ok", "0x0"]}),
    ("a collection targeting a vCPU the VM does not have, a pINTID below 8192, an ICID no collection has: "
     "EINVAL",
     MEM + [Op.poke(CT, V | 1 << 16), _w(0x108, B1), RESTORE, Op.poke(CT, V), Op.poke(DT, _dte(ITT)),
            Op.poke(ITT, 100 << 16), _w(0x100, B0), RESTORE, Op.ctrl(1, "ITS_CTRL_RESET"), _w(0x100, B0),
            _w(0x108, B1), Op.poke(ITT, 8200 << 16 | 7), RESTORE],
     ["ok"] * 4 + ["EINVAL"] + ["ok"] * 4 + ["EINVAL"] + ["ok"] * 4 + ["EINVAL"]),
    ("a collection beyond its one-page table (ICID 8192): skipped on 5.10 (the positive "
     "E_ITS_MAPC_COLLECTION_OOR continues the scan), EINVAL from 5.19",
     MEM + [Op.poke(CT, V | 8192), Op.poke(CT + 8, V | 1), _w(0x108, B1), RESTORE, Op.poke(CT, 0),
            Op.poke(CT + 8, 0), SAVE, Op.peek(CT)],
     {"5.10": ["ok"] * 10 + ["0x8000000000000001"], "6.1": ["ok"] * 6 + ["EINVAL"] + ["ok"] * 3 + ["0x0"]}),
    ("a DTE with 17 EventID bits: EINVAL from 6.1.175/6.12.92/7.1; 5.10 scans its 1M ITT, which runs "
     "off the memory slot: EFAULT",
     MEM + [Op.poke(CT, V), Op.poke(DT, _dte(ITT, 17)), _w(0x100, B0), _w(0x108, B1), RESTORE],
     {"5.10": ["ok"] * 6 + ["EFAULT"], "6.1": ["ok"] * 6 + ["EINVAL"]}),
    ("a GITS_BASER0 write that changes the value frees the devices from 6.12.117/7.2 (SAVE_TABLES then "
     "writes no DTE); rewriting the same value keeps them",
     TABLES + [_w(0x100, B0), Op.poke(DT, 0), SAVE, Op.peek(DT), _w(0x100, B0 | 1), Op.poke(DT, 0), SAVE,
               Op.peek(DT)],
     {"5.10": ["ok"] * 11 + ["0x800000000800e001", "ok", "ok", "ok", "0x800000000800e001"],
      "6.12.117": ["ok"] * 11 + ["0x800000000800e001", "ok", "ok", "ok", "0x0"]}),
    ("a GITS_BASER1 write that changes the value frees the collections from 6.12.117/7.2; SAVE_TABLES "
     "then writes the event's ITE as zero (its collection is gone) instead of oopsing",
     TABLES + [_w(0x108, B1 | 1), Op.poke(ITT, 0x1234), SAVE, Op.peek(ITT), Op.peek(DT)],
     {"5.10": ["ok"] * 11 + ["0x20080000", "0x800000000800e001"],
      "6.12.117": ["ok"] * 11 + ["0x0", "0x800000000800e001"]}),
    ("the ITS's base address: ENODEV for another type (set or get), EEXIST when set twice; unaligned "
     "EINVAL; before it every register access is ENXIO, KVM_HAS_DEVICE_ATTR is not",
     [Op.vm(), Op.vcpus(1), Op.device("v3"), Op.device("its"), Op.get(1, IT, 0x0, 64), Op.has(1, IT, 0x0),
      Op.get(1, "ADDR", 4, 64), Op.set(1, "ADDR", 2, 0x08080000, 64), Op.get(1, "ADDR", 2, 64),
      Op.set(1, "ADDR", 4, 0x08081000, 64), Op.set(1, "ADDR", 4, 0x08080000, 64),
      Op.set(1, "ADDR", 4, 0x080A0000, 64), Op.get(1, "ADDR", 4, 32)],
     ["ok", "ok", "ok", "ok", "ENXIO", "ok", "0xffffffffffffffff", "ENODEV", "ENODEV", "EINVAL", "ok",
      "EEXIST", "0x8080000"]),
    ("an ITS base whose 64K frame fits below 2^40 but whose 128K region does not: accepted on 5.10 "
     "(vgic_check_ioaddr checks the base), E2BIG from 5.16 (vgic_check_iorange); a wrapping one",
     [Op.vm(), Op.device("its"), Op.set(0, "ADDR", 4, (1 << 40) - 0x10000, 64),
      Op.set(0, "ADDR", 4, 0xFFFFFFFFFFFF0000, 64)],
     {"5.10": ["ok", "ok", "ok", "E2BIG"], "6.1": ["ok", "ok", "E2BIG", "EINVAL"]}),
    ("an ITS before the vgic-v3, and a second ITS: both succeed; a second vgic-v3 is EEXIST",
     [Op.vm(), Op.device("its"), Op.device("v3"), Op.device("its"), Op.device("v3"), Op.test_device("its")],
     ["ok"] * 4 + ["EEXIST", "ok"]),
]


def _expected(want, release: str) -> list[str]:
    if isinstance(want, list):
        return want
    key = lifecycle_table.release_key
    firsts = [r for r in want if key(r) <= key(release)]
    return want[max(firsts, key=key)] if firsts else []


def _program(body: list[Op]) -> list[Op]:
    return body if body and body[0].name == "vm" else SETUP + body


@pytest.mark.parametrize("release", RELEASES)
def test_found_disagreements_now_agree(release):
    model = KernelModelIts(release)
    for what, body, want in FOUND:
        got = model.run(SETUP + body)
        exp = _expected(want, release)
        assert got[-len(exp):] == exp, f"{what}: {release}"
        assert all(x == "ok" for x in got[:len(SETUP)]), got


@pytest.mark.parametrize("release", RELEASES)
def test_its_scenarios_give_the_observed_answers(release):
    model = KernelModelIts(release)
    for what, body, want in SCENARIOS:
        exp = _expected(want, release)
        if not exp:
            continue
        got = model.run(_program(body))
        assert got[-len(exp):] == exp, f"{what}: {release}: {got[-len(exp):]}"


def test_the_its_boundaries_per_release():
    flags = ("its_restore_checks", "its_dte_eventid_bits", "its_baser_change_frees", "its_save_unmapped_ite",
             "its_save_skips_unreachable_device")
    seen = {r: tuple(getattr(gicv3.semantics_for(r), f) for f in flags) for r in RELEASES + ("6.12.107", "7.1.8")}
    assert seen["5.10.223"] == (False,) * 5
    assert seen["6.1.176"] == (True, True, False, False, False)
    assert seen["6.12.107"] == (True, True, False, False, False)  # the source read
    assert seen["6.12.117"] == seen["7.2.13"] == (True,) * 5       # what the oracle does
    assert seen["7.1.8"] == (True, True, False, False, False)


def test_every_its_check_names_its_source():
    lc = lifecycle_table.GICV3_ITS
    for name, check in lc.rules():
        if name.startswith("its_") or name == "create_device":
            assert check.source and check.rule and re.search(r"\.c\b", check.source), (name, check.source)
    versioned = {c.since or c.until for n, c in lc.rules() if n.startswith("its_") and (c.since or c.until)}
    assert {"5.16", lifecycle_table.ITS_CTRL_ENXIO} <= versioned


def test_generated_its_programs_are_valid_and_in_the_model_scope():
    progs = generate_batch(120, seed=3, device="gicv3-its")
    assert 30 < sum(p.lifecycle for p in progs) < 90 and all(p.its and p.gic == 3 for p in progs)
    seen = set()
    for release in ("5.10.223", "6.12.117"):
        model = KernelModelIts(release)
        cut, expected = _model_runs(model, progs)
        for p, lines in zip(cut, expected, strict=True):
            assert p.valid()
            assert all(RESULT.match(x) for x in lines), lines
            seen |= {(op.name if op.name != "ctrl" else f"ctrl {op.args[1]}", r if not r.startswith("0x") else "value")
                     for op, r in zip(p.ops(), lines, strict=True)}
            assert sum(is_lifecycle_op(op) for op in p.ops()) <= len(lines)
    for want in [("ctrl ITS_RESTORE_TABLES", "ok"), ("ctrl ITS_RESTORE_TABLES", "EFAULT"),
                 ("ctrl ITS_RESTORE_TABLES", "EINVAL"), ("ctrl ITS_RESTORE_TABLES", "EEXIST"),
                 ("ctrl ITS_SAVE_TABLES", "ok"), ("ctrl ITS_CTRL_RESET", "ok"), ("set64", "ENODEV"),
                 ("set64", "EEXIST"), ("set64", "E2BIG"), ("get64", "ENXIO"), ("has", "EINVAL"),
                 ("peek", "value"), ("device", "ok")]:
        assert want in seen, want
    for c in candidates(progs[1])[:30]:
        assert c.valid() and c.its


def test_a_program_is_cut_before_a_known_oops():
    """SAVE_TABLES of an event whose collection a GITS_BASER1 write freed oopses on 5.10.223
    and 6.1.176 (tests/test_kernel_oracle.py): the model refuses it there (Hazard), and the
    batch runs the program without it; 6.12.117 writes a zero ITE."""
    body = TABLES + [_w(0x108, 0), SAVE, Op.peek(ITT)]
    with pytest.raises(Hazard) as e:
        KernelModelIts("6.1.176").run(SETUP + body)
    assert e.value.index == len(SETUP) + len(TABLES) + 1
    prog = Program(1, 64, tuple(body), gic=3, its=True)
    cut, lines = _model_runs(KernelModelIts("5.10.223"), [prog])
    assert cut[0].body == tuple(TABLES + [_w(0x108, 0)]) and len(lines[0]) == len(cut[0].ops())
    assert KernelModelIts("6.12.117").run(SETUP + body)[-2:] == ["ok", "0x0"]


def _buggy_its_model(release: str) -> KernelModelIts:
    """A planted bug: the ITS's collections are never freed (vgic_its_free_collection_list
    does nothing: CTRL_RESET, a GITS_BASER1 write clearing Valid, a failed restore)."""
    class Buggy(KernelModelIts):
        def _free_collections(self, its):
            pass
    return Buggy(release)


def test_planted_its_bug_is_shrunk_without_a_boot():
    release = "6.1.176"
    truth = KernelModelIts(release)
    info = KernelInfo("fake", "none", "linux-image-fake", f"{release}-1", f"{release}-fake", harness.cache_dir())
    boots = []

    def lines(p):
        try:
            return truth.run(p)
        except Hazard as e:  # where a real kernel could oops (the buggy model cut elsewhere)
            return truth.run(p[:e.index]) + ["!oops"] * (len(p) - e.index)

    def run(progs):
        boots.append(len(progs))
        return BatchResult(kernel=info, gic=3, uname_r=info.uname_r, constants={}, dmesg=[], boot_seconds=1.0,
                           total_seconds=2.0, ioctls=1, ioctl_ns=1,
                           programs=[[Result(i, j + 1, t) for j, t in enumerate(lines(p))]
                                     for i, p in enumerate(progs)])
    rep = conform(info, programs=80, seed=5, run=run, model=_buggy_its_model(release), device="gicv3-its")
    assert rep.exit_code == 1 and rep.disagreements and rep.boots == len(boots) > 1
    d = min(rep.disagreements, key=lambda d: len(d.program.ops()))
    ops = d.program.ops()
    # minimal: a collection in memory, its table's base, a restore, something that frees the
    # collections, and the operation that sees they are still there
    assert ops[d.first].name in ("ctrl", "peek") and len(d.program.body) <= 8, "\n".join(d.render())
    assert "gicproof conform gicv3-its" in rep.render() and rep.json()["device"] == "gicv3-its"


def test_cli_conform_gicv3_its_bad_input(capsys):
    assert cli.main(["conform", "gicv3-its", "--kernel", "6.12", "--gic", "2"]) == 2
    assert "--gic 2" in capsys.readouterr().err
    assert cli.main(["conform", "gicv3-its", "--kernel", "no-such-kernel"]) == 2
    err = capsys.readouterr().err
    assert "no-such-kernel" in err or "install-parts.sh" in err


# ---------------------------------------------------------------------------------------
# A real kernel: one boot.

CACHED = [k.label for k in harness.list_kernels()]


@pytest.mark.kernel
@pytest.mark.skipif(not CACHED, reason="no cached kernel")
def test_real_kernel_agrees_with_the_its_model():
    """The replayed disagreements, the scenarios and 120 random gicv3-its programs (half
    lifecycle programs) in one boot of one kernel (GICPROOF_KERNEL, else 6.12, else the
    first cached). The model gives the recorded answers (the tests above), so agreeing
    with it line by line is the kernel giving them too."""
    if not shutil.which(harness.QEMU):
        pytest.skip(f"{harness.QEMU} is not installed (models/kernel/install-parts.sh installs it)")
    label = os.environ.get("GICPROOF_KERNEL") or ("6.12" if "6.12" in CACHED else CACHED[0])
    fixed = [Program(0, 0, tuple(_program(body)), lifecycle=True, gic=3, its=True)
             for _, body, _ in FOUND + SCENARIOS]
    batch = generate_batch(120, seed=11, device="gicv3-its") + fixed
    rep = conform(label, batch=batch, device="gicv3-its")
    assert rep.disagreeing_programs == 0, rep.render()
    assert rep.boots == 1 and rep.programs == len(batch)
    assert dataclasses.replace(fixed[0]) == fixed[0]
