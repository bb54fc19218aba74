"""``gicproof review``: the mailing-list review of a sequence file (proofs/review.py).

Golden output for a GICv2 pair (QEMU's put as it is, against the put with the GICD_IIDR
write-back), the format's promises (at most 72 columns, no line a reply would read as
quoted), the exit status, and bad input."""

from __future__ import annotations

import os

import pytest
from helpers import GICV2_DIR, GOLDEN

from proofs.cli import main

ROOT = GICV2_DIR.parents[2]
# relative to the repository (the review names its files as given): the golden output
# does not depend on where the clone is
CURRENT = GICV2_DIR.relative_to(ROOT) / "qemu-current-6.12.toml"
WITH_IIDR = GICV2_DIR.relative_to(ROOT) / "qemu-with-iidr-6.12.toml"


@pytest.fixture(autouse=True)
def at_root(monkeypatch):
    monkeypatch.chdir(ROOT)


def run(capsys, *args: str) -> tuple[int, str, str]:
    code = main(["review", *args])
    out = capsys.readouterr()
    return code, out.out, out.err


def golden(name: str, text: str, request) -> None:
    path = GOLDEN / f"{name}.txt"
    if request.config.getoption("--regen-golden") or os.environ.get("GICPROOF_REGEN_GOLDEN"):
        path.write_text(text)
    assert path.exists(), f"no golden output yet: run pytest --regen-golden and review {path}"
    assert text == path.read_text()


def test_review_of_qemus_put_against_the_iidr_fix_is_golden(capsys, request):
    code, out, err = run(capsys, str(CURRENT), "--against", str(WITH_IIDR))
    assert code == 0 and not err  # the file's counterexample is as it expects
    lines = out.splitlines()
    assert max(len(x) for x in lines) <= 72
    assert not any(x.startswith(">") for x in lines)
    assert "Verdict: COUNTEREXAMPLE. 11 distinct losses" in out
    # the step that loses the group, and the constraint the missing step would have kept
    assert "Lost at line 53 of the file, write GICD_IGROUPR[0] cpu0 = saved" in out
    assert "- GICD_IIDR before GICD_IGROUPR" in out
    assert "never performs" in out and "GICD_IIDR," in out
    assert "Losses it no longer has: group:0->1@ppi" in out
    golden("review-gicv2-current-vs-iidr", out, request)


def test_a_violated_constraint_is_named(capsys):
    """The golden file that restores GICD_ICFGR after the pending state (QEMU's 2015 fix
    undone) violates the graph's ICFGR-before-ISPENDR edge on 4.7."""
    code, out, _ = run(capsys, str(GOLDEN / "icfgr-after-pending-4.7.toml"))
    assert code == 0
    text = " ".join(out.split())
    assert "This sequence violates: " in text and "GICD_ICFGR -> GICD_ISPENDR," in text.split("violates: ")[1]


@pytest.mark.parametrize("args,message", [
    (["no/such/file.toml"], "no/such/file.toml"),
    ([str(CURRENT), "--against", "no/such/other.toml"], "no/such/other.toml"),
])
def test_bad_input_is_exit_2_with_the_file_named(capsys, args, message):
    code, out, err = run(capsys, *args)
    assert code == 2 and not out
    assert err.startswith("gicproof: error: ") and message in err and "Traceback" not in err


def test_review_of_the_gicv5_irs_proposal_against_the_simplification_is_golden(capsys, request):
    """Issue 11's use: the proposed IRS restore in QEMU's lifecycle (seed 003) against the
    simplified one from the reply. The simplification removes IRS_IST_CFGR before
    IRS_IST_BASER (the BASER write no longer allocates) and IRS_SPI_SELR before
    IRS_SPI_CFGR (the per-SPI loop is gone), and adds IRS_IST_CFGR before the IST restore,
    which now allocates."""
    d = GICV2_DIR.relative_to(ROOT).parent / "gicv5-irs"
    code, out, err = run(capsys, str(d / "proposed-qemu-lifecycle.toml"), "--against",
                         str(d / "simplified-qemu.toml"))
    assert code == 0 and not err
    assert max(len(x) for x in out.splitlines()) <= 72
    text = " ".join(out.split())
    assert "Constraints it removes (2): - IRS_IST_CFGR before IRS_IST_BASER" in text
    assert "- IRS_SPI_SELR before IRS_SPI_CFGR" in text
    assert "Constraints it adds (1): - IRS_IST_CFGR before KVM_DEV_ARM_VGIC_GRP_IST_SET" in text
    golden("review-gicv5-proposed-vs-simplified", out, request)


GICV5_DIR = GICV2_DIR.relative_to(ROOT).parent / "gicv5-irs"
# each shipped GICv5 file: its verdict, and a sentence its review must carry (the finding,
# in the words a maintainer reads; the whole text is the golden file)
GICV5_REVIEWS = {
    "proposed-verbatim": ("COUNTEREXAMPLE. 2 distinct losses",
                          "Lost at line 102 of the file, write IRS_PE_SELR = index"),
    "proposed-qemu-lifecycle": ("COUNTEREXAMPLE. 2 distinct losses",
                                "Lost at line 106 of the file, write IRS_SPI_SELR = index"),
    "simplified-qemu": ("PROVED", "Assumes no-one-of-n"),
    "simplified-qemu-one-of-n": ("COUNTEREXAMPLE. 1 distinct loss",
                                 "IRS_PE_CR0 of cpu0 (through its selector) is never saved"),
    "simplified-save-mmio-first": ("PROVED", "Assumes no-one-of-n"),
    "simplified-save-memory-first": ("COUNTEREXAMPLE. 4 distinct losses",
                                     "guest memory was saved at line 13, before KVM_DEV_ARM_VGIC_GRP_IST_GET at "
                                     "line 15 wrote lpi_enable's table into it"),
    "merged-qemu": ("PROVED", "- KVM_DEV_ARM_VGIC_GRP_IST_SET before VGIC_LPI_IST"),
    "merged-save-memory-first": ("PROVED", "- KVM_DEV_ARM_VGIC_GRP_IST_SET before VGIC_LPI_IST"),
}


def test_every_shipped_gicv5_file_has_a_golden_review():
    shipped = {p.stem for p in (ROOT / GICV5_DIR).glob("*.toml")}
    assert shipped == set(GICV5_REVIEWS)


@pytest.mark.parametrize("stem", sorted(GICV5_REVIEWS))
def test_review_of_each_gicv5_file_is_golden(capsys, request, stem):
    """Issue 11: a golden review for each shipped GICv5 sequence. Each file's verdict is
    as it expects (exit 0), the text keeps the format's promises, and it names the
    finding."""
    verdict, finding = GICV5_REVIEWS[stem]
    code, out, err = run(capsys, str(GICV5_DIR / f"{stem}.toml"))
    assert code == 0 and not err
    lines = out.splitlines()
    assert max(len(x) for x in lines) <= 72 and not any(x.startswith(">") for x in lines)
    text = " ".join(out.split())
    assert f"Verdict: {verdict}" in text
    assert " ".join(finding.split()) in text
    assert "the verdict matches" in text
    golden(f"review-gicv5-{stem}", out, request)


def test_the_merged_abi_removes_the_memory_after_ist_save_rule(capsys):
    """The final ABI's IST save writes a userspace buffer, not guest memory (FACTS §2.4):
    against the simplified save, the one save-side constraint goes, and the restore's
    restore_memory -> KVM_DEV_ARM_VGIC_GRP_IST_SET with it."""
    code, out, err = run(capsys, str(GICV5_DIR / "simplified-qemu.toml"), "--against",
                         str(GICV5_DIR / "merged-qemu.toml"))
    assert code == 0 and not err
    text = " ".join(out.split())
    assert "Save constraints it removes (1): - KVM_DEV_ARM_VGIC_GRP_IST_GET before save_memory" in text
    assert "Constraints it removes (1): - restore_memory before KVM_DEV_ARM_VGIC_GRP_IST_SET" in text
