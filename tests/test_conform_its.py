"""``gicproof conform gicv3-its``: the ITS model of the kernel (models/kernel/its_model.py,
KernelModelIts, over the GICV3_ITS section of spec/lifecycle.py and the GITS rows of
spec/gicv3_its.py), its generator and shrinker without a boot; then one boot of one cached
kernel with a small batch, which must give no disagreement.

Each disagreement conform gicv3-its found is replayed here against the model (``FOUND``),
with what the kernels printed: the model must now give the kernel's answer on every
release. The scenarios (``SCENARIOS``) are what the oracle printed (Debian 5.10.223,
6.1.176, 6.12.117 and 7.2.13 under QEMU gic-version=3); the kernel test runs both again.
"""

from __future__ import annotations

import os
import re
import shutil

import pytest

from models.kernel import harness
from models.kernel.harness import Op, v3_setup
from models.kernel.its_model import KernelModelIts
from spec import lifecycle as lifecycle_table

RESULT = re.compile(r"^(ok|0x[0-9a-f]+|E[A-Z0-9]+|!no mem word at 0x[0-9a-f]+|!no device '0x[0-9a-f]+')$")
RELEASES = ("5.10.223", "6.1.176", "6.12.117", "7.2.13")
IT = "ITS_REGS"
SETUP = v3_setup(vcpus=1, nr_irqs=64, its=True)

# (what, program after SETUP, the last results: one list for every release, or a dict
# from the first release of a range to its answer). Each one a disagreement the
# conformance run found, shrunk, with the kernel's answer.
FOUND = [
    ("GITS_CBASER keeps every bit but 15:12 and the sanitised fields (vgic_sanitise_its_cbaser): the "
     "whole Size field and the RES0 bits; the model kept 2 Size bits",
     [Op.set(1, IT, 0x80, 0x61791FEF), Op.get(1, IT, 0x80, 64)], ["ok", "0x1800000061790fef"]),
]


def _expected(want, release: str) -> list[str]:
    if isinstance(want, list):
        return want
    key = lifecycle_table.release_key
    return want[max((r for r in want if key(r) <= key(release)), key=key)]


@pytest.mark.parametrize("release", RELEASES)
def test_found_disagreements_now_agree(release):
    model = KernelModelIts(release)
    for what, body, want in FOUND:
        got = model.run(SETUP + body)
        exp = _expected(want, release)
        assert got[-len(exp):] == exp, f"{what}: {release}"
        assert all(x == "ok" for x in got[:len(SETUP)]), got


# ---------------------------------------------------------------------------------------
# A real kernel: one boot.

CACHED = [k.label for k in harness.list_kernels()]


@pytest.mark.kernel
@pytest.mark.skipif(not CACHED, reason="no cached kernel")
def test_real_kernel_agrees_with_the_its_model():
    """The replayed disagreements and the scenarios, and 120 random gicv3-its programs (half
    lifecycle programs), in one boot of one kernel (GICPROOF_KERNEL, else 6.12, else the
    first cached)."""
    if not shutil.which(harness.QEMU):
        pytest.skip(f"{harness.QEMU} is not installed (models/kernel/install-parts.sh installs it)")
    from proofs.conform import Program, conform, generate_batch
    label = os.environ.get("GICPROOF_KERNEL") or ("6.12" if "6.12" in CACHED else CACHED[0])
    fixed = [Program(0, 0, tuple(SETUP + body), lifecycle=True, gic=3, its=True) for _, body, _ in FOUND]
    batch = generate_batch(120, seed=11, device="gicv3-its") + fixed
    rep = conform(label, batch=batch, device="gicv3-its")
    assert rep.disagreeing_programs == 0, rep.render()
    assert rep.boots == 1 and rep.programs == len(batch)
    assert all(RESULT.match(x) for x in ("ok",))
